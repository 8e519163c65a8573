import { PoolwatchTypeError, codes, describe } from './errors.js';
import { defaultDetector, watchedPoolOf } from './detector.js';
import { adapterFor } from './adapters/index.js';
import { open, type Lease } from './lease.js';
import type { LeaseOps } from './adapters/types.js';
import type { Handing, WatchedPool } from './watched-pool.js';
import { warn } from './warn.js';

/**
 * The connection `lease(pool)` hands over, read from the pool's own types: a pg
 * `PoolClient`, a generic-pool or tarn resource, a mysql2 or mariadb `PoolConnection`, a
 * postgres.js `ReservedSql`, a Sequelize connection. `unknown` where the pool's types do
 * not say (knex, mssql: their driver's connection).
 */
export type ConnectionOf<P> = 0 extends 1 & P
  ? any // eslint-disable-line @typescript-eslint/no-explicit-any -- an untyped pool gives an untyped connection
  : P extends { isBorrowedResource(resource: any): boolean; acquire(priority?: number): PromiseLike<infer R> } // generic-pool
    ? R
    : P extends { acquire(): { promise: PromiseLike<infer R> }; numPendingCreates(): number } // tarn
      ? R
      : P extends { connect(callback: (error: any, client: infer C, done: any) => void): void; totalCount: number } // pg
        ? NonNullable<C>
        : P extends { reserve(): PromiseLike<infer R> } // postgres.js
          ? R
          : P extends { getConnection(): PromiseLike<infer C> } // mysql2 promise pool, mariadb
            ? C
            : P extends { getConnection(callback: (error: any, connection: infer C) => any): void } // mysql2 callback pool
              ? NonNullable<C>
              : P extends { connectionManager: { getConnection(...args: any[]): PromiseLike<infer C> } } // Sequelize
                ? C
                : unknown;

/**
 * A connection borrowed with {@link lease}. Give it back with `release()` (or `destroy()`
 * when it may be in a bad state), or declare it with `await using` and it is released
 * when the block ends. Keep the handle for as long as you use the connection: a handle
 * garbage-collected while still open is reported as a leak of kind `collected`.
 */
export interface PoolLease<C> {
  /** The connection, exactly as the pool's own acquire hands it over. */
  readonly connection: C;
  /**
   * Gives the connection back to the pool; settles when the pool has it (with the pool's
   * own error if its release fails). A second call, or one after the connection went back
   * another way, touches nothing: it is a `misuse` of kind `stale-release`.
   */
  release(): Promise<void>;
  /**
   * Discards the connection so the pool opens a new one in its place. postgres.js cannot
   * discard one reserved connection: there it is given back.
   */
  destroy(): Promise<void>;
  /** What `await using` calls as the block ends: `release()`, unless the lease already ended. */
  [Symbol.asyncDispose](): Promise<void>;
}

// Node 20.4+ and 22 define it; the global symbol is the conventional stand-in elsewhere.
const asyncDispose: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? (Symbol.for('Symbol.asyncDispose') as typeof Symbol.asyncDispose);

const done: Promise<void> = Promise.resolve();
const settled = (): void => undefined;

// Handles the collector may find while their lease is open: nothing can give those back.
// Made at the first lease(), so a process that never calls it has no registry at all.
let registry: FinalizationRegistry<Lease> | undefined;
const forgotten = (): FinalizationRegistry<Lease> => (registry ??= new FinalizationRegistry<Lease>((lease) => lease.watched.collected(lease)));

const destroyFallbackWarned = new Set<string>();

// Whether the handle's lease is still the connection's: open, or one poolwatch stopped following (it never saw it end).
function isOpen(lease: Lease | null): boolean {
  return lease === null || lease.state === open || lease.lost;
}

class Handle<C> implements PoolLease<C> {
  readonly #watched: WatchedPool;
  // Null only if the pool's acquire opened no lease poolwatch saw: the handle then just gives the connection back.
  readonly #lease: Lease | null;
  readonly #target: object;
  readonly #ops: LeaseOps;
  readonly #connection: C;
  #ended = false;

  constructor(watched: WatchedPool, lease: Lease | null, target: object, ops: LeaseOps, connection: C) {
    this.#watched = watched;
    this.#lease = lease;
    this.#target = target;
    this.#ops = ops;
    this.#connection = connection;
  }

  get connection(): C {
    return this.#connection;
  }

  release(): Promise<void> {
    return this.#end(false, 'release', this.release);
  }

  destroy(): Promise<void> {
    return this.#end(true, 'destroy', this.destroy);
  }

  [asyncDispose](): Promise<void> {
    // Already given back (by this handle, or by the connection's own release): nothing to do.
    if (this.#ended || !isOpen(this.#lease)) {
      this.#close();
      return done;
    }
    return this.#end(false, 'release', this[asyncDispose]);
  }

  get [Symbol.toStringTag](): string {
    return 'PoolLease';
  }

  #close(): void {
    this.#ended = true;
    registry?.unregister(this);
  }

  #end(destroy: boolean, method: string, caller: Function): Promise<void> {
    const lease = this.#lease;
    if (this.#ended || !isOpen(lease)) {
      this.#close();
      if (lease !== null) this.#watched.staleRelease(lease, method, caller);
      return done;
    }
    this.#close();
    const ops = this.#ops;
    const target = this.#target;
    const connection = this.#connection;
    let result: unknown = false;
    try {
      const discard = ops.destroy;
      if (destroy && discard !== undefined) result = this.#giveBack(lease, true, () => discard(target, connection));
      if (result === false) {
        // A release; or a pool that cannot discard one connection (or lacks the field it takes): given back instead, said once.
        if (destroy) this.#cannotDestroy();
        result = this.#giveBack(lease, false, () => ops.release(target, connection));
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (typeof (result as PromiseLike<unknown> | null)?.then !== 'function') return done;
    // The pool's own promise when it is a native one (its value is the pool's, unused): one promise fewer per release.
    return result instanceof Promise ? (result as Promise<void>) : Promise.resolve(result as PromiseLike<unknown>).then(settled);
  }

  #giveBack(lease: Lease | null, destroy: boolean, giveBack: () => unknown): unknown {
    return lease === null ? giveBack() : this.#watched.giveBack(lease, destroy, giveBack);
  }

  // Said once per library: destroy() gave the connection back rather than discard it.
  #cannotDestroy(): void {
    const library = this.#watched.capabilities.library;
    if (destroyFallbackWarned.has(library)) return;
    destroyFallbackWarned.add(library);
    warn(`poolwatch: a lease() handle of pool "${this.#watched.name}" (${library}) cannot discard its connection: the pool offers no way to, so destroy() gave it back.`, 'POOLWATCH_DESTROY_UNSUPPORTED');
  }
}

// What to borrow from, and how: the pool given, unless it is another face of the same
// watched pool (a Sequelize instance's Pool), which is borrowed from as it is watched.
function borrowing(pool: object, watched: WatchedPool): [object, LeaseOps] {
  const own = watched.adapter.lease;
  if (watched.target === pool && own !== undefined) return [pool, own];
  const adapter = adapterFor(pool, undefined);
  if (adapter === watched.adapter && own !== undefined) return [watched.target, own];
  if (adapter.lease !== undefined) return [pool, adapter.lease];
  throw new PoolwatchTypeError(codes.unsupportedPool, `lease() cannot take a connection from ${watched.capabilities.library} pool "${watched.name}".`);
}

/**
 * Borrows one connection from `pool` and returns its handle: give it back with
 * `release()`, or declare it with `await using` and it is given back when the block ends,
 * on return and on throw. With `fn`, runs `fn(connection)` and gives the connection back
 * when `fn` resolves, destroys it when `fn` rejects (a connection in an unknown state is
 * not reused), and returns what `fn` returns or rejects with its error, unchanged.
 *
 * A pool no detector watches is watched with `defaultDetector()`. The lease is recorded
 * like any other (named `by lease()` in reports, at the line that called lease()); a
 * second release of a handle is refused (`misuse` kind `stale-release`), and a handle
 * garbage-collected while open is a leak of kind `collected`.
 */
export function lease<P extends object>(pool: P): Promise<PoolLease<ConnectionOf<P>>>;
export function lease<P extends object, R>(pool: P, fn: (connection: ConnectionOf<P>) => R): Promise<Awaited<R>>;
export function lease(pool: object, fn?: (connection: unknown) => unknown): Promise<unknown> {
  let watched: WatchedPool;
  let target: object;
  let ops: LeaseOps;
  let handing: Handing;
  try {
    if (fn !== undefined && typeof fn !== 'function') {
      throw new PoolwatchTypeError(codes.invalidOption, `Expected the second argument of lease() to be a function (connection) => …, got ${describe(fn)}.`);
    }
    if ((typeof pool !== 'object' && typeof pool !== 'function') || pool === null) {
      throw new PoolwatchTypeError(codes.unsupportedPool, `Expected a pool to lease from, got ${describe(pool)}.`);
    }
    let found = watchedPoolOf(pool);
    if (found === undefined) {
      defaultDetector().watch(pool);
      found = watchedPoolOf(pool)!;
    }
    watched = found;
    [target, ops] = borrowing(pool, watched);
    handing = { trace: watched.capture(lease), lease: null };
  } catch (error) {
    return Promise.reject(error);
  }
  let acquiring: PromiseLike<unknown>;
  // The pool's acquire opens its lease synchronously, inside this call: that lease is the handle's.
  watched.handing = handing;
  try {
    acquiring = ops.acquire(target);
  } catch (error) {
    return Promise.reject(error);
  } finally {
    watched.handing = null;
  }
  const handle = Promise.resolve(acquiring).then((connection) => {
    const opened = handing.lease;
    if (opened === null) watched.host.emitter.surface(watched, `lease() saw no lease opened by pool "${watched.name}"'s acquire`, new Error('its release is not checked, and a forgotten handle is not reported'));
    const made = new Handle(watched, opened, target, ops, connection);
    if (opened !== null && opened.state === open) forgotten().register(made, opened, made);
    return made;
  });
  return fn === undefined ? handle : handle.then((made) => run(made, fn, watched));
}

async function run(handle: Handle<unknown>, fn: (connection: unknown) => unknown, watched: WatchedPool): Promise<unknown> {
  let value: unknown;
  try {
    value = await fn(handle.connection);
  } catch (error) {
    try {
      await handle.destroy();
    } catch (failure) {
      // fn's own error is what the app gets; the pool's failure to discard the connection is said beside it.
      watched.host.emitter.surface(watched, 'a lease() connection could not be destroyed after its function failed', failure);
    }
    throw error;
  }
  await handle.release();
  return value;
}
