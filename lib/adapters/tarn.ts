import { acquireWrapper, callAcquire, followPromise, patchEnd, patchMethod } from './patch.js';
import { tarnDestroy, tarnHolds, tarnInternals, type TarnInternals } from './internals/tarn.js';
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
}

/**
 * tarn 3 (knex's pool, also used alone): `acquire()` → `{ promise }`, `release(r)` → whether
 * the pool took it back. tarn has no per-resource destroy: a resource that fails
 * validation is discarded inside acquire, before any handover, so no lease sees it. A
 * `lease()` handle's `destroy()` discards one the same way (internals/tarn.ts).
 */
export const tarn: BuiltinAdapter = {
  kind: 'tarn',
  defaultName: 'tarn',
  acquireMethod: 'acquire',
  libraries: ['tarn'],
  internals: tarnInternals,

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

  lease: {
    acquire: (pool) => (pool as TarnPool).acquire().promise,
    release: (pool, resource) => (pool as TarnPool).release(resource),
    // tarn has no public way to discard one resource: as it discards one that fails validation.
    destroy: (pool, resource) => tarnDestroy(pool as TarnInternals, resource),
  },

  install(pool, tracker: Tracker) {
    const restores = [
      patchMethod<TarnPool['acquire']>(pool, 'acquire', (original) =>
        acquireWrapper(tracker, (self: TarnPool, args, trace, acquire) => {
          const lease = tracker.begin(acquire, undefined, trace);
          const pending = callAcquire<PendingAcquire>(tracker, lease, original, self, args);
          // tarn chains on `promise` the same way; its destroy() and validation read it back from the object.
          pending.promise = followPromise(tracker, lease, pending.promise);
          return pending;
        }) as TarnPool['acquire'],
      ),
      // A refused release (tarn returns false) is a double or foreign release: the tracker names it.
      patchEnd(tracker, pool, 'release', false),
    ];
    return () => {
      for (const restore of restores) restore();
    };
  },

  capacity: (pool) => (pool as TarnInternals).max,
  acquireTimeoutMs: (pool) => (pool as TarnInternals).acquireTimeoutMillis,
  idle: (pool) => (pool as TarnInternals).numFree?.(),
  // Its documented count of resources lent out: those it is still creating are counted apart.
  leased: (pool) => (pool as { numUsed?(): number }).numUsed?.(),
  // acquireTimeoutMillis ran out.
  isExhaustion: (error) => (error as Error | null)?.constructor?.name === 'TimeoutError',

  isLeased(pool, resource) {
    return tarnHolds(pool as TarnInternals, resource);
  },
};
