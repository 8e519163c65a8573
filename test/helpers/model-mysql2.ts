/**
 * A mysql2 pool for the model-based tests (test/helpers/model.ts), on the MariaDB server:
 * the callback pool, taken from by callback and through its promise wrapper, and the
 * server's own view from its processlist and each session's transaction flag.
 */
import type { Test } from 'tap';
import mysql from 'mysql2';
import mysqlPromise from 'mysql2/promise';
import type { ModelDriver, ServerState } from './model.js';
import { mariadbConfig } from './mariadb.js';
import { siteOf } from './site.js';

type Conn = mysql.PoolConnection;

/** What a query gave, as comparable data: rows, or the result header. */
const result = (rows: unknown) => rows;

function getConnection(pool: mysql.Pool, form: 'promise' | 'callback'): Promise<Conn> {
  if (form === 'promise') return pool.promise().getConnection().then((conn) => conn.connection as unknown as Conn); // ACQUIRE-PROMISE
  return new Promise((resolve, reject) => pool.getConnection((error, conn) => (error ? reject(error) : resolve(conn)))); // ACQUIRE-CALLBACK
}

const query = (on: mysql.Pool | Conn, sql: string) => new Promise((resolve, reject) => on.query(sql, (error, rows) => (error ? reject(error) : resolve(result(rows)))));

/** The driver, or undefined after skipping `t` when there is no MariaDB server; `done()` ends its admin connections. */
export async function mysql2Driver(t: Test): Promise<{ driver: ModelDriver<mysql.Pool, Conn>; done: () => Promise<void> } | undefined> {
  const db = mariadbConfig(t);
  if (db === undefined) return undefined;
  const admin = await mysqlPromise.createConnection(db);
  const holder = await mysqlPromise.createConnection(db);
  await admin.query('CREATE TABLE IF NOT EXISTS model_mysql2_items (v int) ENGINE=InnoDB');
  await admin.query('TRUNCATE TABLE model_mysql2_items');
  const lock = 'poolwatch-model-mysql2';

  const driver: ModelDriver<mysql.Pool, Conn> = {
    name: 'mysql2',
    max: 3,
    // mysql2 (3.24) puts a connection on its free list twice when pool.releaseConnection(conn) comes twice, or after
    // conn.release(): then it lends one connection to two borrowers, with or without poolwatch.
    unsafeTwice: ['error'],
    known: { lateFollow: 'a connection first followed inside a transaction opened before (taken before watch(), given back mid-transaction) shows idle' },
    sites: { promise: siteOf(__filename, '// ACQUIRE-PROMISE'), callback: siteOf(__filename, '// ACQUIRE-CALLBACK') },
    sql: {
      value: (v) => `SELECT ${v} AS v`,
      begin: ['START TRANSACTION', 'INSERT INTO model_mysql2_items VALUES (1)'],
      commit: 'COMMIT',
      rollback: 'ROLLBACK',
      bad: 'SELECT * FROM model_no_such_table',
      slow: `SELECT GET_LOCK('${lock}', 60) AND RELEASE_LOCK('${lock}') AS slow`,
    },
    create: async () => mysql.createPool({ ...db, connectionLimit: 3, maxIdle: 3 }),
    close: (pool) => new Promise<void>((resolve) => pool.end(() => resolve())),
    leased: (pool) => {
      const p = pool as unknown as { _allConnections: { length: number }; _freeConnections: { toArray(): unknown[] } };
      return p._allConnections.length - p._freeConnections.toArray().length;
    },
    state: (pool) => {
      const p = pool as unknown as { _allConnections: { length: number }; _freeConnections: { length: number }; _connectionQueue: { length: number } };
      return { all: p._allConnections.length, free: p._freeConnections.length, queued: p._connectionQueue.length };
    },
    acquire: async (pool, form, onError) => {
      const conn = await getConnection(pool, form);
      // As an app does: a connection that fails while held must not crash it.
      conn.on('error', onError);
      return conn;
    },
    poolQuery: (pool, form, sql) => (form === 'promise' ? pool.promise().query(sql).then(([rows]) => result(rows)) : query(pool, sql)),
    query: (conn, sql) => query(conn, sql),
    // mysql2 has no release(err): its other ways back are the pool's releaseConnection() and destroy().
    giveBack: async (pool, conn, how) => (how === 'plain' ? conn.release() : how === 'error' ? pool.releaseConnection(conn) : conn.destroy()),
    kill: async (_pool, conn) => {
      // mysql2 emits 'end', then (a tick later) the lost connection as 'error': the program goes on after both.
      const gone = new Promise((resolve) => conn.once('error', resolve));
      await admin.query(`KILL ${conn.threadId}`);
      await gone;
    },
    block: async () => {
      await holder.query(`SELECT GET_LOCK('${lock}', 60)`);
      return async () => void (await holder.query(`SELECT RELEASE_LOCK('${lock}')`));
    },
    running: async (conn, done) => {
      while (!done()) {
        const [rows] = await admin.query('SELECT 1 FROM information_schema.processlist WHERE id = ? AND command = ?', [conn.threadId, 'Query']);
        if ((rows as unknown[]).length > 0) return;
      }
    },
    server: async (conns) => serverView(admin, conns.map((c) => c.threadId), async (i) => ((await query(conns[i]!, 'SELECT @@in_transaction AS t')) as Array<{ t: number }>)[0]!.t === 1),
  };
  return { driver, done: async () => (await admin.end(), await holder.end()) };
}

/**
 * What MariaDB says each thread is doing: its processlist command, and whether it has a
 * transaction open, which `inTransaction` asks the connection itself (`@@in_transaction`,
 * the server's own flag; it changes nothing on it). Not information_schema.innodb_trx: InnoDB
 * starts a transaction at its first statement that reads or writes, so a `BEGIN` with none
 * yet is absent there though the session is in a transaction (and the view needs PROCESS).
 */
export async function serverView(admin: mysqlPromise.Connection, threads: readonly number[], inTransaction: (index: number) => Promise<boolean>): Promise<ServerState[]> {
  if (threads.length === 0) return [];
  const [list] = await admin.query('SELECT id, command FROM information_schema.processlist WHERE id IN (?)', [threads]);
  const command = new Map((list as Array<{ id: number; command: string }>).map((r) => [Number(r.id), r.command]));
  const states: ServerState[] = [];
  for (const [i, id] of threads.entries()) {
    const c = command.get(id);
    if (c === undefined) states.push('gone');
    else if (c === 'Query') states.push('query');
    else states.push((await inTransaction(i)) ? 'idle-in-transaction' : 'idle');
  }
  return states;
}
