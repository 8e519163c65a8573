import { inspect } from 'node:util';
import { now, toEpoch } from './clock.js';
import { noOrigin, originOf, type Origin, type Trace } from './stack.js';
import type { Labels } from './options.js';
import { frozenLabels, safeLabels } from './labels.js';
import type { LeakReport } from './report.js';
import type { Scope } from './context.js';
import type { WatchedPool } from './watched-pool.js';
import type { Activity, ConnectionActivity } from './activity.js';

/** A checkout of a connection, as listeners and `leases()` see it. */
export interface LeaseInfo {
  /** Pool name. */
  readonly pool: string;
  /** Unique per detector. */
  readonly leaseId: number;
  /** Epoch ms when the pool handed the connection over. */
  readonly acquiredAt: number;
  /** How long the acquire call waited for the connection. */
  readonly waitedMs: number;
  /** How long the connection has been held (until release, once released). */
  readonly heldMs: number;
  /** `path:line:column` of the app's acquiring line; undefined under `stacks: 'never'`. */
  readonly callSite: string | undefined;
  /** The acquisition stack, library frames removed: a few frames past the call site, or (per stack policy) all of them. */
  readonly stack: string | undefined;
  /** Labels at acquire time; `{}` when none. */
  readonly context: Labels;
  /** The method the app called to get the connection, e.g. `acquire`, `connect` or `query`. */
  readonly via: string;
  /** What the connection is doing now, where the driver lets poolwatch see it (pg, mysql2, mariadb, and knex and ORMs over them). */
  readonly activity?: Activity | undefined;
  /** Epoch ms when the current activity began. */
  readonly activitySince?: number | undefined;
  /** The last statement sent on it, literals and parameter values replaced by `?`, at most 200 characters. */
  readonly lastQuery?: string | undefined;
}

// Lease states. Plain constants rather than a const enum, so files compile one at a time.
export const pending = 0;
export const open = 1;
export const closed = 2;
export const failed = 3;

/** One lease. Every field is set in the constructor so all leases share one shape. */
export class Lease implements LeaseInfo {
  leaseId = 0;
  state = pending;
  resource: unknown = undefined;
  /** Monotonic ms when the pool handed the connection over. */
  acquiredMono = 0;
  releasedMono = -1;
  deadline = Infinity;
  report: LeakReport | null = null;
  /** The scope that opened it, while it must be closed before that scope ends. */
  scope: Scope | undefined;
  /** Ledger links: open leases of one pool, in the order they were handed over. */
  prev: Lease | null = null;
  next: Lease | null = null;
  /** What its connection is doing, when the driver lets poolwatch follow it. */
  follow: ConnectionActivity | null = null;
  /** Past its threshold with a query in flight: said once as `slow`, not as a leak. */
  slow = false;
  /** Taken back by `reclaimAfterMs`: the app's later release is absorbed. */
  reclaimed = false;
  /** Its `lease()` handle was garbage-collected while it was open. */
  collected = false;
  /** poolwatch stopped following it (it cannot see its connection come back): closed here, not in the pool. */
  lost = false;
  #origin: Origin | null = null;

  constructor(
    readonly watched: WatchedPool,
    /** Monotonic ms when the app called acquire. */
    readonly requestedMono: number,
    readonly context: Labels,
    /** The acquisition stack; let go at release unless the lease was reported. */
    public trace: Trace | null,
    readonly via: string,
    scope: Scope | undefined,
  ) {
    this.scope = scope;
  }

  get pool(): string {
    return this.watched.name;
  }

  get acquiredAt(): number {
    return toEpoch(this.acquiredMono);
  }

  get waitedMs(): number {
    return this.acquiredMono - this.requestedMono;
  }

  get heldMs(): number {
    return (this.releasedMono < 0 ? now() : this.releasedMono) - this.acquiredMono;
  }

  /** Where the app acquired it; parsed from the trace on first use. */
  get origin(): Origin {
    if (this.#origin === null) {
      if (this.trace === null) this.#origin = noOrigin;
      else {
        this.#origin = originOf(this.trace, this.watched.isLibrary);
        // A call site cut short teaches the pool to capture deeper next time.
        this.watched.learn(this.trace, this.#origin);
      }
    }
    return this.#origin;
  }

  get callSite(): string | undefined {
    return this.origin.callSite;
  }

  get stack(): string | undefined {
    const frames = this.origin.frames;
    return frames.length === 0 ? undefined : frames.map((frame) => `    ${frame.text}`).join('\n');
  }

  /** Its connection has no query in flight any more (see `ConnectionActivity.waiter`). */
  wake(): void {
    this.watched.wake(this);
  }

  get activity(): Activity | undefined {
    return this.state === open ? this.follow?.state : undefined;
  }

  get activitySince(): number | undefined {
    const follow = this.follow;
    if (follow === null || this.state !== open) return undefined;
    // A connection's activity began before this lease at the earliest as far as the lease goes.
    return toEpoch(Math.max(follow.sinceMono, this.acquiredMono));
  }

  get lastQuery(): string | undefined {
    return this.state === open ? this.follow?.lastQuery : undefined;
  }

  toJSON(): object {
    const { pool, leaseId, acquiredAt, waitedMs, heldMs, via, callSite, stack, activity, activitySince, lastQuery } = this;
    return { pool, leaseId, acquiredAt, waitedMs, heldMs, via, callSite, stack, context: safeLabels(this.context), activity, activitySince, lastQuery };
  }
}

// console.log and util.inspect show a view's values, not `[Getter]` for the parsed fields.
function inspectView(this: LeaseInfo, _depth: number, options: object, show: typeof inspect): string {
  const { pool, leaseId, acquiredAt, waitedMs, heldMs, via, callSite, stack, context, activity, activitySince, lastQuery } = this;
  return show({ pool, leaseId, acquiredAt, waitedMs, heldMs, via, callSite, stack, context, activity, activitySince, lastQuery }, options);
}

/**
 * What an event or a channel message carries of a lease: a frozen plain object with no
 * path to the connection, the pool or poolwatch's own records, so a listener can neither
 * print a password by logging it nor change what `stats()` counts by writing to it. The
 * call site and stack are read from the lease when asked: parsing a stack on every
 * acquire a metrics listener sees would cost more than the rest of the lease.
 */
export function leaseView(lease: Lease): LeaseInfo {
  return Object.freeze({
    pool: lease.pool,
    leaseId: lease.leaseId,
    acquiredAt: lease.acquiredAt,
    waitedMs: lease.waitedMs,
    heldMs: lease.heldMs,
    via: lease.via,
    get callSite() {
      return lease.callSite;
    },
    get stack() {
      return lease.stack;
    },
    // Read when asked, like the stack: most listeners (metrics) never look.
    get activity() {
      return lease.activity;
    },
    get activitySince() {
      return lease.activitySince;
    },
    get lastQuery() {
      return lease.lastQuery;
    },
    context: frozenLabels(lease.context),
    [inspect.custom]: inspectView,
  });
}
