import { AsyncResource } from 'node:async_hooks';
import type { Lease } from '../lease.js';
import type { Trace } from '../stack.js';
import { acquireWrapper, callAcquire, followPromise, Handoff, patchMethod } from './patch.js';
import { leasedClients, pgClientName, pgClientShapes, pgInternals, timeoutMessage, type PgPoolInternals } from './internals/pg.js';
import type { BuiltinAdapter, Tracker } from './types.js';
import { followPg } from '../activity.js';

/** A checked-out client as pg-pool hands it over: `release` is assigned afresh at each checkout. */
interface PgClient {
  release: (error?: unknown) => void;
}

type ConnectCallback = (error: unknown, client?: PgClient, done?: PgClient['release']) => void;

/** The part of pg-pool 3 (and pg 8's `pg.Pool`, a subclass) that poolwatch touches: its documented API. */
interface PgPool {
  connect(callback?: ConnectCallback): PromiseLike<PgClient> | undefined;
  query(text: unknown, ...rest: unknown[]): unknown;
  end(callback?: Function): unknown;
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
}

/**
 * pg-pool 3 and `pg.Pool` (pg 8): `connect()` → promise, or `connect(cb)` with
 * `(err, client, done)`; `client.release()` and `done` end the lease, a truthy argument
 * destroys the client. `pool.query()` checks a client out through `this.connect`, and
 * its lease is named `via: 'query'` and blamed on the line that called `pool.query`.
 */
export const pg: BuiltinAdapter = {
  kind: 'pg.Pool (pg-pool)',
  defaultName: 'pg',
  acquireMethod: 'connect',
  libraries: ['pg', 'pg-pool', 'pg-protocol'],
  internals: pgInternals,

  // By its documented counters, which no other pool has all of.
  matches(pool) {
    const p = pool as Partial<PgPool>;
    return (
      typeof p.connect === 'function' &&
      typeof p.query === 'function' &&
      typeof p.end === 'function' &&
      typeof p.totalCount === 'number' &&
      typeof p.idleCount === 'number' &&
      typeof p.waitingCount === 'number'
    );
  },

  capacity: (pool) => (pool as PgPoolInternals).options?.max,
  acquireTimeoutMs: (pool) => (pool as PgPoolInternals).options?.connectionTimeoutMillis,
  idle: (pool) => (pool as PgPoolInternals).idleCount,
  // Read only when a pool runs dry or an acquire fails (see leasedClients).
  leased: (pool) => leasedClients(pool as PgPoolInternals),
  // connectionTimeoutMillis ran out while every client was checked out.
  isExhaustion: (error) => (error as Error | null)?.message === timeoutMessage,
  // A release with an error: pg-pool removes the client, ends it and serves its queue.
  reclaim: (_pool, client) => (client as PgClient).release(new Error('poolwatch took this connection back: idle past reclaimAfterMs')),

  lease: {
    acquire: (pool) => (pool as PgPool).connect() as PromiseLike<PgClient>,
    release: (_pool, client) => (client as PgClient).release(),
    // pg's documented way to discard a client: a truthy argument to release().
    destroy: (_pool, client) => (client as PgClient).release(true),
  },

  install(target, tracker: Tracker) {
    // Checked-out clients keep their wrapped release after an unwatch; it then just calls through.
    let active = true;
    // The query wrapper's own frame and call site, for the connect it makes at once: that
    // lease is the query's, blamed on the line that called pool.query().
    // The trace is null when the tracker takes the stack itself: nothing to allocate per query.
    const fromQuery = new Handoff<Trace | null>();
    // The query wrapper, whose frame and above are left out of a query lease's stack (set as it is made).
    let queryWrapper: Function = () => {};

    // Wraps the release pg-pool just assigned for this checkout; returns it as `done` too.
    // pg-pool assigns `release` afresh at each checkout, so it is replaced the way pg-pool
    // sets it (an assignment: cheaper than defining a property on every checkout).
    const handover = (lease: Lease, client: PgClient): PgClient['release'] => {
      tracker.handover(lease, client);
      if (tracker.following) {
        tracker.probeConnection(pgClientShapes as never, client, pgClientName);
        lease.follow = followPg(client) ?? null;
      }
      const original = client.release;
      let released = false;
      const release = function release(this: unknown, error?: unknown) {
        // Taken back by reclaimAfterMs: pg-pool would throw at a second release.
        if (active && tracker.reclaiming && tracker.absorb(client, 'release', release)) return;
        // A second call while the client is leased again belongs to pg's own error, not to the new lease.
        if (active && (!released || client.release === release)) tracker.end(client, Boolean(error), 'release', release);
        released = true;
        return original.apply(this, arguments as unknown as [unknown]);
      };
      try {
        client.release = release;
        return release;
      } catch (error) {
        // A client pg-pool could not assign to either: the app gets pg's own release.
        tracker.lost(lease, error);
        return original;
      }
    };

    const restores = [
      patchMethod<PgPool['connect']>(target, 'connect', (original) =>
        acquireWrapper(
          tracker,
          (self: PgPool, args, trace, connect) => {
            const queryTrace = fromQuery.take();
            const forQuery = queryTrace !== undefined;
            const lease = forQuery ? tracker.begin(queryWrapper, 'query', queryTrace ?? undefined) : tracker.begin(connect, undefined, trace);
            const callback = args[0] as ConnectCallback | undefined;
            if (typeof callback === 'function') {
              const track = function (this: unknown, error: unknown, client?: PgClient) {
                if (error != null || client == null) {
                  tracker.fail(lease, error);
                  return callback.apply(this, arguments as unknown as Parameters<ConnectCallback>);
                }
                return callback.call(this, error, client, handover(lease, client));
              };
              // The app's callback is bound to its async context: a queued callback would
              // otherwise run in the releaser's. pool.query()'s own callback needs no binding
              // (the query wrapper binds the app's, and a promise keeps its context), and
              // binding costs an AsyncResource per query.
              return callAcquire(tracker, lease, original, self, [forQuery ? track : AsyncResource.bind(track)]);
            }
            const result = callAcquire<PromiseLike<PgClient> | undefined>(tracker, lease, original, self, args);
            if (typeof result?.then !== 'function') {
              tracker.fail(lease);
              return result;
            }
            return followPromise(tracker, lease, result, (client) => void handover(lease, client));
          },
          () => fromQuery.waiting,
        ) as PgPool['connect'],
      ),
      patchMethod<PgPool['query']>(target, 'query', (original) =>
        (queryWrapper = acquireWrapper(tracker, (self: PgPool, given, trace) => {
          // pg-pool rejects a function as the query without connecting.
          if (typeof given[0] === 'function') return original.apply(self, given as unknown as [unknown]);
          let args: ArrayLike<unknown> = given;
          const last = typeof given[2] === 'function' ? 2 : typeof given[1] === 'function' ? 1 : -1;
          if (last !== -1) {
            // pg calls it from the client's socket, in the context of whoever opened the connection.
            const copy = Array.prototype.slice.call(given);
            copy[last] = AsyncResource.bind(copy[last] as (...args: unknown[]) => unknown);
            args = copy;
          }
          return fromQuery.run(trace ?? null, original, self, args);
        })) as PgPool['query'],
      ),
    ];
    return () => {
      active = false;
      for (const restore of restores) restore();
    };
  },
};
