import t from 'tap';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Pool, PoolConfig, PoolConnection } from 'mariadb';
import mysql2 from 'mysql2';
import { createDetector, watch, unwatch, detectorOf, type LeakReport, type LeaseInfo, type MisuseEvent } from '../../lib/index.js';
import { mariadb as adapter } from '../../lib/adapters/mariadb.js';
import { activitySql, compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { mariadbConfig } from '../helpers/mariadb.js';
import { siteOf } from '../helpers/site.js';
import { distinctive, expectNoSecrets, payloadEvents, probeSecrets } from '../helpers/secrets.js';
import { poolsOwnMessage } from '../helpers/errors.js';
import { mariadbVersions } from '../helpers/versions.js';

type Failure = { class: string; message: string; code: unknown; cause: unknown } | 'resolved';

async function failure(run: () => PromiseLike<unknown>): Promise<Failure> {
  try {
    await run();
    return 'resolved';
  } catch (error) {
    const e = error as Error & { code?: unknown; cause?: { code?: unknown } };
    return { class: e.constructor.name, message: poolsOwnMessage(e.message), code: e.code, cause: e.cause?.code };
  }
}

for (const { label, mariadb: { SqlError, createConnection, createPool } } of mariadbVersions()) t.test(label, async (t) => {
  const db = mariadbConfig(t);
  if (db === undefined) return;
  // mariadb 3.3/3.4 open a pool's connections in the background, each with a 1000 ms connect timeout by
  // default: a fake clock's tickAsync(1000) would fire it mid-handshake. mariadb caps this one at the
  // acquireTimeout (10 s by default), still past any tick while a connection may be opening.
  const newPool = (options: Partial<PoolConfig> = {}): Pool => createPool({ ...db, connectionLimit: 2, connectTimeout: 60_000, ...options });
  // A pool that cannot log in; resolved once it has failed, so its acquire fails the same way every time.
  const failingPool = async (options: Partial<PoolConfig> = {}): Promise<Pool> => {
    const pool = newPool({ password: 'wrong-password', connectionLimit: 1, acquireTimeout: 5000, ...options });
    await new Promise((resolve) => (pool as unknown as NodeJS.EventEmitter).once('error', resolve));
    return pool;
  };

  t.test('a mariadb pool passes the adapter compliance suite', async (t) => {
    compliance<Pool, PoolConnection>(t, {
      defaultName: 'mariadb',
      acquireSite: siteOf(__filename, '// ACQUIRE'),
      create: async (max) => newPool({ connectionLimit: max }),
      close: (pool) => pool.end(),
      acquire: (pool) => pool.getConnection(), // ACQUIRE
      release: (_pool, conn) => conn.release(),
      destroy: (_pool, conn) => conn.destroy(),
      methods: ['getConnection', 'query', 'batch', 'execute', 'importFile'],
      createFailing: () => failingPool(),
      closeFailing: (pool) => pool.end(),
      activity: { ...activitySql.mysql, query: (conn, sql, values) => conn.query(sql, values), reclaims: true },
    });
  });

  t.test('recognises a mariadb promise pool, named mariadb by default, and no mysql2 pool', async (t) => {
    const pool = newPool();
    t.teardown(() => pool.end());
    t.equal(watch(pool), pool);
    t.teardown(() => unwatch(pool));
    const conn = await pool.getConnection();
    t.equal(detectorOf(pool)!.leases()[0]!.pool, 'mariadb');
    t.match(detectorOf(pool)!.stats().mariadb!.capabilities, { library: 'mariadb', version: label.split(' ')[1], degraded: [] }, 'the version of the copy that made the pool');
    await conn.release();
    const other = mysql2.createPool({ ...db, connectionLimit: 1 });
    t.teardown(() => new Promise((resolve) => other.end(resolve)));
    t.notOk(adapter.matches(other), 'not a mysql2 pool');
    t.notOk(adapter.matches(other.promise()), 'not a mysql2 promise pool');
  });

  t.test('end() and close() of a pool connection release it; destroy() after them is misuse', async (t) => {
    const pool = newPool();
    const detector = createDetector({ stacks: 'always' });
    detector.watch(pool);
    t.teardown(() => pool.end());
    t.teardown(() => detector.close());
    const misuse: MisuseEvent[] = [];
    const released: LeaseInfo[] = [];
    detector.on('misuse', (event) => misuse.push(event));
    detector.on('release', (lease) => released.push(lease));
    await (await pool.getConnection()).end();
    await (await pool.getConnection()).close();
    t.equal(released.length, 2);
    t.same(detector.leases(), []);
    t.equal(pool.activeConnections(), 0, 'both went back to the pool');
    const conn = await pool.getConnection();
    await conn.release();
    conn.destroy(); // AFTER
    t.match(misuse, [{ kind: 'double-release', method: 'destroy', callSite: new RegExp(`^${siteOf(__filename, '// AFTER')}`) }]);
  });

  t.test('pool.query, batch and execute hold a lease until they settle, never a false leak', async (t) => {
    const clock = fakeClock(t);
    const pool = newPool();
    const leaks: LeakReport[] = [];
    const seen: LeaseInfo[] = [];
    const detector = createDetector({ leakThresholdMs: 1000 });
    detector.watch(pool);
    detector.on('leak', (report) => leaks.push(report));
    detector.on('acquire', (lease) => seen.push(lease));
    t.teardown(() => pool.end());
    t.teardown(() => detector.close());
    await pool.query('CREATE TABLE IF NOT EXISTS poolwatch_mariadb_batch (n INT)');
    t.teardown(() => pool.query('DROP TABLE IF EXISTS poolwatch_mariadb_batch'));
    await pool.batch('INSERT INTO poolwatch_mariadb_batch VALUES (?)', [[1], [2]]);
    t.same(await pool.execute('SELECT ? AS n', [2]), [{ n: 2 }]);
    await t.rejects(pool.query('SELECT * FROM no_such_table'), { code: 'ER_NO_SUCH_TABLE' });
    t.same(seen.map((lease) => lease.via), ['query', 'batch', 'execute', 'query']);
    t.same(detector.leases(), []);
    await clock.tickAsync(5000);
    t.same(leaks, []);
    t.match(detector.stats().mariadb, { open: 0, acquired: 4, released: 4, leaked: 0 });
  });

  t.test('a pool.query running past the threshold is slow, not a leak, with its via and the app\'s line', async (t) => {
    const clock = fakeClock(t);
    const pool = newPool();
    const leaks: LeaseInfo[] = [];
    const detector = createDetector({ leakThresholdMs: 1000, stacks: 'always' });
    detector.watch(pool);
    detector.on('leak', (report) => t.fail(`no leak: ${report.message}`));
    detector.on('slow', (lease) => leaks.push(lease));
    t.teardown(() => pool.end());
    t.teardown(() => detector.close());
    // Another session holds the lock, so the query waits on the server until it lets go.
    const holder = await createConnection(db);
    t.teardown(() => holder.end());
    await holder.query("SELECT GET_LOCK('poolwatch-slow', 30)");
    const slow = pool.query("SELECT GET_LOCK('poolwatch-slow', 30) AS got"); // SLOW
    await clock.tickAsync(1000);
    t.equal(leaks.length, 1);
    t.match(leaks[0], { pool: 'mariadb', via: 'query', heldMs: 1000, activity: 'query', lastQuery: 'SELECT GET_LOCK(?) AS got' });
    t.ok(leaks[0]!.callSite?.startsWith(siteOf(__filename, '// SLOW')), `callSite ${leaks[0]!.callSite}`);
    await holder.query("SELECT RELEASE_LOCK('poolwatch-slow')");
    t.same(await slow, [{ got: 1 }]);
    t.same(detector.leases(), []);
  });

  t.test('blames each queued caller at its own line with its own context', async (t) => {
    const requests = new AsyncLocalStorage<{ id: string }>();
    const pool = newPool({ connectionLimit: 1 });
    const detector = createDetector({ stacks: 'always', context: () => ({ requestId: requests.getStore()?.id }) });
    detector.watch(pool);
    t.teardown(() => pool.end());
    t.teardown(() => detector.close());
    const seen = new Map<string, LeaseInfo>();
    detector.on('acquire', (lease) => seen.set(String(lease.context.requestId), lease));
    const callers = [
      async () => (await pool.getConnection()).release(), // CALLER 0
      async () => (await pool.getConnection()).end(), // CALLER 1
      () => pool.query('SELECT 1'), // CALLER 2
      () => pool.execute('SELECT 1'), // CALLER 3
    ];
    const after: Array<string | undefined> = [];
    await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        requests.run({ id: `req-${i}` }, async () => {
          await callers[i % callers.length]!();
          after.push(requests.getStore()?.id === `req-${i}` ? undefined : `req-${i} resumed in ${requests.getStore()?.id}`);
        }),
      ),
    );
    t.equal(seen.size, 24);
    for (let i = 0; i < 24; i++) {
      const lease = seen.get(`req-${i}`);
      t.ok(lease?.callSite?.startsWith(siteOf(__filename, `// CALLER ${i % callers.length}`)), `req-${i} blamed at its own line`);
    }
    t.same(after.filter(Boolean), [], 'each caller resumed in its own context');
    t.same(detector.leases(), []);
  });

  t.test('connection failures reach the app as without poolwatch and leave no lease', async (t) => {
    const clock = fakeClock(t);
    // `hold`: a caller holds the only connection first, so the acquire under test times out.
    const cases: Array<[string, () => Promise<Pool>, boolean, (pool: Pool) => PromiseLike<unknown>]> = [
      ['wrong password, getConnection', () => failingPool(), false, (pool) => pool.getConnection()],
      ['wrong password, query', () => failingPool(), false, (pool) => pool.query('SELECT ?', ['x'])],
      ['acquireTimeout, getConnection', async () => newPool({ connectionLimit: 1, acquireTimeout: 3000 }), true, (pool) => pool.getConnection()],
      ['acquireTimeout, batch', async () => newPool({ connectionLimit: 1, acquireTimeout: 3000 }), true, (pool) => pool.batch('SELECT ?', [[1]])],
    ];
    const run = async (pool: Pool, hold: boolean, acquire: (pool: Pool) => PromiseLike<unknown>) => {
      const busy = hold ? await pool.getConnection() : undefined;
      const pending = failure(() => acquire(pool));
      await clock.tickAsync(10_000);
      await busy?.release();
      return pending;
    };
    for (const [name, create, hold, acquire] of cases) {
      const raw = await create();
      t.teardown(() => raw.end());
      const expected = await run(raw, hold, acquire);
      t.not(expected, 'resolved', `${name}: fails without poolwatch`);
      const pool = await create();
      t.teardown(() => pool.end());
      const detector = createDetector();
      detector.watch(pool);
      t.teardown(() => detector.close());
      t.same(await run(pool, hold, acquire), expected, `${name}: same error class, message, code and cause`);
      t.same(detector.leases(), [], `${name}: no lease left behind`);
    }
  });

  t.test('a connection killed by the server while leased: the driver\'s error, and no ghost lease', async (t) => {
    const clock = fakeClock(t);
    const pool = newPool();
    const leaks: LeakReport[] = [];
    const detector = createDetector({ leakThresholdMs: 1000 });
    detector.watch(pool);
    detector.on('leak', (report) => leaks.push(report));
    t.teardown(() => pool.end());
    t.teardown(() => detector.close());
    const killer = await createConnection(db);
    t.teardown(() => killer.end());
    const conn = await pool.getConnection();
    const query = failure(() => conn.query('SELECT SLEEP(30)'));
    await killer.query(`KILL ${conn.threadId}`);
    t.match(await query, { class: SqlError.name, code: /^ER_(CONNECTION_KILLED|SOCKET_UNEXPECTED_CLOSE)$/ });
    await conn.release();
    t.same(detector.leases(), []);
    t.match(detector.stats().mariadb, { open: 0, destroyed: 1, misuse: 0 }, 'the pool discarded it');
    // pool.query on a connection killed mid-query: the lease ends with its promise.
    const next = failure(() => pool.query('SELECT SLEEP(30)'));
    let victim: Array<{ id: number }> = [];
    while (victim.length === 0) victim = await killer.query("SELECT id FROM information_schema.processlist WHERE info = 'SELECT SLEEP(30)'");
    await killer.query(`KILL ${victim[0]!.id}`);
    t.match(await next, { class: SqlError.name });
    t.same(detector.leases(), []);
    t.same(await pool.query('SELECT 1 AS n'), [{ n: 1 }], 'the pool goes on');
    await clock.tickAsync(5000);
    t.same(leaks, []);
  });

  t.test('no report, event or debug line contains the password or query values', async (t) => {
    const clock = fakeClock(t);
    const secret = distinctive('qv-mariadb');
    // Configured by connection string alone: it must not show either.
    const uri = `mariadb://${db.user}:${db.password}@${db.host}:${db.port}/${db.database}`;
    const pool = createPool(`${uri}?connectionLimit=1&acquireTimeout=2000&connectTimeout=60000`);
    const detector = createDetector({ leakThresholdMs: 1000, stacks: 'always' });
    detector.watch(pool);
    const probe = probeSecrets(t, detector);
    t.teardown(() => pool.end());
    t.teardown(() => detector.close());
    const conn = await pool.getConnection();
    t.same(await conn.query('SELECT ? AS value', [secret]), [{ value: secret }]);
    // The only connection is held: this one waits until the pool gives up, and the pool counts as exhausted.
    const queued = pool.getConnection().then(
      () => undefined,
      (error: unknown) => error,
    );
    await clock.tickAsync(1000);
    t.ok(probe.names.includes('leak'), 'the held connection was reported');
    await clock.tickAsync(1000);
    t.match(await queued, { code: 'ER_GET_CONNECTION_TIMEOUT' }, 'the pool gave up on the queued request');
    probe.look();
    await conn.release();
    t.same(await pool.query('SELECT ? AS value', [secret]), [{ value: secret }]);
    await conn.release();
    await (await pool.getConnection()).destroy();
    expectNoSecrets(t, probe, { password: db.password, 'connection string': uri, 'query value': secret }, payloadEvents.filter((name) => name !== 'slow'));
  });
});
