/**
 * postgres.js (the `postgres` package) against a real PostgreSQL. The compliance suite runs
 * through `sql.reserve()`/`release()`; there is no destroy of one reserved connection.
 * Here too: transactions (`sql.begin`), which hold a connection until they settle, and
 * queries, which are not leases (see lib/adapters/postgres.ts).
 *
 * Every test runs against the oldest postgres.js the whole suite passes on, 3.4.7, and the
 * newest (test/helpers/versions.ts). Before 3.4.7 a reserve() that opens a new connection
 * never resolves (3.4.6 runs it as a query, an uncaught TypeError); before 3.4.6 a reserve()
 * whose connection fails never rejects; before 3.4.2 a begin whose connection is killed
 * never settles.
 */
import t, { type Test } from 'tap';
import { AsyncLocalStorage } from 'node:async_hooks';
import type postgres from 'postgres';
import createKnex from 'knex';
import { createDetector, watch, unwatch, detectorOf, type Detector, type LeakReport, type LeaseInfo, type MisuseEvent, type WatchOptions } from '../../lib/index.js';
import type { ExhaustedEvent } from '../../lib/exhaustion.js';
import { compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { startPostgres, type PostgresConfig } from '../helpers/postgres.js';
import { siteOf } from '../helpers/site.js';
import { captureWarnings } from '../helpers/warnings.js';
import { poolsOwnMessage } from '../helpers/errors.js';
import { distinctive, expectNoSecrets, payloadEvents, probeSecrets } from '../helpers/secrets.js';
import { postgresVersions } from '../helpers/versions.js';

type Sql = postgres.Sql;
type ReservedSql = postgres.ReservedSql;
type Outcome = { value: unknown } | { error: { class: string; name: string; message: string; code: unknown } };

const site = (marker: string) => siteOf(__filename, marker);

async function outcome(run: () => PromiseLike<unknown>): Promise<Outcome> {
  try {
    return { value: await run() };
  } catch (error) {
    const e = error as Error & { code?: unknown };
    return { error: { class: e.constructor.name, name: e.name, message: poolsOwnMessage(e.message), code: e.code } };
  }
}

/**
 * postgres.js opens a connection from a `setTimeout(connect, 0)` set inside the acquire
 * call; under fake timers it waits for the clock. The compliance suite fakes the clock
 * before it acquires, so its acquire runs the timers due now (sinon's fake setTimeout
 * carries its clock); with real timers this does nothing.
 */
function connecting<T>(acquire: T): T {
  (setTimeout as unknown as { clock?: { tick(ms: number): unknown } }).clock?.tick(0);
  return acquire;
}

// One server for the file, which both versions' tests share.
let db: PostgresConfig;
t.before(async () => {
  db = await startPostgres(t);
});

// Every test below runs once per version, as a subtest named by it (`postgres 3.4.7 (oldest)`).
// `postgres` is that copy's CommonJS build; `importEsm` imports its ES module build.
for (const { label, postgres, importEsm } of postgresVersions()) t.test(label, async (t) => {
  const version = label.split(' ')[1];
  const options = (extra: postgres.Options<{}> = {}): postgres.Options<{}> => ({ ...db, onnotice: () => {}, ...extra });
  /** A new instance closed at teardown: every test gives back what it holds, or end() would wait for it. */
  const open = (t: Test, extra: postgres.Options<{}> = {}): Sql => {
    const sql = postgres(options(extra));
    t.teardown(() => sql.end());
    return sql;
  };
  /** Opens `n` connections with the real clock, so later acquires under a fake one need no timer. */
  const warm = async (sql: Sql, n: number) => {
    const held = await Promise.all(Array.from({ length: n }, () => sql.reserve()));
    for (const reserved of held) reserved.release();
  };
  const watched = (t: Test, sql: Sql, watchOptions: WatchOptions = {}): Detector => {
    const detector = createDetector({ leakThresholdMs: 1000 });
    detector.watch(sql, watchOptions);
    t.teardown(() => detector.close());
    return detector;
  };

  t.test('passes the adapter compliance suite through reserve() and release()', async (t) => {
    compliance<Sql, ReservedSql>(t, {
      defaultName: 'postgres',
      acquireSite: siteOf(__filename, '// ACQUIRE'),
      create: async (max) => postgres(options({ max })),
      close: (sql) => sql.end(),
      acquire: (sql) => connecting(sql.reserve()), // ACQUIRE
      release: (_sql, reserved) => reserved.release(),
      // No destroy: postgres.js cannot discard one reserved connection on the app's request.
      methods: ['reserve', 'begin'],
      connecting: () => connecting(undefined),
      leaseDestroys: false,
      // A connect timeout the fake clock cannot run out while the server refuses the password.
      createFailing: async () => postgres(options({ password: 'wrong-password', connect_timeout: 3600 })),
      // The refused reserve stays in postgres.js's queue, which retries it once from a timer,
      // and end() waits for that retry: end at once instead, on whichever clock is running.
      closeFailing: async (sql) => {
        const ending = sql.end({ timeout: 0 });
        await new Promise((resolve) => setImmediate(resolve));
        connecting(undefined);
        await ending;
      },
    });
  });

  t.test('recognises a postgres.js instance and watches it in place, named postgres, then postgres#2', async (t) => {
    const sql = open(t, { max: 2 });
    const other = open(t, { max: 1 });
    const detector = createDetector();
    t.teardown(() => detector.close());
    t.equal(detector.watch(sql), sql, 'watch returns the same instance');
    detector.watch(other);
    t.equal(detectorOf(sql), detector);
    t.same(Object.keys(detector.stats()), ['postgres', 'postgres#2']);
    const reserved = await sql.reserve();
    t.same(detector.leases().map((lease) => [lease.pool, lease.via]), [['postgres', 'reserve']]);
    t.throws(() => detector.watch(reserved), { code: 'POOLWATCH_UNSUPPORTED_POOL' }, 'a reserved connection is not a pool');
    reserved.release();
    await sql.begin(async (tx) => {
      t.same(detector.leases().map((lease) => [lease.pool, lease.via]), [['postgres', 'begin']]);
      t.throws(() => detector.watch(tx), { code: 'POOLWATCH_UNSUPPORTED_POOL' }, "a transaction's sql is not a pool");
    });
    t.match(detector.stats().postgres, { open: 0, acquired: 2, released: 2, capacity: 2, capabilities: { library: 'postgres' } });

    // A knex instance, also a function with a transaction API, stays knex's.
    const knex = createKnex({ client: 'pg', connection: db, pool: { min: 0, max: 1 } });
    t.teardown(() => knex.destroy());
    detector.watch(knex);
    t.match(detector.stats().knex, { capabilities: { library: 'knex' } });
  });

  t.test('watches an instance made by the ES module build too', async (t) => {
    const esmPostgres = await importEsm();
    t.not(esmPostgres, postgres, 'another copy of postgres.js: src/, not cjs/');
    const sql = esmPostgres(options({ max: 1 }));
    t.teardown(() => sql.end());
    const detector = watched(t, sql);
    await sql.begin((tx) => tx`select 1`);
    const reserved = await sql.reserve();
    t.equal(detector.leases().length, 1);
    reserved.release();
    t.match(detector.stats().postgres, { open: 0, acquired: 2, released: 2, failed: 0 });
  });

  t.test('reports a reserve never released as a leak naming the line that reserved it', async (t) => {
    const sql = open(t, { max: 2 });
    await warm(sql, 1);
    const clock = fakeClock(t);
    const detector = watched(t, sql);
    const leaks: LeakReport[] = [];
    detector.on('leak', (report) => leaks.push(report));
    const reserved = await sql.reserve(); // FORGOTTEN RESERVE
    t.same(await reserved`select 1 as one`, [{ one: 1 }]);
    await clock.tickAsync(999);
    t.equal(leaks.length, 0);
    await clock.tickAsync(1);
    t.equal(leaks.length, 1);
    t.match(leaks[0], { kind: 'threshold', pool: 'postgres', via: 'reserve', heldMs: 1000, waitedMs: 0 });
    t.ok(leaks[0]!.callSite?.startsWith(site('// FORGOTTEN RESERVE')), `callSite ${leaks[0]!.callSite}`);
    t.match(leaks[0]!.format(), 'const reserved = await sql.reserve(); // FORGOTTEN RESERVE');
    reserved.release();
    t.match(detector.stats().postgres, { open: 0, leaked: 1, released: 1 });
  });

  t.test('reports a begin whose callback never settles as a leak naming the sql.begin line', async (t) => {
    const sql = open(t, { max: 2 });
    await warm(sql, 1);
    const clock = fakeClock(t);
    const detector = watched(t, sql);
    const leaks: LeakReport[] = [];
    detector.on('leak', (report) => leaks.push(report));
    const late: number[] = [];
    detector.on('leak-released', (event) => late.push(event.heldMs));
    let finish!: () => void;
    const stuck = new Promise<void>((resolve) => (finish = resolve));
    const started = new Promise((resolve) => detector.once('acquire', resolve));
    const transaction = sql.begin(async (tx) => { // FORGOTTEN BEGIN
      await tx`select 1`;
      await stuck;
      return 'done';
    });
    await started;
    await clock.tickAsync(1000);
    t.equal(leaks.length, 1);
    t.match(leaks[0], { kind: 'threshold', pool: 'postgres', via: 'begin', heldMs: 1000 });
    t.ok(leaks[0]!.callSite?.startsWith(site('// FORGOTTEN BEGIN')), `callSite ${leaks[0]!.callSite}`);
    t.match(leaks[0]!.format(), 'const transaction = sql.begin(async (tx) => { // FORGOTTEN BEGIN');
    await clock.tickAsync(500);
    finish();
    t.equal(await transaction, 'done');
    t.same(late, [1500], 'the late end is reported with its real held time');
    t.same(detector.leases(), []);
  });

  t.test('a begin that commits and one that rolls back close their lease and settle exactly as unwatched', async (t) => {
    const admin = open(t, { max: 1 });
    await admin`create table items (v text)`;
    t.teardown(() => admin`drop table items`.then(() => undefined));
    const boom = new Error('boom');
    const rows = async (tx: postgres.TransactionSql, v: string) => (await tx`insert into items (v) values (${v}) returning v`).map((row) => ({ ...row }));
    // Each case, by an unwatched and a watched instance alike; `tag` keeps their rows apart.
    const cases = (sql: Sql, tag: string, inside: () => void) => [
      () => sql.begin(async (tx) => (inside(), rows(tx, `${tag}-committed`))),
      () => sql.begin('isolation level serializable read write', async (tx) => (inside(), (await tx`show transaction_isolation`).map((row) => ({ ...row })))),
      () => sql.begin((tx) => (inside(), [tx`select 1 as a`, tx`select 2 as b`])).then((results) => results.map((result) => [...result])),
      () =>
        sql.begin(async (tx) => {
          inside();
          await rows(tx, `${tag}-thrown`);
          throw boom;
        }),
      () => sql.begin(async (tx) => (inside(), tx`select nonsense from nowhere`)),
      () =>
        sql.begin(() => {
          inside();
          throw boom;
        }),
    ];
    const run = async (sql: Sql, tag: string, inside: () => void) => {
      const results: Outcome[] = [];
      const thrown: unknown[] = [];
      for (const make of cases(sql, tag, inside)) {
        results.push(await outcome(make));
        await make().then(undefined, (error: unknown) => thrown.push(error));
      }
      return { results, boomKept: thrown.filter((error) => error === boom).length };
    };

    const raw = await run(open(t, { max: 2 }), 'raw', () => {});
    t.equal(raw.boomKept, 2, "the callback's own error is what begin rejects with");

    const sql = open(t, { max: 2 });
    const detector = watched(t, sql);
    const held: Array<Array<string | undefined>> = [];
    const got = await run(sql, 'watched', () => held.push(detector.leases().map((lease) => lease.via)));
    t.same(got.results, JSON.parse(JSON.stringify(raw.results).replaceAll('raw-', 'watched-')), 'the same values and errors as unwatched');
    t.equal(got.boomKept, 2, 'the very same error object, unwrapped');
    t.same(held, Array(12).fill(['begin']), 'each callback ran holding one lease, its own');
    t.match(detector.stats().postgres, { open: 0, waiting: 0, acquired: 12, released: 12, failed: 0, destroyed: 0 });
    const kept = (await admin`select v from items order by v`).map((row) => row.v as string);
    t.same(kept, ['raw-committed', 'raw-committed', 'watched-committed', 'watched-committed'], 'committed rows kept, rolled back ones gone');
  });

  t.test('a begin whose callback is not a function fails as unwatched and opens no lease', async (t) => {
    const bad = (sql: Sql) => outcome(() => (sql.begin as unknown as (options: string) => Promise<unknown>)('read write'));
    const expected = await bad(open(t, { max: 1 }));
    t.match(expected, { error: { class: 'TypeError' } });
    const sql = open(t, { max: 1 });
    const detector = watched(t, sql);
    t.same(await bad(sql), expected);
    t.match(detector.stats().postgres, { open: 0, acquired: 0, failed: 0 });
  });

  t.test('a transaction whose connection is killed ends its lease as destroyed, rejecting as unwatched', async (t) => {
    const admin = open(t, { max: 1 });
    const killed = (sql: Sql) =>
      outcome(() =>
        sql.begin(async (tx) => {
          const [row] = await tx`select pg_backend_pid() as pid`;
          await admin`select pg_terminate_backend(${row!.pid as number})`;
          await new Promise(() => {});
        }),
      );
    const expected = await killed(open(t, { max: 1 }));
    t.match(expected, { error: { code: 'CONNECTION_CLOSED' } });
    const sql = open(t, { max: 1 });
    const detector = watched(t, sql);
    t.same(await killed(sql), expected);
    t.match(detector.stats().postgres, { open: 0, acquired: 1, released: 0, destroyed: 1 });
  });

  t.test('queries are not leases: they run unchanged and open none', async (t) => {
    const sql = open(t, { max: 1 });
    const detector = watched(t, sql);
    const acquired: LeaseInfo[] = [];
    detector.on('acquire', (lease) => acquired.push(lease));
    t.same([...(await sql`select ${1}::int as one`)], [{ one: 1 }]);
    t.same([...(await sql.unsafe('select 2 as two'))], [{ two: 2 }]);
    await t.rejects(sql`select nonsense from nowhere`, { code: '42P01' });
    t.same(acquired, []);
    t.match(detector.stats().postgres, { open: 0, acquired: 0, failed: 0 });
    // A reserve still sees the pool: the instance is watched.
    const reserved = await sql.reserve();
    reserved.release();
    t.equal(acquired.length, 1);
  });

  t.test('a second release is misuse of its own lease, even once the connection serves another', async (t) => {
    const sql = open(t, { max: 1 });
    const detector = watched(t, sql);
    const misuse: MisuseEvent[] = [];
    detector.on('misuse', (event) => misuse.push(event));
    const first = await sql.reserve(); // FIRST
    const firstId = detector.leases()[0]!.leaseId;
    first.release();
    const second = await sql.reserve();
    t.equal(first.release(), undefined, "postgres.js's own result");
    t.equal(misuse.length, 1);
    t.match(misuse[0], { kind: 'double-release', pool: 'postgres', method: 'release', lease: { leaseId: firstId } });
    t.ok(misuse[0]!.lease?.callSite?.startsWith(site('// FIRST')));
    t.equal(detector.leases().length, 1, "the new borrower's lease is untouched");
    second.release();
    t.match(detector.stats().postgres, { open: 0, acquired: 2, released: 2, misuse: 1 });
  });

  t.test('names who holds every connection when a reserve waits (postgres.js has no acquire timeout)', async (t) => {
    const sql = open(t, { max: 1 });
    await warm(sql, 1);
    const clock = fakeClock(t);
    const detector = watched(t, sql, { leakThresholdMs: 60_000 });
    const exhausted: ExhaustedEvent[] = [];
    detector.on('exhausted', (event) => exhausted.push(event));
    const holder = await sql.reserve(); // HOLDER
    const waiting = sql.reserve();
    await clock.tickAsync(4999);
    t.equal(exhausted.length, 0);
    await clock.tickAsync(1);
    t.equal(exhausted.length, 1);
    t.match(exhausted[0], { pool: 'postgres', reason: 'saturated', capacity: 1, open: 1, waiting: 1, longestWaitMs: 5000 });
    t.ok(exhausted[0]!.holders[0]!.callSite?.startsWith(site('// HOLDER')));
    holder.release();
    const next = await waiting;
    t.equal(detector.leases()[0]!.waitedMs, 5000);
    next.release();
  });

  t.test('blames each queued caller at its own line with its own context', async (t) => {
    const requests = new AsyncLocalStorage<{ id: number }>();
    const sql = open(t, { max: 1 });
    const detector = watched(t, sql, { stacks: 'always', context: () => ({ requestId: requests.getStore()?.id }) });
    const mismatches: string[] = [];
    detector.on('acquire', (lease) => {
      if (lease.context.requestId !== requests.getStore()?.id) mismatches.push(`${lease.context.requestId} in ${requests.getStore()?.id}`);
    });
    const owned: boolean[] = [];
    const sites: Array<string | undefined> = [];
    const work = Array.from({ length: 12 }, (_, id) =>
      requests.run({ id }, async () => {
        if (id % 2 === 0) {
          const reserved = await sql.reserve(); // QUEUED RESERVE
          owned.push(detector.leases()[0]?.context.requestId === id);
          sites.push(detector.leases()[0]?.callSite);
          await reserved`select 1`;
          reserved.release();
          return;
        }
        await sql.begin(async (tx) => { // QUEUED BEGIN
          owned.push(detector.leases()[0]?.context.requestId === id);
          sites.push(detector.leases()[0]?.callSite);
          await tx`select 1`;
        });
      }),
    );
    await Promise.all(work);
    t.same(mismatches, []);
    t.same(owned, Array(12).fill(true), "the one open lease is always its holder's own");
    t.equal(sites.filter((s) => s?.startsWith(site('// QUEUED RESERVE'))).length, 6);
    t.equal(sites.filter((s) => s?.startsWith(site('// QUEUED BEGIN'))).length, 6);
    t.match(detector.stats().postgres, { open: 0, waiting: 0, acquired: 12, released: 12 });
  });

  t.test('unwatch restores the instance and stops reporting; a reserve released after it just releases', async (t) => {
    const sql = open(t, { max: 2 });
    const own = { reserve: Object.getOwnPropertyDescriptor(sql, 'reserve'), begin: Object.getOwnPropertyDescriptor(sql, 'begin') };
    watch(sql, { leakThresholdMs: 1000 });
    t.not(sql.reserve, own.reserve!.value, 'reserve is wrapped');
    const reserved = await sql.reserve();
    t.ok(unwatch(sql));
    t.same({ reserve: Object.getOwnPropertyDescriptor(sql, 'reserve'), begin: Object.getOwnPropertyDescriptor(sql, 'begin') }, own);
    t.equal(sql.reserve, own.reserve!.value);
    t.equal(sql.begin, own.begin!.value);
    t.equal(detectorOf(sql), undefined);
    t.equal(reserved.release(), undefined);
    t.same([...(await sql.begin((tx) => tx`select 1 as one`))], [{ one: 1 }]);
  });

  t.test('stats show the pool: its size, library and version, and what poolwatch cannot see', async (t) => {
    const sql = open(t, { max: 3 });
    const detector = watched(t, sql);
    const reserved = await sql.reserve();
    t.same(detector.stats().postgres!.capabilities, {
      library: 'postgres',
      version,
      checked: '>=3.4.0 <4',
      can: { misuse: true, capacity: true, idle: false, acquireTimeout: false, exhaustion: false, destroys: false, handover: false, activity: false, reclaim: false },
      degraded: [],
    });
    t.match(detector.stats().postgres, { open: 1, acquired: 1, capacity: 3, idle: undefined, peakOpen: 1 });
    reserved.release();
  });

  t.test('an instance without options.max degrades loudly and still tracks its leases', async (t) => {
    const warnings = captureWarnings(t);
    const sql = open(t, { max: 1 });
    // As a release that moved its parsed options would look; postgres.js itself reads them from a closure.
    Object.defineProperty(sql, 'options', { value: undefined });
    const detector = watched(t, sql);
    t.match(detector.stats().postgres, { capacity: undefined, capabilities: { can: { capacity: false, misuse: true }, degraded: [{ capability: 'capacity', shape: 'sql.options.max' }] } });
    await new Promise((resolve) => process.nextTick(resolve));
    const said = warnings.filter((w) => (w as Error & { code?: string }).code === 'POOLWATCH_DEGRADED');
    t.equal(said.length, 1);
    t.match(said[0]!.message, /pool "postgres" is postgres [\d.]+, checked against >=3\.4\.0 <4, which lacks what poolwatch reads for: capacity \(no sql\.options\.max/);
    const reserved = await sql.reserve();
    t.equal(detector.stats().postgres!.open, 1);
    reserved.release();
  });

  t.test('never shows the password, the connection string or query values in reports, events or debug output', async (t) => {
    const secret = distinctive('qv-postgres');
    const url = `postgres://${db.user}:${db.password}@${db.host}:${db.port}/${db.database}`;
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    t.teardown(() => sql.end());
    await warm(sql, 1);
    const clock = fakeClock(t);
    const detector = watched(t, sql);
    const probe = probeSecrets(t, detector);
    const reserved = await sql.reserve();
    t.same([...(await reserved`select ${secret}::text as v`)], [{ v: secret }]);
    const waiting = sql.reserve();
    await clock.tickAsync(5000);
    t.ok(probe.names.includes('leak') && probe.names.includes('exhausted'));
    probe.look();
    reserved.release();
    reserved.release();
    (await waiting).release();
    // No 'destroy': a reserved connection cannot be discarded on the app's request.
    expectNoSecrets(t, probe, { password: db.password, 'connection string': url, 'query value': secret }, payloadEvents.filter((name) => name !== 'destroy' && name !== 'slow'));
  });
});
