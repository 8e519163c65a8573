import { PoolwatchTypeError, codes } from '../errors.js';
import { followDriverConnection } from '../activity.js';
import type { Lease } from '../lease.js';
import type { Trace } from '../stack.js';
import { acquireWrapper, callAcquire, followPromise, Handoff, patchMethod } from './patch.js';
import type { BuiltinAdapter, Tracker } from './types.js';
import {
  acquireTimeoutOf,
  holds,
  isSequelize,
  isSequelizePool,
  poolOf,
  sequelizeInternals,
  type SequelizeInstance,
  type SequelizePool,
  type SequelizeTarget,
} from './internals/sequelize.js';


// Sequelize's connections are its dialect's driver connections (pg Client, mysql2, mariadb): followed as their pools follow them.
function handover(tracker: Tracker, lease: Lease, connection: unknown): void {
  tracker.handover(lease, connection);
  if (tracker.following) lease.follow = followDriverConnection(connection) ?? null;
}

/**
 * Wraps the pool's `release` and `destroy`. The pool destroys idle connections through its
 * own `destroy()`, and Sequelize gives back a connection it destroyed when the server
 * dropped it (a query's `finally` releases it again, which the pool ignores): neither is
 * the app's misuse, so a destroy ends a lease only for a connection the pool counts as
 * leased, and a release after it is left to the pool.
 */
function patchReturns(pool: SequelizePool, tracker: Tracker): Array<() => void> {
  // The connection release() is giving back: the destroy() it makes of a worn-out one (maxUses) is its own.
  let releasing: unknown;
  const discarded = new WeakSet<object>();
  return [
    patchMethod<SequelizePool['release']>(pool, 'release', (original) =>
      function release(this: SequelizePool, resource: unknown) {
        if (typeof resource !== 'object' || resource === null || !discarded.has(resource)) tracker.end(resource, false, 'release', release);
        const outer = releasing;
        releasing = resource;
        try {
          return original.apply(this, arguments as unknown as [unknown]);
        } finally {
          releasing = outer;
        }
      },
    ),
    patchMethod<SequelizePool['destroy']>(pool, 'destroy', (original) =>
      function destroy(this: SequelizePool, resource: unknown) {
        if (resource !== releasing && holds(pool, resource)) {
          tracker.end(resource, true, 'destroy', destroy);
          if (typeof resource === 'object' && resource !== null) discarded.add(resource);
        }
        return original.apply(this, arguments as unknown as [unknown]);
      },
    ),
  ];
}

// Where the app's line sits below a Pool's acquire() when the app awaits `sequelize.transaction()`:
// getConnection, the microtask tick, prepareEnvironment, transaction, then the app's own async
// frame, plus one frame of context. Model queries never reach the app's line this way, so a
// depth learnt from them alone would stop short of every transaction's.
const transactionDepth = 6;

// Sequelize shapes poolwatch cannot watch as one pool, and what to do instead.
function refuse(sequelize: SequelizeInstance): void {
  const pool = sequelize.connectionManager.pool as Partial<Record<'read' | 'write', unknown>>;
  if (isSequelizePool(pool.read) && isSequelizePool(pool.write)) {
    throw new PoolwatchTypeError(
      codes.unsupportedPool,
      'poolwatch cannot watch a Sequelize instance with read replication as one pool: it has two, connectionManager.pool.write and connectionManager.pool.read. ' +
        "Watch each: watch(sequelize.connectionManager.pool.write, { name: 'sequelize:write' }) and watch(sequelize.connectionManager.pool.read, { name: 'sequelize:read' }).",
    );
  }
  if (sequelize.getDialect?.() === 'sqlite') {
    throw new PoolwatchTypeError(codes.unsupportedPool, "poolwatch cannot watch Sequelize's sqlite dialect: it keeps one connection per storage file, outside its pool, and never leases it.");
  }
  if (!isSequelizePool(pool)) {
    throw new PoolwatchTypeError(codes.unsupportedPool, "poolwatch does not recognise this Sequelize instance's connectionManager.pool as a sequelize-pool Pool.");
  }
}

/** Sequelize: every connection is acquired through the connection manager, whose pool takes it back. */
function installSequelize(sequelize: SequelizeInstance, tracker: Tracker): () => void {
  refuse(sequelize);
  const manager = sequelize.connectionManager;
  // The stack taken at transaction(), for the getConnection() it makes synchronously.
  const slot = new Handoff<Trace | null>();
  const restores = [
    ...patchReturns(manager.pool as SequelizePool, tracker),
    patchMethod<SequelizeInstance['transaction']>(sequelize, 'transaction', (original) =>
      function transaction(this: SequelizeInstance, options?: unknown) {
        // A savepoint runs on its parent's connection: nothing is acquired for it.
        const nested = typeof options === 'object' && options !== null && (options as { transaction?: unknown }).transaction != null;
        return slot.run<Promise<unknown>>(nested ? undefined : tracker.capture(transaction), original, this, arguments);
      },
    ),
    patchMethod<SequelizeInstance['connectionManager']['getConnection']>(manager, 'getConnection', (original) =>
      acquireWrapper(
        tracker,
        (self: unknown, args, trace, getConnection) => {
          const lease = slot.waiting ? tracker.begin(getConnection, 'transaction', slot.take()) : tracker.begin(getConnection, 'getConnection', trace);
          return followPromise(tracker, lease, callAcquire<Promise<unknown>>(tracker, lease, original, self, args), (connection) => handover(tracker, lease, connection)) as Promise<unknown>;
        },
        () => slot.waiting,
      ),
    ),
  ];
  return () => {
    for (const restore of restores) restore();
  };
}

/**
 * Sequelize 6's pool, sequelize-pool (a fork of generic-pool 2): `watch(pool)` for a `Pool`
 * (what `poolwatch/register` sees made), `watch(sequelize)` for the instance over it.
 *
 * Sequelize calls the Pool's `acquire()` several awaits after the app's call, so a Pool
 * watched alone reaches the app's line only through V8's async stack frames (when the app
 * awaits Sequelize directly). Watching the instance takes the lease where Sequelize acquires,
 * in `connectionManager.getConnection()`, which `transaction()` calls synchronously: the
 * stack taken at `transaction()` names the app's line whatever the app does with the promise.
 * An unmanaged transaction never committed is the leak Sequelize apps have most.
 */
export const sequelize: BuiltinAdapter & { underlying(pool: object): object } = {
  kind: 'sequelize',
  defaultName: 'sequelize',
  acquireMethod: 'acquire',
  // Past the ORM, its pool and its retry wrapper lie the drivers its dialects load.
  libraries: ['sequelize', 'sequelize-pool', 'retry-as-promised', 'pg', 'pg-pool', 'mariadb', 'mysql2', 'tedious', 'oracledb', 'ibm_db', 'snowflake-sdk'],
  internals: sequelizeInternals,

  matches: (pool) => isSequelizePool(pool) || isSequelize(pool),

  /** A Sequelize instance's `Pool`: watching both is watching one pool. */
  underlying(pool) {
    if (isSequelizePool(pool) || !isSequelize(pool)) return pool;
    const inner = pool.connectionManager.pool;
    return isSequelizePool(inner) ? inner : pool;
  },

  // Through the connection manager for an instance, as Sequelize itself acquires; a Pool's own methods for a Pool.
  lease: {
    acquire: (target) => (isSequelizePool(target) ? target.acquire() : (target as SequelizeInstance).connectionManager.getConnection()),
    release: (target, connection) => (isSequelizePool(target) ? target.release(connection) : (target as SequelizeInstance).connectionManager.releaseConnection(connection)),
    destroy: (target, connection) => (poolOf(target as SequelizeTarget) as SequelizePool).destroy(connection),
  },

  install(target, tracker: Tracker) {
    if (!isSequelizePool(target)) return installSequelize(target as SequelizeInstance, tracker);
    const restores = [
      patchMethod<SequelizePool['acquire']>(target, 'acquire', (original) =>
        acquireWrapper(
          tracker,
          (self: SequelizePool, args, trace, acquire) => {
            const lease = tracker.begin(acquire, undefined, trace);
            return followPromise(tracker, lease, callAcquire<Promise<unknown>>(tracker, lease, original, self, args), (connection) => handover(tracker, lease, connection)) as Promise<unknown>;
          },
          undefined,
          transactionDepth,
        ),
      ),
      ...patchReturns(target, tracker),
    ];
    return () => {
      for (const restore of restores) restore();
    };
  },

  isLeased: (target, resource) => holds(poolOf(target as SequelizeTarget), resource),
  capacity: (target) => (poolOf(target as SequelizeTarget) as Partial<SequelizePool> | null)?.maxSize,
  acquireTimeoutMs: (target) => acquireTimeoutOf(poolOf(target as SequelizeTarget)),
  idle: (target) => (poolOf(target as SequelizeTarget) as Partial<SequelizePool> | null)?.available,
  // sequelize-pool's TimeoutError (acquireTimeoutMillis ran out) leaves its name 'Error';
  // getConnection() rethrows it as Sequelize's ConnectionAcquireTimeoutError.
  isExhaustion(error) {
    if (!(error instanceof Error)) return false;
    return error.name === 'SequelizeConnectionAcquireTimeoutError' || (error.constructor?.name === 'TimeoutError' && /timeout/i.test(error.message));
  },
};
