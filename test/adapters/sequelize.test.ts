import t, { type Test } from 'tap';
import { DataTypes, QueryTypes, Sequelize, type ModelStatic, type Model, type Options, type PoolOptions, type Transaction } from 'sequelize';
import { Pool, type FactoryOptions } from 'sequelize-pool';
import { createPool as createGenericPool } from 'generic-pool';
import { Pool as TarnPool } from 'tarn';
import { createDetector, watch, unwatch, detectorOf, type LeakReport, type LeaseInfo, type MisuseEvent } from '../../lib/index.js';
import type { ExhaustedEvent } from '../../lib/exhaustion.js';
import type { Lease } from '../../lib/lease.js';
import { libraryMatcher, originOf, type Trace } from '../../lib/stack.js';
import type { Tracker } from '../../lib/adapters/types.js';
import { sequelize as adapter } from '../../lib/adapters/sequelize.js';
import { activitySql, compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { startPostgres } from '../helpers/postgres.js';
import { mariadbConfig } from '../helpers/mariadb.js';
import { poolsOwnMessage } from '../helpers/errors.js';
import { siteOf } from '../helpers/site.js';
import { captureWarnings } from '../helpers/warnings.js';

type Conn = object;

// The installed sequelize-pool, as its capabilities report it.
const poolVersion = (require('sequelize-pool/package.json') as { version: string }).version;

/** The sequelize-pool Pool a Sequelize instance acquires from (its typings leave it out). */
const poolOf = (sequelize: Sequelize): Pool<Conn> => (sequelize.connectionManager as unknown as { pool: Pool<Conn> }).pool;

type Failure = { class: string; name: string; message: string } | 'resolved';

async function failure(run: () => PromiseLike<unknown>): Promise<Failure> {
  try {
    await run();
    return 'resolved';
  } catch (error) {
    const e = error as Error;
    return { class: e.constructor.name, name: e.name, message: poolsOwnMessage(e.message) };
  }
}

/** One database the suite runs on: how Sequelize reaches it, and how to find and kill a session. */
interface Dialect {
  readonly options: Options;
  /** Finds the id of the session running a query that contains `marker`, from another session. */
  readonly findSql: (marker: string) => string;
  readonly killSql: (id: number) => string;
  readonly sleepSql: (marker: string) => string;
  /** The session's own id. */
  readonly idSql: string;
  /** Whether Sequelize's dialect destroys a connection whose server session ends while it is leased. */
  readonly destroysDropped: boolean;
  readonly activity: (typeof activitySql)[keyof typeof activitySql];
}

// Every test below runs once per database, as a subtest named by it.
function suite(t: Test, dialect: Dialect): void {
  // close() drains the pool with setTimeout polls, and teardowns run last first: a test
  // fakes its clock after registering close(), so the real clock is back when it runs.
  const open = (pool: Partial<PoolOptions> = {}): Sequelize => new Sequelize({ ...dialect.options, logging: false, pool: { max: 2, ...pool } });
  const owners = new WeakMap<Pool<Conn>, Sequelize>();
  const notes = (sequelize: Sequelize): ModelStatic<Model> =>
    sequelize.define('PoolwatchNote', { text: DataTypes.STRING }, { tableName: 'poolwatch_sequelize_notes', timestamps: false });

  t.before(async () => {
    const sequelize = open();
    await notes(sequelize).sync();
    await sequelize.close();
  });
  t.teardown(async () => {
    const sequelize = open();
    await notes(sequelize).drop();
    await sequelize.close();
  });

  t.test('a sequelize-pool Pool driven by Sequelize passes the adapter compliance suite', async (t) => {
    compliance<Pool<Conn>, Conn>(t, {
      defaultName: 'sequelize',
      acquireSite: siteOf(__filename, '// ACQUIRE'),
      create: async (max) => {
        const sequelize = open({ max });
        owners.set(poolOf(sequelize), sequelize);
        return poolOf(sequelize);
      },
      close: (pool) => owners.get(pool)!.close(),
      acquire: (pool) => pool.acquire(), // ACQUIRE
      release: (pool, conn) => pool.release(conn),
      destroy: (pool, conn) => pool.destroy(conn),
      methods: ['acquire', 'release', 'destroy'],
      // The server refuses the password; a long acquire timeout, so the refusal is what fails the acquire.
      createFailing: async () => {
        // A connect timeout the suite's fake clock cannot reach either.
        const dialectOptions = dialect.options.dialect === 'mariadb' ? { dialectOptions: { connectTimeout: 600_000 } } : {};
        const sequelize = new Sequelize({ ...dialect.options, ...dialectOptions, password: 'wrong-password', logging: false, pool: { max: 1, acquire: 600_000 } });
        owners.set(poolOf(sequelize), sequelize);
        return poolOf(sequelize);
      },
      closeFailing: (pool) => owners.get(pool)!.close(),
      // Its connections are the driver's own (a pg Client, a mariadb connection), queried as the dialect does.
      activity: { ...dialect.activity, query: (conn, sql, values) => (conn as { query(sql: string, values?: unknown[]): Promise<unknown> }).query(sql, values), reclaims: false },
    });
  });

  t.test('recognises a sequelize-pool Pool and a Sequelize instance, named sequelize by default', async (t) => {
    const sequelize = open();
    t.teardown(() => sequelize.close());
    const pool = poolOf(sequelize);
    t.ok(adapter.matches(pool) && adapter.matches(sequelize));
    t.equal(adapter.underlying(sequelize), pool, 'a Sequelize instance is watched through its pool');
    t.equal(adapter.underlying(pool), pool);

    t.equal(watch(pool), pool);
    const conn = await pool.acquire();
    t.same(detectorOf(pool)!.leases().map((lease) => [lease.pool, lease.via]), [['sequelize', 'acquire']]);
    t.match(detectorOf(pool)!.stats().sequelize, { capacity: 2, capabilities: { library: 'sequelize-pool', version: poolVersion, degraded: [] } });
    pool.release(conn);
    t.match(detectorOf(pool)!.stats().sequelize, { open: 0, acquired: 1, released: 1, idle: 1 });
    t.ok(unwatch(pool));

    t.equal(watch(sequelize), sequelize);
    t.teardown(() => unwatch(sequelize));
    const seen: LeaseInfo[] = [];
    detectorOf(sequelize)!.on('acquire', (lease) => seen.push(lease));
    t.same(await sequelize.query('SELECT 1 AS one', { type: QueryTypes.SELECT }), [{ one: 1 }]);
    t.same(seen.map((lease) => [lease.pool, lease.via]), [['sequelize', 'getConnection']]);
    t.match(detectorOf(sequelize)!.stats().sequelize, { open: 0, acquired: 1, released: 1, capacity: 2, capabilities: { library: 'sequelize-pool', degraded: [] } });
  });

  t.test('reports a transaction never committed at the app line that opened it', async (t) => {
    const sequelize = open();
    t.teardown(() => sequelize.close());
    const clock = fakeClock(t);
    const detector = createDetector({ leakThresholdMs: 1000 });
    detector.watch(sequelize);
    t.teardown(() => detector.close());
    const leaks: LeakReport[] = [];
    detector.on('leak', (report) => leaks.push(report));
    const Note = notes(sequelize);
    // The most common Sequelize leak: an unmanaged transaction that returns without commit or rollback.
    const addNote = async (text: string) => {
      const transaction = await sequelize.transaction(); // NEVER COMMITTED
      await Note.create({ text }, { transaction });
      return transaction;
    };
    const transaction = await addNote('left open');
    await clock.tickAsync(999);
    t.same(leaks, []);
    await clock.tickAsync(1);
    t.equal(leaks.length, 1);
    t.match(leaks[0], { kind: 'threshold', pool: 'sequelize', via: 'transaction', heldMs: 1000 });
    t.ok(leaks[0]!.callSite?.startsWith(siteOf(__filename, '// NEVER COMMITTED')), `callSite ${leaks[0]!.callSite}`);
    t.match(leaks[0]!.message, /by transaction\(\)/);
    await transaction.rollback();
    t.same(detector.leases(), []);
    t.match(detector.stats().sequelize, { open: 0, leaked: 1, released: 1, misuse: 0 });
  });

  t.test('watching only the Pool (as poolwatch/register does) names the same line, through V8\'s async frames', async (t) => {
    const sequelize = open();
    t.teardown(() => sequelize.close());
    const clock = fakeClock(t);
    const detector = createDetector({ leakThresholdMs: 1000 });
    detector.watch(poolOf(sequelize));
    t.teardown(() => detector.close());
    const leaks: LeakReport[] = [];
    detector.on('leak', (report) => leaks.push(report));
    const addNote = async (text: string) => {
      const transaction = await sequelize.transaction(); // POOL ONLY
      await notes(sequelize).create({ text }, { transaction });
      return transaction;
    };
    const transaction = await addNote('left open');
    await clock.tickAsync(1000);
    t.equal(leaks.length, 1);
    t.match(leaks[0], { kind: 'threshold', pool: 'sequelize', via: 'acquire' });
    t.ok(leaks[0]!.callSite?.startsWith(siteOf(__filename, '// POOL ONLY')), `callSite ${leaks[0]!.callSite}`);
    await transaction.rollback();
    t.same(detector.leases(), []);
  });

  t.test('a Pool\'s short capture reaches past a transaction\'s frames, whatever depth the pool learnt', async (t) => {
    const sequelize = open();
    t.teardown(() => sequelize.close());
    const traces: Array<Trace | null | undefined> = [];
    // A pool that learnt a depth of 2 from Model queries, whose stacks never reach the app.
    const tracker: Tracker = {
      captureDepth: () => 2,
      handing: null,
      begin: (_caller, _via, trace) => {
        traces.push(trace);
        return {} as Lease;
      },
      capture: () => null,
      handover: () => {},
      fail: () => {},
      end: () => {},
      lost: () => {},
      probeConnection: () => {},
      following: false,
      reclaiming: false,
      absorb: () => false,
    };
    const restore = adapter.install(poolOf(sequelize), tracker);
    t.teardown(restore);
    const begin = async () => {
      const transaction = await sequelize.transaction(); // SHORT CAPTURE
      return transaction;
    };
    await (await begin()).rollback();
    t.equal(traces.length, 1);
    const trace = traces[0];
    t.ok(trace, 'the wrapper took the short capture');
    const callSite = trace ? originOf(trace, libraryMatcher(adapter.libraries)).callSite : undefined;
    t.ok(callSite?.startsWith(siteOf(__filename, '// SHORT CAPTURE')), `callSite ${callSite}`);
  });

  t.test('watch(sequelize) patches the instance in place, and unwatch restores every method', async (t) => {
    const sequelize = open();
    t.teardown(() => sequelize.close());
    const manager = sequelize.connectionManager as unknown as Record<string, unknown>;
    const pool = poolOf(sequelize) as unknown as Record<string, unknown>;
    const targets: Array<[Record<string, unknown>, string]> = [
      [sequelize as unknown as Record<string, unknown>, 'transaction'],
      [manager, 'getConnection'],
      [pool, 'acquire'],
      [pool, 'release'],
      [pool, 'destroy'],
    ];
    const methods = () => targets.map(([target, key]) => target[key]);
    const own = () => targets.map(([target, key]) => Object.hasOwn(target, key));
    const before = methods();
    t.same(own(), [false, false, false, false, false]);
    const detector = createDetector();
    t.teardown(() => detector.close());
    detector.watch(sequelize);
    t.same(own(), [true, true, false, true, true], 'the instance, its connection manager and its pool, in place; the pool acquires through the manager');
    const transaction = await sequelize.transaction();
    t.equal(detector.leases().length, 1);
    await transaction.commit();
    t.same(detector.leases(), []);
    t.ok(detector.unwatch(sequelize));
    t.same(own(), [false, false, false, false, false], 'no own method left');
    methods().forEach((method, i) => t.equal(method, before[i], `${targets[i]![1]} is Sequelize's own again`));
    await (await sequelize.transaction()).commit();
    t.equal(detectorOf(sequelize), undefined, 'no longer watched');
  });

  for (const shape of ['Sequelize instance', 'Pool'] as const) {
    t.test(`an acquire that times out is exhaustion naming who holds the pool (${shape})`, async (t) => {
      const sequelize = open({ max: 1, acquire: 3000 });
      t.teardown(() => sequelize.close());
      const clock = fakeClock(t);
      const pool = poolOf(sequelize);
      const detector = createDetector({ leakThresholdMs: 60_000 });
      detector.watch(shape === 'Pool' ? pool : sequelize);
      t.teardown(() => detector.close());
      const exhausted: ExhaustedEvent[] = [];
      detector.on('exhausted', (event) => exhausted.push(event));
      const acquire = shape === 'Pool' ? () => pool.acquire() : () => sequelize.transaction();
      const held = await (shape === 'Pool' ? pool.acquire() : sequelize.transaction()); // HOLDER
      const waiting = failure(acquire);
      await clock.tickAsync(3000);
      const error = await waiting;
      // Sequelize rethrows the pool's TimeoutError (named 'Error') as its own.
      t.match(error, shape === 'Pool' ? { class: 'TimeoutError', message: 'Operation timeout' } : { class: 'ConnectionAcquireTimeoutError', name: 'SequelizeConnectionAcquireTimeoutError', message: 'Operation timeout' });
      const timeout = exhausted.find((event) => event.reason === 'timeout');
      t.match(timeout, { pool: 'sequelize', capacity: 1, open: 1 });
      t.ok(timeout?.holders[0]?.callSite?.startsWith(siteOf(__filename, '// HOLDER')), `holder ${timeout?.holders[0]?.callSite}`);
      t.match(detector.stats().sequelize, { open: 1, failed: 1, timeouts: 1, waiting: 0 });
      if (shape === 'Pool') pool.release(held as Conn);
      else await (held as Transaction).rollback();
      t.same(detector.leases(), []);
    });
  }

  t.test('a timed-out acquire names the holders in the error the app gets', async (t) => {
    const sequelize = open({ max: 1, acquire: 3000 });
    t.teardown(() => sequelize.close());
    const clock = fakeClock(t);
    watch(sequelize);
    t.teardown(() => unwatch(sequelize));
    const held = await sequelize.transaction();
    const waiting = sequelize.transaction().then(
      () => undefined,
      (error: unknown) => error as Error & { poolwatch?: ExhaustedEvent },
    );
    await clock.tickAsync(3000);
    const error = await waiting;
    t.match(error?.message, /^Operation timeout\npoolwatch: pool "sequelize"/);
    t.match(error?.poolwatch, { reason: 'timeout', open: 1 });
    await held.rollback();
  });

  t.test('the pool\'s own destroys (worn out, idle too long) are neither misuse nor a lease\'s end', async (t) => {
    const sequelize = open({ max: 2, maxUses: 2, idle: 1000, evict: 500 });
    t.teardown(() => sequelize.close());
    const clock = fakeClock(t);
    const pool = poolOf(sequelize);
    const disconnected: unknown[] = [];
    sequelize.addHook('beforeDisconnect', (connection) => void disconnected.push(connection));
    const detector = createDetector({ leakThresholdMs: 60_000 });
    detector.watch(pool);
    t.teardown(() => detector.close());
    const misuse: MisuseEvent[] = [];
    detector.on('misuse', (event) => misuse.push(event));
    const first = await pool.acquire();
    pool.release(first);
    t.equal(await pool.acquire(), first, 'the same connection, used a second time');
    pool.release(first);
    t.same(disconnected, [first], 'worn out: the pool destroyed it inside release()');
    const other = await pool.acquire();
    pool.release(other);
    await clock.tickAsync(1500);
    t.ok(disconnected.includes(other), 'idle too long: the pool destroyed it');
    t.same(misuse, []);
    t.match(detector.stats().sequelize, { open: 0, acquired: 3, released: 3, destroyed: 0, misuse: 0 });
  });

  t.test('a connection the server kills mid-query: the same error, no misuse, no lease left', async (t) => {
    const admin = open();
    t.teardown(() => admin.close());
    const killMidQuery = async (sequelize: Sequelize, marker: string) => {
      const sleeping = failure(() => sequelize.query(dialect.sleepSql(marker), { type: QueryTypes.SELECT }));
      let victims: Array<{ id: number }> = [];
      while (victims.length === 0) victims = await admin.query(dialect.findSql(marker), { type: QueryTypes.SELECT });
      await admin.query(dialect.killSql(victims[0]!.id), { type: QueryTypes.RAW });
      const seen = await sleeping;
      // MariaDB's messages carry the connection's id.
      return seen === 'resolved' ? seen : { ...seen, message: seen.message.replace(/conn:\d+/, 'conn:…') };
    };
    const raw = open();
    t.teardown(() => raw.close());
    const expected = await killMidQuery(raw, 'poolwatch-victim-raw');
    t.not(expected, 'resolved');

    const sequelize = open();
    t.teardown(() => sequelize.close());
    const detector = createDetector();
    detector.watch(sequelize);
    t.teardown(() => detector.close());
    t.same(await killMidQuery(sequelize, 'poolwatch-victim'), expected, 'the same error as without poolwatch');
    t.same(detector.leases(), []);
    t.match(detector.stats().sequelize, { open: 0, acquired: 1, misuse: 0 });
  });

  if (dialect.destroysDropped) {
    t.test('a held connection the server drops: Sequelize destroys it, then releases it, and that is one lease, no misuse', async (t) => {
      const admin = open();
      t.teardown(() => admin.close());
      const sequelize = open();
      t.teardown(() => sequelize.close());
      const detector = createDetector();
      detector.watch(sequelize);
      t.teardown(() => detector.close());
      const misuse: MisuseEvent[] = [];
      detector.on('misuse', (event) => misuse.push(event));
      const transaction = await sequelize.transaction();
      const rows = await sequelize.query<{ id: number }>(dialect.idSql, { type: QueryTypes.SELECT, transaction });
      const destroyed = new Promise<LeaseInfo>((resolve) => detector.once('destroy', resolve));
      await admin.query(dialect.killSql(rows[0]!.id), { type: QueryTypes.RAW });
      t.match(await destroyed, { via: 'transaction' }, 'the driver\'s error made Sequelize destroy the held connection');
      t.match(await failure(() => transaction.commit()), { class: 'DatabaseError' }, 'the app sees Sequelize\'s own error');
      t.same(misuse, [], 'the release Sequelize makes after is not misuse');
      t.same(detector.leases(), []);
      t.match(detector.stats().sequelize, { open: 0, acquired: 1, destroyed: 1, released: 0, misuse: 0 });
    });
  }
}

t.test('PostgreSQL', async (t) => {
  const db = await startPostgres(t);
  suite(t, {
    options: { dialect: 'postgres', host: db.host, port: db.port, username: db.user, password: db.password, database: db.database },
    findSql: (marker) => `SELECT pid AS id FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%${marker}*/%' AND pid <> pg_backend_pid()`,
    killSql: (id) => `SELECT pg_terminate_backend(${id})`,
    sleepSql: (marker) => `SELECT pg_sleep(30) /*${marker}*/`,
    idSql: 'SELECT pg_backend_pid() AS id',
    destroysDropped: true,
    activity: activitySql.postgres,
  });
});

t.test('MariaDB', async (t) => {
  const db = mariadbConfig(t);
  if (db === undefined) return;
  suite(t, {
    // A connect timeout the fake clock cannot run out while a connection opens.
    options: { dialect: 'mariadb', host: db.host, port: db.port, username: db.user, password: db.password, database: db.database, dialectOptions: { connectTimeout: 60_000 } },
    findSql: (marker) => `SELECT id FROM information_schema.processlist WHERE info LIKE '%${marker}*/%' AND id <> CONNECTION_ID()`,
    killSql: (id) => `KILL ${id}`,
    sleepSql: (marker) => `SELECT SLEEP(30) /*${marker}*/`,
    idSql: 'SELECT CONNECTION_ID() AS id',
    // Its error handler destroys on socket errors only, not on a server's kill: the connection comes back by release().
    destroysDropped: false,
    activity: activitySql.mysql,
  });
});

t.test('refuses, loudly and leaving it as it was, a Sequelize it cannot watch as one pool', async (t) => {
  const replicated = new Sequelize({
    dialect: 'postgres',
    logging: false,
    replication: { read: [{ host: '127.0.0.1', username: 'reader' }], write: { host: '127.0.0.1', username: 'writer' } },
  });
  t.teardown(() => replicated.close());
  t.throws(() => watch(replicated), { name: 'PoolwatchTypeError', code: 'POOLWATCH_UNSUPPORTED_POOL', message: /read replication.*watch\(sequelize\.connectionManager\.pool\.write/ });
  t.notOk(Object.hasOwn(replicated, 'transaction'), 'nothing patched');
  t.equal(detectorOf(replicated), undefined);
  // Each of its pools is a sequelize-pool Pool, which poolwatch watches as any other.
  const { read, write } = (replicated.connectionManager as unknown as { pool: { read: Pool<Conn>; write: Pool<Conn> } }).pool;
  const detector = createDetector();
  t.teardown(() => detector.close());
  detector.watch(write, { name: 'write' });
  detector.watch(read, { name: 'read' });
  t.same(Object.keys(detector.stats()).sort(), ['read', 'write']);

  // sqlite keeps its connections outside the pool: a stub driver, so no sqlite3 is needed.
  const sqlite = new Sequelize({ dialect: 'sqlite', storage: ':memory:', logging: false, dialectModule: { OPEN_READWRITE: 2, OPEN_CREATE: 4, Database: class {} } });
  t.throws(() => watch(sqlite), { code: 'POOLWATCH_UNSUPPORTED_POOL', message: /sqlite/ });
  t.notOk(Object.hasOwn(sqlite, 'transaction'));
});

t.test('recognises any sequelize-pool Pool, and no other library\'s pools', async (t) => {
  const own = new Pool<Conn>({ create: async () => ({}), destroy: async () => {}, validate: () => true, max: 1, min: 0 });
  const generic = createGenericPool({ create: async () => ({}), destroy: async () => {} }, { max: 1 });
  const tarn = new TarnPool({ create: async () => ({}), destroy: async () => {}, min: 0, max: 1 });
  t.teardown(async () => {
    await generic.drain();
    await tarn.destroy();
  });
  t.ok(adapter.matches(own), 'a Pool made without Sequelize');
  t.notOk(adapter.matches(generic));
  t.notOk(adapter.matches(tarn));
  t.notOk(adapter.matches({ acquire() {}, release() {}, destroy() {} }));
});

// sequelize-pool's public API over a real Pool, without its private fields: as a release
// that renamed them would look.
class LookAlikePool {
  readonly #pool: Pool<Conn>;
  constructor(pool: Pool<Conn>) {
    this.#pool = pool;
  }
  get maxSize() {
    return this.#pool.maxSize;
  }
  get minSize() {
    return this.#pool.minSize;
  }
  get available() {
    return this.#pool.available;
  }
  acquire() {
    return this.#pool.acquire();
  }
  release(conn: Conn) {
    return this.#pool.release(conn);
  }
  destroy(conn: Conn) {
    return this.#pool.destroy(conn);
  }
  drain() {
    return this.#pool.drain();
  }
  destroyAllNow() {
    return this.#pool.destroyAllNow();
  }
}

t.test('a pool without the private fields poolwatch reads degrades loudly, once, and still tracks its leases', async (t) => {
  const clock = fakeClock(t);
  const warnings = captureWarnings(t);
  const factory: FactoryOptions<Conn> = { create: async () => ({}), destroy: async () => {}, validate: () => true, max: 2, min: 0 };
  const detector = createDetector({ leakThresholdMs: 1000 });
  t.teardown(() => detector.close());
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  const pool = new LookAlikePool(new Pool(factory));
  const second = new LookAlikePool(new Pool(factory));
  detector.watch(pool, { name: 'db' });
  detector.watch(second, { name: 'db2' });
  t.match(detector.stats().db, {
    capacity: 2,
    capabilities: {
      library: 'sequelize-pool',
      can: { misuse: false, destroys: false, acquireTimeout: false, capacity: true, idle: true, exhaustion: true },
      degraded: [
        { capability: 'misuse', shape: 'pool._inUseObjects' },
        { capability: 'destroys', shape: 'pool._inUseObjects' },
        { capability: 'acquireTimeout', shape: 'pool.acquireTimeoutMillis' },
      ],
    },
  });
  await new Promise((resolve) => setImmediate(resolve));
  const said = warnings.filter((w) => (w as Error & { code?: string }).code === 'POOLWATCH_DEGRADED');
  t.equal(said.length, 1, 'once for this library version, not per pool');
  t.match(
    said[0]!.message,
    new RegExp(`pool "db" is sequelize-pool ${poolVersion.replace(/\./g, '\\.')}, checked against >=6\\.0\\.0 <9, which lacks what poolwatch reads for: misuse \\(no pool\\._inUseObjects.*destroys \\(no pool\\._inUseObjects.*acquireTimeout \\(no pool\\.acquireTimeoutMillis`),
  );

  const conn = await pool.acquire();
  t.equal(detector.stats().db!.open, 1, 'the lease is tracked');
  await clock.tickAsync(1000);
  t.equal(leaks.length, 1, 'and reported when it leaks');
  pool.release(conn);
  t.match(detector.stats().db, { open: 0, released: 1 });
  await pool.drain();
  await second.drain();
  await pool.destroyAllNow();
});
