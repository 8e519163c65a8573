import type { Lease } from '../lease.js';
import { acquireWrapper, callAcquire, followPromise, patchConnection, patchMethod, trackPromise } from './patch.js';
import { isPromisePool, mariadbInternals, timeoutErrno, type MariadbPoolInternals } from './internals/mariadb.js';
import type { BuiltinAdapter, Tracker } from './types.js';
import { followMariadb, oneShot as oneShotActivity } from '../activity.js';

/** What this adapter touches of a mariadb 3 connection handed out by a pool. */
interface PoolConnection {
  release(): Promise<void>;
  end(): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
  isValid(): boolean;
}

/** What this adapter touches of a mariadb 3 promise pool (`mariadb.createPool()`). */
interface MariadbPool {
  readonly closed: boolean;
  getConnection(): Promise<PoolConnection>;
  taskQueueSize(): number;
  totalConnections(): number;
}

type Call = (this: MariadbPool, ...args: unknown[]) => PromiseLike<unknown>;

/**
 * mariadb's pool methods that lease a connection for one command. They take it from the
 * pool's private `#pool`, never through the public `getConnection()`, and give it back
 * the same way, so the only place to see them is the call itself.
 */
const oneShot = ['query', 'batch', 'execute', 'importFile'] as const;

/** One install: what the connection wrappers need, and whether the pool is still watched. */
interface Watch {
  readonly pool: MariadbPool;
  readonly tracker: Tracker;
  active: boolean;
}

const giveBacks = ['release', 'end', 'close'] as const;

/**
 * Wraps `release`, `end` and `close` (own properties mariadb sets on each connection it
 * hands out: a new object per `getConnection()`) and `destroy()` (a prototype method) of
 * one connection. The wrappers close over the connection rather than trust `this`, and
 * call straight through once the pool is unwatched.
 */
function wrapConnection(watch: Watch, connection: PoolConnection): void {
  for (const key of giveBacks) {
    patchMethod<() => Promise<void>>(connection, key, (original) =>
      function giveBack(this: unknown) {
        // Taken back by reclaimAfterMs: the pool already discarded it.
        if (watch.active && watch.tracker.reclaiming && watch.tracker.absorb(connection, key, giveBack)) return Promise.resolve();
        if (watch.active) {
          // The pool discards a connection that is no longer valid (killed by the server) or
          // returned to an ended pool, rather than keep it: the lease ends as a destroy.
          const discarded = watch.pool.closed || !connection.isValid();
          watch.tracker.end(connection, discarded, key, giveBack);
        }
        return original.apply(this, arguments as unknown as []);
      },
    );
  }
  patchMethod<() => void>(connection, 'destroy', (original) =>
    function destroy(this: unknown) {
      if (watch.active) watch.tracker.end(connection, true, 'destroy', destroy);
      return original.apply(this, arguments as unknown as []);
    },
  );
}

/**
 * mariadb 3 promise pools (`mariadb.createPool()`): `getConnection()` → a connection
 * whose `release()`/`end()`/`close()` give it back and `destroy()` discards it;
 * `query()`, `batch()`, `execute()` and `importFile()` each hold a connection until
 * their promise settles.
 */
export const mariadb: BuiltinAdapter = {
  kind: 'mariadb',
  defaultName: 'mariadb',
  acquireMethod: 'getConnection',
  libraries: ['mariadb'],
  internals: mariadbInternals,

  matches(pool) {
    const p = pool as Partial<Record<string, unknown>>;
    if (
      typeof p.getConnection !== 'function' ||
      typeof p.batch !== 'function' ||
      typeof p.importFile !== 'function' ||
      typeof p.taskQueueSize !== 'function' ||
      typeof p.totalConnections !== 'function'
    ) {
      return false;
    }
    return isPromisePool(pool);
  },

  idle: (pool) => (pool as MariadbPoolInternals).idleConnections?.(),
  leased: (pool) => (pool as MariadbPool & { activeConnections(): number }).activeConnections(),
  // The pool replaces a destroyed connection for its next waiter.
  reclaim: (_pool, connection) => (connection as PoolConnection).destroy(),

  // acquireTimeout ran out while connections existed (the same errno also means "could not connect").
  isExhaustion: (error) => {
    const e = error as { errno?: unknown; message?: unknown } | null;
    return e?.errno === timeoutErrno && typeof e.message === 'string' && e.message.includes('pool timeout');
  },

  lease: {
    acquire: (pool) => (pool as MariadbPool).getConnection(),
    release: (_pool, connection) => (connection as PoolConnection).release(),
    destroy: (_pool, connection) => (connection as PoolConnection).destroy(),
  },

  install(target, tracker) {
    const pool = target as MariadbPool;
    const watch: Watch = { pool, tracker, active: true };

    const restores = [
      patchMethod<MariadbPool['getConnection']>(pool, 'getConnection', (original) =>
        acquireWrapper(tracker, (self: MariadbPool, args, trace, getConnection) => {
          const lease = tracker.begin(getConnection, undefined, trace);
          const promise = callAcquire<Promise<PoolConnection>>(tracker, lease, original, self, args);
          return followPromise(tracker, lease, promise, (connection) => {
            tracker.handover(lease, connection);
            if (tracker.following) lease.follow = followMariadb(connection) ?? null;
            if (watch.active) patchConnection(tracker, lease, () => wrapConnection(watch, connection));
          }) as Promise<PoolConnection>;
        }) as MariadbPool['getConnection'],
      ),
      ...oneShot
        .filter((key) => typeof (pool as unknown as Record<string, unknown>)[key] === 'function')
        .map((key) =>
          patchMethod<Call>(pool, key, (original) => {
            // The pool hands the connection over out of sight, so the lease runs from the
            // call (waiting in the queue counts as holding) to the settling of the promise.
            // The lease is its own key in the ledger: there is no connection object to use.
            return acquireWrapper(tracker, (self: MariadbPool, args, trace, wrapper) => {
              const lease = tracker.begin(wrapper, key, trace);
              const promise = callAcquire<PromiseLike<unknown>>(tracker, lease, original, self, args);
              tracker.handover(lease, lease);
              if (tracker.following && key !== 'importFile') lease.follow = oneShotActivity('mysql', args[0]);
              const settle = () => tracker.end(lease, false, key, wrapper);
              return trackPromise(promise, settle, settle);
            }) as Call;
          }),
        ),
    ];
    return () => {
      watch.active = false;
      for (const restore of restores) restore();
    };
  },
};
