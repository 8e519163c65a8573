import { PoolwatchTypeError, codes } from '../errors.js';
import type { Lease } from '../lease.js';
import { acquireWrapper, callAcquire, followCallback, Handoff, patchConnection, patchMethod } from './patch.js';
import { isLeasedBy, mysql2ConnectionShapes, mysql2Internals, mysql2PromiseInternals, queueLimitMessage, type Mysql2ConnectionInternals, type Mysql2PoolInternals } from './internals/mysql2.js';
import type { BuiltinAdapter, LeaseOps, Tracker } from './types.js';
import { followMysql2 } from '../activity.js';

/** A mysql2 PoolConnection (lib/pool_connection.js). */
interface Mysql2Connection extends Mysql2ConnectionInternals {
  release(): void;
}

/** A mysql2 callback pool (`mysql2.createPool()`, and the `.pool` of every promise pool): its documented API and what internals/mysql2.ts declares. */
interface Mysql2CorePool extends Mysql2PoolInternals {
  getConnection(callback: (error: unknown, connection?: Mysql2Connection) => void): void;
  releaseConnection(connection: Mysql2Connection): void;
  query(...args: unknown[]): unknown;
  execute(...args: unknown[]): unknown;
  end(...args: unknown[]): unknown;
  readonly config: { readonly connectionLimit?: number; readonly connectionConfig: object };
}

type Method = (this: Mysql2CorePool, ...args: unknown[]) => unknown;

/** Whether `pool` has the shape of a mysql2 callback pool: its documented methods and the connection config every mysql2 pool carries. */
function isMysql2CorePool(pool: unknown): pool is Mysql2CorePool {
  const p = pool as Partial<Mysql2CorePool> | null;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.getConnection === 'function' &&
    typeof p.releaseConnection === 'function' &&
    typeof p.query === 'function' &&
    typeof p.execute === 'function' &&
    typeof p.end === 'function' &&
    typeof p.config?.connectionConfig === 'object' &&
    p.config.connectionConfig !== null
  );
}

function isExhaustion(error: unknown): boolean {
  return (error as Error | null)?.message === queueLimitMessage;
}

// PoolConnection.destroy() closes it and takes it out of the pool, which then opens a new one for the next waiter.
function destroyConnection(_pool: object, connection: unknown): void {
  (connection as { destroy(): void }).destroy();
}

// What lease() borrows from a callback pool: its getConnection(cb) as a promise.
const coreLease: LeaseOps = {
  acquire: (pool) =>
    new Promise((resolve, reject) => {
      (pool as Mysql2CorePool).getConnection((error, connection) => (error == null ? resolve(connection) : reject(error)));
    }),
  release: (_pool, connection) => (connection as Mysql2Connection).release(),
  destroy: (_pool, connection) => (connection as { destroy(): void }).destroy(),
};

// A promise pool's connections are PromisePoolConnections, with the same release() and destroy().
const promiseLease: LeaseOps = {
  acquire: (pool) => (pool as Mysql2PromisePool).getConnection(),
  release: coreLease.release,
  destroy: coreLease.destroy,
};

// A core pool and its .promise() wrappers share one set of methods: wrap them once.
const watchedCores = new WeakSet<object>();

/**
 * Wraps a mysql2 core pool in place. A promise pool is watched through its core pool,
 * since every promise method ends in the core's getConnection, query or execute.
 */
function installMysql2(core: Mysql2CorePool, tracker: Tracker): () => void {
  if (watchedCores.has(core)) {
    throw new PoolwatchTypeError(
      codes.alreadyWatched,
      'This mysql2 pool is already watched through its core pool or a .promise() wrapper of it; they share one pool, ' +
        'and watching either one already covers both. Watch only one of them.',
    );
  }
  watchedCores.add(core);
  let active = true;
  // The lease pool.query()/execute() opened, for the getConnection() it calls synchronously next.
  const inner = new Handoff<Lease>();
  // The connection whose end poolwatch already counted, while mysql2 passes it through releaseConnection().
  let releasing: Mysql2Connection | null = null;
  // Connections handed out since watch(): only their release and removal are ours to count.
  const patched = new WeakSet<Mysql2Connection>();
  // Connections mysql2 discarded while leased: the app's later release() is correct, not a double release.
  const discarded = new WeakSet<Mysql2Connection>();
  // Our own callbacks, which mysql2 re-queues through getConnection() when a leased connection died.
  const callbacks = new WeakSet<Function>();

  const isDiscarded = (conn: Mysql2Connection | null | undefined) => conn?._pool === null && discarded.has(conn);

  const handover = (lease: Lease, conn: Mysql2Connection) => {
    tracker.handover(lease, conn);
    if (tracker.following) lease.follow = followMysql2(conn) ?? null;
    if (patched.has(conn)) return;
    tracker.probeConnection(mysql2ConnectionShapes as never, conn);
    // release() lives on the connection and returns early on a double release: wrap it there, not the pool.
    const wrapped = patchConnection(tracker, lease, () => patchMethod<(this: Mysql2Connection) => void>(conn, 'release', (original) =>
      function release(this: Mysql2Connection) {
        if (!active) return original.apply(this, arguments as unknown as []);
        // Taken back by reclaimAfterMs: already out of the pool.
        if (tracker.reclaiming && tracker.absorb(this, 'release', release)) return;
        if (!isDiscarded(this)) tracker.end(this, false, 'release', release);
        const previous = releasing;
        releasing = this;
        try {
          return original.apply(this, arguments as unknown as []);
        } finally {
          releasing = previous;
        }
      },
    ));
    if (wrapped) patched.add(conn);
  };

  const restores = [
    patchMethod<Method>(core, 'getConnection', (original) =>
      acquireWrapper(
        tracker,
        (self: Mysql2CorePool, args, trace, getConnection) => {
          const callback = args[0];
          if (!active || typeof callback !== 'function' || callbacks.has(callback)) return original.apply(self, args as unknown as unknown[]);
          const fromQuery = inner.take();
          const lease = fromQuery ?? tracker.begin(getConnection, undefined, trace);
          // The app's callback is bound to its async context. pool.query()/execute()'s own
          // callback is mysql2's, which answers the app from the connection's events whatever
          // context it runs in: binding it would cost an AsyncResource per query for nothing.
          const bound = followCallback(tracker, lease, callback, fromQuery === undefined, (conn) => handover(lease, conn as Mysql2Connection));
          callbacks.add(bound);
          return callAcquire(tracker, lease, original, self, [bound]);
        },
        // pool.query()/execute() took the call site already.
        () => inner.waiting,
      ),
    ),
    ...(['query', 'execute'] as const).map((via) =>
      patchMethod<Method>(core, via, (original) => {
        // pool.query()/execute() take a connection with getConnection() and release it themselves.
        return acquireWrapper(tracker, (self: Mysql2CorePool, args, trace, wrapper) => {
          if (!active) return original.apply(self, args as unknown as unknown[]);
          const lease = tracker.begin(wrapper, via, trace);
          try {
            return inner.run(lease, original, self, args);
          } finally {
            // It threw or returned before asking for a connection.
            if (inner.untaken) tracker.fail(lease);
          }
        }) as Method;
      }),
    ),
    patchMethod<Method>(core, 'releaseConnection', (original) =>
      function releaseConnection(this: Mysql2CorePool, conn: unknown) {
        const c = conn as Mysql2Connection | null | undefined;
        // mysql2 calls it itself from release() (which first sets _released, also on connections
        // leased before watch()) and when it discards a connection: only the app's own call counts.
        if (active && c !== releasing && c?._released !== true && !isDiscarded(c)) tracker.end(conn, false, 'releaseConnection', releaseConnection);
        return original.apply(this, arguments as unknown as unknown[]);
      },
    ),
  ];
  // Without it (the probe says so), a discarded connection's lease stays open until its threshold.
  if (typeof core._removeConnection === 'function') {
    restores.push(
      // Every way mysql2 discards a connection meets here: destroy(), a server that closed or
      // killed it ('end'/'error' → _removeFromPool), a failed reset. One wrapper on the pool
      // instead of three per connection; it runs once per connection (_removeFromPool guards it).
      patchMethod<Method>(core, '_removeConnection', (original) =>
        function _removeConnection(this: Mysql2CorePool, conn: unknown) {
          const c = conn as Mysql2Connection;
          if (active && c._released !== true && patched.has(c)) {
            tracker.end(c, true, 'destroy', _removeConnection);
            discarded.add(c);
          }
          const previous = releasing;
          releasing = c;
          try {
            return original.apply(this, arguments as unknown as unknown[]);
          } finally {
            releasing = previous;
          }
        },
      ),
    );
  }
  return () => {
    active = false;
    watchedCores.delete(core);
    for (const restore of restores) restore();
  };
}

/** mysql2 3 callback pool: `getConnection(cb)`, `conn.release()`/`destroy()`, `pool.query()`/`execute()`. */
export const mysql2: BuiltinAdapter = {
  kind: 'mysql2',
  defaultName: 'mysql2',
  acquireMethod: 'getConnection',
  libraries: ['mysql2'],
  internals: mysql2Internals,
  matches: isMysql2CorePool,
  lease: coreLease,
  install: (pool, tracker) => installMysql2(pool as Mysql2CorePool, tracker),
  isLeased: (pool, resource) => isLeasedBy(pool as Mysql2CorePool, resource),
  reclaim: destroyConnection,
  capacity: (pool) => (pool as Mysql2CorePool).config.connectionLimit,
  idle: (pool) => (pool as Mysql2CorePool)._freeConnections?.length,
  isExhaustion,
};

// A mysql2 promise pool (`require('mysql2/promise').createPool()`, `pool.promise()`): a wrapper around a core pool.
interface Mysql2PromisePool {
  readonly pool: Mysql2CorePool;
  getConnection(): Promise<unknown>;
  query(...args: unknown[]): Promise<unknown>;
  execute(...args: unknown[]): Promise<unknown>;
}

/**
 * mysql2 3 promise pool. Every method of the wrapper ends in its core pool's
 * getConnection/query/execute and each PromisePoolConnection's release/destroy in its
 * core connection's, so the core pool is what gets wrapped: leases name the core
 * connection, and the app's line is found past mysql2's promise frames. Watching both a
 * core pool and its wrapper is refused (they share one pool); watching either covers
 * every `.promise()` wrapper of that core pool.
 */
export const mysql2Promise: BuiltinAdapter = {
  kind: 'mysql2 promise pool',
  defaultName: 'mysql2',
  acquireMethod: 'getConnection',
  libraries: ['mysql2'],
  internals: mysql2PromiseInternals,

  matches(pool) {
    const p = pool as Partial<Mysql2PromisePool>;
    return typeof p.getConnection === 'function' && typeof p.query === 'function' && typeof p.execute === 'function' && isMysql2CorePool(p.pool);
  },

  // Watching a promise pool is watching its core pool.
  underlying: (pool) => (pool as Mysql2PromisePool).pool,
  lease: promiseLease,
  install: (pool, tracker) => installMysql2((pool as Mysql2PromisePool).pool, tracker),
  isLeased: (pool, resource) => isLeasedBy((pool as Mysql2PromisePool).pool, resource),
  reclaim: destroyConnection,
  capacity: (pool) => (pool as Mysql2PromisePool).pool.config.connectionLimit,
  idle: (pool) => (pool as Mysql2PromisePool).pool._freeConnections?.length,
  isExhaustion,
};
