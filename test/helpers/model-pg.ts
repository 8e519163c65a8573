/**
 * pg.Pool for the model-based tests (test/helpers/model.ts): a pool per program on a
 * real PostgreSQL, and the server's own view from pg_stat_activity. `postgresSide` serves
 * every driver over pg (knex too).
 */
import type { Test } from 'tap';
import pg from 'pg';
import type { ModelDriver, ModelSql, ServerState } from './model.js';
import { restartPostgres, startPostgres, type PostgresConfig } from './postgres.js';
import { siteOf } from './site.js';

type Client = pg.PoolClient;

const result = (r: pg.QueryResult) => ({ command: r.command, rowCount: r.rowCount, rows: r.rows });

function connect(pool: pg.Pool, form: 'promise' | 'callback'): Promise<Client> {
  if (form === 'promise') return pool.connect(); // ACQUIRE-PROMISE
  return new Promise((resolve, reject) => pool.connect((error, client) => (error ? reject(error) : resolve(client!)))); // ACQUIRE-CALLBACK
}

/** Ends a pool once its clients have closed: pool.end() resolves before, and the server must not see them (or stop under them) later. */
async function end(pool: pg.Pool): Promise<void> {
  const clients = (pool as unknown as { _clients: Array<{ connection: { stream: NodeJS.EventEmitter & { destroyed: boolean } } }> })._clients;
  const closed = clients.map((c) => c.connection.stream).filter((s) => !s.destroyed).map((s) => new Promise((resolve) => s.once('close', resolve)));
  await pool.end();
  await Promise.all(closed);
}

const processId = (client: unknown) => (client as { processID: number }).processID;
const states: Record<string, ServerState> = { idle: 'idle', 'idle in transaction': 'idle-in-transaction', 'idle in transaction (aborted)': 'idle-in-transaction', active: 'query' };

/** A PostgreSQL for this test file, and what the drivers over pg ask of it by a pg Client. */
export interface PostgresSide {
  readonly db: PostgresConfig;
  readonly sql: ModelSql;
  /** Must be awaited before the test ends: its admin pool ends before the server stops (teardowns run in order, the server's first). */
  done(): Promise<void>;
  kill(client: pg.Client): Promise<void>;
  block(): Promise<() => Promise<void>>;
  running(client: pg.Client, done: () => boolean): Promise<void>;
  caughtUp(client: pg.Client): boolean;
  server(clients: readonly pg.Client[]): Promise<ServerState[]>;
  restart(clients: readonly pg.Client[]): Promise<void>;
}

export async function postgresSide(t: Test): Promise<PostgresSide> {
  const db = await startPostgres(t);
  const admin = new pg.Pool({ ...db, max: 2 });
  // Its idle clients see a restart end them; the next query opens new ones.
  admin.on('error', () => {});
  await admin.query('CREATE TABLE model_items (v int)');
  return {
    db,
    sql: {
      value: (v) => `SELECT ${v}::int AS v`,
      begin: ['BEGIN', 'INSERT INTO model_items VALUES (1)'],
      commit: 'COMMIT',
      rollback: 'ROLLBACK',
      bad: 'SELECT * FROM model_no_such_table',
      slow: 'SELECT pg_advisory_unlock(4242) AS slow FROM (SELECT pg_advisory_lock(4242)) AS locked',
    },
    done: () => end(admin),
    kill: async (client) => {
      const ended = new Promise((resolve) => client.once('end', resolve));
      await admin.query('SELECT pg_terminate_backend($1)', [processId(client)]);
      await ended;
    },
    block: async () => {
      const holder = await admin.connect();
      await holder.query('SELECT pg_advisory_lock(4242)');
      return async () => {
        await holder.query('SELECT pg_advisory_unlock(4242)');
        holder.release();
      };
    },
    running: async (client, done) => {
      while (!done()) {
        const { rows } = await admin.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE pid = $1', [processId(client)]);
        if (rows[0]?.state === 'active') return;
      }
    },
    restart: async (clients) => {
      const ended = clients.map((client) => new Promise((resolve) => client.once('end', resolve)));
      await restartPostgres(db);
      await Promise.all(ended);
    },
    caughtUp: (client) => (client as unknown as { readyForQuery: boolean }).readyForQuery,
    server: async (clients) => {
      if (clients.length === 0) return [];
      const pids = clients.map(processId);
      const { rows } = await admin.query<{ pid: number; state: string }>('SELECT pid, state FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids]);
      const byPid = new Map(rows.map((r) => [r.pid, states[r.state] ?? (r.state as ServerState)]));
      return pids.map((pid) => byPid.get(pid) ?? 'gone');
    },
  };
}

/** A PostgreSQL for this test, and the pg.Pool driver; `done()` must be awaited before the test ends. */
export async function pgDriver(t: Test): Promise<{ driver: ModelDriver<pg.Pool, Client>; done: () => Promise<void> }> {
  const side = await postgresSide(t);
  const driver: ModelDriver<pg.Pool, Client> = {
    name: 'pg',
    max: 3,
    sites: { promise: siteOf(__filename, '// ACQUIRE-PROMISE'), callback: siteOf(__filename, '// ACQUIRE-CALLBACK') },
    sql: side.sql,
    create: async () => {
      const pool = new pg.Pool({ ...side.db, max: 3, idleTimeoutMillis: 0 });
      // As an app does: an idle client the server ends (a restart) must not crash it.
      pool.on('error', () => {});
      return pool;
    },
    close: end,
    leased: (pool) => pool.totalCount - pool.idleCount,
    state: (pool) => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    acquire: async (pool, form, onError) => {
      const client = await connect(pool, form);
      // As an app does: a connection that fails while held must not crash it.
      client.on('error', onError);
      return client;
    },
    poolQuery: async (pool, form, sql) => {
      if (form === 'promise') return result(await pool.query(sql));
      return new Promise((resolve, reject) => pool.query(sql, (error: Error, r: pg.QueryResult) => (error ? reject(error) : resolve(result(r)))));
    },
    query: async (client, sql) => result(await client.query(sql)),
    giveBack: async (_pool, client, how) => client.release(how === 'plain' ? undefined : how === 'error' ? new Error('the app gave up on it') : true),
    withShortTimeout: async (pool, acquire) => {
      const options = (pool as unknown as { options: { connectionTimeoutMillis?: number } }).options;
      const before = options.connectionTimeoutMillis;
      options.connectionTimeoutMillis = 20;
      try {
        return await acquire();
      } finally {
        options.connectionTimeoutMillis = before;
      }
    },
    kill: (_pool, client) => side.kill(client),
    restart: side.restart,
    block: side.block,
    running: side.running,
    caughtUp: side.caughtUp,
    server: side.server,
  };
  return { driver, done: side.done };
}
