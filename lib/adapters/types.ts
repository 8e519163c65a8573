import type { Lease } from '../lease.js';
import type { Trace } from '../stack.js';
import type { Internals, Shape } from './internals/probe.js';

/**
 * What a watched pool's wrappers tell the detector. Every method is safe to call from
 * the host's acquire or release: none throws.
 */
export interface Tracker {
  /**
   * The app called acquire; `caller` is the wrapper, whose frame and above are left out
   * of the stack. `via` names what the app called when it is not the pool's plain
   * acquire, e.g. `'query'` for `pool.query()`. `trace`, when given, is a stack already
   * captured where the app asked (e.g. at `knex.transaction()`), used instead of this call's.
   */
  begin(caller: Function, via?: string, trace?: Trace | null): Lease;
  /**
   * How many frames an acquire wrapper, `caller`, should capture itself now (see
   * `acquireWrapper`), or 0 when `begin` takes the stack (a full one, or none). Each
   * wrapper learns its own depth: the app's line sits deeper below some than others.
   */
  captureDepth(caller: Function): number;
  /** Set while `lease()` acquires: it took the stack already, and the acquire's lease is its handle's. */
  readonly handing: object | null;
  /**
   * The app's stack above `caller` when the stack policy wants one now, else null: for
   * adapters whose pool acquires later than the app's call (pass it to `begin`).
   */
  capture(caller: Function): Trace | null;
  /**
   * The pool handed `resource` over for `lease`. `immediate`: inside the acquire call
   * itself, so the time it was asked for is the time it was handed over.
   */
  handover(lease: Lease, resource: unknown, immediate?: boolean): void;
  /** The acquire failed or timed out (with `error`, when known): nothing was handed over. */
  fail(lease: Lease, error?: unknown): void;
  /** The app gave `resource` back (`destroyed`: the pool will discard it); `caller` as for begin. */
  end(resource: unknown, destroyed: boolean, method: string, caller: Function): void;
  /**
   * poolwatch cannot see when `lease`'s connection comes back (e.g. it is frozen, so its
   * release cannot be wrapped): the lease is dropped rather than reported as a leak, and
   * the pool's trouble is said once.
   */
  lost(lease: Lease, error: unknown): void;
  /**
   * Checks the shapes a library's connections must have, on the first one handed over; a
   * missing one degrades the pool. `lackedBy` names the connection's class for the warning,
   * when the pool was given it (pg's `Client` option) rather than made it itself.
   */
  probeConnection(shapes: readonly Shape<never>[], connection: unknown, lackedBy?: (connection: unknown) => string): void;
  /** Whether to follow what each connection is doing (the `activity` capability): set `lease.follow` at the handover. */
  readonly following: boolean;
  /** Whether `reclaimAfterMs` is on for this pool: give-back wrappers must then ask {@link Tracker.absorb} first. */
  readonly reclaiming: boolean;
  /**
   * Whether `resource` is one poolwatch took back (`reclaimAfterMs`): then the app's give-back
   * must not reach the pool (it would throw, or give back a connection another borrower
   * has); it is reported as `release-after-reclaim` and the wrapper returns at once.
   */
  absorb(resource: unknown, method: string, caller: Function): boolean;
}

/**
 * How `lease()` takes a connection from a pool and gives it back: through the pool's own
 * API, so through the wrappers `watch()` put on it, and every lease is recorded as usual.
 */
export interface LeaseOps {
  /** One connection, as the app gets it from the pool's usual acquire (a pg `PoolClient`, a mysql2 promise connection). */
  acquire(pool: object): PromiseLike<unknown>;
  /** Gives `connection` back; returns what the pool's release returns (a promise is awaited). */
  release(pool: object, connection: unknown): unknown;
  /**
   * Discards `connection` so the pool opens another in its place; returns false when it
   * could not (a private field it needs is missing): the handle then gives it back instead.
   * Absent for a pool that cannot discard one connection.
   */
  destroy?(pool: object, connection: unknown): unknown;
}

/** Knows one kind of pool: how to recognise it and where to wrap it. */
export interface Adapter {
  /** Shown in errors and debug output, e.g. `generic-pool`. */
  readonly kind: string;
  /** The pool name used when the app gives none. */
  readonly defaultName: string;
  /** The pool's acquire method, as leases name it by default, e.g. `acquire`. */
  readonly acquireMethod: string;
  /** npm packages whose frames are not the app's (the pool library, its driver). */
  readonly libraries: readonly string[];
  /** The library's private fields and undocumented behaviour this adapter relies on, probed at `watch()`. */
  readonly internals?: Internals<never>;
  /**
   * The object this adapter instruments for `pool` when that is another object (e.g. a
   * Sequelize instance's pool): watching both is watching one pool.
   */
  underlying?(pool: object): object;
  /** How `lease()` borrows from this kind of pool; absent when it cannot. */
  readonly lease?: LeaseOps;
  /** Wraps the pool's methods in place; returns what undoes it. */
  install(pool: object, tracker: Tracker): () => void;
  /**
   * Destroys `resource`, which the app holds, through the pool's own path, so its slot
   * returns and a waiter is served: for `reclaimAfterMs`. Pools without it are never reclaimed.
   */
  reclaim?(pool: object, resource: unknown): void;
  /** How many connections the pool may open at most, when it says. */
  capacity?(pool: object): number | undefined;
  /** How long the pool lets an acquire wait before it gives up (ms), when it says and has a limit. */
  acquireTimeoutMs?(pool: object): number | undefined;
  /**
   * How many connections the pool itself counts as leased now, when it says: read only when
   * judging a pool that ran dry with no lease poolwatch knows of (taken before watch()?).
   */
  leased?(pool: object): number | undefined;
  /** How many open connections the pool holds ready (not leased) now, when it says. Read only by `stats()`. */
  idle?(pool: object): number | undefined;
  /**
   * Whether `error`, failing an acquire, is the pool's own "no connection in time" (or
   * "queue full") error: poolwatch then names who holds the pool in it.
   */
  isExhaustion?(error: unknown): boolean;
  /**
   * Whether the pool itself counts `resource` as leased, for a release poolwatch has no
   * record of (it may predate `watch()`). Undefined when the pool cannot tell.
   */
  isLeased?(pool: object, resource: unknown): boolean | undefined;
}

/** A built-in adapter, with how to recognise its pools. */
export interface BuiltinAdapter extends Adapter {
  matches(pool: object): boolean;
}
