import type { Lease } from '../lease.js';
import type { Tracker } from './types.js';

/**
 * Replaces `target[key]` with `wrap(original)` and returns what restores it: the
 * original own property, or none, so the prototype's method shows through again.
 */
export function patchMethod<F extends Function>(target: object, key: string, wrap: (original: F) => F): () => void {
  const record = target as Record<string, unknown>;
  const own = Object.getOwnPropertyDescriptor(target, key);
  const original = record[key] as F;
  const wrapped = wrap(original);
  Object.defineProperty(wrapped, 'name', { value: original.name || key });
  Object.defineProperty(target, key, { value: wrapped, writable: true, configurable: true, enumerable: own?.enumerable ?? false });
  return () => {
    // Someone patched after us: leave their wrapper alone rather than drop it.
    if (record[key] !== wrapped) return;
    if (own === undefined) delete record[key];
    else Object.defineProperty(target, key, own);
  };
}

/**
 * Calls the pool's own acquire for `lease`: a synchronous throw fails the lease and
 * reaches the app unchanged.
 */
export function callAcquire<R = unknown>(tracker: Tracker, lease: Lease, original: Function, self: unknown, args: ArrayLike<unknown>): R {
  try {
    return original.apply(self, args) as R;
  } catch (error) {
    tracker.fail(lease, error);
    throw error;
  }
}

/**
 * Follows a promise-returning acquire to its handover or failure. Chains on the pool's
 * own promise, so a pool built on another promise library keeps returning its kind.
 */
export function trackPromise<T>(promise: PromiseLike<T>, onValue: (value: T) => void, onError: (error: unknown) => void): PromiseLike<T> {
  return promise.then(
    (value) => {
      onValue(value);
      return value;
    },
    (error: unknown) => {
      onError(error);
      throw error;
    },
  );
}
