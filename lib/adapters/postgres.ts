import type { Lease } from '../lease.js';
import { acquireWrapper, callAcquire, followPromise, patchMethod, trackPromise } from './patch.js';
import { connectionLost, postgresInternals, type PostgresInternals } from './internals/postgres.js';
import type { BuiltinAdapter, Tracker } from './types.js';

/** A reserved connection as `sql.reserve()` resolves it: a tagged-template function of its own. */
interface ReservedSql {
  release(): void;
}

/** The part of a postgres.js 3.4 instance poolwatch touches: its documented API. */
interface Sql {
  reserve(): Promise<ReservedSql>;
  begin(optionsOrFn: unknown, fn?: unknown): Promise<unknown>;
  unsafe(query: string, ...rest: unknown[]): unknown;
  listen(channel: string, ...rest: unknown[]): unknown;
  end(options?: unknown): Promise<void>;
}

const isFunction = (value: unknown): value is Function => typeof value === 'function';

/**
 * postgres.js 3.4 (`postgres`): the instance is the tagged-template function itself.
 * Leases are what hands one connection to one borrower: `sql.reserve()` until the reserved
 * connection's `release()`, and `sql.begin(fn)` (or `begin(options, fn)`) from when `fn`
 * gets its transaction until the transaction settles. Queries (`sql\`…\``, `unsafe`,
 * `file`) are not leases: the instance cannot be replaced in place, its query handler is a
 * closure, and postgres.js pipelines many queries on one connection, so a query never
 * holds a connection past its own answer (a slow query, never a leak).
 */
export const postgresJs: BuiltinAdapter = {
  kind: 'postgres.js',
  defaultName: 'postgres',
  acquireMethod: 'reserve',
  libraries: ['postgres'],
  internals: postgresInternals,

  // A function carrying the pool's own methods; a reserved or transaction sql has none of reserve, begin, end or listen.
  matches(pool) {
    const sql = pool as Partial<Sql>;
    return (
      typeof pool === 'function' &&
      isFunction(sql.reserve) &&
      isFunction(sql.begin) &&
      isFunction(sql.unsafe) &&
      isFunction(sql.listen) &&
      isFunction(sql.end)
    );
  },

  capacity: (pool) => (pool as PostgresInternals).options?.max,

  // postgres.js cannot discard one reserved connection: a handle's destroy() gives it back.
  lease: {
    acquire: (sql) => (sql as Sql).reserve(),
    release: (_sql, reserved) => (reserved as ReservedSql).release(),
  },

  install(target, tracker: Tracker) {
    // The reserved connection is the resource; its release is its own property, set afresh by each reserve().
    const handover = (lease: Lease, reserved: ReservedSql) => {
      tracker.handover(lease, reserved);
      const original = reserved?.release;
      try {
        if (typeof original !== 'function') throw new TypeError('reserve() resolved without a release() function');
        // Left in place by unwatch: the tracker then ignores it, and it just calls through.
        reserved.release = function release(this: unknown) {
          tracker.end(reserved, false, 'release', release);
          return original.apply(this, arguments as unknown as []);
        };
      } catch (error) {
        tracker.lost(lease, error);
      }
    };

    const restores = [
      patchMethod<Sql['reserve']>(target, 'reserve', (original) =>
        acquireWrapper(tracker, (self: Sql, args, trace, reserve) => {
          const lease = tracker.begin(reserve, undefined, trace);
          const promise = callAcquire<Promise<ReservedSql>>(tracker, lease, original, self, args);
          return followPromise(tracker, lease, promise, (reserved) => handover(lease, reserved)) as Promise<ReservedSql>;
        }) as Sql['reserve'],
      ),
      patchMethod<Sql['begin']>(target, 'begin', (original) =>
        acquireWrapper(tracker, (self: Sql, given, trace, begin) => {
          // As postgres.js reads them: begin(fn), or begin(options, fn) when a second argument is given.
          const at = given[1] ? 1 : 0;
          const fn = given[at];
          // postgres.js rejects it after BEGIN and ROLLBACK: no transaction for the app to hold.
          if (!isFunction(fn)) return original.apply(self, given as unknown as [unknown]);
          const lease = tracker.begin(begin, 'begin', trace);
          // Handed over when fn gets its transaction's own sql, the lease's resource: BEGIN's round trip counts as waiting.
          let transaction: unknown = undefined;
          const args = Array.prototype.slice.call(given);
          args[at] = function (this: unknown, sql: unknown) {
            transaction = sql ?? lease;
            tracker.handover(lease, transaction);
            return fn.apply(this, arguments);
          };
          const promise = callAcquire<Promise<unknown>>(tracker, lease, original, self, args);
          // Settled after COMMIT or ROLLBACK gave the connection back, or when it was lost.
          return trackPromise(
            promise,
            () => (transaction === undefined ? tracker.fail(lease) : tracker.end(transaction, false, 'begin', begin)),
            (error) =>
              transaction === undefined
                ? tracker.fail(lease, error)
                : tracker.end(transaction, connectionLost.has((error as { code?: unknown } | null)?.code), 'begin', begin),
          ) as Promise<unknown>;
        }) as Sql['begin'],
      ),
    ];
    return () => {
      for (const restore of restores) restore();
    };
  },
};
