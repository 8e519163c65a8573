import type { Lease } from '../lease.js';
import { acquireWrapper, callAcquire, followCallback, followPromise, patchEnd, patchMethod } from './patch.js';
import { defaultMax, idleOf, mssqlConnectedShapes, mssqlHolds, mssqlInternals, type MssqlPoolInternals } from './internals/mssql.js';
import type { BuiltinAdapter, Tracker } from './types.js';

type AcquireCallback = (error: unknown, connection?: unknown, config?: unknown) => void;

/** The part of an mssql `ConnectionPool` poolwatch touches or recognises it by: its documented API. */
interface ConnectionPool {
  /** `requester` is the Request, Transaction or PreparedStatement asking (mssql only uses it for diagnostics ids). */
  acquire(requester?: unknown, callback?: AcquireCallback): PromiseLike<unknown> | ConnectionPool;
  release(connection: unknown): ConnectionPool;
  connect(callback?: Function): unknown;
  close(callback?: Function): unknown;
  request(): object;
  transaction(): object;
  batch(...args: unknown[]): unknown;
}

const positive = (value: unknown): number | undefined => (typeof value === 'number' && value > 0 ? value : undefined);

/**
 * mssql's `ConnectionPool` (tedious or msnodesqlv8 driver): `acquire(requester)` → promise,
 * or `acquire(requester, cb)` with `(err, connection, config)`; `release(connection)`.
 * Requests, transactions and prepared statements acquire through these same methods of
 * their pool (a transaction's requests share the transaction's one lease), so wrapping
 * the ConnectionPool, not the tarn pool it makes in `connect()` and drops in `close()`,
 * covers them all, before or after `connect()` and across a reconnect. mssql has no
 * per-connection destroy: a connection that fails tarn's validation is discarded at a
 * later acquire, after its release.
 */
export const mssql: BuiltinAdapter = {
  kind: 'mssql',
  defaultName: 'mssql',
  acquireMethod: 'acquire',
  libraries: ['mssql', 'tarn', 'tedious'],
  internals: mssqlInternals,

  // `request`, `transaction` and `batch` beside acquire/release/connect/close: no other
  // supported pool has them all (a tarn pool has none of the three, a knex instance is a
  // function, an mssql Transaction or PreparedStatement has no connect, close or batch).
  matches(pool) {
    if (typeof pool !== 'object') return false;
    const p = pool as Partial<ConnectionPool>;
    return (
      typeof p.acquire === 'function' &&
      typeof p.release === 'function' &&
      typeof p.connect === 'function' &&
      typeof p.close === 'function' &&
      typeof p.request === 'function' &&
      typeof p.transaction === 'function' &&
      typeof p.batch === 'function'
    );
  },

  install(target, tracker: Tracker) {
    // The tarn pool exists once a connection has been handed over: its shape is checked then, once.
    let probed = false;
    const handover = (lease: Lease, connection: unknown) => {
      tracker.handover(lease, connection);
      if (probed) return;
      probed = true;
      tracker.probeConnection(mssqlConnectedShapes as never, target);
    };
    const restores = [
      patchMethod<ConnectionPool['acquire']>(target, 'acquire', (original) =>
        acquireWrapper(tracker, (self: ConnectionPool, args, trace, acquire) => {
          const lease = tracker.begin(acquire, undefined, trace);
          const callback = args[1];
          if (typeof callback === 'function') {
            // Called back from a reaction of mssql's own promise, registered in the caller's
            // async context: no binding needed. Requests and transactions acquire this way.
            const follow = followCallback(tracker, lease, callback, false, (connection) => handover(lease, connection));
            return callAcquire<ConnectionPool>(tracker, lease, original, self, [args[0], follow]);
          }
          const promise = callAcquire<PromiseLike<unknown>>(tracker, lease, original, self, args);
          return followPromise(tracker, lease, promise, (connection) => handover(lease, connection));
        }) as ConnectionPool['acquire'],
      ),
      // mssql's release() returns the pool whatever tarn said: poolwatch's own records name a double release.
      patchEnd(tracker, target, 'release', false),
    ];
    return () => {
      for (const restore of restores) restore();
    };
  },

  capacity: (pool) => positive((pool as MssqlPoolInternals).config?.pool?.max) ?? defaultMax,
  // Unset, tarn's own default (30 s) applies, past the 5 s poolwatch judges waits against anyway.
  acquireTimeoutMs: (pool) => positive((pool as MssqlPoolInternals).config?.pool?.acquireTimeoutMillis),
  idle: (pool) => idleOf(pool as MssqlPoolInternals),
  // tarn's TimeoutError: acquireTimeoutMillis ran out (mssql 12.7 prefixes its message
  // "Failed to acquire a connection from the pool: ").
  isExhaustion: (error) => (error as Error | null)?.constructor?.name === 'TimeoutError',

  isLeased(pool, resource) {
    return mssqlHolds(pool as MssqlPoolInternals, resource);
  },
};
