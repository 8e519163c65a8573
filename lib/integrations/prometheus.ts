import { Counter, Gauge, Histogram, register, Registry } from 'prom-client';
import { PoolwatchTypeError, codes, describe } from '../errors.js';
import type { Detector } from '../detector.js';
import type { LeaseInfo } from '../lease.js';
import type { LeakReport } from '../report.js';

/** Options of `registerPrometheusMetrics()`. */
export interface PrometheusMetricsOptions {
  /** Where the metrics are registered. Default: prom-client's global `register`. */
  registry?: Registry;
}

/** What `registerPrometheusMetrics()` returns. */
export interface PrometheusMetricsRegistration {
  /**
   * Stops reporting this detector; the metrics leave the registry with the last detector
   * registered on it. Safe to call twice.
   */
  unregister(): void;
}

// Label names as OpenTelemetry's Prometheus exporter spells the attributes, so one
// dashboard serves both poolwatch/otel and poolwatch/prometheus.
const poolLabel = 'db_client_connection_pool_name';
const stateLabel = 'db_client_connection_state';
const kindLabel = 'poolwatch_leak_kind';
const activityLabel = 'poolwatch_activity';

// The same boundaries as poolwatch/otel: from a millisecond to minutes.
const secondsBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

type Observer = { observe(value: number): void };

/** The metrics of one registry, shared by every detector registered on it. */
class RegistryMetrics {
  readonly detectors = new Set<Detector>();
  readonly names: readonly string[];
  readonly waitTime: Histogram<typeof poolLabel>;
  readonly useTime: Histogram<typeof poolLabel>;
  readonly leaks: Counter<typeof poolLabel | typeof kindLabel>;
  // Histogram children per pool, made once: observing reuses them.
  readonly #waitByPool = new Map<string, Observer>();
  readonly #useByPool = new Map<string, Observer>();

  constructor(readonly registry: Registry) {
    const registers = [registry];
    // Gauges and timeouts read stats() at scrape time: nothing is counted on acquire or
    // release. Pools of one name in several detectors add up.
    const stats = () => [...this.detectors].flatMap((detector) => Object.entries(detector.stats()));
    const count = new Gauge({
      name: 'db_client_connection_count',
      help: 'The number of connections that are currently in state described by the state attribute.',
      labelNames: [poolLabel, stateLabel],
      registers,
      collect: () => {
        count.reset();
        for (const [pool, s] of stats()) {
          count.inc({ [poolLabel]: pool, [stateLabel]: 'used' }, s.open);
          if (s.idle !== undefined) count.inc({ [poolLabel]: pool, [stateLabel]: 'idle' }, s.idle);
        }
      },
    });
    const max = new Gauge({
      name: 'db_client_connection_max',
      help: 'The maximum number of open connections allowed.',
      labelNames: [poolLabel],
      registers,
      collect: () => {
        max.reset();
        for (const [pool, s] of stats()) if (s.capacity !== undefined) max.inc({ [poolLabel]: pool }, s.capacity);
      },
    });
    const pending = new Gauge({
      name: 'db_client_connection_pending_requests',
      help: 'The number of current pending requests for an open connection.',
      labelNames: [poolLabel],
      registers,
      collect: () => {
        pending.reset();
        for (const [pool, s] of stats()) pending.inc({ [poolLabel]: pool }, s.waiting);
      },
    });
    const timeouts = new Counter({
      name: 'db_client_connection_timeouts_total',
      help: 'The number of connection timeouts that have occurred trying to obtain a connection from the pool.',
      labelNames: [poolLabel],
      registers,
      collect: () => {
        timeouts.reset();
        for (const [pool, s] of stats()) timeouts.inc({ [poolLabel]: pool }, s.timeouts);
      },
    });
    // Sizing, read at scrape time: the connections the last minute's load needed, and the max that serves it.
    const sizing = () => [...this.detectors].flatMap((detector) => detector.sizing());
    const needed = new Gauge({
      name: 'poolwatch_connections_needed',
      help: "Connections the last minute's load kept busy on average (Little's law: acquires per second times mean hold).",
      labelNames: [poolLabel],
      registers,
      collect: () => {
        needed.reset();
        for (const s of sizing()) needed.inc({ [poolLabel]: s.pool }, s.neededConnections);
      },
    });
    const suggested = new Gauge({
      name: 'poolwatch_suggested_max',
      help: "The pool size that covers the p99 of the last minute's demand with 25% headroom.",
      labelNames: [poolLabel],
      registers,
      collect: () => {
        suggested.reset();
        for (const s of sizing()) if (s.suggestedMax !== undefined) suggested.inc({ [poolLabel]: s.pool }, s.suggestedMax);
      },
    });
    // What held connections are doing, and how old the oldest lease is: a leak in progress
    // (a connection idle in a transaction, a lease far past its usual hold) before it is reported.
    const activity = new Gauge({
      name: 'poolwatch_connections_by_activity',
      help: 'Open leases by what their connection is doing (idle, query, idle-in-transaction, listening), for pools whose driver shows it.',
      labelNames: [poolLabel, activityLabel],
      registers,
      collect: () => {
        activity.reset();
        for (const [pool, s] of stats()) {
          if (s.activity === undefined) continue;
          for (const [doing, n] of Object.entries(s.activity)) activity.inc({ [poolLabel]: pool, [activityLabel]: doing }, n);
        }
      },
    });
    const oldest = new Gauge({
      name: 'poolwatch_oldest_lease_seconds',
      help: 'How long the oldest open lease has been held; 0 with none open.',
      labelNames: [poolLabel],
      registers,
      collect: () => {
        oldest.reset();
        // Pools of one name in several detectors: the oldest of them.
        const byPool = new Map<string, number>();
        for (const [pool, s] of stats()) byPool.set(pool, Math.max(byPool.get(pool) ?? 0, s.oldestHeldMs / 1000));
        for (const [pool, seconds] of byPool) oldest.set({ [poolLabel]: pool }, seconds);
      },
    });
    const failures = new Counter({
      name: 'poolwatch_acquire_failures_total',
      help: 'Acquire calls that failed or timed out: a database refusing connections counts here, not in the timeouts.',
      labelNames: [poolLabel],
      registers,
      collect: () => {
        failures.reset();
        for (const [pool, s] of stats()) failures.inc({ [poolLabel]: pool }, s.failed);
      },
    });
    this.waitTime = new Histogram({
      name: 'db_client_connection_wait_time_seconds',
      help: 'The time it took to obtain an open connection from the pool.',
      labelNames: [poolLabel],
      buckets: secondsBuckets,
      registers,
    });
    this.useTime = new Histogram({
      name: 'db_client_connection_use_time_seconds',
      help: 'The time between borrowing a connection and returning it to the pool.',
      labelNames: [poolLabel],
      buckets: secondsBuckets,
      registers,
    });
    this.leaks = new Counter({
      name: 'poolwatch_leaks_total',
      help: 'Connection leases reported as leaks, by kind.',
      labelNames: [poolLabel, kindLabel],
      registers,
    });
    this.names = ['db_client_connection_count', 'db_client_connection_max', 'db_client_connection_pending_requests', 'db_client_connection_timeouts_total', 'db_client_connection_wait_time_seconds', 'db_client_connection_use_time_seconds', 'poolwatch_leaks_total', 'poolwatch_connections_needed', 'poolwatch_suggested_max', 'poolwatch_connections_by_activity', 'poolwatch_oldest_lease_seconds', 'poolwatch_acquire_failures_total'];
  }

  waited(pool: string): Observer {
    let child = this.#waitByPool.get(pool);
    if (child === undefined) this.#waitByPool.set(pool, (child = this.waitTime.labels({ [poolLabel]: pool })));
    return child;
  }

  used(pool: string): Observer {
    let child = this.#useByPool.get(pool);
    if (child === undefined) this.#useByPool.set(pool, (child = this.useTime.labels({ [poolLabel]: pool })));
    return child;
  }

  /** Whether the registry still holds these metrics (a `registry.clear()` drops them). */
  get live(): boolean {
    return this.registry.getSingleMetric('poolwatch_leaks_total') === this.leaks;
  }

  remove(): void {
    for (const name of this.names) this.registry.removeSingleMetric(name);
  }
}

const byRegistry = new WeakMap<Registry, RegistryMetrics>();

/**
 * Reports `detector`'s pools in a prom-client registry, under the Prometheus names of the
 * OpenTelemetry database connection-pool conventions, each labelled
 * `db_client_connection_pool_name`:
 * - `db_client_connection_count` (gauge) by `db_client_connection_state`: `used` (leases
 *   open now) and `idle` (when the pool says);
 * - `db_client_connection_max` (gauge), when the pool says;
 * - `db_client_connection_pending_requests` (gauge);
 * - `db_client_connection_timeouts_total` (counter): acquires the pool gave up on;
 * - `db_client_connection_wait_time_seconds` and `db_client_connection_use_time_seconds` (histograms);
 * - `poolwatch_connections_by_activity` (gauge) by `poolwatch_activity` (`idle`, `query`, `idle-in-transaction`, `listening`), where the driver shows it;
 * - `poolwatch_oldest_lease_seconds` (gauge) and `poolwatch_acquire_failures_total` (counter);
 * - `poolwatch_leaks_total` (counter) by `poolwatch_leak_kind`.
 * Gauges and timeouts are read from `detector.stats()` at scrape time; histograms and
 * leaks count from now on. Several detectors may share one registry. Returns `{ unregister() }`.
 */
export function registerPrometheusMetrics(detector: Detector, options: PrometheusMetricsOptions = {}): PrometheusMetricsRegistration {
  if (typeof detector?.stats !== 'function' || typeof detector.on !== 'function') {
    throw new PoolwatchTypeError(codes.invalidOption, `Expected a Detector (e.g. createDetector() or detectorOf(pool)), got ${describe(detector)}.`);
  }
  const { registry = register, ...unknown } = options;
  const extra = Object.keys(unknown)[0];
  if (extra !== undefined) {
    throw new PoolwatchTypeError(codes.invalidOption, `Unknown option \`${extra}\` of registerPrometheusMetrics(); the only one is \`registry\`.`);
  }
  if (typeof registry?.registerMetric !== 'function') {
    throw new PoolwatchTypeError(codes.invalidOption, `Expected \`registry\` to be a prom-client Registry, got ${describe(registry)}.`);
  }
  let shared = byRegistry.get(registry);
  if (shared === undefined || !shared.live) byRegistry.set(registry, (shared = new RegistryMetrics(registry)));
  const metrics = shared;
  if (metrics.detectors.has(detector)) {
    throw new PoolwatchTypeError(codes.invalidOption, 'This detector is already registered on this registry; call unregister() first.');
  }
  metrics.detectors.add(detector);

  const onAcquire = (lease: LeaseInfo): void => metrics.waited(lease.pool).observe(lease.waitedMs / 1000);
  const onClose = (lease: LeaseInfo): void => metrics.used(lease.pool).observe(lease.heldMs / 1000);
  const onLeak = (report: LeakReport): void => metrics.leaks.inc({ [poolLabel]: report.pool, [kindLabel]: report.kind });
  detector.on('acquire', onAcquire).on('release', onClose).on('destroy', onClose).on('leak', onLeak);

  let registered = true;
  return {
    unregister() {
      if (!registered) return;
      registered = false;
      detector.off('acquire', onAcquire).off('release', onClose).off('destroy', onClose).off('leak', onLeak);
      metrics.detectors.delete(detector);
      if (metrics.detectors.size === 0 && byRegistry.get(registry) === metrics) {
        metrics.remove();
        byRegistry.delete(registry);
      }
    },
  };
}
