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
import { join } from 'node:path';
import { createDetector, watch, unwatch, detectorOf, type ExhaustedEvent, type LeakReport, type MisuseEvent } from '../../lib/index.js';
import { adapterFor } from '../../lib/adapters/index.js';
import { mssql } from '../../lib/adapters/mssql.js';
import { compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { siteOf } from '../helpers/site.js';
import { poolsOwnMessage } from '../helpers/errors.js';
import { captureWarnings } from '../helpers/warnings.js';

/** A statement tedious would send: mssql answers its caller from `callback`. */
interface TdsRequest {
  readonly sqlTextOrProcedure: string;
  callback(error: Error | undefined, rowCount: number): void;
}

/** Statements a connection holds unanswered (their SQL says `waitfor`), oldest first, until `answerHeld()`. */
const held: TdsRequest[] = [];

/** Answers every held statement: mssql then releases their connections. */
function answerHeld(): void {
  for (const request of held.splice(0)) request.callback(undefined, 0);
}

/** Until `count` statements are held: mssql sends them one setImmediate or more after the app's call. */
async function heldCount(count: number): Promise<void> {
  while (held.length < count) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * An in-memory connection: what tedious would hand over, with just what a Transaction and
 * a Request call. A statement is answered at once with no rows, unless it says `waitfor`.
 */
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
  execSql(request: TdsRequest): void {
    this.#run(request);
  }
  execSqlBatch(request: TdsRequest): void {
    this.#run(request);
  }
  callProcedure(request: TdsRequest): void {
    this.#run(request);
  }
  #run(request: TdsRequest): void {
    if (/waitfor/i.test(request.sqlTextOrProcedure)) held.push(request);
    else setImmediate(() => request.callback(undefined, 0));
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

/** What a query resolves to. */
interface Result {
  readonly recordsets: unknown[];
  readonly rowsAffected: number[];
}

interface Request {
  query(command: string): Promise<Result>;
  query(command: string, callback: (error: Error | null, result?: Result) => void): Request;
  execute(procedure: string): Promise<Result>;
  batch(batch: string): Promise<Result>;
}

interface ConnectionPool {
  acquire(requester?: unknown): Promise<Conn>;
  acquire(requester: unknown, callback: (error: Error | null, conn?: Conn, config?: object) => void): ConnectionPool;
  release(conn: unknown): ConnectionPool;
  connect(): Promise<ConnectionPool>;
  close(): Promise<ConnectionPool>;
  transaction(): Transaction;
  request(): Request;
  query(command: string): Promise<Result>;
  query(strings: TemplateStringsArray, ...values: unknown[]): Promise<Result>;
  batch(batch: string): Promise<Result>;
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
  begin(isolationLevel: number | undefined, callback: (error?: Error) => void): Transaction;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  request(): Request;
}

interface PreparedStatement {
  prepare(statement: string): Promise<PreparedStatement>;
  unprepare(): Promise<void>;
}

interface Mssql {
  ConnectionPool: new (config: object) => ConnectionPool;
  Transaction: new (parent: ConnectionPool) => Transaction;
  PreparedStatement: new (parent: ConnectionPool | Transaction) => PreparedStatement;
  Request: new (parent: ConnectionPool | Transaction) => Request;
}

/** mssql's base classes, whose prototypes hold the methods every driver's objects inherit. */
interface MssqlBase {
  Transaction: { prototype: object };
  Request: { prototype: object };
  PreparedStatement: { prototype: object };
}

const load = createRequire(__filename);
const sql = load('mssql') as Mssql;
const version = (load('mssql/package.json') as { version: string }).version;
const base = load('mssql/lib/base') as MssqlBase;
const baseIndex = Object.keys(load.cache).find((file) => file.endsWith(join('mssql', 'lib', 'base', 'index.js')))!;
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
      /\npoolwatch: pool "mssql" gave up waiting for a connection: 1 of 1 connections leased, \d+ waiting; the request that gave up had waited .+?\. Held by:\n {2}1 lease from test\/adapters\/mssql\.test\.ts:\d+:\d+/,
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
    t.equal(detector.leases()[0]!.via, 'begin');
    await tx.commit();
    const rolledBack = pool.transaction();
    await rolledBack.begin();
    await rolledBack.rollback();
    t.match(detector.stats().mssql, { open: 0, acquired: 2, released: 2, misuse: 0 });
  });

  t.test('reports a Transaction begun and never ended as a leak at its begin() line, however it was made', async (t) => {
    const clock = fakeClock(t);
    const pool = await connected({ max: 2 });
    const { leaks } = watched(t, pool);
    const made = pool.transaction();
    await made.begin(); // BEGIN FACTORY
    const constructed = new sql.Transaction(pool);
    await constructed.begin(); // BEGIN CONSTRUCTED
    await clock.tickAsync(1000);
    t.match(leaks, [
      { kind: 'threshold', pool: 'mssql', heldMs: 1000, via: 'begin' },
      { kind: 'threshold', pool: 'mssql', via: 'begin' },
    ]);
    // mssql acquires for a transaction from a setImmediate after begin(): the line is the one begin() was called on.
    t.ok(leaks[0]!.callSite?.startsWith(site('// BEGIN FACTORY')), { callSite: leaks[0]!.callSite });
    t.ok(leaks[1]!.callSite?.startsWith(site('// BEGIN CONSTRUCTED')), { callSite: leaks[1]!.callSite });
    await made.rollback();
    await constructed.rollback();
    await pool.close();
  });

  t.test("follows the stack policy at begin(): 'always' names its line, 'never' takes no stack and still says begin()", async (t) => {
    const clock = fakeClock(t);
    for (const stacks of ['always', 'never'] as const) {
      const pool = await connected();
      const detector = createDetector({ leakThresholdMs: 1000, stacks });
      detector.watch(pool);
      const leaks: LeakReport[] = [];
      detector.on('leak', (report) => leaks.push(report));
      const tx = new sql.Transaction(pool);
      await tx.begin(); // BEGIN UNDER POLICY
      await clock.tickAsync(1000);
      t.match(leaks, [{ via: 'begin' }], stacks);
      if (stacks === 'always') t.ok(leaks[0]!.callSite?.startsWith(site('// BEGIN UNDER POLICY')), { callSite: leaks[0]!.callSite });
      else {
        t.equal(leaks[0]!.callSite, undefined);
        t.match(leaks[0]!.stack, /no stack was captured \(stacks: 'never'\)/);
      }
      await tx.rollback();
      detector.close();
      await pool.close();
    }
  });

  t.test('reports a statement held on its connection at the line that ran it, and a prepare() never unprepared at its line', async (t) => {
    const clock = fakeClock(t);
    const pool = await connected({ max: 5 });
    const { detector, leaks } = watched(t, pool);
    const queries = [
      pool.request().query("waitfor delay '01:00'"), // QUERY
      new sql.Request(pool).execute('waitfor_orders'), // EXECUTE
      pool.batch("waitfor delay '01:00'"), // BATCH
      pool.query`waitfor delay ${'01:00'}`, // TAGGED
    ];
    await heldCount(4);
    const statement = new sql.PreparedStatement(pool);
    await statement.prepare('select 1'); // PREPARE
    await clock.tickAsync(1000);
    const named = (marker: string) => leaks.find((leak) => leak.callSite?.startsWith(site(marker)));
    t.match(named('// QUERY'), { via: 'query' });
    t.match(named('// EXECUTE'), { via: 'execute' });
    t.match(named('// BATCH'), { via: 'batch' });
    t.match(named('// TAGGED'), { via: 'query' }, "the pool's own query() runs a Request's");
    t.match(named('// PREPARE'), { via: 'prepare' });
    t.equal(leaks.length, 5);
    answerHeld();
    t.equal((await Promise.all(queries)).length, 4);
    await statement.unprepare();
    t.match(detector.stats().mssql, { open: 0, acquired: 5, released: 5, misuse: 0 });
    await pool.close();
  });

  t.test("takes no lease for a Transaction's own requests, and leaves none after a committed transaction or a finished query", async (t) => {
    const clock = fakeClock(t);
    const pool = await connected({ max: 2 });
    const { detector, leaks, misuse } = watched(t, pool);
    const tx = pool.transaction();
    await tx.begin();
    await tx.request().query('select 1');
    await new sql.Request(tx).query('select 2');
    const statement = new sql.PreparedStatement(tx);
    await statement.prepare('select 3');
    await statement.unprepare();
    t.equal(detector.leases().length, 1, "they run on the transaction's connection");
    await tx.commit();
    t.match(await pool.request().query('select 4'), { recordsets: [], rowsAffected: [] });
    await pool.query('select 5');
    await clock.tickAsync(5000);
    t.same(leaks, []);
    t.same(misuse, []);
    t.match(detector.stats().mssql, { open: 0, acquired: 3, released: 3 });
    await pool.close();
  });

  t.test("keeps mssql's errors, return values and callbacks in the calls it names", async (t) => {
    const run = async (pool: ConnectionPool) => {
      const tx = pool.transaction();
      const begun = await new Promise<{ returned: boolean; error: unknown }>((resolve) => {
        const returned = tx.begin(undefined, (error) => resolve({ returned: returned === tx, error }));
      });
      await tx.commit();
      const request = pool.request();
      const queried = await new Promise<{ returned: boolean; error: unknown; result: unknown }>((resolve) => {
        const returned = request.query('select 1', (error, result) => resolve({ returned: returned === request, error, result }));
      });
      let thrown: unknown;
      try {
        pool.transaction().begin(999, () => {});
      } catch (error) {
        thrown = error;
      }
      await pool.close();
      const closed = await Promise.all([pool.request().query('select 1'), new sql.Transaction(pool).begin(), new sql.PreparedStatement(pool).prepare('select 1')].map((p) => p.then(() => undefined, (error: unknown) => error)));
      const described = (error: unknown) => {
        const e = error as (Error & { code?: unknown }) | undefined;
        return e === undefined ? undefined : { class: e.constructor.name, code: e.code, message: e.message };
      };
      return { begun, queried, thrown: described(thrown), closed: closed.map(described) };
    };
    const expected = await run(await connected());
    const pool = await connected();
    const { detector } = watched(t, pool);
    const got = await run(pool);
    t.same(got, expected);
    t.match(got.thrown, { class: 'TransactionError', message: 'Invalid isolation level.' });
    t.match(got.closed, [{ code: 'ECONNCLOSED' }, { code: 'ECONNCLOSED' }, { code: 'ECONNCLOSED' }]);
    t.match(detector.stats().mssql, { open: 0, acquired: 2, released: 2 });
  });

  t.test("patches mssql's prototypes while one of its pools is watched, and unwatch of the last restores them and the pool", async (t) => {
    const clock = fakeClock(t);
    const original = prototypeMethods();
    const unwatched = inMemory();
    const first = await connected();
    const second = await connected();
    const { detector: one } = watched(t, first);
    const { detector: two, leaks } = watched(t, second);
    for (const [method, fn] of Object.entries(prototypeMethods())) t.not(fn, original[method], `${method} is patched`);
    t.ok(one.unwatch(first));
    for (const [method, fn] of Object.entries(prototypeMethods())) t.not(fn, original[method], `${method} is still patched for the other pool`);
    const tx = new sql.Transaction(second);
    await tx.begin(); // STILL NAMED
    await clock.tickAsync(1000);
    t.ok(leaks[0]?.callSite?.startsWith(site('// STILL NAMED')));
    await tx.rollback();
    t.ok(two.unwatch(second));
    t.same(Object.keys(prototypeMethods()), Object.keys(original));
    for (const [method, fn] of Object.entries(prototypeMethods())) t.equal(fn, original[method], `${method} is mssql's own again`);
    for (const pool of [first, second]) {
      t.same(
        ['acquire', 'release', 'request', 'transaction'].map((m) => [m, Object.hasOwn(pool, m), (pool as unknown as Record<string, unknown>)[m] === (unwatched as unknown as Record<string, unknown>)[m]]),
        ['acquire', 'release', 'request', 'transaction'].map((m) => [m, false, true]),
      );
    }
    await first.close();
    await second.close();
  });

  t.test("in a bundle, where mssql is not in require's cache, names the lines of objects the pool's request() and transaction() make", async (t) => {
    const clock = fakeClock(t);
    const original = prototypeMethods();
    const pool = await connected({ max: 3 });
    // How a bundled app looks to poolwatch: mssql's modules are not in require's cache.
    const cached = load.cache[baseIndex]!;
    delete load.cache[baseIndex];
    const { detector, leaks } = watched(t, pool);
    load.cache[baseIndex] = cached;
    for (const [method, fn] of Object.entries(prototypeMethods())) t.equal(fn, original[method], `${method} is left alone`);
    const made = pool.transaction();
    await made.begin(); // BUNDLED BEGIN
    const query = pool.request().query("waitfor delay '01:00'"); // BUNDLED QUERY
    await heldCount(1);
    const constructed = new sql.Transaction(pool);
    await constructed.begin();
    await clock.tickAsync(1000);
    t.equal(leaks.length, 3);
    t.match(
      leaks.find((leak) => leak.callSite?.startsWith(site('// BUNDLED BEGIN'))),
      { via: 'begin' },
    );
    t.match(
      leaks.find((leak) => leak.callSite?.startsWith(site('// BUNDLED QUERY'))),
      { via: 'query' },
    );
    t.match(
      leaks.filter((leak) => leak.callSite === undefined),
      [{ via: 'acquire' }],
      'a Transaction made by its constructor is not named: the gap a bundle leaves',
    );
    answerHeld();
    await query;
    await made.commit();
    await constructed.commit();
    const later = pool.transaction();
    t.ok(detector.unwatch(pool));
    t.notOk(Object.hasOwn(pool, 'request') || Object.hasOwn(pool, 'transaction'), "the pool's factories are its own again");
    // Made while the pool was watched, its own begin() only calls through now.
    await later.begin();
    await later.commit();
    await pool.close();
  });
});

/** The base prototypes' methods poolwatch patches, as they are now. */
function prototypeMethods(): Record<string, unknown> {
  const methods = { Transaction: ['begin'], Request: ['query', 'execute', 'batch', 'bulk'], PreparedStatement: ['prepare'] } as const;
  return Object.fromEntries(
    Object.entries(methods).flatMap(([kind, keys]) =>
      keys.map((key) => [`${kind}.${key}`, Object.getOwnPropertyDescriptor(base[kind as keyof MssqlBase].prototype, key)?.value as unknown]),
    ),
  );
}

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
