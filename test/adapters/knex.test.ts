/**
 * knex against real servers: PostgreSQL (client 'pg') and MariaDB (client 'mysql2').
 * The compliance suite runs on the tarn adapter (test/adapters/tarn.test.ts), knex's
 * pool: knex's own acquire is not an app-level API, it cannot destroy one connection,
 * and faking setTimeout under real driver I/O would race tarn's timers. Here: what the
 * app calls (queries, streams, transactions) and where reports say it called them.
 */
import t, { type Test } from 'tap';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Knex } from 'knex';
import { watch, unwatch, detectorOf, lease, type Detector, type LeakReport, type MisuseEvent, type WatchOptions } from '../../lib/index.js';
import { startPostgres } from '../helpers/postgres.js';
import { mariadbConfig } from '../helpers/mariadb.js';
import { siteOf } from '../helpers/site.js';
import { untilShortCapture } from '../helpers/short-capture.js';
import { distinctive, expectNoSecrets, payloadEvents, probeSecrets } from '../helpers/secrets.js';
import { poolsOwnMessage } from '../helpers/errors.js';
import { knexVersions, type KnexFactory } from '../helpers/versions.js';

type Connection = { host: string; port: number; user: string; password: string; database: string };
/** A knex client by name ('pg', 'mysql2'), and the knex version that makes it. */
type Client = { name: string; createKnex: KnexFactory };
const site = (marker: string) => siteOf(__filename, marker);
const outcome = async (run: () => Promise<unknown>) => {
  try {
    return { value: await run() };
  } catch (error) {
    const e = error as Error & { code?: unknown };
    return { class: e.constructor.name, name: e.name, message: poolsOwnMessage(e.message), code: e.code };
  }
};

function open(t: Test, client: Client, connection: Connection, pool = { min: 0, max: 2 }, extra: Partial<Knex.Config> = {}): Knex {
  // knex warns on stderr about every failed acquire; the tests check those failures themselves.
  const db = client.createKnex({ client: client.name, connection, pool, log: { warn: () => {} }, ...extra });
  t.teardown(() => db.destroy());
  return db;
}

function watched(t: Test, db: Knex, options: WatchOptions = {}): { detector: Detector; leaks: LeakReport[] } {
  const leaks: LeakReport[] = [];
  watch(db, { leakThresholdMs: Infinity, stacks: 'always', onLeak: (report) => leaks.push(report), ...options });
  const detector = detectorOf(db)!;
  t.teardown(() => unwatch(db));
  return { detector, leaks };
}

/**
 * Behaviour every knex client must show; `sleep` is the dialect's SQL to hold a connection.
 * `streams`: knex streams from PostgreSQL only with pg-query-stream, not installed here.
 */
function behaviour(t: Test, client: Client, config: () => Promise<Connection | undefined>, sleep: string, streams: boolean) {
  let connection: Connection;
  t.before(async () => {
    const found = await config();
    if (found) connection = found;
  });

  t.test('tracks queries, raw queries and streams, leaving no lease open', async (t) => {
    const db = open(t, client, connection);
    const { detector } = watched(t, db);
    t.same(await db.raw('select 1 as one').then(() => 'ok'), 'ok');
    t.equal((await db.select(db.raw('2 as two'))).length, 1);
    if (streams) {
      const rows: unknown[] = [];
      for await (const row of db.select(db.raw('3 as three')).stream()) rows.push(row);
      t.equal(rows.length, 1);
    }
    t.same(detector.leases(), []);
    const count = streams ? 3 : 2;
    t.match(detector.stats().knex, { open: 0, acquired: count, released: count, misuse: 0, failed: 0 });
  });

  t.test('names the app line of a query held long, a stream, and both transaction forms', async (t) => {
    const db = open(t, client, connection, { min: 0, max: 4 });
    const { detector } = watched(t, db);
    const query = db.raw(sleep); // QUERY
    const running = query.then(() => undefined);
    const stream = streams ? db.select(db.raw('1 as one')).stream() : undefined; // STREAM
    const trx = await db.transaction(); // PROMISE TRX
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const callback = db.transaction(async (trx) => { // CALLBACK TRX
      await trx.raw('select 1');
      await done;
    });
    while (detector.leases().length < (streams ? 4 : 3)) await new Promise((resolve) => setTimeout(resolve, 5));
    const byVia = Object.fromEntries(detector.leases().map((lease) => [lease.via, lease.callSite]));
    t.ok(byVia.query?.startsWith(site('// QUERY')), `query at ${byVia.query}`);
    if (stream) t.ok(byVia.stream?.startsWith(site('// STREAM')), `stream at ${byVia.stream}`);
    const transactions = detector.leases().filter((lease) => lease.via === 'transaction').map((lease) => lease.callSite);
    t.equal(transactions.length, 2);
    t.ok(transactions.some((callSite) => callSite?.startsWith(site('// PROMISE TRX'))), `transactions at ${transactions}`);
    t.ok(transactions.some((callSite) => callSite?.startsWith(site('// CALLBACK TRX'))), `transactions at ${transactions}`);
    if (stream) {
      stream.resume();
      await new Promise((resolve) => stream.on('close', resolve));
    }
    await trx.rollback();
    finish();
    await callback;
    await running;
    t.same(detector.leases(), []);
  });

  t.test("names the line of a transaction opened in the promise form after callback-form ones, under the default stacks", async (t) => {
    const db = open(t, client, connection);
    const { detector } = watched(t, db, { stacks: 'auto' });
    // The pool's first transactions (and queries) are callback-form: what it learns its depths from.
    for (let i = 0; i < 12; i++) await db.transaction(async (trx) => void (await trx.raw('select 1')));
    for (let i = 0; i < 12; i++) await db.raw('select 1');
    const promiseForm = await untilShortCapture(
      async () => {
        const trx = await db.transaction(); // PROMISE FORM
        return { lease: detector.leases()[0], value: trx };
      },
      (trx) => trx.rollback(),
    );
    t.ok(promiseForm.short, 'a transaction had the short capture the default takes');
    t.same(promiseForm.seen.filter((callSite) => !callSite?.startsWith(site('// PROMISE FORM'))), [], 'every one names its line');
    const provided = await untilShortCapture(
      async () => {
        const trx = await db.transactionProvider()(); // PROVIDER
        return { lease: detector.leases()[0], value: trx };
      },
      (trx) => trx.rollback(),
    );
    t.same(provided.seen.filter((callSite) => !callSite?.startsWith(site('// PROVIDER'))), [], 'and a transactionProvider() one');
  });

  t.test('reports a transaction never committed or rolled back, at the line that opened it', async (t) => {
    const db = open(t, client, connection);
    const { detector } = watched(t, db, { leakThresholdMs: 50 });
    const leaks: LeakReport[] = [];
    detector.on('leak', (report) => leaks.push(report));
    const trx = await db.transaction(); // FORGOTTEN
    await trx.raw('select 1');
    while (leaks.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    t.match(leaks[0], { kind: 'threshold', pool: 'knex', thresholdMs: 50 });
    t.ok(leaks[0]!.callSite?.startsWith(site('// FORGOTTEN')), `callSite ${leaks[0]!.callSite}`);
    t.match(leaks[0]!.format(), 'await db.transaction(); // FORGOTTEN');
    await trx.rollback();
    t.same(detector.leases(), []);
  });

  t.test("follows a withUserParams() clone (knex's migrator runs on one): its transaction is reported at its line, and unwatch restores it", async (t) => {
    const db = open(t, client, connection);
    const { detector } = watched(t, db, { leakThresholdMs: 50 });
    const leaks: LeakReport[] = [];
    detector.on('leak', (report) => leaks.push(report));
    const clone = db.withUserParams({ tenant: 'a' });
    const nested = clone.withUserParams({ tenant: 'b' });
    t.same(await nested.raw('select 1 as one').then(() => detector.stats().knex!.acquired), 1);
    const trx = await clone.transaction(); // CLONED
    t.equal(detector.leases().length, 1, 'the clone shares the watched pool');
    while (leaks.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    t.ok(leaks[0]!.callSite?.startsWith(site('// CLONED')), `callSite ${leaks[0]!.callSite}`);
    await trx.rollback();
    t.same(detector.leases(), []);
    unwatch(db);
    t.notOk(Object.hasOwn(clone.client, 'acquireConnection'), "the clone's client has its own methods back");
    t.notOk(Object.hasOwn(nested.client, 'acquireConnection'), "the clone's clone too");
  });

  t.test("shows a transaction's connection idle in its transaction, through the driver, with its last statement and no binding", async (t) => {
    const db = open(t, client, connection);
    const { detector } = watched(t, db);
    const secret = 'knex-binding-Xq81-secret';
    const trx = await db.transaction();
    await trx.raw('select ? as v', [secret]);
    const [lease] = detector.leases();
    t.match(lease, { activity: 'idle-in-transaction', lastQuery: 'select ? as v' });
    t.notOk(JSON.stringify(detector.snapshot()).includes(secret), 'the binding is nowhere');
    await trx.rollback();
    t.same(detector.leases(), []);
  });

  t.test('labels each lease with its own context when many queries queue for one connection', async (t) => {
    const db = open(t, client, connection, { min: 0, max: 1 });
    const requests = new AsyncLocalStorage<{ id: number }>();
    const { detector } = watched(t, db, { context: () => ({ requestId: requests.getStore()?.id }) });
    const mismatches: string[] = [];
    detector.on('acquire', (lease) => {
      // The handover runs in the requester's async context: its labels must be its own.
      if (lease.context.requestId !== requests.getStore()?.id) mismatches.push(`${lease.context.requestId} in ${requests.getStore()?.id}`);
    });
    const seen: unknown[] = [];
    const work = Array.from({ length: 20 }, (_, id) =>
      requests.run({ id }, async () => {
        if (id % 2 === 0) return db.raw('select 1');
        return db.transaction(async (trx) => {
          await trx.raw('select 1');
          // This request holds the only connection: the one open lease must be its own.
          seen.push(detector.leases()[0]?.context.requestId === id);
        });
      }),
    );
    await Promise.all(work);
    t.same(mismatches, []);
    t.same(seen, Array(10).fill(true));
    t.match(detector.stats().knex, { open: 0, acquired: 20, released: 20, waiting: 0 });
  });

  t.test('passes a wrong password error to the app unchanged and keeps no lease', async (t) => {
    const wrong = { ...connection, password: `${connection.password}-wrong` };
    const expected = await outcome(() => open(t, client, wrong).raw('select 1'));
    t.notOk('value' in expected, 'the server refuses it');
    const db = open(t, client, wrong);
    const { detector } = watched(t, db);
    t.same(await outcome(() => db.raw('select 1')), expected);
    t.same(detector.leases(), []);
    t.match(detector.stats().knex, { open: 0, waiting: 0, failed: 1 });
  });

  t.test("passes knex's acquire timeout to the app unchanged and keeps no extra lease", async (t) => {
    const full = async (db: Knex) => {
      const trx = await db.transaction();
      const result = await outcome(() => db.raw('select 1'));
      await trx.rollback();
      return result;
    };
    const expected = await full(open(t, client, connection, { min: 0, max: 1 }, { acquireConnectionTimeout: 100 }));
    t.match(expected, { class: 'KnexTimeoutError', message: /Timeout acquiring a connection\. The pool is probably full\./ });
    const db = open(t, client, connection, { min: 0, max: 1 }, { acquireConnectionTimeout: 100 });
    const { detector } = watched(t, db);
    t.same(await full(db), expected);
    t.same(detector.leases(), []);
    t.match(detector.stats().knex, { open: 0, waiting: 0, acquired: 1, failed: 1 });
  });

  t.test('never shows the password or query bindings in reports, events or debug output', async (t) => {
    const secret = distinctive('qv-knex');
    // Configured by connection string alone: it must not show either.
    const { user, password, host, port, database } = connection;
    const uri = `${client.name === 'pg' ? 'postgres' : 'mysql'}://${user}:${password}@${host}:${port}/${database}`;
    const db = open(t, client, connection, { min: 0, max: 1 }, { acquireConnectionTimeout: 200, connection: uri });
    const { detector } = watched(t, db, { leakThresholdMs: 50 });
    const probe = probeSecrets(t, detector);
    const trx = await db.transaction();
    t.same(await trx.raw('select ? as v', [secret]).then(() => 'ok'), 'ok');
    // The only connection is in the transaction: this query waits until knex gives up, and the pool counts as exhausted.
    t.match(await outcome(() => db.raw('select ? as v', [secret])), { class: 'KnexTimeoutError' });
    t.ok(probe.names.includes('leak'), 'the transaction was reported');
    t.ok(probe.names.includes('exhausted'), 'the queued query made the pool exhausted');
    probe.look();
    await trx.rollback();
    const conn = await db.client.acquireConnection();
    await db.client.releaseConnection(conn);
    await db.client.releaseConnection(conn);
    // No 'destroy': knex's pool (tarn) cannot discard one connection on the app's request.
    expectNoSecrets(t, probe, { password, 'connection string': uri, 'query value': secret }, payloadEvents.filter((name) => name !== 'destroy' && name !== 'slow'));
  });

  t.test('names a release of a connection knex never leased as misuse', async (t) => {
    const db = open(t, client, connection);
    const { detector } = watched(t, db);
    const misuse: string[] = [];
    detector.on('misuse', (event) => misuse.push(event.kind));
    const conn = await db.client.acquireConnection();
    await db.client.releaseConnection(conn);
    t.equal(await db.client.releaseConnection(conn), undefined, 'knex still resolves');
    t.same(misuse, ['double-release']);
  });

  t.test("lease(knex) borrows the driver's connection through knex's client: release, stale release refused, destroy discards it, await using", async (t) => {
    const db = open(t, client, connection, { min: 0, max: 1 });
    const { detector } = watched(t, db);
    const misuse: MisuseEvent[] = [];
    detector.on('misuse', (event) => misuse.push(event));
    const first = await lease(db); // KNEX LEASE
    t.match(detector.leases(), [{ via: 'lease', callSite: new RegExp(`^${site('// KNEX LEASE')}`) }]);
    await first.release();
    const second = await lease(db);
    t.equal(second.connection, first.connection, "max 1: the same driver connection, now the second borrower's");
    await first.release();
    t.match(misuse, [{ kind: 'stale-release' }]);
    t.equal(db.client.pool.numUsed(), 1, "knex's pool still counts it leased");
    await second.destroy();
    t.equal(db.client.pool.numUsed(), 0);
    t.match(detector.stats().knex, { open: 0, released: 1, destroyed: 1, misuse: 1 });
    // The pool opens a new connection in its place.
    const replaced = await (async () => {
      await using third = await lease(db);
      t.equal(detector.leases().length, 1);
      return third.connection;
    })();
    t.not(replaced, first.connection, 'a new connection in place of the destroyed one');
    t.same(await db.raw('select 1 as one').then(() => 'ok'), 'ok');
    t.match(detector.stats().knex, { open: 0, released: 3, destroyed: 1, misuse: 1 });
  });

  t.test('unwatch restores the client methods, and the transaction() of its context', async (t) => {
    const db = open(t, client, connection);
    const own = ['acquireConnection', 'releaseConnection', 'runner', 'transaction', 'queryBuilder', 'raw'].map((key) => Object.hasOwn(db.client, key));
    const context = (db as unknown as { context: { transaction: unknown } }).context;
    const transaction = context.transaction;
    watch(db);
    t.not(context.transaction, transaction);
    t.ok(unwatch(db));
    t.same(['acquireConnection', 'releaseConnection', 'runner', 'transaction', 'queryBuilder', 'raw'].map((key) => Object.hasOwn(db.client, key)), own);
    t.equal(context.transaction, transaction);
    t.equal(detectorOf(db), undefined);
    await db.raw('select 1');
  });
}

for (const { label, createKnex } of knexVersions()) t.test(`${label} with PostgreSQL (pg)`, async (t) => {
  let server: Connection | undefined;
  behaviour(t, { name: 'pg', createKnex }, async () => (server ??= await startPostgres(t)), 'select pg_sleep(0.2)', false);
});

for (const { label, createKnex } of knexVersions()) t.test(`${label} with MariaDB (mysql2)`, async (t) => {
  const config = mariadbConfig(t);
  if (config === undefined) return;
  behaviour(t, { name: 'mysql2', createKnex }, async () => config, 'select sleep(0.2)', true);
});
