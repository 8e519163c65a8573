import type { Lease } from '../lease.js';
import { AsyncResource } from 'node:async_hooks';
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
 * `minDepth`: the fewest frames a short capture takes, for a pool whose app line sits
 * deeper on some paths than the depth the tracker learnt from others.
 */
export function acquireWrapper<T, R>(
  tracker: Tracker,
  body: (self: T, args: IArguments, trace: Trace | undefined, wrapper: Function) => R,
  inner?: () => boolean,
  minDepth = 0,
): (this: T, ...args: unknown[]) => R {
  const wrapper = function (this: T): R {
    let trace: Trace | undefined;
    // lease() captured the app's line already, at its own call.
    if (tracker.handing === null && (inner === undefined || !inner())) {
      let depth = tracker.captureDepth(wrapper);
      if (depth !== 0) {
        if (depth < minDepth) depth = minDepth;
        trace = new Trace(depth, wrapper);
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = depth;
        Error.captureStackTrace(trace, wrapper);
        Error.stackTraceLimit = limit;
      }
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

/** Follows a promise acquire: the connection goes to `onConnection` (by default the tracker's handover), a rejection fails the lease. */
export function followPromise<T>(tracker: Tracker, lease: Lease, promise: PromiseLike<T>, onConnection?: (connection: T) => void): PromiseLike<T> {
  return trackPromise(promise, onConnection ?? ((connection) => tracker.handover(lease, connection)), (error) => tracker.fail(lease, error));
}

/**
 * The callback to give a callback acquire in place of the app's `(error, connection)`
 * one: it records the handover or the failure, then calls the app's with the same
 * arguments. `bind`: run it in the caller's async context, which a callback queued for a
 * connection would otherwise lose (it runs in the releaser's); the driver's own callbacks
 * need no binding, and it costs an AsyncResource per call.
 */
export function followCallback(tracker: Tracker, lease: Lease, callback: Function, bind: boolean, onConnection?: (connection: unknown) => void): (...args: unknown[]) => unknown {
  const follow = function (this: unknown, error: unknown, connection: unknown) {
    if (error == null && connection != null) (onConnection ?? ((c: unknown) => tracker.handover(lease, c)))(connection);
    else tracker.fail(lease, error);
    return callback.apply(this, arguments);
  };
  return bind ? AsyncResource.bind(follow) : follow;
}

/**
 * Wraps a pool method that takes a connection back (`release`, `destroy`): the lease
 * ends, then the pool's own method runs with the same arguments and its result is the app's.
 */
export function patchEnd(tracker: Tracker, target: object, key: string, destroyed: boolean): () => void {
  return patchMethod<(...args: unknown[]) => unknown>(target, key, (original) =>
    function end(this: unknown, connection: unknown) {
      tracker.end(connection, destroyed, key, end);
      return original.apply(this, arguments as unknown as unknown[]);
    },
  );
}

/**
 * Runs `patch`, which wraps methods of a connection just handed over (its `release`). If
 * one cannot be wrapped (a frozen connection), the others are undone and the lease is
 * dropped as lost: the app gets the connection exactly as the pool gave it, never a
 * TypeError from poolwatch, and poolwatch says once that it cannot follow this pool.
 * Returns whether the connection is wrapped.
 */
export function patchConnection(tracker: Tracker, lease: Lease, patch: () => void): boolean {
  const outer = journal;
  const made: Array<() => void> = [];
  journal = made;
  try {
    patch();
    return true;
  } catch (error) {
    for (let i = made.length - 1; i >= 0; i--) {
      try {
        made[i]!();
      } catch {
        // Nothing more can be undone on an object that refuses changes.
      }
    }
    tracker.lost(lease, error);
    return false;
  } finally {
    journal = outer;
  }
}

/**
 * A value handed from a wrapper to the wrapped call it makes synchronously: the pool's
 * own `query()` calling its `connect()`, knex's runner calling `acquireConnection()`. Set
 * for the call only, so a later, unrelated call never sees it.
 */
export class Handoff<T> {
  #value: T | undefined = undefined;
  /** After `run`: whether its value was left untaken (the inner call never came). */
  untaken = false;

  /** Calls `fn` on `self` with `args`, with `value` waiting to be taken (no closure per call: this is the query path). */
  run<R>(value: T | undefined, fn: Function, self: unknown, args: ArrayLike<unknown>): R {
    const outer = this.#value;
    this.#value = value;
    try {
      return fn.apply(self, args) as R;
    } finally {
      this.untaken = this.#value !== undefined;
      this.#value = outer;
    }
  }

  /** Whether a value is waiting. */
  get waiting(): boolean {
    return this.#value !== undefined;
  }

  /** The waiting value, once: a second take in the same call gets undefined. */
  take(): T | undefined {
    const value = this.#value;
    this.#value = undefined;
    return value;
  }
}
