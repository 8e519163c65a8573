import type { Lease } from '../lease.js';
import { Trace } from '../stack.js';
import type { Tracker } from './types.js';
import { PoolwatchTypeError, WatchError } from '../errors.js';

// While an adapter installs, every patch it makes is noted here, so that a failure half-way
// undoes them all: watch() is all or nothing.
let journal: Array<() => void> | null = null;

/**
 * Runs an adapter's `install`; if it throws, restores every method it had replaced and
 * throws a `WatchError` (`POOLWATCH_WATCH_FAILED`) whose `cause` is what went wrong.
 */
export function installAll(install: () => () => void): () => void {
  const outer = journal;
  const made: Array<() => void> = [];
  journal = made;
  try {
    return install();
  } catch (error) {
    for (let i = made.length - 1; i >= 0; i--) made[i]!();
    // An adapter's own refusal (already watched through another wrapper) keeps its code.
    if (error instanceof PoolwatchTypeError) throw error;
    throw new WatchError(`poolwatch could not watch this pool, which is left as it was: ${(error as Error)?.message ?? String(error)}`, error);
  } finally {
    journal = outer;
  }
}

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
  const restore = () => {
    // Someone patched after us: leave their wrapper alone rather than drop it.
    if (record[key] !== wrapped) return;
    if (own === undefined) delete record[key];
    else Object.defineProperty(target, key, own);
  };
  journal?.push(restore);
  return restore;
}

/**
 * An acquire wrapper that records the app's call site in its own frame, then calls
 * `body(self, args, trace, wrapper)`; `body` passes `wrapper` and `trace` to
 * `tracker.begin`. Taken here, the capture walks no poolwatch frame before the app's:
 * each frame walked costs about as much as the rest of a lease's bookkeeping. `trace` is
 * undefined when the tracker takes the stack itself (a full one, or none), or when
 * `inner()` says the call comes from the pool's own method that already took it.
 */
export function acquireWrapper<T, R>(
  tracker: Tracker,
  body: (self: T, args: IArguments, trace: Trace | undefined, wrapper: Function) => R,
  inner?: () => boolean,
): (this: T, ...args: unknown[]) => R {
  const wrapper = function (this: T): R {
    const depth = tracker.captureDepth;
    let trace: Trace | undefined;
    if (depth !== 0 && (inner === undefined || !inner())) {
      trace = new Trace(depth);
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = depth;
      Error.captureStackTrace(trace, wrapper);
      Error.stackTraceLimit = limit;
    }
    return body(this, arguments, trace, wrapper);
  };
  return wrapper;
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
  // A look-alike pool that returns something else: the app gets exactly that, untracked.
  if (typeof (promise as PromiseLike<T> | null)?.then !== 'function') {
    onError(undefined);
    return promise;
  }
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
