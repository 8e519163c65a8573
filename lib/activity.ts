import { now } from './clock.js';
import { shapeQuery, sqlOf, type Dialect } from './query-shape.js';
import type { PgClientInternals } from './adapters/internals/pg.js';

/**
 * What a held connection is doing: no query (`idle`), a query in flight, nothing inside an
 * open transaction, or (PostgreSQL) waiting for notifications on channels it LISTENs to:
 * held by design, as a job queue's listener is, not idle.
 */
export type Activity = 'idle' | 'query' | 'idle-in-transaction' | 'listening';

/** Told when a connection it waits on has no query in flight any more. */
export interface IdleWaiter {
  wake(): void;
}

// A statement that opens or closes a transaction, for drivers that do not say (MySQL's
// protocol does, in status flags the drivers keep to themselves).
const opens = /^\s*(?:BEGIN\b|START\s+TRANSACTION\b|XA\s+START\b)/i;
const closes = /^\s*(?:COMMIT\b|ROLLBACK\b(?!\s+(?:WORK\s+)?TO\b)|XA\s+ROLLBACK\b|XA\s+COMMIT\b)/i;
// PostgreSQL's statements that change what a session listens to: LISTEN and UNLISTEN a
// channel (a name, quoted exact or folded to lower case) or UNLISTEN *, and DISCARD ALL.
const listenStatement = /^\s*(?:(UNLISTEN|LISTEN)\s+(?:"((?:[^"]|"")+)"|(\*)|([^\s;"]+))|(DISCARD)\s+ALL\b)/i;

/**
 * What one connection is doing, kept by hooks set on it once (not per lease, not per
 * query): a count of queries in flight, whether a transaction is open, since when, and the
 * last statement as the app sent it. Its text is shaped (values out) only when read.
 */
export class ConnectionActivity {
  busy = 0;
  inTransaction = false;
  /** Monotonic ms when the current activity began; 0 until the first query (a lease counts from its handover). */
  sinceMono = 0;
  sql: string | undefined = undefined;
  /** The channels a PostgreSQL session LISTENs to; null while none (most never do). */
  channels: Set<string> | null = null;
  /** A lease past its threshold in a query, to be looked at again once the query ends. */
  waiter: IdleWaiter | null = null;
  // Bound once per connection, when a driver first needs them (a one-shot query's record never does).
  #end: (() => void) | undefined = undefined;
  #settled: (<T>(value: T) => T) | undefined = undefined;
  #failed: ((error: unknown) => never) | undefined = undefined;

  /** For an event a driver emits at each query's end. */
  get end(): () => void {
    return (this.#end ??= () => this.ended());
  }

  /** For a promise a driver returns: passes its value through. */
  get settled(): <T>(value: T) => T {
    return (this.#settled ??= <T>(value: T): T => {
      this.ended();
      return value;
    });
  }

  /** For a promise a driver returns: passes its rejection through. */
  get failed(): (error: unknown) => never {
    return (this.#failed ??= (error: unknown): never => {
      this.ended();
      throw error;
    });
  }

  constructor(
    readonly dialect: Dialect,
    // The driver's own word that nothing is in flight, when it keeps one: outranks the count,
    // which a query that failed before reaching the server could leave raised.
    readonly driverIdle?: () => boolean,
    // The server's own word on the transaction, when the driver keeps it: outranks the statements seen.
    readonly driverTransaction?: () => boolean | undefined,
  ) {}

  started(query: unknown): void {
    const sql = sqlOf(query);
    if (sql !== undefined) {
      this.sql = sql;
      if (this.dialect === 'mysql') this.#transaction(sql);
      else this.#listen(sql);
    }
    if (this.busy++ === 0) this.sinceMono = now();
  }

  /** A query ended; `inTransaction` when the driver says it. */
  ended(inTransaction?: boolean): void {
    if (inTransaction !== undefined) this.inTransaction = inTransaction;
    if (this.busy > 0) this.busy--;
    this.sinceMono = now();
    if (this.busy === 0 && this.waiter !== null) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.wake();
    }
  }

  #transaction(sql: string): void {
    // Most statements start with another letter: no regex for them.
    let i = 0;
    while (i < sql.length && sql.charCodeAt(i) <= 32) i++;
    const c = sql.charCodeAt(i) | 0x20;
    if (c !== 0x62 && c !== 0x73 && c !== 0x78 && c !== 0x63 && c !== 0x72) return;
    if (opens.test(sql)) this.inTransaction = true;
    else if (closes.test(sql)) this.inTransaction = false;
  }

  /**
   * LISTEN, UNLISTEN and DISCARD ALL, at the start of a statement (graphile-worker sends
   * `LISTEN "a"; LISTEN "b";` as one). Taken as sent: a LISTEN inside a transaction that is
   * rolled back is still counted, which at worst keeps an open transaction's lease out of
   * nothing (idle in a transaction outranks listening).
   */
  #listen(sql: string): void {
    // Most statements start with other letters (UPDATE, DELETE, DO too): nothing more for them.
    let i = 0;
    while (i < sql.length && sql.charCodeAt(i) <= 32) i++;
    const c = sql.charCodeAt(i) | 0x20;
    const d = sql.charCodeAt(i + 1) | 0x20;
    if (!((c === 0x6c && d === 0x69) || (c === 0x75 && d === 0x6e) || (c === 0x64 && d === 0x69))) return;
    for (const statement of sql.split(';')) {
      const m = listenStatement.exec(statement);
      if (m === null) continue;
      if (m[5] !== undefined || m[3] !== undefined) {
        this.channels = null;
        continue;
      }
      const channel = m[2] !== undefined ? m[2].replace(/""/g, '"') : m[4]!.toLowerCase();
      if (m[1]!.length === 6) (this.channels ??= new Set()).add(channel);
      else if (this.channels !== null) {
        this.channels.delete(channel);
        if (this.channels.size === 0) this.channels = null;
      }
    }
  }

  get state(): Activity {
    if (this.busy > 0) {
      let idle = false;
      try {
        idle = this.driverIdle?.() === true;
      } catch {
        // A driver field that throws says nothing.
      }
      if (!idle) return 'query';
      this.busy = 0;
    }
    let inTransaction = this.inTransaction;
    try {
      inTransaction = this.driverTransaction?.() ?? inTransaction;
    } catch {
      // As the statements say.
    }
    return inTransaction ? 'idle-in-transaction' : this.channels !== null ? 'listening' : 'idle';
  }

  get lastQuery(): string | undefined {
    return shapeQuery(this.sql, this.dialect);
  }
}

// One record per connection, whichever pool or detector leases it.
const followed = new WeakMap<object, ConnectionActivity>();

type Method = (this: unknown, ...args: unknown[]) => unknown;

// The driver's method, replaced on this one connection by one that calls it through.
function wrapOwn(target: object, key: string, wrap: (original: Method) => Method): boolean {
  const original = (target as Record<string, unknown>)[key];
  if (typeof original !== 'function') return false;
  try {
    Object.defineProperty(target, key, { value: wrap(original as Method), writable: true, configurable: true, enumerable: false });
    return true;
  } catch {
    return false;
  }
}

/**
 * A pg `Client`: every ReadyForQuery carries the transaction status ('I' idle, 'T' in a
 * transaction, 'E' in a failed one); `query()` is wrapped on this client to see each start.
 * A new client is handed over from inside its first ReadyForQuery, before pg sets
 * `readyForQuery`: not ready yet, as pg itself reads it (its queue waits for `true`).
 */
export function followPg(client: unknown): ConnectionActivity | undefined {
  if (typeof client !== 'object' || client === null) return undefined;
  const known = followed.get(client);
  if (known !== undefined) return known;
  const c = client as PgClientInternals;
  const connection = c.connection as { on?: (event: string, listener: (message: { status?: unknown } | undefined) => void) => unknown } | undefined;
  if (typeof connection?.on !== 'function' || (typeof c.readyForQuery !== 'boolean' && c.readyForQuery !== undefined)) return undefined;
  // pg's own word on the transaction, where it gives one: right too for a client first followed
  // inside a transaction opened before (taken before watch(), or given back mid-transaction).
  const transaction =
    typeof c.getTransactionStatus === 'function'
      ? () => {
          const status = (c.getTransactionStatus as () => unknown).call(c);
          return status === 'T' || status === 'E' ? true : status === 'I' ? false : undefined;
        }
      : undefined;
  const record = new ConnectionActivity('postgres', () => c.readyForQuery === true, transaction);
  if (!wrapOwn(client, 'query', (original) =>
    function query(this: unknown) {
      record.started(arguments[0]);
      try {
        return original.apply(this, arguments as unknown as unknown[]);
      } catch (error) {
        record.ended();
        throw error;
      }
    },
  )) {
    return undefined;
  }
  connection.on('readyForQuery', (message) => {
    const status = message?.status;
    record.ended(status === 'T' || status === 'E' ? true : status === 'I' ? false : undefined);
  });
  followed.set(client, record);
  return record;
}

/** A mysql2 connection (core, as its pool and knex hold it): `query()`/`execute()` return a command that emits `end`. */
export function followMysql2(connection: unknown): ConnectionActivity | undefined {
  if (typeof connection !== 'object' || connection === null) return undefined;
  const known = followed.get(connection);
  if (known !== undefined) return known;
  const record = new ConnectionActivity('mysql');
  const wrap = (original: Method): Method =>
    function query(this: unknown) {
      record.started(arguments[0]);
      let command: unknown;
      try {
        command = original.apply(this, arguments as unknown as unknown[]);
      } catch (error) {
        record.ended();
        throw error;
      }
      const once = (command as { once?: unknown } | null)?.once;
      if (typeof once === 'function') once.call(command, 'end', record.end);
      else record.ended();
      return command;
    };
  // beginTransaction(), commit() and rollback() are query('START TRANSACTION'|'COMMIT'|'ROLLBACK') through `this`.
  if (!wrapOwn(connection, 'query', wrap) || !wrapOwn(connection, 'execute', wrap)) return undefined;
  followed.set(connection, record);
  return record;
}

// mariadb's promise connection methods, and the statement they send when they take none.
const mariadbMethods: ReadonlyArray<readonly [string, string | undefined]> = [
  ['query', undefined],
  ['execute', undefined],
  ['batch', undefined],
  ['beginTransaction', 'START TRANSACTION'],
  ['commit', 'COMMIT'],
  ['rollback', 'ROLLBACK'],
];

const mariadbPrototypes = new WeakSet<object>();

// A mariadb promise connection's `info`: one per server connection, however many wrappers the pool makes for it.
function mariadbKey(connection: object): object {
  try {
    const info = (connection as { info?: unknown }).info;
    if (typeof info === 'object' && info !== null) return info;
  } catch {
    // No info to key by: the wrapper itself.
  }
  return connection;
}

/**
 * A mariadb promise connection. The pool hands out a new one per `getConnection()`, so its
 * methods are wrapped once on their prototype, and each wrapper finds its record by the
 * connection's `info` (one per server connection): connections poolwatch does not follow
 * just call through.
 */
export function followMariadb(connection: unknown): ConnectionActivity | undefined {
  if (typeof connection !== 'object' || connection === null) return undefined;
  const key = mariadbKey(connection);
  const known = followed.get(key);
  if (known !== undefined) return known;
  const proto = Object.getPrototypeOf(connection) as object | null;
  if (proto === null || proto === Object.prototype) return undefined;
  if (!mariadbPrototypes.has(proto)) {
    for (const [method, statement] of mariadbMethods) {
      wrapOwn(proto, method, (original) =>
        function (this: unknown) {
          const record = typeof this === 'object' && this !== null ? followed.get(mariadbKey(this)) : undefined;
          if (record === undefined) return original.apply(this, arguments as unknown as unknown[]);
          record.started(statement ?? arguments[0]);
          let result: unknown;
          try {
            result = original.apply(this, arguments as unknown as unknown[]);
          } catch (error) {
            record.ended();
            throw error;
          }
          if (typeof (result as PromiseLike<unknown> | null)?.then !== 'function') {
            record.ended();
            return result;
          }
          // The app gets the chained promise, so a rejection it leaves unhandled stays unhandled.
          return (result as PromiseLike<unknown>).then(record.settled, record.failed);
        },
      );
    }
    mariadbPrototypes.add(proto);
  }
  // The server's status flags of its last reply (SERVER_STATUS_IN_TRANS): right also when the
  // pool rolled back a transaction on release, out of poolwatch's sight.
  const info = key as { status?: unknown };
  const record = new ConnectionActivity('mysql', undefined, () => (typeof info.status === 'number' ? (info.status & 1) !== 0 : undefined));
  followed.set(key, record);
  return record;
}

/** A one-shot lease (`pool.query()` with no connection object): it is its query, from handover to release. */
export function oneShot(dialect: Dialect, query: unknown): ConnectionActivity {
  const record = new ConnectionActivity(dialect);
  // Its query began at the handover, which is where a lease's activity counts from: no clock read.
  record.busy = 1;
  record.sql = sqlOf(query);
  return record;
}

/** A driver connection as knex and Sequelize hold it: pg `Client` or a mysql2 connection, by shape. */
export function followDriverConnection(connection: unknown): ConnectionActivity | undefined {
  if (typeof connection !== 'object' || connection === null) return undefined;
  const known = followed.get(connection);
  if (known !== undefined) return known;
  const c = connection as Record<string, unknown>;
  if (typeof c.readyForQuery === 'boolean' && typeof (c.connection as { on?: unknown } | undefined)?.on === 'function') return followPg(connection);
  if (typeof c.query === 'function' && typeof c.execute === 'function' && typeof c.beginTransaction === 'function' && typeof c.threadId !== 'undefined') {
    // mariadb's promise connection also has these; mysql2's has a config with connection options.
    return typeof (c as { config?: { connectTimeout?: unknown } }).config === 'object' && typeof c.addCommand === 'function' ? followMysql2(connection) : followMariadb(connection);
  }
  return undefined;
}
