import type { Pool } from 'generic-pool';
import { callAcquire, patchMethod, trackPromise } from './patch.js';
import type { BuiltinAdapter, Tracker } from './types.js';

type AnyPool = Pool<unknown>;

/** generic-pool 3: `acquire()` → promise, `release(r)`, `destroy(r)`; `use(fn)` goes through both. */
export const genericPool: BuiltinAdapter = {
  kind: 'generic-pool',
  defaultName: 'generic-pool',
  acquireMethod: 'acquire',
  libraries: ['generic-pool'],

  matches(pool) {
    const p = pool as Partial<AnyPool>;
    return (
      typeof p.acquire === 'function' &&
      typeof p.release === 'function' &&
      typeof p.destroy === 'function' &&
      typeof p.isBorrowedResource === 'function' &&
      typeof p.drain === 'function'
    );
  },

  install(pool, tracker: Tracker) {
    const restores = [
      patchMethod<AnyPool['acquire']>(pool, 'acquire', (original) =>
        function acquire(this: AnyPool, priority?: number) {
          const lease = tracker.begin(acquire);
          const promise = callAcquire<PromiseLike<unknown>>(tracker, lease, original, this, arguments as unknown as [number?]);
          return trackPromise(promise, (resource) => tracker.handover(lease, resource), (error) => tracker.fail(lease, error)) as Promise<unknown>;
        },
      ),
      patchMethod<AnyPool['release']>(pool, 'release', (original) =>
        function release(this: AnyPool, resource: unknown) {
          tracker.end(resource, false, 'release', release);
          return original.apply(this, arguments as unknown as [unknown]);
        },
      ),
      patchMethod<AnyPool['destroy']>(pool, 'destroy', (original) =>
        function destroy(this: AnyPool, resource: unknown) {
          tracker.end(resource, true, 'destroy', destroy);
          return original.apply(this, arguments as unknown as [unknown]);
        },
      ),
    ];
    return () => {
      for (const restore of restores) restore();
    };
  },

  isLeased(pool, resource) {
    return (pool as AnyPool).isBorrowedResource(resource);
  },

  capacity: (pool) => (pool as AnyPool).max,
  idle: (pool) => (pool as AnyPool).available,
  // acquireTimeoutMillis ran out ('ResourceRequest timed out').
  isExhaustion: (error) => (error as Error | null)?.name === 'TimeoutError',
};
