import { now } from './clock.js';
import { PoolwatchTypeError, codes, describe } from './errors.js';
import { runScope } from './context.js';
import { Emitter, type DetectorEvents, type EventName } from './events.js';
import { adapterFor, underlyingOf } from './adapters/index.js';
import { resolveDetectorOptions, resolveWatchOptions, type DetectorOptions, type Labels, type ResolvedOptions, type WatchOptions } from './options.js';
import { WatchedPool, type DetectorHost, type PoolStats } from './watched-pool.js';
import type { LeaseInfo } from './lease.js';
import { LeakReport } from './report.js';
import type { PoolSizing } from './sizing.js';
import { sampleIntervalMs } from './timeline.js';
import { renderReport, type ReportData } from './html-report.js';
import { sharedDetectorSettings } from './preload/env.js';
import { writeFileSync, renameSync } from 'node:fs';
import { resolve } from 'node:path';

// setTimeout's longest delay (2^31 - 1 ms, ~24.8 days).
const maxTimerMs = 2_147_483_647;

// Which detector watches each pool, for watch()/unwatch()/detectorOf() and to refuse watching twice.
// Keyed by the pool given to watch() and, when the adapter instruments another object for it
// (a promise wrapper's core pool, a Sequelize instance's pool), by that object too.
const owners = new WeakMap<object, Detector>();
// Each watched pool's records, by the same keys as `owners`: for lease().
const records = new WeakMap<object, WatchedPool>();
// The process-wide detector of poolwatch/register, made on first use.
let shared: Detector | undefined;
let sharedOptions: DetectorOptions | undefined;
// Detectors watching at least one pool, for checks across all of them (poolwatch/testing).
const watching = new Set<Detector>();

/** Every detector that watches at least one pool now. */
export function watchingDetectors(): Detector[] {
  return [...watching];
}

/**
 * `detector.stats()`: each watched pool's figures under its name. A position
 * (`stats()[0]`) has nothing: its type is `never`, so using it is a type error. (A pool
 * named with digits only is typed as a position: give pools names with a letter.)
 */
export type PoolStatsByName = { [name: string]: PoolStats; readonly [position: number]: never };

/** What `detector.snapshot()` returns: plain data, ready for `JSON.stringify`. */
export interface DetectorSnapshot {
  readonly takenAt: string;
  readonly pools: Readonly<Record<string, { readonly stats: PoolStats; readonly leases: readonly LeaseInfo[]; readonly sizing: PoolSizing }>>;
}

/** The records of `pool` (or of the core pool it wraps) where a detector watches it. */
export function watchedPoolOf(pool: object): WatchedPool | undefined {
  const found = records.get(pool);
  if (found !== undefined) return found;
  const target = underlyingOf(pool);
  return target === undefined ? undefined : records.get(target);
}

/** The detector watching `pool`, or undefined. */
export function detectorOf(pool: object): Detector | undefined {
  const owner = owners.get(pool);
  if (owner !== undefined || (typeof pool !== 'object' && typeof pool !== 'function') || pool === null) return owner;
  // A promise wrapper of a watched core pool is watched through it.
  const target = underlyingOf(pool);
  return target === undefined ? undefined : owners.get(target);
}

/**
 * Watches one or more pools: records each lease, reports leaks, emits events.
 * Its one timer is unref'd: it never keeps the process alive.
 */
export class Detector {
  readonly #options: ResolvedOptions;
  readonly #emitter = new Emitter();
  readonly #pools = new Map<object, WatchedPool>();
  // The object each watched pool's adapter instruments, when it is not the pool itself.
  readonly #underlying = new Map<object, object>();
  readonly #host: DetectorHost;
  #leaseIds = 0;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  // Samples every pool once a second for the HTML report; unref'd, and only while a pool is watched.
  #sampler: ReturnType<typeof setInterval> | undefined = undefined;
  #timerAt = Infinity;

  constructor(options?: DetectorOptions) {
    this.#options = resolveDetectorOptions(options);
    if (this.#options.onLeak !== undefined) this.#emitter.on('leak', this.#options.onLeak);
    this.#host = {
      emitter: this.#emitter,
      nextLeaseId: () => ++this.#leaseIds,
      schedule: (deadline) => {
        if (deadline < this.#timerAt) this.#arm(deadline);
      },
    };
  }

  /**
   * Instruments `pool` in place and returns it. Options override the detector's for this
   * pool. A pool that `defaultDetector()` watches (as `poolwatch/register` does every
   * pool) is taken over: this detector watches it from now on, with these options.
   */
  watch<P extends object>(pool: P, options?: WatchOptions): P {
    const resolved = resolveWatchOptions(options, this.#options);
    const adapter = adapterFor(pool, resolved.adapter);
    const target = adapter.underlying?.(pool) ?? pool;
    const owner = owners.get(pool) ?? owners.get(target);
    if (owner !== undefined) {
      const existing = owner.#find(pool, target)!;
      if (owner !== shared) {
        const name = owner.#pools.get(existing)!.name;
        throw new PoolwatchTypeError(
          codes.alreadyWatched,
          existing === pool
            ? `This pool is already watched (as "${name}"); call unwatch(pool) first to watch it with other options.`
            : `This pool is already watched through its core pool or another object that shares it (as "${name}"): ` +
                'watching either one already covers both. Watch only one of them.',
        );
      }
      // The default detector gives the pool up to the app's own watch().
      owner.unwatch(existing);
    }
    const name = resolved.name ?? this.#freeName(adapter.defaultName);
    if (resolved.name !== undefined && this.#nameTaken(name)) {
      throw new PoolwatchTypeError(codes.invalidOption, `Expected \`name\` to be unique in this detector: "${name}" already names a watched pool.`);
    }
    const watched = new WatchedPool(name, pool, adapter, resolved, this.#host);
    this.#pools.set(pool, watched);
    // Its chart starts now, not at the next tick: what happens in its first second is on it.
    watched.sample(now());
    owners.set(pool, this);
    records.set(pool, watched);
    if (target !== pool) {
      this.#underlying.set(pool, target);
      owners.set(target, this);
      records.set(target, watched);
    }
    watching.add(this);
    if (this.#sampler === undefined) {
      this.#sampler = setInterval(this.#sample, sampleIntervalMs);
      this.#sampler.unref?.();
    }
    return pool;
  }

  #sample = (): void => {
    const at = now();
    for (const watched of this.#pools.values()) watched.sample(at);
  };

  /**
   * Writes the HTML report to `path` and returns its absolute path: one self-contained file
   * that opens with no network. Per pool, a chart of its last hour (leased, idle and waiting
   * connections against its max, leaks, timeouts and reclaims marked), who holds it grouped
   * by call site, and its sizing verdict.
   */
  writeReport(path: string): string {
    if (typeof path !== 'string' || path.trim() === '') {
      throw new PoolwatchTypeError(codes.invalidOption, `Expected the \`path\` of writeReport() to be a file path, got ${describe(path)}.`);
    }
    const at = now();
    this.#sample();
    const data: ReportData = {
      title: 'poolwatch report',
      generatedAt: Date.now(),
      pools: [...this.#pools.values()].map((watched) => ({
        name: watched.name,
        capacity: watched.capacity === Infinity ? undefined : watched.capacity,
        samples: watched.timeline.samples(),
        marks: watched.timeline.marks(),
        holders: watched.holders(),
        sizing: watched.sizing(at),
      })),
    };
    const file = resolve(path);
    // Whole or not at all: a reader never opens half a report.
    const partial = `${file}.${process.pid}.tmp`;
    writeFileSync(partial, renderReport(data));
    renameSync(partial, file);
    return file;
  }

  // The watched pool that is `pool`, or `target`, or instruments `target` too.
  #find(pool: object, target: object): object | undefined {
    for (const watched of this.#pools.keys()) {
      if (watched === pool || watched === target || this.#underlying.get(watched) === target) return watched;
    }
    return undefined;
  }

  /** Restores `pool`'s own methods and forgets its leases. Returns whether it was watched by this detector. */
  unwatch(pool: object): boolean {
    // Given a core pool watched through its promise wrapper, or a wrapper of a watched core: that pool.
    if (!this.#pools.has(pool)) pool = this.#find(pool, underlyingOf(pool) ?? pool) ?? pool;
    const watched = this.#pools.get(pool);
    if (watched === undefined) return false;
    watched.uninstall();
    this.#pools.delete(pool);
    owners.delete(pool);
    records.delete(pool);
    const target = this.#underlying.get(pool);
    if (target !== undefined) {
      this.#underlying.delete(pool);
      owners.delete(target);
      records.delete(target);
    }
    if (this.#pools.size === 0) {
      this.#disarm();
      clearInterval(this.#sampler);
      this.#sampler = undefined;
      watching.delete(this);
    }
    return true;
  }

  on<E extends EventName>(event: E, listener: (...args: DetectorEvents[E]) => void): this {
    this.#emitter.on(event, listener);
    return this;
  }

  once<E extends EventName>(event: E, listener: (...args: DetectorEvents[E]) => void): this {
    this.#emitter.once(event, listener);
    return this;
  }

  off<E extends EventName>(event: E, listener: (...args: DetectorEvents[E]) => void): this {
    this.#emitter.off(event, listener);
    return this;
  }

  /**
   * Runs `fn` in a scope labelled `labels` (an object of labels, merged over any
   * enclosing scope's). Leases opened inside, in any watched pool, record the labels;
   * when `fn` settles, those still open are reported at once as leaks of kind
   * `scope-ended`. Returns what `fn` returns (a promise settles as `fn`'s does).
   */
  scope<R>(labels: Labels, fn: () => R): R {
    return scope(labels, fn);
  }

  /**
   * Says that `connection`, leased from a pool this detector watches, is meant to
   * outlive the scope that opened it: it is not reported when that scope ends (its
   * threshold still applies). Returns whether such a lease was found.
   */
  detach(connection: unknown): boolean {
    for (const watched of this.#pools.values()) if (watched.detach(connection)) return true;
    return false;
  }

  /**
   * Lets `connection`'s lease be held `ms` more, counted from now, before it is a leak:
   * for known long work (a report, a migration). Returns whether such a lease was found.
   */
  extend(connection: unknown, ms: number): boolean {
    if (typeof ms !== 'number' || Number.isNaN(ms) || ms <= 0) {
      throw new PoolwatchTypeError(codes.invalidOption, `Expected the \`ms\` of extend() to be a positive number or Infinity, got ${describe(ms)}.`);
    }
    for (const watched of this.#pools.values()) if (watched.extend(connection, ms)) return true;
    return false;
  }

  /**
   * Everything an operator needs at once, as plain JSON: per pool, its figures and every
   * open lease (oldest first) with call site, context and age. For an admin endpoint.
   */
  snapshot(): DetectorSnapshot {
    // Built from entries, so a pool named `__proto__` is a key like any other, not the prototype.
    const at = now();
    const pools: Record<string, { stats: PoolStats; leases: LeaseInfo[]; sizing: PoolSizing }> = Object.fromEntries(
      [...this.#pools.values()].map((watched) => [
        watched.name,
        { stats: watched.stats(), leases: [...watched.ledger].map((lease) => lease.toJSON() as LeaseInfo), sizing: watched.sizing(at) },
      ]),
    );
    return { takenAt: new Date().toISOString(), pools };
  }

  /** Open leases of every watched pool, oldest first. */
  leases(): LeaseInfo[] {
    const open = [];
    for (const watched of this.#pools.values()) open.push(...watched.ledger);
    open.sort((a, b) => a.acquiredMono - b.acquiredMono);
    return open.map((lease) => Object.freeze(lease.toJSON() as LeaseInfo));
  }

  /** The leaks as of now, oldest first: reports any that are due without waiting for the timer. */
  check(): LeakReport[] {
    this.#sweep();
    const reports: LeakReport[] = [];
    for (const watched of this.#pools.values()) {
      for (const lease of watched.ledger) if (lease.report !== null) reports.push(lease.report);
    }
    return reports.sort((a, b) => a.acquiredAt - b.acquiredAt);
  }

  /**
   * A report for every lease still open whose id is above `afterLeaseId`, oldest first,
   * as if its scope ended now (kind `scope-ended`), without emitting or counting them:
   * what a test runner's after-each check shows.
   */
  openReports(afterLeaseId = 0): LeakReport[] {
    const at = now();
    const reports: LeakReport[] = [];
    for (const watched of this.#pools.values()) {
      for (const lease of watched.ledger) {
        if (lease.leaseId > afterLeaseId) reports.push(lease.report ?? new LeakReport(lease, 'scope-ended', at - lease.acquiredMono));
      }
    }
    return reports.sort((a, b) => a.acquiredAt - b.acquiredAt || a.leaseId - b.leaseId);
  }

  /** The id of the latest lease handed over by any pool of this detector (0 before any). */
  get lastLeaseId(): number {
    return this.#leaseIds;
  }

  /**
   * Per pool, its load over the last minute (or since `watch()` when sooner) and the size
   * that serves it: acquires per second, hold times, peaks, the connections the load
   * needed (Little's law) and a suggested `max` with its reason.
   */
  sizing(): PoolSizing[] {
    const at = now();
    return [...this.#pools.values()].map((watched) => Object.freeze(watched.sizing(at)));
  }

  /** Figures per pool, by pool name: `stats().main`. */
  stats(): PoolStatsByName {
    // The cast: a pool whose name is all digits is there at run time, typed as a position.
    return Object.fromEntries([...this.#pools.values()].map((watched) => [watched.name, watched.stats()])) as PoolStatsByName;
  }

  /** Unwatches every pool and stops the timer. */
  close(): void {
    for (const pool of [...this.#pools.keys()]) this.unwatch(pool);
    this.#disarm();
  }

  #freeName(base: string): string {
    if (!this.#nameTaken(base)) return base;
    let n = 2;
    while (this.#nameTaken(`${base}#${n}`)) n++;
    return `${base}#${n}`;
  }

  #nameTaken(name: string): boolean {
    for (const watched of this.#pools.values()) if (watched.name === name) return true;
    return false;
  }

  #arm(deadline: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = deadline;
    // Rounded up: a timer that fires a fraction early would find nothing due and re-arm.
    // Capped at setTimeout's limit: a longer delay would fire at once, again and again; a
    // capped timer fires early, finds nothing due and is armed again for what is left.
    this.#timer = setTimeout(this.#onTimer, Math.min(maxTimerMs, Math.max(1, Math.ceil(deadline - now()))));
    this.#timer.unref?.();
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#sweep();
  };

  #sweep(): void {
    const at = now();
    let next = Infinity;
    for (const watched of this.#pools.values()) next = Math.min(next, watched.sweep(at));
    if (next < this.#timerAt) this.#arm(next);
  }
}

/**
 * The process-wide detector: `poolwatch/register` watches every pool with it, and
 * `detectorOf(pool)` returns it for those pools. Made on first call, with the settings
 * the preload read from the environment (or the defaults), whether the preload or the
 * app calls first.
 */
export function defaultDetector(): Detector {
  return (shared ??= new Detector(sharedOptions ?? sharedDetectorSettings()));
}

/** Sets the options `defaultDetector()` is made with; for the preload, before any pool is watched. */
export function configureDefaultDetector(options: DetectorOptions): void {
  if (shared === undefined) sharedOptions = options;
}

/** Creates a detector for several pools; options apply to every pool it watches unless overridden. */
export function createDetector(options?: DetectorOptions): Detector {
  return new Detector(options);
}

/**
 * Watches `pool` in place with a detector of its own and returns the same pool, so code
 * that already holds it is covered.
 */
export function watch<P extends object>(pool: P, options?: WatchOptions): P {
  return new Detector().watch(pool, options);
}

/**
 * Runs `fn` in a scope labelled `labels`: leases opened inside, by any watched pool,
 * record the labels, and those still open when `fn` settles are reported as leaks of
 * kind `scope-ended`. The same as `detector.scope()`.
 */
export function scope<R>(labels: Labels, fn: () => R): R {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new PoolwatchTypeError(codes.invalidOption, `Expected the labels of scope() to be an object, got ${describe(labels)}.`);
  }
  if (typeof fn !== 'function') {
    throw new PoolwatchTypeError(codes.invalidOption, `Expected the last argument of scope() to be a function, got ${describe(fn)}.`);
  }
  return runScope(labels, fn, WatchedPool.scopeEnded);
}

/** Restores `pool`'s own methods. Returns whether it was watched. */
export function unwatch(pool: object): boolean {
  const owner = detectorOf(pool);
  return owner !== undefined && owner.unwatch(pool);
}
