// A database that cannot be reached while requests wait: nothing is leased, so the pool's
// errors reach the app exactly as the driver made them (the oracle is the same program on
// the same pool unwatched), and the verdict rides beside them: `unreachable`.
import t, { type Test } from 'tap';
import { createServer, type Socket } from 'node:net';
import pg from 'pg';
import mysql2 from 'mysql2';
import * as mariadb from 'mariadb';
import knexFactory from 'knex';
import { createPool } from 'generic-pool';
import { Pool as TarnPool } from 'tarn';
import { createDetector, type ExhaustedEvent } from '../lib/index.js';
import { freePort } from './helpers/postgres.js';

t.setTimeout(120_000);

type Target = { port: number };

/** A server that accepts connections and never says a word: a database hung mid-handshake. */
async function silentServer(t: Test): Promise<Target> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as { port: number }).port };
}

async function closedPort(): Promise<Target> {
  return { port: await freePort() };
}

/** A program: five requests at once on a pool of two, each ending in its pool's error. */
interface Program {
  pool: object;
  request(): Promise<unknown>;
  end(): Promise<unknown>;
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
const credentials = { host: '127.0.0.1', user: 'nobody', password: 'never-used' };

const programs: Record<string, (target: Target) => Program> = {
  'pg, connect() promise': ({ port }) => {
    const pool = new pg.Pool({ ...credentials, port, database: 'none', max: 2, connectionTimeoutMillis: 200 });
    return { pool, request: () => pool.connect().then((client) => client.release()), end: () => pool.end() };
  },
  'pg, connect(callback)': ({ port }) => {
    const pool = new pg.Pool({ ...credentials, port, database: 'none', max: 2, connectionTimeoutMillis: 200 });
    const request = () =>
      new Promise<void>((resolve, reject) =>
        pool.connect((error, client, done) => {
          if (error) return reject(error);
          done();
          resolve();
        }),
      );
    return { pool, request, end: () => pool.end() };
  },
  'pg, query() promise': ({ port }) => {
    const pool = new pg.Pool({ ...credentials, port, database: 'none', max: 2, connectionTimeoutMillis: 200 });
    return { pool, request: () => pool.query('SELECT 1'), end: () => pool.end() };
  },
  'pg, query(callback)': ({ port }) => {
    const pool = new pg.Pool({ ...credentials, port, database: 'none', max: 2, connectionTimeoutMillis: 200 });
    const request = () => new Promise<void>((resolve, reject) => pool.query('SELECT 1', (error) => (error ? reject(error) : resolve())));
    return { pool, request, end: () => pool.end() };
  },
  'mysql2, getConnection(callback)': ({ port }) => {
    const pool = mysql2.createPool({ ...credentials, port, connectionLimit: 2, connectTimeout: 200 });
    const request = () =>
      new Promise<void>((resolve, reject) =>
        pool.getConnection((error, conn) => {
          if (error) return reject(error);
          conn.release();
          resolve();
        }),
      );
    return { pool, request, end: () => new Promise((resolve) => pool.end(resolve)) };
  },
  'mysql2, .promise() getConnection()': ({ port }) => {
    const pool = mysql2.createPool({ ...credentials, port, connectionLimit: 2, connectTimeout: 200 }).promise();
    return { pool, request: () => pool.getConnection().then((conn) => conn.release()), end: () => pool.end() };
  },
  'mariadb, getConnection()': ({ port }) => {
    const pool = mariadb.createPool({ ...credentials, port, connectionLimit: 2, connectTimeout: 200, acquireTimeout: 400, initializationTimeout: 1_000 });
    return { pool, request: () => pool.getConnection().then((conn) => conn.release()), end: () => pool.end().catch(() => undefined) };
  },
  'knex on pg, a query': ({ port }) => {
    const knex = knexFactory({ client: 'pg', connection: { ...credentials, port, database: 'none', connectionTimeoutMillis: 200 }, pool: { min: 0, max: 2 }, acquireConnectionTimeout: 400 });
    return { pool: knex, request: () => knex.raw('SELECT 1').then(() => undefined), end: () => knex.destroy() };
  },
  'generic-pool, a factory that cannot connect': () => {
    const pool = createPool({ create: () => new Promise<object>((_, reject) => setTimeout(() => reject(refused()), 20)), destroy: async () => {} }, { max: 2, acquireTimeoutMillis: 300 });
    return { pool, request: () => pool.acquire().then((conn) => pool.release(conn)), end: () => pool.drain().then(() => pool.clear()) };
  },
  'tarn, a create that cannot connect': () => {
    const pool = new TarnPool<object>({ create: () => new Promise<object>((_, reject) => setTimeout(() => reject(refused()), 20)), destroy: () => {}, min: 0, max: 2, acquireTimeoutMillis: 300, createRetryIntervalMillis: 20 });
    return { pool, request: () => pool.acquire().promise.then((conn) => pool.release(conn)), end: () => pool.destroy() };
  },
};

type Outcome = { name: string; code: unknown; message: string; verdict?: unknown };

async function run(program: Program, watch: boolean): Promise<{ outcomes: Outcome[]; events: ExhaustedEvent[] }> {
  const events: ExhaustedEvent[] = [];
  const detector = createDetector({ leakThresholdMs: 60_000 });
  if (watch) {
    detector.on('exhausted', (event) => events.push(event));
    detector.watch(program.pool, { name: 'db' });
  }
  const settled = await Promise.allSettled(Array.from({ length: 5 }, () => program.request()));
  await program.end();
  detector.close();
  const outcomes = settled.map((s) => {
    if (s.status === 'fulfilled') return { name: 'fulfilled', code: undefined, message: '' };
    const error = s.reason as Error & { code?: unknown; poolwatch?: { verdict?: unknown } };
    return { name: error.constructor.name, code: error.code, message: error.message, verdict: error.poolwatch?.verdict };
  });
  return { outcomes, events };
}

const sorted = (outcomes: Outcome[]) => outcomes.map(({ name, code, message }) => JSON.stringify([name, code, message])).sort();

for (const [label, target] of [
  ['a closed port', closedPort],
  ['a silent server (accepts, never answers)', silentServer],
] as const) {
  t.test(`five requests on a pool of two against ${label}: the driver's errors untouched, the verdict unreachable`, async (t) => {
    for (const [name, make] of Object.entries(programs)) {
      await t.test(name, async (t) => {
        const where = await target(t);
        // knex logs each failed acquire itself, raw and watched alike.
        const warn = console.warn;
        console.warn = () => {};
        t.teardown(() => {
          console.warn = warn;
        });
        const raw = await run(make(where), false);
        const watched = await run(make(where), true);
        t.equal(raw.outcomes.filter((o) => o.name === 'fulfilled').length, 0, 'the unwatched pool fails every request');
        t.same(sorted(watched.outcomes), sorted(raw.outcomes), 'each error as the unwatched pool gives it: class, code and message');
        t.same(
          watched.outcomes.map((o) => o.verdict),
          watched.outcomes.map(() => 'unreachable'),
          'every error carries the verdict unreachable on error.poolwatch',
        );
        t.ok(watched.events.length > 0, 'an exhausted event says so');
        t.same(
          watched.events.map((e) => [e.verdict, e.open]),
          watched.events.map(() => ['unreachable', 0]),
          'every exhausted event: unreachable, nothing leased',
        );
        for (const event of watched.events) t.notMatch(event.message, /ran dry|Held by|taken before watch/, 'no holders are invented');
      });
    }
  });
}
