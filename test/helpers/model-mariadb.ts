/**
 * A mariadb (promise) pool for the model-based tests (test/helpers/model.ts), on the
 * MariaDB server, and the server's own view (see model-mysql2.ts's serverView).
 */
import type { Test } from 'tap';
import * as mariadb from 'mariadb';
import mysqlPromise from 'mysql2/promise';
import type { ModelDriver } from './model.js';
import { mariadbConfig } from './mariadb.js';
import { serverView } from './model-mysql2.js';
import { siteOf } from './site.js';

type Conn = mariadb.PoolConnection;

/** The acquire timeout, in ms: mariadb times a waiting request by Date.now(), which only the program's clock moves. */
const ACQUIRE_TIMEOUT = 300;

function getConnection(pool: mariadb.Pool, form: 'promise' | 'callback'): Promise<Conn> {
  if (form === 'promise') return pool.getConnection(); // ACQUIRE-PROMISE
  // mariadb's promise pool has no callback form: the nearest an app writes is a then() callback.
  return new Promise((resolve, reject) => void pool.getConnection().then(resolve, reject)); // ACQUIRE-CALLBACK
}

/** Rows without mariadb's `meta`, or the OK packet. */
const result = (rows: unknown) => (Array.isArray(rows) ? [...rows] : rows);

/** The driver for pools of `max` connections (1: every lend is of the same connection). */
export async function mariadbDriver(t: Test, max = 3): Promise<{ driver: ModelDriver<mariadb.Pool, Conn>; done: () => Promise<void> } | undefined> {
  const db = mariadbConfig(t);
  if (db === undefined) return undefined;
  const admin = await mysqlPromise.createConnection(db);
  const holder = await mysqlPromise.createConnection(db);
  await admin.query('CREATE TABLE IF NOT EXISTS model_mariadb_items (v int) ENGINE=InnoDB');
  await admin.query('TRUNCATE TABLE model_mariadb_items');
  const lock = 'poolwatch-model-mariadb';

  const driver: ModelDriver<mariadb.Pool, Conn> = {
    name: 'mariadb',
    max,
    known: {
      killedStaysOpen: 'the pool drops a held connection the server killed at once; poolwatch ends its lease only when the app gives it back (mysql2: at once, as a destroy)',
      staleRelease: "a stale handle's release() gives the pool back the connection it lent again since; poolwatch keeps the new borrower's lease open",
    },
    // A new handle per lend, over the same connection.
    sameConnection: (a, b) => a.threadId === b.threadId,
    sites: { promise: siteOf(__filename, '// ACQUIRE-PROMISE'), callback: siteOf(__filename, '// ACQUIRE-CALLBACK') },
    sql: {
      value: (v) => `SELECT ${v} AS v`,
      begin: ['START TRANSACTION', 'INSERT INTO model_mariadb_items VALUES (1)'],
      commit: 'COMMIT',
      rollback: 'ROLLBACK',
      bad: 'SELECT * FROM model_no_such_table',
      slow: `SELECT GET_LOCK('${lock}', 60) AND RELEASE_LOCK('${lock}') AS slow`,
    },
    // A connect timeout no program's clock reaches (mariadb times connecting by Date.now() too). No idle minimum: the
    // pool opens connections as asked, not in the background, so which one it lends is the same in both runs.
    create: async () => mariadb.createPool({ ...db, connectionLimit: max, minimumIdle: 0, acquireTimeout: ACQUIRE_TIMEOUT, connectTimeout: 600_000 }),
    close: (pool) => pool.end(),
    leased: (pool) => pool.activeConnections(),
    state: (pool) => ({ active: pool.activeConnections(), idle: pool.idleConnections(), total: pool.totalConnections(), waiting: pool.taskQueueSize() }),
    acquire: async (pool, form, onError) => {
      const conn = await getConnection(pool, form);
      // As an app does: a connection that fails while held must not crash it.
      conn.on('error', onError);
      return conn;
    },
    poolQuery: (pool, form, sql) => (form === 'promise' ? pool.query(sql).then(result) : new Promise((resolve, reject) => void pool.query(sql).then((rows) => resolve(result(rows)), reject))),
    query: (conn, sql) => conn.query(sql).then(result),
    // mariadb has no release(err): its other ways back are end() (a release) and destroy().
    giveBack: async (_pool, conn, how) => (how === 'plain' ? conn.release() : how === 'error' ? conn.end() : conn.destroy()),
    withShortTimeout: async (_pool, acquire, tick) => {
      const waiting = acquire();
      tick(ACQUIRE_TIMEOUT);
      return waiting;
    },
    kill: async (_pool, conn) => {
      const gone = new Promise((resolve) => conn.on('error', resolve));
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
    server: async (conns) => serverView(admin, conns.map((c) => c.threadId!), async (i) => Number(((await conns[i]!.query('SELECT @@in_transaction AS t')) as Array<{ t: number }>)[0]!.t) === 1),
    // mariadb numbers each connection in its messages.
    normalize: (text) => text.replace(/\(conn:-?\d+, no: -?\d+/g, '(conn:N, no: N').replace(/\(conn:-?\d+,/g, '(conn:N,'),
  };
  return { driver, done: async () => (await admin.end(), await holder.end()) };
}
