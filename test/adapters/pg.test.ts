import t, { type Test } from 'tap';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer, type Socket } from 'node:net';
import type pg from 'pg';
import { createDetector, watch, unwatch, detectorOf, type LeakReport, type LeaseInfo, type MisuseEvent } from '../../lib/index.js';
import { activitySql, compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { endPool as end, startPostgres, type PostgresConfig } from '../helpers/postgres.js';
import { siteOf } from '../helpers/site.js';
import { distinctive, expectNoSecrets, payloadEvents, probeSecrets } from '../helpers/secrets.js';
import { poolsOwnMessage } from '../helpers/errors.js';
import { pgVersions } from '../helpers/versions.js';

type Failure = { class: string; name: string; message: string; code: unknown; cause: unknown };

async function failure(run: () => PromiseLike<unknown>): Promise<Failure | 'resolved'> {
  try {
    await run();
    return 'resolved';
  } catch (error) {
    const e = error as Error & { code?: unknown };
    return { class: e.constructor.name, name: e.name, message: poolsOwnMessage(e.message), code: e.code, cause: (e.cause as Error | undefined)?.message };
  }
}

/** A TCP port that accepts connections and never answers: a server that hangs. */
async function silentServer(t: Test): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

// Each version brings its own pg-pool (PgPool: the pool pg.Pool extends, built here with pg's Client).
for (const { label, pg, PgPool } of pgVersions()) t.test(label, async (t) => {
  const db: PostgresConfig = await startPostgres(t);
  const newPool = (options: pg.PoolConfig = {}) => new pg.Pool({ ...db, ...options });
  // pool.end() resolves before its clients have closed; the server must not stop under them.

  t.test('pg.Pool passes the adapter compliance suite', async (t) => {
    compliance<pg.Pool, pg.PoolClient>(t, {
      defaultName: 'pg',
      acquireSite: siteOf(__filename, '// ACQUIRE'),
      create: async (max) => newPool({ max }),
      close: end,
      acquire: (pool) => pool.connect(), // ACQUIRE
      release: (_pool, client) => client.release(),
      destroy: (_pool, client) => client.release(true),
      methods: ['connect', 'query'],
      createFailing: async () => newPool({ password: 'wrong-password' }),
      closeFailing: end,
      activity: { ...activitySql.postgres, query: (client, sql, values) => client.query(sql, values), reclaims: true },
    });
  });

  t.test('recognises pg.Pool and pg-pool instances, named pg by default', async (t) => {
    for (const pool of [newPool(), new PgPool({ ...db }, pg.Client)]) {
      t.teardown(() => end(pool));
      watch(pool);
      t.teardown(() => unwatch(pool));
      const client = await pool.connect();
      t.same(detectorOf(pool)!.leases().map((lease) => [lease.pool, lease.via]), [['pg', 'connect']]);
      client.release();
      t.match(detectorOf(pool)!.stats().pg, { open: 0, acquired: 1, released: 1 });
    }
  });

  t.test('connect(cb): the done it is given and client.release both end the lease, a truthy argument destroys', async (t) => {
    const pool = newPool({ max: 1 });
    t.teardown(() => end(pool));
    const detector = createDetector({ stacks: 'always' });
    detector.watch(pool);
    t.teardown(() => detector.close());
    const checkout = () =>
      new Promise<[pg.PoolClient, (release?: unknown) => void]>((resolve, reject) =>
        pool.connect((error, client, done) => (error ? reject(error) : resolve([client!, done]))), // CALLBACK
      );
    const [first, done] = await checkout();
    t.ok(detector.leases()[0]!.callSite?.startsWith(siteOf(__filename, '// CALLBACK')));
    done();
    t.same(detector.leases(), [], 'done ended the lease');
    const [second] = await checkout();
    t.equal(second, first, 'the same client, checked out again');
    second.release();
    t.same(detector.leases(), [], 'client.release ended the lease');
    const [third, doneThird] = await checkout();
    doneThird(new Error('broken'));
    t.equal(third, first);
    t.match(detector.stats().pg, { open: 0, acquired: 3, released: 2, destroyed: 1 });
    t.equal(pool.totalCount, 0, 'pg removed the client, as it does unwatched');
  });

  t.test('a second release throws pg\'s own error and is reported as misuse of its lease', async (t) => {
    const pool = newPool();
    t.teardown(() => end(pool));
    const detector = createDetector();
    detector.watch(pool);
    t.teardown(() => detector.close());
    const misuse: MisuseEvent[] = [];
    detector.on('misuse', (event) => misuse.push(event));
    const { client, done } = await new Promise<{ client: pg.PoolClient; done: (e?: unknown) => void }>((resolve) =>
      pool.connect((_error, client, done) => resolve({ client: client!, done })),
    );
    const leaseId = detector.leases()[0]!.leaseId;
    done();
    t.throws(() => client.release(), { constructor: Error, message: 'Release called on client which has already been released to the pool.' });
    t.equal(misuse.length, 1);
    t.match(misuse[0], { kind: 'double-release', pool: 'pg', method: 'release', lease: { leaseId } });

    // Checked out again: the stale done still throws, and the new lease stays open.
    const again = await pool.connect();
    t.equal(again, client);
    t.throws(() => done(), { message: 'Release called on client which has already been released to the pool.' });
    t.equal(detector.leases().length, 1, 'the new lease is untouched');
    again.release();
    t.match(detector.stats().pg, { open: 0, released: 2 });
  });

  t.test('pool.query takes a lease of its own, never a false leak; one running past the threshold is slow, blamed on the caller via query', async (t) => {
    const clock = fakeClock(t);
    const pool = newPool();
    t.teardown(() => end(pool));
    const detector = createDetector({ leakThresholdMs: 1000 });
    detector.watch(pool);
    t.teardown(() => detector.close());
    const leaks: LeakReport[] = [];
    detector.on('leak', (report) => leaks.push(report));
    const slow: LeaseInfo[] = [];
    detector.on('slow', (lease) => slow.push(lease));
    const { rows } = await pool.query('SELECT 1 AS one');
    t.same(rows, [{ one: 1 }]);
    t.match(detector.stats().pg, { open: 0, acquired: 1, released: 1 });
    await t.rejects(pool.query('SELECT nonsense FROM nowhere'), { code: '42P01' });
    t.match(detector.stats().pg, { open: 0, acquired: 2, released: 1, destroyed: 1, failed: 0 });

    // Another session holds an advisory lock, so the query waits on the server until we let it go.
    const locker = new pg.Client(db);
    await locker.connect();
    t.teardown(() => locker.end());
    await locker.query('SELECT pg_advisory_lock(7)');
    const acquired = new Promise((resolve) => detector.once('acquire', resolve));
    const held = pool.query('SELECT pg_advisory_lock(7)'); // QUERY
    await acquired;
    await clock.tickAsync(1000);
    // Its first use was pool.query() too: the client it opened is followed all the same.
    t.equal(leaks.length, 0, 'a query in flight is not a leak');
    t.match(slow, [{ pool: 'pg', via: 'query', activity: 'query', lastQuery: 'SELECT pg_advisory_lock(?)' }]);
    t.ok(slow[0]!.callSite?.startsWith(siteOf(__filename, '// QUERY')), `callSite ${slow[0]!.callSite}`);
    await locker.query('SELECT pg_advisory_unlock(7)');
    await held;
    t.match(detector.stats().pg, { open: 0, leaked: 0 });
  });

  t.test('pool.end() works, and nothing is left open after it', async (t) => {
    const pool = newPool();
    const detector = createDetector();
    detector.watch(pool);
    t.teardown(() => detector.close());
    const client = await pool.connect();
    await pool.query('SELECT 1');
    const ending = pool.end();
    client.release();
    await ending;
    t.ok(pool.ended);
    t.same(detector.leases(), []);
    t.match(detector.stats().pg, { open: 0, waiting: 0, acquired: 2 });
    await t.rejects(pool.connect(), { message: 'Cannot use a pool after calling end on the pool' });
    t.match(detector.stats().pg, { open: 0, waiting: 0, failed: 1 });
  });

  t.test('blames each queued caller at its own line with its own context, and runs callbacks in it', async (t) => {
    const requests = new AsyncLocalStorage<{ id: string }>();
    const pool = newPool({ max: 1 });
    t.teardown(() => end(pool));
    const detector = createDetector({ stacks: 'always', context: () => ({ requestId: requests.getStore()?.id }) });
    detector.watch(pool);
    t.teardown(() => detector.close());
    const leases = new Map<string, LeaseInfo>();
    detector.on('acquire', (lease) => leases.set(String(lease.context.requestId), lease));
    const ranIn: string[] = [];
    const styles = ['callback', 'promise', 'query'] as const;
    const request = (i: number) => {
      const id = `req-${i}`;
      return requests.run({ id }, async () => {
        const style = styles[i % 3]!;
        if (style === 'callback') {
          await new Promise<void>((resolve) =>
            pool.connect((_error, client) => { // PRESSURE-CALLBACK
              ranIn.push(`${id}=${requests.getStore()?.id}`);
              setImmediate(() => (client!.release(), resolve()));
            }),
          );
        } else if (style === 'promise') {
          const client = await pool.connect(); // PRESSURE-PROMISE
          ranIn.push(`${id}=${requests.getStore()?.id}`);
          client.release();
        } else {
          await new Promise<void>((resolve) =>
            pool.query('SELECT 1', () => { // PRESSURE-QUERY
              ranIn.push(`${id}=${requests.getStore()?.id}`);
              resolve();
            }),
          );
        }
      });
    };
    await Promise.all(Array.from({ length: 30 }, (_, i) => request(i)));
    t.same(ranIn.sort(), Array.from({ length: 30 }, (_, i) => `req-${i}=req-${i}`).sort(), 'each callback ran in its caller\'s context');
    t.equal(leases.size, 30, 'each lease carries its own labels');
    for (let i = 0; i < 30; i++) {
      const lease = leases.get(`req-${i}`)!;
      const marker = { callback: '// PRESSURE-CALLBACK', promise: '// PRESSURE-PROMISE', query: '// PRESSURE-QUERY' }[styles[i % 3]!];
      t.ok(lease.callSite?.startsWith(siteOf(__filename, marker)), `req-${i} blamed at ${lease.callSite}`);
    }
    t.match(detector.stats().pg, { open: 0, waiting: 0, acquired: 30 });
  });

  t.test('connection failures reach the app as without poolwatch and leave no lease', async (t) => {
    const clock = fakeClock(t);
    const silent = await silentServer(t);
    // A port nobody listens on: take one, then close it.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const down = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    const cases: Array<[string, pg.PoolConfig, 'promise' | 'callback']> = [
      ['wrong password', { password: 'wrong-password' }, 'promise'],
      ['wrong password, callback', { password: 'wrong-password' }, 'callback'],
      ['server down', { port: down }, 'promise'],
      ['connection timeout', { port: silent, connectionTimeoutMillis: 2000 }, 'callback'],
    ];
    for (const [name, options, style] of cases) {
      const attempt = async (pool: pg.Pool) => {
        t.teardown(() => end(pool));
        const pending = failure(() =>
          style === 'promise'
            ? pool.connect()
            : new Promise((resolve, reject) => pool.connect((error, client) => (error ? reject(error) : resolve(client)))),
        );
        await clock.tickAsync(2000);
        return pending;
      };
      const expected = await attempt(newPool(options));
      t.not(expected, 'resolved', `${name}: fails without poolwatch`);
      const pool = newPool(options);
      const detector = createDetector();
      detector.watch(pool);
      t.teardown(() => detector.close());
      t.same(await attempt(pool), expected, `${name}: the same error`);
      t.match(detector.stats().pg, { open: 0, waiting: 0, failed: 1, acquired: 0 }, `${name}: no lease left`);
    }

    // A queued caller that times out waiting for a busy pool.
    const pool = newPool({ max: 1, connectionTimeoutMillis: 500 });
    t.teardown(() => end(pool));
    const detector = createDetector();
    detector.watch(pool);
    t.teardown(() => detector.close());
    const busy = await pool.connect();
    const queued = failure(() => pool.connect());
    await clock.tickAsync(500);
    t.match(await queued, { class: 'Error', message: 'timeout exceeded when trying to connect' });
    busy.release();
    t.match(detector.stats().pg, { open: 0, waiting: 0, failed: 1, acquired: 1, released: 1 });
  });

  t.test('a backend killed while leased: the app sees pg\'s error, and the release ends the lease', async (t) => {
    const admin = new pg.Client(db);
    await admin.connect();
    t.teardown(() => admin.end());
    const killWhileLeased = async (pool: pg.Pool) => {
      const client = await pool.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      // Stays attached: pg emits a second error when the socket closes, which would otherwise be uncaught.
      const gone = new Promise<Error>((resolve) => client.on('error', resolve));
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      const error = await gone;
      const seen = await failure(() => client.query('SELECT 1'));
      client.release(error);
      return { error: { class: error.constructor.name, message: error.message, code: (error as Error & { code?: string }).code }, seen };
    };
    const raw = newPool();
    t.teardown(() => end(raw));
    const expected = await killWhileLeased(raw);
    t.match(expected, { error: { code: '57P01' }, seen: { message: /not queryable/ } }, 'the server\'s error, then pg refuses the client');

    const pool = newPool();
    const detector = createDetector();
    detector.watch(pool);
    t.teardown(() => detector.close());
    t.same(await killWhileLeased(pool), expected, 'the same error as without poolwatch');
    t.same(detector.leases(), [], 'no ghost lease');
    t.match(detector.stats().pg, { open: 0, destroyed: 1 });
    await pool.end();
    t.same(detector.leases(), []);
  });

  t.test('no report, event or debug line contains the password, connection string or query values', async (t) => {
    const clock = fakeClock(t);
    const secret = distinctive('qv-pg');
    const connectionString = `postgres://${db.user}:${db.password}@${db.host}:${db.port}/${db.database}`;
    const pool = new pg.Pool({ connectionString, max: 1 });
    t.teardown(() => end(pool));
    const detector = createDetector({ leakThresholdMs: 1000, stacks: 'always' });
    detector.watch(pool);
    t.teardown(() => detector.close());
    const probe = probeSecrets(t, detector);
    const locker = new pg.Client(db);
    await locker.connect();
    t.teardown(() => locker.end());
    await locker.query('SELECT pg_advisory_lock(8)');
    const acquired = new Promise((resolve) => detector.once('acquire', resolve));
    const held = pool.query('SELECT pg_advisory_lock(8), $1::text AS value', [secret]);
    await acquired;
    // The only client is held: this one waits in the pool's queue, and the pool counts as exhausted.
    const queued = pool.query('SELECT $1::text AS value', [secret]);
    await clock.tickAsync(1000);
    t.ok(probe.names.includes('slow'), 'the query running past the threshold was said');
    await clock.tickAsync(4000);
    t.ok(probe.names.includes('exhausted'), 'the queued query made the pool exhausted');
    probe.look();
    await locker.query('SELECT pg_advisory_unlock(8)');
    t.equal((await held).rows[0].value, secret);
    t.equal((await queued).rows[0].value, secret);
    // A client left idle after a query with the value: a leak, then a late release, then a second one.
    const client = await pool.connect();
    await client.query(`SELECT $1::text AS value, '${secret}' AS literal`, [secret]);
    await clock.tickAsync(1000);
    t.ok(probe.names.includes('leak'), 'the idle client was reported');
    probe.look();
    client.release();
    t.throws(() => client.release());
    // Destroyed: closed before the server stops at teardown, which a closing client would see as an error.
    const doomed = await pool.connect();
    const closed = new Promise((resolve) => doomed.once('end', resolve));
    doomed.release(true);
    await closed;

    expectNoSecrets(t, probe, { password: db.password, 'connection string': connectionString, 'query value': secret }, payloadEvents);
  });
});
