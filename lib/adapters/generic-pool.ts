import type { Pool } from 'generic-pool';
import { acquireWrapper, callAcquire, followPromise, patchEnd, patchMethod } from './patch.js';
import type { Lease } from '../lease.js';
import type { BuiltinAdapter, Tracker } from './types.js';
import { acquireTimeoutOf, genericPoolInternals, type GenericPoolInternals, type ResourceRequest as Request } from './internals/generic-pool.js';

type AnyPool = Pool<unknown>;

interface ResourceRequest extends Request {
  [leaseKey]?: Lease;
}

const leaseKey = Symbol('poolwatch.lease');

/**
 * Sees the handover inside generic-pool itself: every `acquire()` enqueues one request,
 * and the pool resolves it with the connection (or rejects it on its timeout). Following
 * the request, rather than chaining on the promise the app gets, spares a promise and a
 * microtask per acquire, and the app gets the pool's own promise object. Returns
 * undefined when the pool's internals are not the shape this expects, and the adapter
 * then follows the promise instead.
 */
function followRequests(pool: AnyPool, tracker: Tracker) {
  const queue = (pool as unknown as GenericPoolInternals)._waitingClientsQueue;
  if (queue === undefined || typeof queue.enqueue !== 'function') return undefined;
  const state = {
    // The lease of the acquire() now running, until its request is enqueued.
    pending: undefined as Lease | undefined,
    // The acquire() now running: a handover inside it happens as it is asked for.
    current: undefined as Lease | undefined,
    restore: () => {},
  };
  // Own properties on each request, not patches of generic-pool's classes: other pools,
  // watched or not, are untouched.
  function resolve(this: ResourceRequest, value: unknown) {
    const lease = this[leaseKey];
    Object.getPrototypeOf(this).resolve.call(this, value);
    if (lease !== undefined) tracker.handover(lease, value, lease === state.current);
  }
  function reject(this: ResourceRequest, reason: unknown) {
    const lease = this[leaseKey];
    // Before the promise rejects, so the timeout error already names who holds the pool.
    if (lease !== undefined) tracker.fail(lease, reason);
    Object.getPrototypeOf(this).reject.call(this, reason);
  }
  state.restore = patchMethod<(request: ResourceRequest, priority?: number) => void>(queue, 'enqueue', (original) =>
    function enqueue(this: unknown, request: ResourceRequest) {
      const lease = state.pending;
      if (lease !== undefined && typeof request === 'object' && request !== null) {
        state.pending = undefined;
        request[leaseKey] = lease;
        request.resolve = resolve;
        request.reject = reject;
      }
      return original.apply(this, arguments as unknown as [ResourceRequest]);
    },
  );
  return state;
}

/** generic-pool 3: `acquire()` → promise, `release(r)`, `destroy(r)`; `use(fn)` goes through both. */
export const genericPool: BuiltinAdapter = {
  kind: 'generic-pool',
  defaultName: 'generic-pool',
  acquireMethod: 'acquire',
  libraries: ['generic-pool'],
  internals: genericPoolInternals,

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

  lease: {
    acquire: (pool) => (pool as AnyPool).acquire(),
    release: (pool, resource) => (pool as AnyPool).release(resource),
    destroy: (pool, resource) => (pool as AnyPool).destroy(resource),
  },

  install(pool, tracker: Tracker) {
    const requests = followRequests(pool as AnyPool, tracker);
    const restores = [
      patchMethod<AnyPool['acquire']>(pool, 'acquire', (original) =>
        acquireWrapper(tracker, (self: AnyPool, args, trace, acquire) => {
          const lease = tracker.begin(acquire, undefined, trace);
          if (requests === undefined) {
            return followPromise(tracker, lease, callAcquire<PromiseLike<unknown>>(tracker, lease, original, self, args)) as Promise<unknown>;
          }
          const outer = requests.current;
          requests.pending = requests.current = lease;
          let promise: Promise<unknown>;
          try {
            promise = original.apply(self, args as unknown as [number?]);
          } catch (error) {
            requests.pending = undefined;
            tracker.fail(lease, error);
            throw error;
          } finally {
            requests.current = outer;
          }
          if (requests.pending !== lease) return promise;
          // Refused without a request (draining, too many waiting): the promise says why.
          requests.pending = undefined;
          return followPromise(tracker, lease, promise) as Promise<unknown>;
        }) as AnyPool['acquire'],
      ),
      patchEnd(tracker, pool, 'release', false),
      patchEnd(tracker, pool, 'destroy', true),
    ];
    if (requests !== undefined) restores.push(requests.restore);
    return () => {
      for (const restore of restores) restore();
    };
  },

  isLeased(pool, resource) {
    return (pool as AnyPool).isBorrowedResource(resource);
  },

  capacity: (pool) => (pool as AnyPool).max,
  acquireTimeoutMs: (pool) => acquireTimeoutOf(pool as GenericPoolInternals),
  idle: (pool) => (pool as AnyPool).available,
  leased: (pool) => (pool as AnyPool & { borrowed: number }).borrowed,
  // acquireTimeoutMillis ran out ('ResourceRequest timed out').
  isExhaustion: (error) => (error as Error | null)?.name === 'TimeoutError',
};
