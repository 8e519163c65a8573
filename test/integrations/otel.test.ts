import t, { type Test } from 'tap';
import { createPool, type Pool } from 'generic-pool';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { createDetector, type Detector } from '../../lib/index.js';
import { registerOtelMetrics } from '../../lib/integrations/otel.js';
import { fakeClock } from '../helpers/clock.js';

type Conn = { id: number };
let ids = 0;

/** A reader the test collects from when it wants: no export interval, no timer. */
class TestReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}

  /** Every metric poolwatch reported, by name. */
  async read(): Promise<Map<string, MetricData>> {
    const { resourceMetrics, errors } = await this.collect();
    if (errors.length > 0) throw errors[0];
    const found = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics) {
      if (scope.scope.name !== 'poolwatch') continue;
      for (const metric of scope.metrics) found.set(metric.descriptor.name, metric);
    }
    return found;
  }
}

/** The value of each data point of `name`, keyed by its attributes' values joined with `/`. */
function points(all: Map<string, MetricData>, name: string): Record<string, unknown> {
  const metric = all.get(name);
  const out: Record<string, unknown> = {};
  for (const point of metric?.dataPoints ?? []) out[Object.values(point.attributes).join('/')] = point.value;
  return out;
}

function setup(t: Test, options: { max: number; acquireTimeoutMillis?: number }) {
  const clock = fakeClock(t);
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  t.teardown(() => meterProvider.shutdown());
  const detector = createDetector({ leakThresholdMs: 5000 });
  t.teardown(() => detector.close());
  const pool: Pool<Conn> = detector.watch(createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, options), { name: 'main' });
  t.teardown(async () => {
    await pool.drain();
    await pool.clear();
  });
  return { clock, reader, meterProvider, detector, pool };
}

t.test('reports used and idle connections, the maximum and pending requests as the pool fills', async (t) => {
  const { reader, meterProvider, detector, pool } = setup(t, { max: 2 });
  registerOtelMetrics(detector, { meterProvider });
  const a = await pool.acquire();
  const b = await pool.acquire();
  const queued = pool.acquire();

  const full = await reader.read();
  t.same(points(full, 'db.client.connection.count'), { 'main/used': 2, 'main/idle': 0 });
  t.same(points(full, 'db.client.connection.max'), { main: 2 });
  t.same(points(full, 'db.client.connection.pending_requests'), { main: 1 });
  t.same(points(full, 'db.client.connection.timeouts'), { main: 0 });
  t.match(full.get('db.client.connection.count')!.descriptor, { unit: '{connection}', type: 'OBSERVABLE_UP_DOWN_COUNTER' });
  t.match(full.get('db.client.connection.pending_requests')!.descriptor, { unit: '{request}' });

  await pool.release(a);
  const c = await queued;
  await pool.release(b);
  await pool.release(c);
  const empty = await reader.read();
  t.same(points(empty, 'db.client.connection.count'), { 'main/used': 0, 'main/idle': 2 }, 'released connections are idle');
  t.same(points(empty, 'db.client.connection.pending_requests'), { main: 0 });
});

t.test('records wait and use times in seconds, with boundaries for seconds', async (t) => {
  const { clock, reader, meterProvider, detector, pool } = setup(t, { max: 1 });
  registerOtelMetrics(detector, { meterProvider });
  const a = await pool.acquire();
  const queued = pool.acquire();
  await clock.tickAsync(300);
  await pool.release(a);
  const b = await queued;
  await clock.tickAsync(2000);
  await pool.destroy(b);

  const all = await reader.read();
  const wait = points(all, 'db.client.connection.wait_time').main as Histogram;
  const use = points(all, 'db.client.connection.use_time').main as Histogram;
  t.match(all.get('db.client.connection.wait_time')!.descriptor, { unit: 's', type: 'HISTOGRAM' });
  t.match(wait, { count: 2, sum: 0.3, min: 0, max: 0.3 }, 'one acquire at once, one after 300 ms');
  t.match(use, { count: 2, sum: 2.3, min: 0.3, max: 2 }, 'a release after 300 ms and a destroy after 2 s');
  t.equal(wait.buckets.boundaries[0], 0.001, 'the first boundary is a millisecond');
  const at = (seconds: number) => wait.buckets.boundaries.findIndex((bound) => seconds <= bound);
  t.equal(wait.buckets.counts[at(0)], 1);
  t.equal(wait.buckets.counts[at(0.3)], 1);
});

t.test('counts acquire timeouts and leaks by pool and kind', async (t) => {
  const { clock, reader, meterProvider, detector, pool } = setup(t, { max: 1, acquireTimeoutMillis: 1000 });
  registerOtelMetrics(detector, { meterProvider });
  const held = await pool.acquire();
  const failing = pool.acquire().catch((error: Error) => error);
  await clock.tickAsync(1000);
  t.equal((await failing as Error).name, 'TimeoutError');
  t.same(points(await reader.read(), 'db.client.connection.timeouts'), { main: 1 });
  t.same(points(await reader.read(), 'poolwatch.leaks'), {}, 'no leak yet');

  await clock.tickAsync(4000);
  const all = await reader.read();
  t.same(points(all, 'poolwatch.leaks'), { 'main/threshold': 1 });
  t.match(all.get('poolwatch.leaks')!.descriptor, { unit: '{leak}', type: 'COUNTER' });
  t.same(points(all, 'db.client.connection.timeouts'), { main: 1 }, 'still one timeout');
  t.match(all.get('db.client.connection.timeouts')!.descriptor, { type: 'OBSERVABLE_COUNTER' });
  await pool.release(held);
});

t.test('reports pools watched after registering, under their own names', async (t) => {
  const { reader, meterProvider, detector } = setup(t, { max: 1 });
  registerOtelMetrics(detector, { meterProvider });
  const later = detector.watch(createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 3 }), { name: 'reports' });
  t.teardown(async () => {
    await later.drain();
    await later.clear();
  });
  const conn = await later.acquire();
  const all = await reader.read();
  t.same(points(all, 'db.client.connection.max'), { main: 1, reports: 3 });
  t.same(points(all, 'db.client.connection.count'), { 'main/used': 0, 'main/idle': 0, 'reports/used': 1, 'reports/idle': 0 });
  await later.release(conn);
});

t.test('stops recording after unregister()', async (t) => {
  const { reader, meterProvider, detector, pool } = setup(t, { max: 1 });
  const registration = registerOtelMetrics(detector, { meterProvider });
  await pool.release(await pool.acquire());
  registration.unregister();
  registration.unregister();
  await pool.release(await pool.acquire());
  const all = await reader.read();
  t.same(points(all, 'db.client.connection.count'), {}, 'no more observations');
  t.match(points(all, 'db.client.connection.wait_time'), { main: { count: 1 } }, 'the second acquire is not recorded');
  t.match(points(all, 'db.client.connection.use_time'), { main: { count: 1 } }, 'nor its release');
});

t.test('uses the global meter provider when given none', async (t) => {
  const { reader, meterProvider, detector, pool } = setup(t, { max: 1 });
  t.ok(metrics.setGlobalMeterProvider(meterProvider), 'the global provider is set');
  t.teardown(() => metrics.disable());
  const registration = registerOtelMetrics(detector);
  t.teardown(() => registration.unregister());
  const conn = await pool.acquire();
  t.same(points(await reader.read(), 'db.client.connection.count'), { 'main/used': 1, 'main/idle': 0 });
  await pool.release(conn);
});

t.test('rejects what is not a detector, unknown options and a bad meter provider with POOLWATCH_INVALID_OPTION', async (t) => {
  const detector: Detector = createDetector();
  t.throws(() => registerOtelMetrics({} as Detector), { code: 'POOLWATCH_INVALID_OPTION' });
  t.throws(() => registerOtelMetrics(detector, { meterProvidr: 1 } as never), { code: 'POOLWATCH_INVALID_OPTION', message: /meterProvidr/ });
  t.throws(() => registerOtelMetrics(detector, { meterProvider: {} as never }), { code: 'POOLWATCH_INVALID_OPTION', message: /meterProvider/ });
});

t.test("exports the last minute's sizing: the connections its load needed and the max that serves it", async (t) => {
  const { clock, reader, meterProvider, detector, pool } = setup(t, { max: 10 });
  registerOtelMetrics(detector, { meterProvider });
  const quiet = await reader.read();
  t.same(points(quiet, 'poolwatch.connection.needed'), { main: 0 });
  t.same(points(quiet, 'poolwatch.connection.suggested_max'), {}, 'no load, no suggestion');
  // 10 acquires a second, each held 500 ms, for 20 s: 5 connections busy.
  for (let i = 0; i < 200; i++) {
    void pool.acquire().then((conn) => setTimeout(() => void pool.release(conn), 500));
    await clock.tickAsync(100);
  }
  const loaded = await reader.read();
  t.same(points(loaded, 'poolwatch.connection.needed'), { main: detector.sizing()[0]!.neededConnections });
  t.same(points(loaded, 'poolwatch.connection.suggested_max'), { main: 7 });
  t.match(loaded.get('poolwatch.connection.suggested_max')!.descriptor, { unit: '{connection}', type: 'OBSERVABLE_GAUGE' });
  await clock.tickAsync(1000);
});
