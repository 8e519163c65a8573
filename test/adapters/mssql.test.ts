/**
 * mssql without a SQL Server: real `ConnectionPool`s whose driver-level connection
 * functions (`_poolCreate`, `_poolDestroy`, `_poolValidate`, the tedious driver's own) are
 * replaced on the instance by in-memory ones. mssql's own connect(), acquire(), release(),
 * close(), its Transaction and its tarn pool all run as they would; tedious never does.
 */
import t, { type Test } from 'tap';
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { createDetector, watch, unwatch, detectorOf, type ExhaustedEvent, type LeakReport, type MisuseEvent } from '../../lib/index.js';
import { adapterFor } from '../../lib/adapters/index.js';
import { mssql } from '../../lib/adapters/mssql.js';
import { compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { siteOf } from '../helpers/site.js';
import { poolsOwnMessage } from '../helpers/errors.js';
import { captureWarnings } from '../helpers/warnings.js';

/** An in-memory connection: what tedious would hand over, with just what a Transaction calls. */
class Conn extends EventEmitter {
  constructor(readonly id: number) {
    super();
  }
  beginTransaction(callback: (error?: Error) => void): void {
    setImmediate(callback);
  }
  commitTransaction(callback: (error?: Error) => void): void {
    setImmediate(callback);
  }
  rollbackTransaction(callback: (error?: Error) => void): void {
    setImmediate(callback);
  }
}

/** The tarn pool an mssql ConnectionPool makes in connect(). */
interface TarnPool {
  acquire(): { promise: Promise<unknown> };
  release(resource: unknown): boolean;
  destroy(): Promise<unknown>;
  numFree(): number;
  numUsed(): number;
  numPendingCreates(): number;
  numPendingAcquires(): number;
  readonly destroyed: boolean;
}

interface ConnectionPool {
  acquire(requester?: unknown): Promise<Conn>;
  acquire(requester: unknown, callback: (error: Error | null, conn?: Conn, config?: object) => void): ConnectionPool;
  release(conn: unknown): ConnectionPool;
  connect(): Promise<ConnectionPool>;
  close(): Promise<ConnectionPool>;
  transaction(): Transaction;
  request(): object;
  on(event: 'error', listener: (error: Error) => void): ConnectionPool;
  readonly available: number;
  readonly config: { pool?: object };
  pool: TarnPool | null | undefined;
  _poolCreate(): Promise<Conn>;
  _poolDestroy(conn: Conn): Promise<void>;
  _poolValidate(conn: Conn): boolean;
}

interface Transaction {
  begin(): Promise<Transaction>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

interface Mssql {
  ConnectionPool: new (config: object) => ConnectionPool;
  Transaction: new (parent: ConnectionPool) => Transaction;
  PreparedStatement: new (parent: ConnectionPool) => object;
  Request: new (parent: ConnectionPool) => object;
}

const load = createRequire(__filename);
const sql = load('mssql') as Mssql;
const version = (load('mssql/package.json') as { version: string }).version;
const site = (marker: string) => siteOf(__filename, marker);

let ids = 0;

/** A ConnectionPool to 127.0.0.1 that never opens a socket: its connections are made in memory. */
function inMemory(options: object = {}): ConnectionPool {
  const pool = new sql.ConnectionPool({ server: '127.0.0.1', ...options });
  pool._poolCreate = async () => new Conn(++ids);
  pool._poolDestroy = async () => {};
  pool._poolValidate = () => true;
  return pool;
}

async function connected(poolOptions: object = {}): Promise<ConnectionPool> {
  const pool = inMemory({ pool: { min: 0, ...poolOptions } });
  await pool.connect();
  return pool;
}

function watched(t: Test, pool: ConnectionPool, leakThresholdMs = 1000) {
  const detector = createDetector({ leakThresholdMs });
  detector.watch(pool);
  t.teardown(() => detector.close());
  const misuse: MisuseEvent[] = [];
  const leaks: LeakReport[] = [];
  detector.on('misuse', (event) => misuse.push(event));
  detector.on('leak', (report) => leaks.push(report));
  return { detector, misuse, leaks };
}

t.test(`mssql ${version}`, async (t) => {
  // First in the file: POOLWATCH_DEGRADED is said once per process for a library version and capability.
  t.test("says once, at the first handover, when the tarn pool connect() made does not show its leased list", async (t) => {
    const warnings = captureWarnings(t);
    const pool = inMemory();
    const { detector, misuse } = watched(t, pool);
    t.same(detector.stats().mssql!.capabilities.degraded, [], 'nothing to check before connect()');
    await pool.connect();
    t.teardown(() => pool.close());
    hideLeasedList(pool);
    const conn = await pool.acquire();
    pool.release(conn);
    pool.release(conn);
    pool.release(new Conn(-1));
    await new Promise((resolve) => setImmediate(resolve));
    t.match(detector.stats().mssql!.capabilities, { can: { misuse: false }, degraded: [{ capability: 'misuse', shape: 'pool.pool.used' }] });
    t.same(
      misuse.map((event) => event.kind),
      ['double-release'],
      'a double release is still said; a foreign one cannot be told',
    );
    t.equal(warnings.length, 1);
    t.match(warnings[0], { code: 'POOLWATCH_DEGRADED', message: new RegExp(`pool "mssql" is mssql ${version.replace(/\./g, '\\.')}, checked against >=7\\.0\\.0 <13, .*misuse \\(no pool\\.pool\\.used`) });

    // Watched once connected, the same shape is missing at watch() already: said once per process, so not again.
    const second = await connected();
    t.teardown(() => second.close());
    hideLeasedList(second);
    const other = createDetector();
    other.watch(second);
    t.teardown(() => other.close());
    t.match(other.stats().mssql!.capabilities, { can: { misuse: false }, degraded: [{ capability: 'misuse', shape: 'pool.pool.used' }] });
    await new Promise((resolve) => setImmediate(resolve));
    t.equal(warnings.length, 1);
  });

  t.test('mssql passes the adapter compliance suite', async (t) => {
    compliance<ConnectionPool, Conn>(t, {
      defaultName: 'mssql',
      acquireSite: siteOf(__filename, '// ACQUIRE'),
      create: (max) => connected({ max }),
      close: async (pool) => {
        await pool.close();
      },
      acquire: (pool) => pool.acquire(), // ACQUIRE
      // mssql's release() returns the pool itself, whatever tarn said.
      release: (pool, conn) => pool.release(conn) === pool,
      // mssql has no per-connection destroy: that compliance test is skipped.
      methods: ['acquire', 'release'],
      createFailing: async () => {
        const pool = await connected({ max: 1, acquireTimeoutMillis: 5000 });
        // The server stops answering after connect(): new connections never come, and the acquire times out.
        pool._poolCreate = () => new Promise<Conn>(() => {});
        return pool;
      },
      // close() would wait for the create that never settles; its timers were fake, so the pool is just dropped.
      closeFailing: async () => {},
    });
  });

  t.test("recognises an mssql ConnectionPool, names it 'mssql' and reads its size from config.pool", async (t) => {
    const pool = inMemory({ pool: { max: 3, acquireTimeoutMillis: 2000 } });
    watch(pool);
    t.teardown(() => unwatch(pool));
    t.equal(adapterFor(pool, undefined), mssql);
    t.match(detectorOf(pool)!.stats().mssql, { capacity: 3, idle: 0, capabilities: { library: 'mssql', version, degraded: [] } });
    t.equal(mssql.acquireTimeoutMs!(pool), 2000);
    await pool.connect();
    t.teardown(() => pool.close());
    pool.release(await pool.acquire());
    t.equal(detectorOf(pool)!.stats().mssql!.idle, 1, "the pool's own available count");

    const plain = inMemory();
    t.equal(mssql.capacity!(plain), 10, "mssql's default size");
    t.equal(mssql.acquireTimeoutMs!(plain), undefined, "tarn's own default applies");
  });

  t.test('recognises no other pool, and no other mssql object, as an mssql ConnectionPool', async (t) => {
    const { Pool: TarnPoolClass } = load('tarn') as { Pool: new (options: object) => TarnPool };
    const tarnPool = new TarnPoolClass({ create: async () => ({}), destroy: () => {}, min: 0, max: 1 });
    t.teardown(() => tarnPool.destroy());
    const genericPool = (load('generic-pool') as { createPool(factory: object, options: object): object & { drain(): Promise<void>; clear(): Promise<void> } }).createPool(
      { create: async () => ({}), destroy: async () => {} },
      { max: 1 },
    );
    t.teardown(async () => {
      await genericPool.drain();
      await genericPool.clear();
    });
    const knex = (load('knex') as (config: object) => object & { destroy(): Promise<void> })({ client: 'pg', connection: {} });
    t.teardown(() => knex.destroy());
    const pgPool = new (load('pg') as { Pool: new () => object & { end(): Promise<void> } }).Pool();
    t.teardown(() => pgPool.end());
    const mysql2Pool = (load('mysql2') as { createPool(config: object): object & { end(cb: () => void): void; promise(): object } }).createPool({});
    t.teardown(() => new Promise<void>((resolve) => mysql2Pool.end(resolve)));
    const pool = inMemory();
    const others = { tarnPool, genericPool, knex, pgPool, mysql2Pool, mysql2PromisePool: mysql2Pool.promise() };
    for (const [name, other] of Object.entries(others)) {
      t.equal(mssql.matches(other), false, name);
      t.not(adapterFor(other, undefined), mssql, `${name} is watched by its own adapter`);
    }
    for (const [name, other] of Object.entries({ transaction: new sql.Transaction(pool), request: new sql.Request(pool), preparedStatement: new sql.PreparedStatement(pool) })) {
      t.equal(mssql.matches(other), false, `an mssql ${name} (it has acquire and release too)`);
    }
    t.equal(adapterFor(pool, undefined), mssql);
  });

  t.test('follows a callback acquire, which returns the pool and calls back with the connection and config', async (t) => {
    const pool = await connected({ max: 1 });
    t.teardown(() => pool.close());
    const { detector } = watched(t, pool);
    const got = await new Promise<{ returned: unknown; conn: Conn; config: unknown; open: number }>((resolve, reject) => {
      const returned = pool.acquire(null, (error, conn, config) => { // CALLBACK
        if (error) reject(error);
        else resolve({ returned, conn: conn!, config, open: detector.leases().length });
      });
    });
    t.equal(got.returned, pool);
    t.equal(got.config, pool.config);
    t.equal(got.open, 1, 'handed over before the callback runs');
    t.ok(detector.leases()[0]!.callSite?.startsWith(site('// CALLBACK')));
    pool.release(got.conn);
    t.match(detector.stats().mssql, { open: 0, acquired: 1, released: 1 });
  });

  t.test("calls a queued callback in its caller's async context, not the releaser's", async (t) => {
    const pool = await connected({ max: 1 });
    t.teardown(() => pool.close());
    watched(t, pool);
    const requests = new AsyncLocalStorage<string>();
    const held = await requests.run('holder', () => pool.acquire());
    const queued = new Promise<string | undefined>((resolve) => {
      requests.run('waiter', () =>
        pool.acquire(null, (error, conn) => {
          resolve(requests.getStore());
          pool.release(conn);
        }),
      );
    });
    requests.run('releaser', () => pool.release(held));
    t.equal(await queued, 'waiter');
  });

  t.test('watches a pool before connect(), and across close() and a new connect()', async (t) => {
    const pool = inMemory({ pool: { min: 0, max: 2 } });
    const { detector, misuse } = watched(t, pool);
    await t.rejects(pool.acquire(), { code: 'ENOTOPEN' }, "mssql's own error before connect()");
    t.match(detector.stats().mssql, { open: 0, waiting: 0, failed: 1 });
    t.equal(pool.release(new Conn(-1)), pool, 'nothing to judge a release by before connect()');
    t.same(misuse, []);
    await pool.connect();
    pool.release(await pool.acquire());
    await pool.close();
    await pool.connect();
    t.teardown(() => pool.close());
    const conn = await pool.acquire();
    t.equal(detector.leases().length, 1, 'the new tarn pool is covered too');
    pool.release(conn);
    pool.release(new Conn(-2)); // FOREIGN
    t.match(detector.stats().mssql, { open: 0, acquired: 2, released: 2 });
    t.same(
      misuse.map((event) => event.kind),
      ['foreign-release'],
    );
    t.ok(misuse[0]!.callSite?.startsWith(site('// FOREIGN')));
  });

  t.test('does not call the release of a connection leased before watch() misuse', async (t) => {
    const pool = await connected({ max: 1 });
    t.teardown(() => pool.close());
    const early = await pool.acquire();
    const { misuse } = watched(t, pool);
    pool.release(early);
    t.same(misuse, []);
  });

  t.test("reports an acquire timeout as exhaustion, in mssql's own error, naming who holds the pool", async (t) => {
    const clock = fakeClock(t);
    const timeout = async (pool: ConnectionPool) => {
      const held = await pool.acquire(); // HOLDER
      const waiting = pool.acquire().then(
        () => undefined,
        (error: Error) => error,
      );
      await clock.tickAsync(500);
      const error = await waiting;
      pool.release(held);
      await pool.close();
      return error;
    };
    const expected = await timeout(await connected({ max: 1, acquireTimeoutMillis: 500 }));
    const pool = await connected({ max: 1, acquireTimeoutMillis: 500 });
    const { detector } = watched(t, pool, 60_000);
    const exhausted: ExhaustedEvent[] = [];
    detector.on('exhausted', (event) => exhausted.push(event));
    const error = await timeout(pool);
    t.equal(error!.constructor, expected!.constructor);
    t.equal(error!.constructor.name, 'TimeoutError', "tarn's");
    t.same({ name: error!.name, message: poolsOwnMessage(error!.message) }, { name: expected!.name, message: expected!.message });
    t.match(error!.message, /^Failed to acquire a connection from the pool: /, "mssql's own words first");
    t.match(
      error!.message,
      /\npoolwatch: pool "mssql" gave up waiting for a connection: 1 of 1 connections leased, \d+ waiting, the longest for .+?\. Held by:\n {2}1 lease from test\/adapters\/mssql\.test\.ts:\d+:\d+/,
    );
    // Saturated at half the pool's own acquireTimeoutMillis, then its timeout.
    t.same(
      exhausted.map((event) => [event.reason, event.longestWaitMs]),
      [
        ['saturated', 250],
        ['timeout', 500],
      ],
    );
    t.match(exhausted[1], { pool: 'mssql', capacity: 1, open: 1 });
    t.ok(exhausted[1]!.holders[0]!.callSite?.startsWith(site('// HOLDER')));
    t.match(detector.stats().mssql, { open: 0, waiting: 0, acquired: 1, released: 1, failed: 1, timeouts: 1 });
  });

  t.test("a Transaction holds one lease from begin() to commit(), taken through mssql's callback acquire", async (t) => {
    const pool = await connected({ max: 2 });
    t.teardown(() => pool.close());
    const { detector } = watched(t, pool);
    const tx = new sql.Transaction(pool);
    await tx.begin();
    t.equal(detector.leases().length, 1);
    t.equal(detector.leases()[0]!.via, 'acquire');
    await tx.commit();
    const rolledBack = pool.transaction();
    await rolledBack.begin();
    await rolledBack.rollback();
    t.match(detector.stats().mssql, { open: 0, acquired: 2, released: 2, misuse: 0 });
  });

  t.test('reports a Transaction begun and never ended as a leak, without its app line (mssql acquires for it from a setImmediate)', async (t) => {
    const clock = fakeClock(t);
    const pool = await connected({ max: 2 });
    const { leaks } = watched(t, pool);
    const tx = new sql.Transaction(pool);
    await tx.begin(); // BEGIN
    await clock.tickAsync(1000);
    t.equal(leaks.length, 1);
    t.match(leaks[0], { kind: 'threshold', pool: 'mssql', heldMs: 1000 });
    // mssql acquires for a transaction from a setImmediate after begin(): no app frame is on that stack.
    t.equal(leaks[0]!.callSite, undefined, 'the app line is not known (see the adapter notes)');
    await tx.rollback();
    await pool.close();
  });
});

/**
 * Swaps the tarn pool for one that forwards everything mssql calls but does not show which
 * connections are leased: how a later mssql or tarn that renamed the field would look.
 */
function hideLeasedList(pool: ConnectionPool): void {
  const tarn = pool.pool!;
  pool.pool = {
    acquire: () => tarn.acquire(),
    release: (resource) => tarn.release(resource),
    destroy: () => tarn.destroy(),
    numFree: () => tarn.numFree(),
    numUsed: () => tarn.numUsed(),
    numPendingCreates: () => tarn.numPendingCreates(),
    numPendingAcquires: () => tarn.numPendingAcquires(),
    get destroyed() {
      return tarn.destroyed;
    },
  };
}
