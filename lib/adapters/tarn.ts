import { acquireWrapper, callAcquire, patchMethod, trackPromise } from './patch.js';
import type { BuiltinAdapter, Tracker } from './types.js';

/** What a tarn acquire returns: the pending operation, whose `promise` settles with the resource. */
interface PendingAcquire {
  promise: PromiseLike<unknown>;
}

/** The part of a tarn 3 `Pool` poolwatch uses. */
interface TarnPool {
  acquire(): PendingAcquire;
  release(resource: unknown): boolean;
  destroy(): Promise<unknown>;
  numPendingCreates(): number;
  numPendingValidations(): number;
  /** The pool's leased resources, each holding its `resource`. */
  used?: ReadonlyArray<{ resource: unknown }>;
}

/**
 * Whether tarn's own bookkeeping counts `resource` as leased. A pool that does not show
 * its leased list (a knex `connectionPool` of another kind) counts as leased: poolwatch
 * then has no grounds to call the release misuse.
 */
export function tarnHolds(pool: Partial<TarnPool> | undefined, resource: unknown): boolean {
  const used = pool?.used;
  if (!Array.isArray(used)) return true;
  // Only on a release poolwatch has no record of: never on the hot path.
  return used.some((entry: { resource: unknown }) => entry.resource === resource);
}

/**
 * tarn 3 (knex's pool, also used alone): `acquire()` → `{ promise }`, `release(r)` → whether
 * the pool took it back. tarn has no per-resource destroy: a resource that fails
 * validation is discarded inside acquire, before any handover, so no lease sees it.
 */
export const tarn: BuiltinAdapter = {
  kind: 'tarn',
  defaultName: 'tarn',
  acquireMethod: 'acquire',
  libraries: ['tarn'],

  matches(pool) {
    const p = pool as Partial<TarnPool>;
    return (
      typeof p.acquire === 'function' &&
      typeof p.release === 'function' &&
      typeof p.destroy === 'function' &&
      // tarn's own counters: no other pool has both.
      typeof p.numPendingCreates === 'function' &&
      typeof p.numPendingValidations === 'function'
    );
  },

  install(pool, tracker: Tracker) {
    const restores = [
      patchMethod<TarnPool['acquire']>(pool, 'acquire', (original) =>
        acquireWrapper(tracker, (self: TarnPool, args, trace, acquire) => {
          const lease = tracker.begin(acquire, undefined, trace);
          const pending = callAcquire<PendingAcquire>(tracker, lease, original, self, args);
          // tarn chains on `promise` the same way; its destroy() and validation read it back from the object.
          pending.promise = trackPromise(
            pending.promise,
            (resource) => tracker.handover(lease, resource),
            (error) => tracker.fail(lease, error),
          );
          return pending;
        }) as TarnPool['acquire'],
      ),
      patchMethod<TarnPool['release']>(pool, 'release', (original) =>
        function release(this: TarnPool, resource: unknown) {
          // A refused release (tarn returns false) is a double or foreign release: the tracker names it.
          tracker.end(resource, false, 'release', release);
          return original.apply(this, arguments as unknown as [unknown]);
        },
      ),
    ];
    return () => {
      for (const restore of restores) restore();
    };
  },

  capacity: (pool) => (pool as { max?: number }).max,
  acquireTimeoutMs: (pool) => (pool as { acquireTimeoutMillis?: number }).acquireTimeoutMillis,
  idle: (pool) => (pool as { numFree?(): number }).numFree?.(),
  // acquireTimeoutMillis ran out.
  isExhaustion: (error) => (error as Error | null)?.constructor?.name === 'TimeoutError',

  isLeased(pool, resource) {
    return tarnHolds(pool as Partial<TarnPool>, resource);
  },
};
