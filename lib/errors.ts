/** Stable error codes thrown or emitted by poolwatch. Tests and apps should compare these, not messages. */
export const codes = {
  /** An option has an unknown key or a value of the wrong kind. */
  invalidOption: 'POOLWATCH_INVALID_OPTION',
  /** `watch()` was given an object it does not know how to watch. */
  unsupportedPool: 'POOLWATCH_UNSUPPORTED_POOL',
  /** The pool is already watched by a detector. */
  alreadyWatched: 'POOLWATCH_ALREADY_WATCHED',
  /** A lease leaked; carried by every {@link LeakReport}. */
  leak: 'POOLWATCH_LEAK',
  /** A listener threw; the original error is the `cause`. */
  listenerError: 'POOLWATCH_LISTENER_ERROR',
  /** `watch()` could not instrument the pool (e.g. a method it cannot replace); the pool is left as it was. */
  watchFailed: 'POOLWATCH_WATCH_FAILED',
} as const;

/** A bad argument to poolwatch's API. Carries a stable `code`. */
export class PoolwatchTypeError extends TypeError {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'PoolwatchTypeError';
    this.code = code;
  }
}

/** `watch()` could not instrument a pool; the pool's methods are its own again. `cause` says why. */
export class WatchError extends Error {
  readonly code = codes.watchFailed;
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'WatchError';
  }
}

/** Wraps an error thrown by an event listener or a `context` function, so the host sees where it came from. */
export class ListenerError extends Error {
  readonly code = codes.listenerError;
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'ListenerError';
  }
}

/** Describes a value for an error message: ``-1` (number)`. */
export function describe(value: unknown): string {
  if (typeof value === 'function') return `a function (${value.name || 'anonymous'})`;
  if (value === null) return '`null`';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return `\`${shown}\` (${typeof value})`;
}
