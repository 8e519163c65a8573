import { AsyncLocalStorage } from 'node:async_hooks';
import type { Lease } from './lease.js';
import type { Labels } from './options.js';
import { frozenLabels, safeLabels } from './labels.js';

/** Brings a scope's labels up to date; see {@link Scope.refresh}. */
export type RefreshLabels = (labels: Record<string, unknown>) => void;

/**
 * A unit of work (a request, a job, a test) whose leases must all be closed when it
 * ends. Scopes nest: an inner scope's labels are merged over its parent's as it opens,
 * so it keeps no link that would hold an ended parent (and its request) in memory.
 */
export class Scope {
  /** Leases opened in this scope and still open. */
  readonly open = new Set<Lease>();
  ended = false;

  constructor(
    /** Own labels merged over the parent's (inner wins); the leases that record them share them. */
    readonly labels: Labels,
    /**
     * Updates `labels` in place as a lease records them or a nested scope copies them,
     * and once more as the scope ends: a request's route is known only once the
     * framework has routed it. Cleared at the end, so the scope lets go of the request.
     */
    public refresh: RefreshLabels | undefined,
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
 * A new scope under the caller's current one, not yet entered. Its labels are frozen,
 * at once or, when `refresh` keeps them up to date, as the scope ends.
 */
export function openScope(labels: Labels, refresh?: RefreshLabels): Scope {
  used = true;
  const parent = storage.getStore();
  // The caller's labels are read here, once and defensively (a getter or Proxy trap that
  // throws is shown as unreadable): a scope never throws into the app for its labels, and
  // its leases carry a copy nothing can change or make throw later.
  let merged = labels;
  if (parent !== undefined) {
    refreshLabels(parent);
    merged = { ...parent.labels, ...(refresh === undefined ? safeLabels(labels) : labels) };
  }
  return new Scope(refresh === undefined ? frozenLabels(merged) : merged, refresh);
}

// The route a framework learns while routing: its reader must not break an acquire.
function refreshLabels(scope: Scope): void {
  try {
    scope.refresh?.(scope.labels as Record<string, unknown>);
  } catch {
    // The route stays what it was.
  }
}

/** Runs `fn` with `scope` as the current scope, for it and the async work it starts. */
export function runInScope<R>(scope: Scope, fn: () => R): R {
  return storage.run(scope, fn);
}

/** Ends `scope`, once: later leases of it are leaks as they are handed over; `onEnd` reports the open ones. */
export function endScope(scope: Scope, onEnd: (scope: Scope) => void): void {
  if (scope.ended) return;
  scope.ended = true;
  const refresh = scope.refresh;
  if (refresh !== undefined) {
    refreshLabels(scope);
    scope.refresh = undefined;
    Object.freeze(scope.labels);
  }
  onEnd(scope);
}

/**
 * Runs `fn` in a new scope; calls `onEnd(scope)` once `fn` has settled (or thrown), and
 * returns what `fn` returns, unchanged.
 */
export function runScope<R>(labels: Labels, fn: () => R, onEnd: (scope: Scope) => void): R {
  const scope = openScope(labels);
  let result: R;
  try {
    result = storage.run(scope, fn);
  } catch (error) {
    endScope(scope, onEnd);
    throw error;
  }
  if (typeof (result as PromiseLike<unknown> | null)?.then !== 'function') {
    endScope(scope, onEnd);
    return result;
  }
  // A chained promise, so a rejection the caller ignores is still reported as unhandled.
  return (result as PromiseLike<unknown>).then(
    (value) => {
      endScope(scope, onEnd);
      return value;
    },
    (error: unknown) => {
      endScope(scope, onEnd);
      throw error;
    },
  ) as R;
}

/**
 * The labels for an acquire: the `context` option's, the scope's over them (on a clash
 * the scope wins), and the active trace's ids. No allocation unless two give labels.
 */
export function mergeLabels(own: Labels | undefined, scope: Scope | undefined, trace: Labels | undefined): Labels | undefined {
  if (scope?.refresh !== undefined) refreshLabels(scope);
  try {
    return merge(own, scope, trace);
  } catch {
    // The `context` function's labels threw as they were spread (a getter, a Proxy trap):
    // read defensively instead. A try costs nothing on the path that does not throw.
    return merge(safeLabels(own!), scope, trace);
  }
}

function merge(own: Labels | undefined, scope: Scope | undefined, trace: Labels | undefined): Labels | undefined {
  const scoped = scope === undefined ? own : own === undefined ? scope.labels : { ...own, ...scope.labels };
  if (trace === undefined) return scoped;
  return scoped === undefined ? trace : { ...scoped, ...trace };
}
