import t, { type Test } from 'tap';
import sinon from 'sinon';
import pg from 'pg';
import { createPool, type Pool } from 'generic-pool';
import { Registry, register } from 'prom-client';
import { createDetector, type Detector } from '../../lib/index.js';
import { registerPrometheusMetrics } from '../../lib/integrations/prometheus.js';
import { fakeClock } from '../helpers/clock.js';
import { startPostgres } from '../helpers/postgres.js';

type Conn = { id: number };
let ids = 0;
const newPool = (options: { max: number; acquireTimeoutMillis?: number }): Pool<Conn> =>
  createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, options);

type Samples = Map<string, number>;

/**
 * The samples of an exposition text, keyed `name{label="value",…}` with labels in the
 * order prom-client writes them.
 */
async function scrape(registry: Registry): Promise<Samples> {
  const samples: Samples = new Map();
  for (const line of (await registry.metrics()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** The samples named `name` (with any labels), e.g. `{ 'pool="main",state="used"': 2 }`, label prefixes shortened. */
function family(samples: Samples, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of samples) {
    const match = /^([^{]+)(?:\{(.*)\})?$/.exec(key)!;
    if (match[1] !== name) continue;
    const labels = (match[2] ?? '').replace(/db_client_connection_pool_name=/g, 'pool=').replace(/db_client_connection_state=/g, 'state=').replace(/poolwatch_leak_kind=/g, 'kind=');
    out[labels] = value;
  }
  return out;
}

function setup(t: Test, options: { max: number; acquireTimeoutMillis?: number }) {
  const clock = fakeClock(t);
  const registry = new Registry();
  const detector = createDetector({ leakThresholdMs: 5000 });
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(options), { name: 'main' });
  t.teardown(async () => {
    await pool.drain();
    await pool.clear();
  });
  return { clock, registry, detector, pool };
}

t.test('exposes used and idle connections, the maximum and pending requests as the pool fills', async (t) => {
  const { registry, detector, pool } = setup(t, { max: 2 });
  registerPrometheusMetrics(detector, { registry });
  const a = await pool.acquire();
  const b = await pool.acquire();
  const queued = pool.acquire();

  const full = await scrape(registry);
  t.same(family(full, 'db_client_connection_count'), { 'pool="main",state="used"': 2, 'pool="main",state="idle"': 0 });
  t.same(family(full, 'db_client_connection_max'), { 'pool="main"': 2 });
  t.same(family(full, 'db_client_connection_pending_requests'), { 'pool="main"': 1 });
  t.same(family(full, 'db_client_connection_timeouts_total'), { 'pool="main"': 0 });
  const text = await registry.metrics();
  t.match(text, '# TYPE db_client_connection_count gauge');
  t.match(text, '# TYPE db_client_connection_timeouts_total counter');
  t.match(text, '# TYPE db_client_connection_wait_time_seconds histogram');

  await pool.release(a);
  const c = await queued;
  await pool.release(b);
  await pool.release(c);
  const empty = await scrape(registry);
  t.same(family(empty, 'db_client_connection_count'), { 'pool="main",state="used"': 0, 'pool="main",state="idle"': 2 }, 'released connections are idle');
  t.same(family(empty, 'db_client_connection_pending_requests'), { 'pool="main"': 0 });
});

t.test('observes wait and use times in seconds', async (t) => {
  const { clock, registry, detector, pool } = setup(t, { max: 1 });
  registerPrometheusMetrics(detector, { registry });
  const a = await pool.acquire();
  const queued = pool.acquire();
  await clock.tickAsync(300);
  await pool.release(a);
  const b = await queued;
  await clock.tickAsync(2000);
  await pool.destroy(b);

  const samples = await scrape(registry);
  t.same(family(samples, 'db_client_connection_wait_time_seconds_count'), { 'pool="main"': 2 });
  t.same(family(samples, 'db_client_connection_wait_time_seconds_sum'), { 'pool="main"': 0.3 });
  const waits = family(samples, 'db_client_connection_wait_time_seconds_bucket');
  t.equal(waits['le="0.001",pool="main"'], 1, 'the acquire that found a free connection');
  t.equal(waits['le="0.25",pool="main"'], 1);
  t.equal(waits['le="0.5",pool="main"'], 2, 'the one that waited 300 ms');
  t.same(family(samples, 'db_client_connection_use_time_seconds_count'), { 'pool="main"': 2 }, 'a release and a destroy');
  t.same(family(samples, 'db_client_connection_use_time_seconds_sum'), { 'pool="main"': 2.3 });
});

t.test('counts acquire timeouts and leaks by pool and kind', async (t) => {
  const { clock, registry, detector, pool } = setup(t, { max: 1, acquireTimeoutMillis: 1000 });
  registerPrometheusMetrics(detector, { registry });
  const held = await pool.acquire();
  const failing = pool.acquire().catch((error: Error) => error);
  await clock.tickAsync(1000);
  t.equal(((await failing) as Error).name, 'TimeoutError');
  let samples = await scrape(registry);
  t.same(family(samples, 'db_client_connection_timeouts_total'), { 'pool="main"': 1 });
  t.same(family(samples, 'poolwatch_leaks_total'), {}, 'no leak yet');

  await clock.tickAsync(4000);
  samples = await scrape(registry);
  t.same(family(samples, 'poolwatch_leaks_total'), { 'pool="main",kind="threshold"': 1 });
  t.same(family(samples, 'db_client_connection_timeouts_total'), { 'pool="main"': 1 }, 'still one timeout');
  await pool.release(held);
});

t.test("shares prom-client's default registry between detectors, and leaves it with the last unregister()", async (t) => {
  fakeClock(t);
  const pools: Pool<Conn>[] = [];
  const registrations = ['users', 'reports'].map((name) => {
    const detector: Detector = createDetector();
    t.teardown(() => detector.close());
    const pool = detector.watch(newPool({ max: 2 }), { name });
    pools.push(pool);
    return registerPrometheusMetrics(detector);
  });
  t.teardown(() => registrations.forEach((r) => r.unregister()));
  const conn = await pools[0]!.acquire();
  t.same(family(await scrape(register), 'db_client_connection_count'), {
    'pool="users",state="used"': 1,
    'pool="users",state="idle"': 0,
    'pool="reports",state="used"': 0,
    'pool="reports",state="idle"': 0,
  });
  registrations[0]!.unregister();
  t.same(Object.keys(family(await scrape(register), 'db_client_connection_max')), ['pool="reports"'], 'the other detector is still reported');
  registrations[1]!.unregister();
  t.equal(register.getSingleMetric('db_client_connection_count'), undefined, 'the metrics are gone');
  await pools[0]!.release(conn);
  for (const pool of pools) {
    await pool.drain();
    await pool.clear();
  }
});

t.test('stops observing after unregister(), and may register again', async (t) => {
  const { registry, detector, pool } = setup(t, { max: 1 });
  const first = registerPrometheusMetrics(detector, { registry });
  t.throws(() => registerPrometheusMetrics(detector, { registry }), { code: 'POOLWATCH_INVALID_OPTION' }, 'not twice at once');
  first.unregister();
  first.unregister();
  t.equal(await registry.metrics(), '\n', 'the registry is empty');
  await pool.release(await pool.acquire());
  const second = registerPrometheusMetrics(detector, { registry });
  t.teardown(() => second.unregister());
  t.same(family(await scrape(registry), 'db_client_connection_wait_time_seconds_count'), {}, 'nothing recorded while unregistered');
});

t.test('rejects what is not a detector, unknown options and a bad registry with POOLWATCH_INVALID_OPTION', async (t) => {
  const detector = createDetector();
  t.throws(() => registerPrometheusMetrics(null as unknown as Detector), { code: 'POOLWATCH_INVALID_OPTION' });
  t.throws(() => registerPrometheusMetrics(detector, { registy: new Registry() } as never), { code: 'POOLWATCH_INVALID_OPTION', message: /registy/ });
  t.throws(() => registerPrometheusMetrics(detector, { registry: {} as Registry }), { code: 'POOLWATCH_INVALID_OPTION', message: /registry/ });
});

t.test('shows a real PostgreSQL pool: used and idle clients, a pending connect and its timeout', async (t) => {
  const config = await startPostgres(t);
  const pool = new pg.Pool({ ...config, max: 2, connectionTimeoutMillis: 1000 });
  // pool.end() resolves, and 'remove' fires, before its clients' sockets have closed; the
  // server must not stop under them (a client still closing would get its 57P01 as an error).
  const ending: Array<Promise<void>> = [];
  pool.on('connect', (client) => ending.push(new Promise<void>((resolve) => client.once('end', () => resolve()))));
  const closed = () => Promise.all(ending);
  t.teardown(async () => {
    if (!pool.ended) await pool.end();
    await closed();
  });
  const detector = createDetector({ leakThresholdMs: 60_000 });
  t.teardown(() => detector.close());
  detector.watch(pool, { name: 'pg' });
  const registry = new Registry();
  registerPrometheusMetrics(detector, { registry });

  const [a, b] = await Promise.all([pool.connect(), pool.connect()]);
  await Promise.all([a.query('SELECT pg_sleep(0.01)'), b.query('SELECT 1')]);
  // Only the timers are fake from here: the sockets stay real, the timeout fires on tick.
  // The detector's real timer, set before, is really cleared when it re-arms.
  const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldClearNativeTimers: true });
  t.teardown(() => clock.restore());
  const pending = pool.connect().then(
    () => 'connected',
    (error: Error) => error.message,
  );
  let samples = await scrape(registry);
  t.same(family(samples, 'db_client_connection_count'), { 'pool="pg",state="used"': 2, 'pool="pg",state="idle"': 0 });
  t.same(family(samples, 'db_client_connection_pending_requests'), { 'pool="pg"': 1 });
  t.same(family(samples, 'db_client_connection_max'), { 'pool="pg"': 2 });

  await clock.tickAsync(1000);
  t.match(await pending, /^timeout exceeded when trying to connect/);
  clock.restore();
  a.release();
  samples = await scrape(registry);
  t.same(family(samples, 'db_client_connection_timeouts_total'), { 'pool="pg"': 1 });
  t.same(family(samples, 'db_client_connection_pending_requests'), { 'pool="pg"': 0 });
  t.same(family(samples, 'db_client_connection_count'), { 'pool="pg",state="used"': 1, 'pool="pg",state="idle"': 1 });
  t.same(family(samples, 'db_client_connection_wait_time_seconds_count'), { 'pool="pg"': 2 });
  t.same(family(samples, 'db_client_connection_use_time_seconds_count'), { 'pool="pg"': 1 });
  b.release();
  await pool.end();
  await closed();
});

t.test("exposes the last minute's sizing: the connections its load needed and the max that serves it", async (t) => {
  const { clock, registry, detector, pool } = setup(t, { max: 10 });
  registerPrometheusMetrics(detector, { registry });
  t.same(family(await scrape(registry), 'poolwatch_suggested_max'), {}, 'no load, no suggestion');
  // 10 acquires a second, each held 500 ms, for 20 s: 5 connections busy.
  for (let i = 0; i < 200; i++) {
    void pool.acquire().then((conn) => setTimeout(() => void pool.release(conn), 500));
    await clock.tickAsync(100);
  }
  const loaded = await scrape(registry);
  t.same(family(loaded, 'poolwatch_connections_needed'), { 'pool="main"': detector.sizing()[0]!.neededConnections });
  t.same(family(loaded, 'poolwatch_suggested_max'), { 'pool="main"': 7 });
  t.match(await registry.metrics(), '# TYPE poolwatch_suggested_max gauge');
  await clock.tickAsync(1000);
});
