/**
 * Connections held by design: a pg client that LISTENs (graphile-worker holds one for its
 * whole life, as does any app waiting on NOTIFY) is not idle. Its activity is
 * `listening`, it stays out of leak reports, check() and reclaimAfterMs while it listens,
 * and once UNLISTEN * or DISCARD ALL ends that it is judged as any other lease. The
 * server's own pg_listening_channels() is the oracle for what the connection listens to.
 */
import t, { type Test } from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { createDetector, lease, type Detector, type LeakReport, type LeaseInfo } from '../../lib/index.js';
import { fakeClock } from '../helpers/clock.js';
import { endPool as end, startPostgres, type PostgresConfig } from '../helpers/postgres.js';

// The collector, for a lease() handle dropped while its connection listens.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function collect(done: () => boolean): Promise<void> {
  for (let round = 0; round < 50 && !done(); round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}


/** The channels the server says `client`'s session listens to. */
async function listening(client: pg.PoolClient): Promise<string[]> {
  const { rows } = await client.query<{ channel: string }>('SELECT pg_listening_channels() AS channel');
  return rows.map((row) => row.channel).sort();
}

t.test('pg: a connection that LISTENs', async (t) => {
  const db: PostgresConfig = await startPostgres(t);

  async function watched(t: Test, options: { reclaimAfterMs?: number } = {}) {
    const clock = fakeClock(t);
    const pool = new pg.Pool({ ...db, max: 2 });
    t.teardown(() => end(pool));
    const detector: Detector = createDetector({ leakThresholdMs: 1_000, ...options });
    detector.watch(pool, { name: 'pg' });
    t.teardown(() => detector.close());
    const leaks: LeakReport[] = [];
    detector.on('leak', (report) => leaks.push(report));
    const slow: LeaseInfo[] = [];
    detector.on('slow', (lease) => slow.push(lease));
    return { clock, pool, detector, leaks, slow };
  }

  t.test('as graphile-worker holds it (connect callback, one multi-statement LISTEN): listening, never a leak while it listens', async (t) => {
    const { clock, pool, detector, leaks } = await watched(t);
    // graphile-worker's own order: the pool's first use is this connect(cb).
    const client = await new Promise<pg.PoolClient>((resolve, reject) => pool.connect((error, client) => (error ? reject(error) : resolve(client!))));
    const notified: string[] = [];
    client.on('notification', (message) => notified.push(message.channel));
    await client.query('LISTEN "jobs:insert"; LISTEN "worker:migrate";');
    t.same(await listening(client), ['jobs:insert', 'worker:migrate'], 'the server says it listens');
    t.match(detector.leases(), [{ activity: 'listening', lastQuery: 'SELECT pg_listening_channels() AS channel' }]);
    t.match(detector.stats().pg!.activity, { idle: 0, query: 0, 'idle-in-transaction': 0, listening: 1 });

    await clock.tickAsync(1_500);
    t.same(leaks, [], 'no leak past the threshold while it listens');
    t.same(detector.check(), [], 'nor in check()');
    await clock.tickAsync(60_000);
    t.same(leaks, [], 'nor a minute later');

    // A notification reaches it as without poolwatch; its arrival changes nothing.
    const arrived = new Promise((resolve) => client.once('notification', resolve));
    await pool.query(`NOTIFY "jobs:insert", 'x'`);
    await arrived;
    t.same(notified, ['jobs:insert']);
    t.match(detector.leases().filter((lease) => lease.via === 'connect'), [{ activity: 'listening' }]);

    // graphile-worker's release: UNLISTEN, then the client goes back at once.
    await client.query('UNLISTEN *');
    t.same(await listening(client), [], 'the server says it listens no more');
    client.release();
    await clock.tickAsync(1_000);
    t.same(leaks, [], 'given back as soon as it stopped listening: no report');
    t.match(detector.stats().pg, { open: 0, leaked: 0 });
  });

  t.test('once UNLISTEN * ends it, an idle connection past its threshold is a leak at once', async (t) => {
    const { clock, pool, detector, leaks } = await watched(t);
    const client = await pool.connect();
    await client.query('LISTEN jobs');
    await clock.tickAsync(1_500);
    t.same(leaks, []);
    await client.query('UNLISTEN *');
    t.match(detector.leases(), [{ activity: 'idle' }]);
    await clock.tickAsync(1);
    t.match(leaks, [{ kind: 'threshold', activity: 'idle', lastQuery: 'UNLISTEN *' }]);
    client.release();
  });

  t.test('UNLISTEN of one channel keeps it listening to the others; DISCARD ALL ends it', async (t) => {
    const { clock, pool, detector, leaks } = await watched(t);
    const client = await pool.connect();
    await client.query('LISTEN "Mixed Case"');
    await client.query('LISTEN plain');
    await client.query('UNLISTEN PLAIN');
    t.same(await listening(client), ['Mixed Case']);
    t.match(detector.leases(), [{ activity: 'listening' }], 'still listening to one channel');
    await client.query('UNLISTEN "mixed case"');
    t.same(await listening(client), ['Mixed Case'], 'a quoted name is exact');
    t.match(detector.leases(), [{ activity: 'listening' }]);
    await client.query('UNLISTEN "Mixed Case"');
    t.same(await listening(client), []);
    t.match(detector.leases(), [{ activity: 'idle' }], 'the last channel gone, it is idle');
    await client.query('LISTEN again');
    t.match(detector.leases(), [{ activity: 'listening' }]);
    await clock.tickAsync(1_500);
    t.same(leaks, []);
    await client.query('DISCARD ALL');
    t.same(await listening(client), []);
    await clock.tickAsync(1);
    t.match(leaks, [{ kind: 'threshold', activity: 'idle' }]);
    client.release();
  });

  t.test('a listening connection left in an open transaction is a leak, said as such', async (t) => {
    const { clock, pool, leaks } = await watched(t);
    const client = await pool.connect();
    await client.query('LISTEN jobs');
    await client.query('BEGIN');
    await client.query('SELECT 1');
    await clock.tickAsync(1_000);
    t.match(leaks, [{ kind: 'threshold', activity: 'idle-in-transaction' }]);
    await client.query('ROLLBACK');
    client.release();
  });

  t.test('a query past the threshold on a listening connection is slow, then it listens again', async (t) => {
    const { clock, pool, detector, leaks, slow } = await watched(t);
    // Another session holds an advisory lock, so the query waits on the server until it is let go.
    const locker = new pg.Client(db);
    await locker.connect();
    t.teardown(() => locker.end());
    await locker.query('SELECT pg_advisory_lock(11)');
    const client = await pool.connect();
    await client.query('LISTEN jobs');
    const running = client.query('SELECT pg_advisory_lock(11)');
    await clock.tickAsync(1_000);
    t.match(slow, [{ activity: 'query' }]);
    await locker.query('SELECT pg_advisory_unlock(11)');
    await running;
    await client.query('SELECT pg_advisory_unlock(11)');
    await clock.tickAsync(1);
    t.same(leaks, [], 'listening again once the query ended');
    t.match(detector.leases(), [{ activity: 'listening' }]);
    await clock.tickAsync(5_000);
    t.same(leaks, []);
    await client.query('UNLISTEN jobs');
    await clock.tickAsync(1);
    t.equal(leaks.length, 1);
    client.release();
  });

  t.test('a pool run dry by busy holders beside a listener is saturated, not leaking', async (t) => {
    const clock = fakeClock(t);
    const pool = new pg.Pool({ ...db, max: 2, connectionTimeoutMillis: 3_000 });
    t.teardown(() => end(pool));
    const detector = createDetector({ leakThresholdMs: 60_000 });
    detector.watch(pool, { name: 'pg' });
    t.teardown(() => detector.close());
    const locker = new pg.Client(db);
    await locker.connect();
    t.teardown(() => locker.end());
    await locker.query('SELECT pg_advisory_lock(12)');
    const listener = await pool.connect();
    await listener.query('LISTEN jobs');
    const worker = await pool.connect();
    const working = worker.query('SELECT pg_advisory_lock(12)');
    await clock.tickAsync(5_000);
    const refused = pool.connect().then(
      () => undefined,
      (error: unknown) => error as Error & { poolwatch?: { verdict?: string } },
    );
    await clock.tickAsync(3_000);
    const failure = await refused;
    t.match(failure, { message: /timeout exceeded when trying to connect/ });
    t.equal(failure?.poolwatch?.verdict, 'saturation', 'the listener held for long is not a stuck holder');
    await locker.query('SELECT pg_advisory_unlock(12)');
    await working;
    await worker.query('SELECT pg_advisory_unlock(12)');
    worker.release();
    listener.release();
  });

  t.test("a lease() handle dropped while its connection listens is reported, and with reclaimAfterMs taken back only once it stops", async (t) => {
    const pool = new pg.Pool({ ...db, max: 1 });
    t.teardown(() => end(pool));
    const detector = createDetector({ leakThresholdMs: 3_600_000, reclaimAfterMs: 3_600_000 });
    detector.watch(pool, { name: 'pg' });
    t.teardown(() => detector.close());
    const leaks: LeakReport[] = [];
    detector.on('leak', (report) => leaks.push(report));
    // The app keeps the client (its notification listener would), not the handle.
    const client = await (async () => {
      const handle = await lease(pool);
      await handle.connection.query('LISTEN jobs');
      return handle.connection;
    })();
    await collect(() => leaks.length > 0);
    t.match(leaks, [{ kind: 'collected', activity: 'listening' }]);
    t.match(detector.stats().pg, { open: 1, destroyed: 0 }, 'not taken back while it listens');
    t.same(await listening(client), ['jobs'], 'its session is untouched');
    await client.query('UNLISTEN *');
    await new Promise((resolve) => setImmediate(resolve));
    t.match(detector.stats().pg, { open: 0, destroyed: 1 }, 'taken back once it stopped listening');
  });

  t.test('reclaimAfterMs never takes back a listening connection', async (t) => {
    const { clock, pool, detector, leaks } = await watched(t, { reclaimAfterMs: 5_000 });
    const client = await pool.connect();
    await client.query('LISTEN jobs');
    await clock.tickAsync(8_000);
    t.same(leaks, []);
    t.match(detector.stats().pg, { open: 1, destroyed: 0 });
    t.same(await listening(client), ['jobs'], 'still its session');
    client.release();
  });
});
