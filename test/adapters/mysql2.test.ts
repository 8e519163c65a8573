import t, { type Test } from 'tap';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer } from 'node:net';
import type mysql from 'mysql2';
import type mysqlPromise from 'mysql2/promise';
import { createDetector, watch, unwatch, detectorOf, type CapabilityManifest, type LeakReport, type LeaseInfo, type MisuseEvent } from '../../lib/index.js';
import { activitySql, compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { mariadbConfig, type MariadbConfig } from '../helpers/mariadb.js';
import { siteOf } from '../helpers/site.js';
import { distinctive, expectNoSecrets, payloadEvents, probeSecrets } from '../helpers/secrets.js';
import { poolsOwnMessage } from '../helpers/errors.js';
import { mysql2Versions } from '../helpers/versions.js';
import { captureWarnings } from '../helpers/warnings.js';

type Failure = { class: string; name: string; message: string; code: unknown; errno: unknown; sqlState: unknown };

async function failure(run: () => PromiseLike<unknown>): Promise<Failure | 'resolved'> {
  try {
    await run();
    return 'resolved';
  } catch (error) {
    const e = error as Error & { code?: unknown; errno?: unknown; sqlState?: unknown };
    return { class: e.constructor.name, name: e.name, message: poolsOwnMessage(e.message), code: e.code, errno: e.errno, sqlState: e.sqlState };
  }
}

function getConnection(pool: mysql.Pool): Promise<mysql.PoolConnection> {
  return new Promise((resolve, reject) => pool.getConnection((error, conn) => (error ? reject(error) : resolve(conn)))); // CB-ACQUIRE
}

const end = (pool: mysql.Pool) => new Promise<void>((resolve) => pool.end(() => resolve()));
const coreMethods = ['getConnection', 'query', 'execute', 'releaseConnection', '_removeConnection'];

// The connection has gone from the pool once mysql2 saw it end or fail.
const gone = (conn: mysql.PoolConnection) => new Promise((resolve) => (conn.once('end', resolve), conn.once('error', resolve)));

async function whenSleeping(admin: mysqlPromise.Connection, threadId: number): Promise<void> {
  for (;;) {
    const [rows] = await admin.query('SELECT 1 FROM information_schema.processlist WHERE id = ? AND info LIKE ?', [threadId, 'SELECT SLEEP%']);
    if ((rows as unknown[]).length > 0) return;
  }
}

/**
 * Whether this mysql2 marks a connection leased or given back (`connection._released`, from
 * 3.20): poolwatch reads it to tell a release of a connection the pool never leased, and
 * mysql2 itself to ignore a second release() (before 3.20 it puts the connection back twice).
 */
function marksReleased(version: string): boolean {
  const [, minor] = /^3\.(\d+)\./.exec(version) ?? [];
  if (minor === undefined) throw new Error(`not a mysql2 3 version: ${version}`);
  return Number(minor) >= 20;
}

/** The part of a pool's capabilities that depends on its mysql2 version. */
const misuseCapability = (capabilities: CapabilityManifest) => ({ misuse: capabilities.can.misuse, degraded: capabilities.degraded });

for (const { label, mysql, mysqlPromise } of mysql2Versions()) t.test(`${label} (MariaDB server)`, async (t) => {
  const db = mariadbConfig(t);
  if (db === undefined) return;
  const config = (more: mysql.PoolOptions = {}): mysql.PoolOptions => ({ ...db, ...more });
  const version = label.split(' ')[1]!;
  const released = marksReleased(version);
  // What poolwatch can see of this mysql2's connections once it has been handed one.
  // A detector watching `pool`, closed at the end of `t`, with the misuse events it emits.
  const watchForMisuse = (t: Test, pool: object) => {
    const detector = createDetector();
    detector.watch(pool);
    t.teardown(() => detector.close());
    const misuse: MisuseEvent[] = [];
    detector.on('misuse', (event) => misuse.push(event));
    return { detector, misuse };
  };
  const handedOver = released ? { misuse: true, degraded: [] } : { misuse: false, degraded: [{ capability: 'misuse', shape: 'connection._released' }] };

  // First in the file: POOLWATCH_DEGRADED is said once per process for a library version and capability.
  t.test('says at the first connection handed over what this mysql2 does not show, once, in a POOLWATCH_DEGRADED warning', async (t) => {
    const warnings = captureWarnings(t);
    const pool = mysql.createPool(config({ connectionLimit: 1 }));
    t.teardown(() => end(pool));
    const detector = createDetector();
    detector.watch(pool);
    t.teardown(() => detector.close());
    const second = mysql.createPool(config({ connectionLimit: 1 }));
    t.teardown(() => end(second));
    detector.watch(second, { name: 'second' });
    t.match(detector.stats().mysql2!.capabilities, { library: 'mysql2', version }, 'the version of the copy that made the pool');
    t.same(misuseCapability(detector.stats().mysql2!.capabilities), { misuse: true, degraded: [] }, 'the pool has every shape: a connection shows its own only once handed over');
    (await getConnection(pool)).release();
    (await getConnection(pool)).release();
    (await getConnection(second)).release();
    await new Promise((resolve) => setImmediate(resolve));
    t.same(misuseCapability(detector.stats().mysql2!.capabilities), handedOver);
    t.same(misuseCapability(detector.stats().second!.capabilities), handedOver);
    if (released) {
      t.same(warnings, [], 'nothing to warn of');
      return;
    }
    t.equal(warnings.length, 1, 'one warning, for the first pool: not per pool nor per connection');
    t.match(warnings[0], {
      name: 'Warning',
      code: 'POOLWATCH_DEGRADED',
      message: new RegExp(
        `^poolwatch: pool "mysql2" is mysql2 ${version.replace(/\./g, '\\.')}, checked against >=3\\.\\d+\\.\\d+ <4, which lacks what poolwatch reads for: ` +
          'misuse \\(no connection\\._released: releases of connections the pool never leased are not reported \\(double releases still are\\)\\)\\. Leases are still tracked\\.$',
      ),
    });
  });

  t.test('the callback pool passes the adapter compliance suite', async (t) => {
    compliance<mysql.Pool, mysql.PoolConnection>(t, {
      defaultName: 'mysql2',
      acquireSite: siteOf(__filename, '// CB-ACQUIRE'),
      create: async (max) => mysql.createPool(config({ connectionLimit: max })),
      close: end,
      acquire: getConnection,
      release: (_pool, conn) => conn.release(),
      destroy: (_pool, conn) => conn.destroy(),
      methods: coreMethods,
      // A connect timeout the suite's fake clock cannot reach: the refused password is what fails the acquire.
      createFailing: async () => mysql.createPool(config({ connectionLimit: 1, password: 'wrong-password', connectTimeout: 600_000 })),
      closeFailing: end,
      activity: { ...activitySql.mysql, query: (conn, sql, values) => new Promise((resolve, reject) => conn.query(sql, values ?? [], (error, rows) => (error ? reject(error) : resolve(rows)))), reclaims: true },
    });
  });

  t.test('the promise pool passes the adapter compliance suite', async (t) => {
    compliance<mysqlPromise.Pool, mysqlPromise.PoolConnection>(t, {
      defaultName: 'mysql2',
      acquireSite: siteOf(__filename, '// P-ACQUIRE'),
      create: async (max) => mysqlPromise.createPool(config({ connectionLimit: max })),
      close: (pool) => pool.end(),
      acquire: (pool) => pool.getConnection(), // P-ACQUIRE
      release: (_pool, conn) => conn.release(),
      destroy: (_pool, conn) => conn.destroy(),
      methods: ['getConnection', 'query', 'execute', 'releaseConnection'],
      createFailing: async () => mysqlPromise.createPool(config({ connectionLimit: 1, password: 'wrong-password', connectTimeout: 600_000 })),
      closeFailing: (pool) => pool.end(),
      activity: { ...activitySql.mysql, query: (conn, sql, values) => conn.query(sql, values), reclaims: true },
    });
  });

  t.test('unwatch() of a promise pool restores its core pool methods', async (t) => {
    const pool = mysqlPromise.createPool(config());
    t.teardown(() => pool.end());
    watch(pool);
    t.ok(coreMethods.every((m) => Object.hasOwn(pool.pool, m)), 'the core pool is what is wrapped');
    t.ok(unwatch(pool));
    t.same(coreMethods.filter((m) => Object.hasOwn(pool.pool, m)), []);
  });

  t.test('refuses to watch a core pool and its .promise() wrapper both, since they share one pool', async (t) => {
    const pool = mysql.createPool(config());
    t.teardown(() => end(pool));
    watch(pool);
    t.teardown(() => unwatch(pool));
    t.throws(() => watch(pool.promise()), { code: 'POOLWATCH_ALREADY_WATCHED', message: /already watched through its core pool/ });
    const conn = await pool.promise().getConnection();
    t.equal(detectorOf(pool)!.leases().length, 1, 'watching the core pool already covers every wrapper');
    conn.release();
    t.match(detectorOf(pool)!.stats().mysql2, { acquired: 1, released: 1, misuse: 0 }, 'counted once');
    unwatch(pool);
    const wrapper = pool.promise();
    watch(wrapper);
    t.teardown(() => unwatch(wrapper));
    t.throws(() => watch(pool), { code: 'POOLWATCH_ALREADY_WATCHED' });
    t.throws(() => watch(pool.promise()), { code: 'POOLWATCH_ALREADY_WATCHED' });
  });

  t.test('tracks connections mysql2 hands straight to queued callers, each at its own line with its own context', async (t) => {
    const pool = mysql.createPool(config({ connectionLimit: 1 }));
    t.teardown(() => end(pool));
    const promisePool = pool.promise();
    const requests = new AsyncLocalStorage<{ id: string }>();
    const detector = createDetector({ stacks: 'always', context: () => ({ requestId: requests.getStore()?.id }) });
    detector.watch(pool);
    t.teardown(() => detector.close());
    let acquireEvents = 0;
    pool.on('acquire', () => acquireEvents++);
    const seen: Array<{ i: number; request: string | undefined; lease: LeaseInfo | undefined }> = [];
    const byCallback = (i: number) =>
      new Promise<void>((done) => {
        pool.getConnection((_error, conn) => { // QUEUED-CB
          // Without binding, this runs inside the previous caller's release().
          seen.push({ i, request: requests.getStore()?.id, lease: detector.leases()[0] });
          setImmediate(() => (conn.release(), done()));
        });
      });
    const byPromise = async (i: number) => {
      const conn = await promisePool.getConnection(); // QUEUED-P
      seen.push({ i, request: requests.getStore()?.id, lease: detector.leases()[0] });
      await new Promise((resolve) => setImmediate(resolve));
      conn.release();
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => requests.run({ id: `req-${i}` }, () => (i % 2 === 0 ? byCallback(i) : byPromise(i)))));
    t.equal(seen.length, 20);
    t.ok(acquireEvents < 20, `mysql2 emitted 'acquire' only ${acquireEvents} times for 20 handovers`);
    for (const { i, request, lease } of seen) {
      t.equal(request, `req-${i}`, "the callback ran in its caller's context");
      t.same(lease?.context, { requestId: `req-${i}` }, 'the lease carries its own labels');
      const site = siteOf(__filename, i % 2 === 0 ? '// QUEUED-CB' : '// QUEUED-P');
      t.ok(lease?.callSite?.startsWith(site), `lease ${i} blamed at ${lease?.callSite}, expected ${site}`);
    }
    t.match(detector.stats().mysql2, { open: 0, waiting: 0, acquired: 20, released: 20, misuse: 0 });
  });

  t.test('tracks pool.query() and pool.execute() as leases of their own, with no false leak or misuse', async (t) => {
    const pool = mysql.createPool(config({ connectionLimit: 2 }));
    t.teardown(() => end(pool));
    const detector = createDetector({ leakThresholdMs: 60_000 });
    detector.watch(pool);
    t.teardown(() => detector.close());
    const via: string[] = [];
    detector.on('acquire', (lease) => via.push(lease.via));
    const promisePool = pool.promise();
    const cbQuery = () => new Promise((resolve, reject) => pool.query('SELECT 1 AS one', (e, rows) => (e ? reject(e) : resolve(rows))));
    const cbExecute = () => new Promise((resolve, reject) => pool.execute('SELECT ? AS one', [1], (e, rows) => (e ? reject(e) : resolve(rows))));
    const results = await Promise.all(
      Array.from({ length: 8 }, () => [cbQuery(), cbExecute(), promisePool.query('SELECT 1 AS one'), promisePool.execute('SELECT 1 AS one')]).flat(),
    );
    t.equal(results.length, 32);
    t.same(via.sort(), [...Array(16).fill('execute'), ...Array(16).fill('query')]);
    t.same(detector.leases(), []);
    t.match(detector.stats().mysql2, { open: 0, waiting: 0, acquired: 32, released: 32, failed: 0, leaked: 0, misuse: 0 });
    await t.rejects(promisePool.query('SELECT * FROM no_such_table'), { code: 'ER_NO_SUCH_TABLE' });
    t.match(detector.stats().mysql2, { open: 0, waiting: 0, acquired: 33, released: 33, misuse: 0 });
  });

  t.test('a pool.query() running past the threshold is slow, not a leak, at the line that called it', async (t) => {
    const clock = fakeClock(t);
    const pool = mysql.createPool(config({ connectionLimit: 1 }));
    t.teardown(() => end(pool));
    const leaks: LeakReport[] = [];
    const slow: LeaseInfo[] = [];
    const detector = createDetector({ leakThresholdMs: 1000, stacks: 'always' });
    detector.on('leak', (report) => leaks.push(report));
    detector.on('slow', (lease) => slow.push(lease));
    detector.watch(pool);
    t.teardown(() => detector.close());
    // Another session holds the lock, so the query waits on the server until it lets go.
    const holder = await mysqlPromise.createConnection(db as MariadbConfig);
    t.teardown(() => holder.end());
    await holder.query("SELECT GET_LOCK('poolwatch-slow', 30)");
    const acquired = new Promise((resolve) => detector.once('acquire', resolve));
    const held = new Promise((resolve, reject) => pool.query("SELECT GET_LOCK('poolwatch-slow', 30) AS got", (e, rows) => (e ? reject(e) : resolve(rows)))); // HELD-QUERY
    await acquired;
    await clock.tickAsync(1000);
    t.equal(leaks.length, 0);
    t.equal(slow.length, 1);
    t.match(slow[0], { pool: 'mysql2', via: 'query', activity: 'query', lastQuery: 'SELECT GET_LOCK(?) AS got' });
    t.ok(slow[0]!.callSite?.startsWith(siteOf(__filename, '// HELD-QUERY')), `callSite ${slow[0]!.callSite}`);
    await holder.query("SELECT RELEASE_LOCK('poolwatch-slow')");
    t.same(await held, [{ got: 1 }]);
    t.same(detector.leases(), []);
    t.equal(leaks.length, 0, 'it never leaked');
  });

  t.test('no report, event or debug line contains the password or query values', async (t) => {
    // Another session holds a named lock, so the execute waits on the server until it lets go.
    const lock = distinctive('lock');
    const locker = await mysqlPromise.createConnection(db as MariadbConfig);
    t.teardown(() => locker.end());
    await locker.query('SELECT GET_LOCK(?, 10)', [lock]);
    const clock = fakeClock(t);
    const secret = distinctive('qv-mysql2');
    // Configured by connection string alone: it must not show either.
    const uri = `mysql://${db.user}:${db.password}@${db.host}:${db.port}/${db.database}`;
    const pool = mysqlPromise.createPool({ uri, connectionLimit: 1 });
    t.teardown(() => pool.end());
    const detector = createDetector({ leakThresholdMs: 1000, stacks: 'always' });
    detector.watch(pool);
    t.teardown(() => detector.close());
    const probe = probeSecrets(t, detector);
    const acquired = new Promise((resolve) => detector.once('acquire', resolve));
    const held = pool.execute('SELECT ? AS value, GET_LOCK(?, 10) AS locked', [secret, lock]); // HELD-EXECUTE
    await acquired;
    // The only connection is held: this query waits in the pool's queue, and the pool counts as exhausted.
    const queued = pool.query('SELECT ? AS value', [secret]);
    await clock.tickAsync(1000);
    // Waiting on the lock, the execute is a query in flight: slow, not a leak.
    const report = probe.payloads[probe.names.indexOf('slow')] as LeaseInfo;
    t.ok(report, 'the execute was reported as slow');
    t.equal(report.leaseId, (probe.payloads[0] as LeaseInfo).leaseId);
    t.equal((probe.payloads[0] as LeaseInfo).via, 'execute');
    t.equal(report.lastQuery, 'SELECT ? AS value, GET_LOCK(?) AS locked');
    t.ok(report.callSite?.startsWith(siteOf(__filename, '// HELD-EXECUTE')), `blames the app, not mysql2's promise wrapper: ${report.callSite}`);
    await clock.tickAsync(4000);
    t.ok(probe.names.includes('exhausted'), 'the queued query made the pool exhausted');
    probe.look();
    await locker.query('SELECT RELEASE_LOCK(?)', [lock]);
    const [rows] = await held;
    t.equal((rows as Array<{ value: string }>)[0]!.value, secret);
    const [more] = await queued;
    t.equal((more as Array<{ value: string }>)[0]!.value, secret);
    // A connection held idle past the threshold after a query with the value: a leak, showing its last statement.
    const conn = await pool.getConnection();
    await conn.query('SELECT ? AS value', [secret]);
    await clock.tickAsync(1000);
    probe.look();
    conn.release();
    conn.release();
    (await pool.getConnection()).destroy();

    t.ok(probe.payloads.some((event) => (event as MisuseEvent).kind === 'double-release'), 'a misuse was emitted too');
    expectNoSecrets(t, probe, { password: db.password, 'connection string': uri, 'query value': secret }, payloadEvents);
  });

  t.test('passes connection failures to the app as mysql2 gives them, leaving no lease', async (t) => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closedPort = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));

    const acquire = (pool: mysql.Pool) => failure(() => getConnection(pool));
    const scenarios: Record<string, (watched: boolean) => Promise<Attempt>> = {
      'wrong password, callback pool': (watched) => attempt(watched, mysql.createPool(config({ password: 'wrong-password' })), acquire),
      'wrong password, promise pool': (watched) =>
        attempt(watched, mysql.createPool(config({ password: 'wrong-password' })), (pool) => failure(() => pool.promise().getConnection())),
      'refused port': (watched) => attempt(watched, mysql.createPool(config({ port: closedPort })), acquire),
      'queueLimit reached': (watched) =>
        attempt(watched, mysql.createPool(config({ connectionLimit: 1, queueLimit: 1 })), async (pool) => {
          const holder = await getConnection(pool);
          const queued = getConnection(pool);
          const error = await acquire(pool);
          holder.release();
          (await queued).release();
          return error;
        }),
    };
    type Attempt = { outcome: Failure | 'resolved'; leases: number; stats: object | undefined };
    async function attempt(watched: boolean, pool: mysql.Pool, run: (pool: mysql.Pool) => Promise<Failure | 'resolved'>): Promise<Attempt> {
      t.teardown(() => end(pool));
      const detector = createDetector();
      if (watched) detector.watch(pool);
      t.teardown(() => detector.close());
      const outcome = await run(pool);
      return { outcome, leases: detector.leases().length, stats: watched ? detector.stats().mysql2 : undefined };
    }
    for (const [name, scenario] of Object.entries(scenarios)) {
      const raw = await scenario(false);
      const watched = await scenario(true);
      t.not(raw.outcome, 'resolved', `${name}: it fails`);
      t.same(watched.outcome, raw.outcome, `${name}: the same error`);
      t.equal(watched.leases, 0, `${name}: no lease left`);
      t.match(watched.stats, { open: 0, waiting: 0, failed: 1 }, `${name}: counted as one failed acquire`);
    }
  });

  t.test('ends the lease as a destroy when the server kills a connection mid-query', async (t) => {
    const admin = await mysqlPromise.createConnection(db as MariadbConfig);
    t.teardown(() => admin.end());
    async function killWhileQuerying(pool: mysqlPromise.Pool) {
      const conn = await pool.getConnection();
      const threadId = conn.threadId;
      const removed = gone(conn.connection as unknown as mysql.PoolConnection);
      const running = failure(() => conn.query('SELECT SLEEP(30)'));
      await whenSleeping(admin, threadId);
      await admin.query(`KILL ${threadId}`);
      const error = await running;
      await removed;
      const leases = detectorOf(pool)?.leases().length;
      conn.release();
      const next = await pool.getConnection();
      next.release();
      return { error, leases, discarded: next.threadId !== threadId };
    }
    const raw = mysqlPromise.createPool(config({ connectionLimit: 1 }));
    t.teardown(() => raw.end());
    const expected = await killWhileQuerying(raw);
    t.not(expected.error, 'resolved');
    t.ok(expected.discarded, 'mysql2 discards the killed connection');

    const pool = mysqlPromise.createPool(config({ connectionLimit: 1 }));
    t.teardown(() => pool.end());
    const { detector, misuse } = watchForMisuse(t, pool);
    t.same(await killWhileQuerying(pool), { ...expected, leases: 0 }, "the app sees mysql2's own error; the lease ended with the connection");
    t.same(misuse, [], "the app's release() of the dead connection is not a double release");
    t.match(detector.stats().mysql2, { open: 0, acquired: 2, destroyed: 1, released: 1 });
  });

  t.test('ends the lease when the server kills an idle leased connection', async (t) => {
    const admin = await mysqlPromise.createConnection(db as MariadbConfig);
    t.teardown(() => admin.end());
    const pool = mysql.createPool(config({ connectionLimit: 1 }));
    t.teardown(() => end(pool));
    const detector = createDetector();
    detector.watch(pool);
    t.teardown(() => detector.close());
    const conn = await getConnection(pool);
    const destroyed = new Promise<LeaseInfo>((resolve) => detector.once('destroy', resolve));
    await admin.query(`KILL ${conn.threadId}`);
    t.equal((await destroyed).pool, 'mysql2');
    t.same(detector.leases(), []);
    conn.release();
    t.match(detector.stats().mysql2, { open: 0, destroyed: 1, misuse: 0 });
  });

  t.test('ends the lease on pool.releaseConnection(), and names a later release() a double release', async (t) => {
    const pool = mysql.createPool(config({ connectionLimit: 1 }));
    t.teardown(() => end(pool));
    const { detector, misuse } = watchForMisuse(t, pool);
    const conn = await getConnection(pool);
    pool.releaseConnection(conn);
    t.match(detector.stats().mysql2, { open: 0, released: 1, misuse: 0 });
    conn.release(); // mysql2 lets this through too: it checks only release()'s own flag (from 3.20; none before)
    t.equal(misuse.length, 1);
    t.equal(misuse[0]!.kind, 'double-release');
  });

  t.test('ignores releases of connections leased before watch()', async (t) => {
    const pool = mysql.createPool(config({ connectionLimit: 2 }));
    t.teardown(() => end(pool));
    const early = await getConnection(pool);
    const { detector, misuse } = watchForMisuse(t, pool);
    // mysql2 3.20+ says it is still leased; before, it cannot say, and poolwatch does not guess.
    early.release();
    const later = await getConnection(pool);
    later.release();
    t.same(misuse, []);
    t.match(detector.stats().mysql2, { acquired: 1, released: 1, misuse: 0 });
    t.same(misuseCapability(detector.stats().mysql2!.capabilities), handedOver);
  });

  t.test(`${released ? 'names' : 'cannot name'} a release of another pool's connection a foreign release`, async (t) => {
    const other = mysql.createPool(config({ connectionLimit: 1 }));
    t.teardown(() => end(other));
    const pool = mysql.createPool(config({ connectionLimit: 1 }));
    t.teardown(() => end(pool));
    const { detector, misuse } = watchForMisuse(t, pool);
    // Its first connection shows poolwatch what this mysql2's connections carry.
    (await getConnection(pool)).release();
    const stranger = await getConnection(other);
    pool.releaseConnection(stranger); // FOREIGN
    t.same(misuseCapability(detector.stats().mysql2!.capabilities), handedOver);
    if (released) {
      t.match(misuse, [{ kind: 'foreign-release', pool: 'mysql2', method: 'releaseConnection', lease: undefined, callSite: new RegExp(`^${siteOf(__filename, '// FOREIGN')}`) }]);
      t.equal(misuse.length, 1);
      t.match(detector.stats().mysql2, { open: 0, acquired: 1, released: 1, misuse: 1 });
    } else {
      // Without connection._released, whose connection it is cannot be told: nothing is reported.
      t.same(misuse, []);
      t.match(detector.stats().mysql2, { open: 0, acquired: 1, released: 1, misuse: 0 });
    }
  });
});
