import { metrics, type Attributes, type BatchObservableResult, type Counter, type Histogram, type Meter, type MeterProvider, type Observable } from '@opentelemetry/api';
import { PoolwatchTypeError, codes, describe } from '../errors.js';
import type { Detector } from '../detector.js';
import type { LeaseInfo } from '../lease.js';
import type { LeakReport } from '../report.js';

/** Options of `registerOtelMetrics()`. */
export interface OtelMetricsOptions {
  /** Where the instruments are created. Default: the global meter provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
}

/** What `registerOtelMetrics()` returns. */
export interface OtelMetricsRegistration {
  /** Stops reporting: removes the observable callback and the detector listeners. Safe to call twice. */
  unregister(): void;
}

interface PoolAttributes {
  readonly pool: Attributes;
  readonly used: Attributes;
  readonly idle: Attributes;
}

const poolName = 'db.client.connection.pool.name';
const state = 'db.client.connection.state';
const leakKind = 'poolwatch.leak.kind';

// Waits and holds span from a fraction of a millisecond to minutes; the SDK's default
// boundaries (0…10000) suit milliseconds, not seconds. The same as poolwatch/prometheus.
const secondsBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/**
 * Reports `detector`'s pools as OpenTelemetry metrics, after the semantic conventions for
 * database client connection pools, each with `db.client.connection.pool.name`:
 * - `db.client.connection.count` (observable UpDownCounter, `{connection}`), by
 *   `db.client.connection.state`: `used` (leases open now) and `idle` (when the pool says);
 * - `db.client.connection.max` (observable UpDownCounter), when the pool says;
 * - `db.client.connection.pending_requests` (observable UpDownCounter, `{request}`);
 * - `db.client.connection.timeouts` (observable Counter, `{timeout}`): acquires the pool gave up on;
 * - `db.client.connection.wait_time` and `db.client.connection.use_time` (Histograms, `s`);
 * - `poolwatch.leaks` (Counter, `{leak}`) by `poolwatch.leak.kind`;
 * - `poolwatch.connection.activity` (UpDownCounter) by `poolwatch.activity`, where the driver shows it; `poolwatch.lease.oldest_age` (Gauge, s); `poolwatch.acquire.failures` (Counter).
 * Counts are read from `detector.stats()` at collection time, so pools watched later are
 * included; histograms and leaks count from now on. Returns `{ unregister() }`.
 */
export function registerOtelMetrics(detector: Detector, options: OtelMetricsOptions = {}): OtelMetricsRegistration {
  if (typeof detector?.stats !== 'function' || typeof detector.on !== 'function') {
    throw new PoolwatchTypeError(codes.invalidOption, `Expected a Detector (e.g. createDetector() or detectorOf(pool)), got ${describe(detector)}.`);
  }
  const { meterProvider = metrics.getMeterProvider(), ...unknown } = options;
  const extra = Object.keys(unknown)[0];
  if (extra !== undefined) {
    throw new PoolwatchTypeError(codes.invalidOption, `Unknown option \`${extra}\` of registerOtelMetrics(); the only one is \`meterProvider\`.`);
  }
  if (typeof meterProvider?.getMeter !== 'function') {
    throw new PoolwatchTypeError(codes.invalidOption, `Expected \`meterProvider\` to be an OpenTelemetry MeterProvider, got ${describe(meterProvider)}.`);
  }
  const meter: Meter = meterProvider.getMeter('poolwatch');

  const count = meter.createObservableUpDownCounter('db.client.connection.count', {
    description: 'The number of connections that are currently in state described by the state attribute.',
    unit: '{connection}',
  });
  const max = meter.createObservableUpDownCounter('db.client.connection.max', {
    description: 'The maximum number of open connections allowed.',
    unit: '{connection}',
  });
  const pending = meter.createObservableUpDownCounter('db.client.connection.pending_requests', {
    description: 'The number of current pending requests for an open connection.',
    unit: '{request}',
  });
  const timeouts = meter.createObservableCounter('db.client.connection.timeouts', {
    description: 'The number of connection timeouts that have occurred trying to obtain a connection from the pool.',
    unit: '{timeout}',
  });
  const waitTime: Histogram = meter.createHistogram('db.client.connection.wait_time', {
    description: 'The time it took to obtain an open connection from the pool.',
    unit: 's',
    advice: { explicitBucketBoundaries: secondsBuckets },
  });
  const useTime: Histogram = meter.createHistogram('db.client.connection.use_time', {
    description: 'The time between borrowing a connection and returning it to the pool.',
    unit: 's',
    advice: { explicitBucketBoundaries: secondsBuckets },
  });
  // Sizing, read at collection: the connections the last minute's load needed, and the max that serves it.
  const needed = meter.createObservableGauge('poolwatch.connection.needed', {
    description: "Connections the last minute's load kept busy on average (Little's law: acquires per second × mean hold).",
    unit: '{connection}',
  });
  const suggestedMax = meter.createObservableGauge('poolwatch.connection.suggested_max', {
    description: "The pool size that covers the p99 of the last minute's demand with 25% headroom.",
    unit: '{connection}',
  });
  const activity = meter.createObservableUpDownCounter('poolwatch.connection.activity', {
    description: 'Open leases by what their connection is doing (idle, query, idle-in-transaction, listening), for pools whose driver shows it.',
    unit: '{connection}',
  });
  const oldest = meter.createObservableGauge('poolwatch.lease.oldest_age', {
    description: 'How long the oldest open lease has been held; 0 with none open.',
    unit: 's',
  });
  const failures = meter.createObservableCounter('poolwatch.acquire.failures', {
    description: 'Acquire calls that failed or timed out: a database refusing connections counts here, not in the timeouts.',
    unit: '{failure}',
  });
  const leaks: Counter = meter.createCounter('poolwatch.leaks', {
    description: 'Connection leases reported as leaks, by kind.',
    unit: '{leak}',
  });

  // Attributes per pool, made once: recording reuses them.
  const byPool = new Map<string, PoolAttributes>();
  const attributesOf = (pool: string): PoolAttributes => {
    let attributes = byPool.get(pool);
    if (attributes === undefined) {
      attributes = { pool: { [poolName]: pool }, used: { [poolName]: pool, [state]: 'used' }, idle: { [poolName]: pool, [state]: 'idle' } };
      byPool.set(pool, attributes);
    }
    return attributes;
  };

  const observables: Observable[] = [count, max, pending, timeouts, needed, suggestedMax, activity, oldest, failures];
  const observe = (result: BatchObservableResult): void => {
    for (const [pool, stats] of Object.entries(detector.stats())) {
      const attributes = attributesOf(pool);
      result.observe(count, stats.open, attributes.used);
      if (stats.idle !== undefined) result.observe(count, stats.idle, attributes.idle);
      if (stats.capacity !== undefined) result.observe(max, stats.capacity, attributes.pool);
      result.observe(pending, stats.waiting, attributes.pool);
      result.observe(timeouts, stats.timeouts, attributes.pool);
      result.observe(failures, stats.failed, attributes.pool);
      result.observe(oldest, stats.oldestHeldMs / 1000, attributes.pool);
      if (stats.activity !== undefined) {
        for (const [doing, n] of Object.entries(stats.activity)) result.observe(activity, n, { [poolName]: pool, 'poolwatch.activity': doing });
      }
    }
    for (const sizing of detector.sizing()) {
      const attributes = attributesOf(sizing.pool);
      result.observe(needed, sizing.neededConnections, attributes.pool);
      if (sizing.suggestedMax !== undefined) result.observe(suggestedMax, sizing.suggestedMax, attributes.pool);
    }
  };
  const onAcquire = (lease: LeaseInfo): void => waitTime.record(lease.waitedMs / 1000, attributesOf(lease.pool).pool);
  const onClose = (lease: LeaseInfo): void => useTime.record(lease.heldMs / 1000, attributesOf(lease.pool).pool);
  const onLeak = (report: LeakReport): void => leaks.add(1, { [poolName]: report.pool, [leakKind]: report.kind });

  meter.addBatchObservableCallback(observe, observables);
  detector.on('acquire', onAcquire).on('release', onClose).on('destroy', onClose).on('leak', onLeak);
  let registered = true;
  return {
    unregister() {
      if (!registered) return;
      registered = false;
      meter.removeBatchObservableCallback(observe, observables);
      detector.off('acquire', onAcquire).off('release', onClose).off('destroy', onClose).off('leak', onLeak);
    },
  };
}
