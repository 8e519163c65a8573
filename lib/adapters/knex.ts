import { followDriverConnection } from '../activity.js';
import type { Trace } from '../stack.js';
import { callAcquire, followPromise, patchMethod, Handoff } from './patch.js';
import { tarnDestroy, tarnHolds } from './internals/tarn.js';
import { knexInternals, type KnexInternals } from './internals/knex.js';
import type { BuiltinAdapter, Tracker } from './types.js';

/** knex's Runner: runs one builder on a connection it acquires in `ensureConnection`. */
interface Runner {
  builder: object;
  ensureConnection(callback: unknown, params?: unknown): Promise<unknown>;
}

/** knex's Transaction: acquires its connection in `acquireConnection(config, callback)`. */
interface Transaction {
  acquireConnection(config: unknown, callback: unknown): Promise<unknown>;
}

/** The part of a knex 3 client poolwatch wraps; every method is the client's own. */
interface Client {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
  queryBuilder(): object;
  schemaBuilder(): object;
  raw(...args: unknown[]): object;
  runner(builder: object): Runner;
  transaction(container: unknown, config: unknown, outerTx: unknown): Transaction;
  pool?: { used?: ReadonlyArray<{ resource: unknown }> };
}

/** A knex instance: a function carrying its client, and the context its methods call. */
interface Knex {
  client: Client;
  transaction: Function;
  context?: { transaction?: Function; withUserParams?: Function };
}

// Where the app built a query or opened a transaction, for the acquire knex makes later.
const builderMethods = ['queryBuilder', 'schemaBuilder', 'raw'] as const;

/**
 * knex 3: the instance's client acquires and releases every connection
 * (`acquireConnection()`, `releaseConnection(c)`), whatever pool it holds (its own tarn
 * pool or a `connectionPool`). knex acquires several awaits after the app's call, and
 * `await builder` calls `then` from a microtask with no app frame even in V8's async
 * stack traces. So the stack is captured where the app builds a query or opens a
 * transaction, linked to the builder or transaction, and handed to the acquire that
 * knex makes for it, synchronously, inside `ensureConnection`/`acquireConnection`.
 */
export const knex: BuiltinAdapter = {
  kind: 'knex',
  defaultName: 'knex',
  // What the app calls to hold a connection across its own awaits; queries and streams say `by query()`/`by stream()`.
  acquireMethod: 'transaction',
  // The app's frames lie past knex, its pool and whichever driver the client loads.
  libraries: ['knex', 'tarn', 'pg', 'pg-pool', 'pg-query-stream', 'mysql', 'mysql2', 'mariadb', 'sqlite3', 'better-sqlite3', 'tedious', 'oracledb'],
  internals: knexInternals,

  matches(pool) {
    if (typeof pool !== 'function') return false;
    const client = (pool as unknown as Partial<Knex>).client as Partial<Client> | undefined;
    return (
      typeof (pool as unknown as Partial<Knex>).transaction === 'function' &&
      typeof client?.acquireConnection === 'function' &&
      typeof client.releaseConnection === 'function' &&
      typeof client.runner === 'function' &&
      typeof client.transaction === 'function'
    );
  },

  lease: {
    acquire: (pool) => (pool as unknown as Knex).client.acquireConnection(),
    release: (pool, connection) => (pool as unknown as Knex).client.releaseConnection(connection),
    // knex cannot discard one connection on request: its tarn pool does, as for one that fails validation.
    destroy: (pool, connection) => tarnDestroy((pool as unknown as KnexInternals).client.pool, connection),
  },

  install(target, tracker: Tracker) {
    const traces = new WeakMap<object, Trace>();
    // What the runner or transaction now acquiring was made for, for the acquireConnection it calls synchronously.
    const slot = new Handoff<{ trace: Trace | undefined; via: string }>();
    // The stack knex.transaction() took, for the client.transaction() it calls synchronously.
    const opening = new Handoff<Trace | null>();
    // knex releases a streamed connection twice (stream close, and the end of ensureConnection):
    // false once a stream has it, true after the first release; the second is knex's own, not misuse.
    const streamed = new WeakMap<object, boolean>();
    const handover = (lease: Parameters<Tracker['handover']>[0], connection: unknown, via: string | undefined) => {
      if (typeof connection === 'object' && connection !== null) {
        if (via === 'stream') streamed.set(connection, false);
        else streamed.delete(connection);
      }
      tracker.handover(lease, connection);
      // knex's connections are its driver's (a pg Client, a mysql2 connection): followed as the driver's pools follow them.
      if (tracker.following) lease.follow = followDriverConnection(connection) ?? null;
    };

    function ensureConnection(this: Runner, _callback: unknown, params?: unknown) {
      const via = params === undefined ? 'query' : 'stream';
      return slot.run<Promise<unknown>>({ trace: traces.get(this.builder), via }, Object.getPrototypeOf(this).ensureConnection, this, arguments);
    }

    function acquireTransactionConnection(this: Transaction) {
      return slot.run<Promise<unknown>>({ trace: traces.get(this), via: 'transaction' }, Object.getPrototypeOf(this).acquireConnection, this, arguments);
    }

    // The wrappers of one knex instance: the watched one, and each clone withUserParams() makes
    // of it (knex's migrator runs on such a clone). A clone copies the client's enumerable own
    // fields into a new client whose methods are the prototype's, and gets a context of its own,
    // so neither carries these wrappers: each clone is wrapped as it is made, into the same pool.
    const instrument = (instance: Knex): Array<() => void> => {
      const client = instance.client;
      const context = instance.context;
      const restores = [
        // knex.transaction() (and transactionProvider()) run its context's: the capture is taken
        // there, where both forms stand at the same depth below the app. Below it, the promise
        // form runs client.transaction() two frames deeper (inside a `new Promise`) than the
        // callback form, so a depth learnt from one would cut the other's stack short.
        ...(typeof context?.transaction === 'function'
          ? [
              patchMethod<Function>(context, 'transaction', (original) =>
                function transaction(this: unknown) {
                  return opening.run<unknown>(tracker.capture(transaction), original, this, arguments);
                },
              ),
            ]
          : []),
        ...builderMethods.map((key) =>
          patchMethod<() => object>(client, key, (original) =>
            function build(this: Client) {
              const builder = original.apply(this, arguments as unknown as []);
              if (typeof builder === 'object' && builder !== null) {
                const trace = tracker.capture(build);
                if (trace !== null) traces.set(builder, trace);
              }
              return builder;
            },
          ),
        ),
        patchMethod<Client['runner']>(client, 'runner', (original) =>
          function runner(this: Client, builder: object) {
            const made = original.apply(this, arguments as unknown as [object]);
            // An own method on this short-lived runner; the shared function allocates nothing per query.
            if (typeof made?.ensureConnection === 'function') made.ensureConnection = ensureConnection;
            return made;
          },
        ),
        patchMethod<Client['transaction']>(client, 'transaction', (original) =>
          function transaction(this: Client) {
            const trace = opening.waiting ? opening.take()! : tracker.capture(transaction);
            const trx = original.apply(this, arguments as unknown as [unknown, unknown, unknown]);
            // The constructor scheduled its acquire for a later microtask: there is still time to link it.
            if (typeof trx?.acquireConnection === 'function') {
              if (trace !== null) traces.set(trx, trace);
              trx.acquireConnection = acquireTransactionConnection;
            }
            return trx;
          },
        ),
        patchMethod<Client['acquireConnection']>(client, 'acquireConnection', (original) =>
          function acquireConnection(this: Client) {
            const made = slot.take();
            // Not inside a runner or transaction: the app (or a plugin) called acquireConnection itself.
            const via = made?.via ?? 'acquireConnection';
            const trace = made?.trace;
            const lease = trace === undefined ? tracker.begin(acquireConnection, via) : tracker.begin(acquireConnection, via, trace);
            const promise = callAcquire<Promise<unknown>>(tracker, lease, original, this, arguments as unknown as []);
            return followPromise(tracker, lease, promise, (connection) => handover(lease, connection, via)) as Promise<unknown>;
          },
        ),
        patchMethod<Client['releaseConnection']>(client, 'releaseConnection', (original) =>
          function releaseConnection(this: Client, connection: unknown) {
            const stream = typeof connection === 'object' && connection !== null ? streamed.get(connection) : undefined;
            if (stream === true) streamed.delete(connection as object);
            else {
              if (stream === false) streamed.set(connection as object, true);
              tracker.end(connection, false, 'releaseConnection', releaseConnection);
            }
            return original.apply(this, arguments as unknown as [unknown]);
          },
        ),
      ];
      if (typeof context?.withUserParams === 'function') {
        restores.push(
          patchMethod<Function>(context, 'withUserParams', (original) =>
            function withUserParams(this: unknown) {
              const clone: unknown = original.apply(this, arguments);
              try {
                const made = clone as Partial<Knex> | undefined;
                if (typeof clone === 'function' && made?.client !== client && typeof made?.client?.acquireConnection === 'function') adopt(made as Knex);
              } catch {
                // A clone that cannot be wrapped runs unwatched; the app's call still succeeds.
              }
              return clone;
            },
          ),
        );
      }
      return restores;
    };
    // Clones are held weakly: an app that makes one per request must not keep them all alive.
    const clones = new Set<WeakRef<Knex>>();
    const cloneRestores = new WeakMap<Knex, Array<() => void>>();
    const collected = new FinalizationRegistry<WeakRef<Knex>>((ref) => clones.delete(ref));
    function adopt(clone: Knex): void {
      cloneRestores.set(clone, instrument(clone));
      const ref = new WeakRef(clone);
      clones.add(ref);
      collected.register(clone, ref);
    }
    const restores = instrument(target as unknown as Knex);
    return () => {
      for (const restore of restores) restore();
      for (const ref of clones) {
        const clone = ref.deref();
        for (const restore of (clone === undefined ? undefined : cloneRestores.get(clone)) ?? []) restore();
      }
      clones.clear();
    };
  },

  capacity: (pool) => (pool as unknown as { client: { pool?: { max?: number } } }).client.pool?.max,
  acquireTimeoutMs: (pool) => (pool as unknown as { client: { pool?: { acquireTimeoutMillis?: number } } }).client.pool?.acquireTimeoutMillis,
  // The client makes its tarn pool on first use, or never for a knex built without a connection.
  idle: (pool) => (pool as unknown as { client: { pool?: { numFree?(): number } } }).client.pool?.numFree?.(),
  leased: (pool) => (pool as unknown as { client: { pool?: { numUsed?(): number } } }).client.pool?.numUsed?.(),
  // 'Knex: Timeout acquiring a connection. The pool is probably full.'
  isExhaustion: (error) => (error as Error | null)?.name === 'KnexTimeoutError',

  isLeased(pool, resource) {
    return tarnHolds((pool as unknown as KnexInternals).client.pool, resource);
  },
};
