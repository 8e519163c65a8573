import { AsyncLocalStorage } from 'node:async_hooks';
import type { Lease } from './lease.js';
import type { Labels } from './options.js';

/**
 * A unit of work (a request, a job, a test) whose leases must all be closed when it
 * ends. Scopes nest: an inner scope's labels are merged over its parent's.
 */
export class Scope {
  /** Leases opened in this scope and still open. */
  readonly open = new Set<Lease>();
  ended = false;

  constructor(
    /** Own labels merged over the parent's (inner wins). */
    readonly labels: Labels,
    readonly parent: Scope | undefined,
  ) {}
}

// One store for the process: a request scope covers every pool, whichever detector watches it.
const storage = new AsyncLocalStorage<Scope>();
// Until the first scope, no acquire pays for reading the store.
let used = false;

/** The innermost scope of the caller's async context, if any. */
export function currentScope(): Scope | undefined {
  return used ? storage.getStore() : undefined;
}

/**
 * Runs `fn` in a new scope; calls `onEnd(scope)` once `fn` has settled (or thrown), and
 * returns what `fn` returns, unchanged.
 */
export function runScope<R>(labels: Labels, fn: () => R, onEnd: (scope: Scope) => void): R {
  used = true;
  const parent = storage.getStore();
  const merged = parent === undefined ? labels : { ...parent.labels, ...labels };
  const scope = new Scope(Object.freeze(merged), parent);
  const end = () => {
    scope.ended = true;
    onEnd(scope);
  };
  let result: R;
  try {
    result = storage.run(scope, fn);
  } catch (error) {
    end();
    throw error;
  }
  if (typeof (result as PromiseLike<unknown> | null)?.then !== 'function') {
    end();
    return result;
  }
  // A chained promise, so a rejection the caller ignores is still reported as unhandled.
  return (result as PromiseLike<unknown>).then(
    (value) => {
      end();
      return value;
    },
    (error: unknown) => {
      end();
      throw error;
    },
  ) as R;
}

/**
 * The labels for an acquire: the `context` option's, the scope's over them (on a clash
 * the scope wins), and the active trace's ids. No allocation unless two give labels.
 */
export function mergeLabels(own: Labels | undefined, scope: Scope | undefined, trace: Labels | undefined): Labels | undefined {
  const scoped = scope === undefined ? own : own === undefined ? scope.labels : { ...own, ...scope.labels };
  if (trace === undefined) return scoped;
  return scoped === undefined ? trace : { ...scoped, ...trace };
}
