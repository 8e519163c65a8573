import { PoolwatchTypeError, codes, describe } from './errors.js';
import type { LeakReport } from './report.js';
import type { AdapterSpec } from './adapters/custom.js';

/** Labels recorded with a lease: request id, route, tenant, trace id… */
export type Labels = Readonly<Record<string, unknown>>;

/**
 * When to capture the acquiring stack.
 * - `'always'`: every acquire (the most precise, the most costly);
 * - `'auto'`: every acquire's call site, from a short capture; full stacks within a
 *   cost budget, which a leak or misuse tops up;
 * - `'never'`: no stacks; reports still carry pool, times and context.
 */
export type StackPolicy = 'always' | 'auto' | 'never';

/** Options shared by a detector and each pool it watches. A pool's own value wins. */
export interface DetectorOptions {
  /** A lease held longer than this is a leak. `Infinity` turns the timer check off. Default `30000`. */
  leakThresholdMs?: number;
  /** When to capture the acquiring stack. Default `'auto'`. */
  stacks?: StackPolicy;
  /** Shorthand for `detector.on('leak', fn)`. Default none. */
  onLeak?: (report: LeakReport) => void;
  /**
   * Called at each acquire, in the caller's async context; the labels it returns are
   * recorded with the lease, e.g. `() => ({ requestId: als.getStore()?.id })`. Default none.
   */
  context?: () => Labels | undefined | null;
  /**
   * Thresholds of their own for known long work, by call site: `path` or `path:line`
   * as reports show it, e.g. `{ 'src/reports.ts:42': 300_000 }`. Default none.
   */
  callSiteThresholdsMs?: Readonly<Record<string, number>>;
  /**
   * Take back a lease held longer than this while its connection is idle or idle in a
   * transaction (never one with a query in flight): destroyed through the pool so its slot
   * returns, reported as a leak of kind `reclaimed`. The app's later release of it is
   * absorbed. Only for pools whose driver shows activity and which can destroy a lease.
   * Default `Infinity` (off).
   */
  reclaimAfterMs?: number;
}

/** Options for one watched pool. */
export interface WatchOptions extends DetectorOptions {
  /** Pool name in reports and metrics. Default: the adapter's, e.g. `'generic-pool'`. */
  name?: string;
  /** How to watch a pool poolwatch does not recognise. Default none. */
  adapter?: AdapterSpec;
}

/** Options after defaults, as a watched pool uses them. */
export interface ResolvedOptions {
  leakThresholdMs: number;
  stacks: StackPolicy;
  onLeak: ((report: LeakReport) => void) | undefined;
  context: (() => Labels | undefined | null) | undefined;
  callSiteThresholdsMs: Readonly<Record<string, number>> | undefined;
  reclaimAfterMs: number;
}

export const defaults: ResolvedOptions = Object.freeze({
  leakThresholdMs: 30_000,
  stacks: 'auto',
  onLeak: undefined,
  context: undefined,
  callSiteThresholdsMs: undefined,
  reclaimAfterMs: Infinity,
});

const detectorKeys = ['leakThresholdMs', 'stacks', 'onLeak', 'context', 'callSiteThresholdsMs', 'reclaimAfterMs'] as const;
const watchKeys = [...detectorKeys, 'name', 'adapter'] as const;
const stackPolicies: readonly StackPolicy[] = ['always', 'auto', 'never'];

function invalid(message: string): PoolwatchTypeError {
  return new PoolwatchTypeError(codes.invalidOption, message);
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function checkKeys(options: object, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    const near = allowed.find((k) => distance(k.toLowerCase(), key.toLowerCase()) <= 3);
    const hint = near ? ` Did you mean \`${near}\`?` : '';
    throw invalid(`Unknown option \`${key}\` in ${where}.${hint} Expected one of: ${allowed.join(', ')}.`);
  }
}

function checkObject(options: unknown, where: string): asserts options is Record<string, unknown> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid(`Expected the options of ${where} to be an object, got ${describe(options)}.`);
  }
}

function resolveShared(options: Record<string, unknown>, base: ResolvedOptions): ResolvedOptions {
  const { leakThresholdMs = base.leakThresholdMs, stacks = base.stacks, onLeak, context, callSiteThresholdsMs, reclaimAfterMs = base.reclaimAfterMs } = options;
  if (typeof reclaimAfterMs !== 'number' || Number.isNaN(reclaimAfterMs) || reclaimAfterMs <= 0) {
    throw invalid(`Expected \`reclaimAfterMs\` to be a positive number, or Infinity to leave leases alone, got ${describe(reclaimAfterMs)}.`);
  }
  if (typeof leakThresholdMs !== 'number' || Number.isNaN(leakThresholdMs) || leakThresholdMs <= 0) {
    throw invalid(`Expected \`leakThresholdMs\` to be a positive number or Infinity, got ${describe(leakThresholdMs)}.`);
  }
  if (!stackPolicies.includes(stacks as StackPolicy)) {
    throw invalid(`Expected \`stacks\` to be one of 'always', 'auto', 'never', got ${describe(stacks)}.`);
  }
  if (onLeak !== undefined && typeof onLeak !== 'function') {
    throw invalid(`Expected \`onLeak\` to be a function, got ${describe(onLeak)}.`);
  }
  if (context !== undefined && typeof context !== 'function') {
    throw invalid(`Expected \`context\` to be a function returning labels, got ${describe(context)}.`);
  }
  if (callSiteThresholdsMs !== undefined) {
    if (typeof callSiteThresholdsMs !== 'object' || callSiteThresholdsMs === null || Array.isArray(callSiteThresholdsMs)) {
      throw invalid(`Expected \`callSiteThresholdsMs\` to be an object of call sites to thresholds, got ${describe(callSiteThresholdsMs)}.`);
    }
    for (const [site, ms] of Object.entries(callSiteThresholdsMs)) {
      if (site === '' || typeof ms !== 'number' || Number.isNaN(ms) || ms <= 0) {
        throw invalid(`Expected \`callSiteThresholdsMs[${JSON.stringify(site)}]\` to be a positive number or Infinity, got ${describe(ms)}.`);
      }
    }
  }
  return {
    leakThresholdMs,
    reclaimAfterMs,
    stacks: stacks as StackPolicy,
    callSiteThresholdsMs: { ...base.callSiteThresholdsMs, ...(callSiteThresholdsMs as Record<string, number> | undefined) },
    onLeak: (onLeak as ResolvedOptions['onLeak']) ?? base.onLeak,
    context: (context as ResolvedOptions['context']) ?? base.context,
  };
}

/** Validates `createDetector()` options; throws a TypeError naming the option and value. */
export function resolveDetectorOptions(options: unknown = {}): ResolvedOptions {
  checkObject(options, 'createDetector()');
  checkKeys(options, detectorKeys, 'createDetector()');
  return resolveShared(options, defaults);
}

/** Validates `watch()` options against the detector's; throws a TypeError naming the option and value. */
export function resolveWatchOptions(
  options: unknown,
  base: ResolvedOptions,
): ResolvedOptions & { name: string | undefined; adapter: unknown } {
  if (options === undefined) return { ...base, onLeak: undefined, name: undefined, adapter: undefined };
  checkObject(options, 'watch()');
  checkKeys(options, watchKeys, 'watch()');
  const { name, adapter } = options;
  if (name !== undefined && (typeof name !== 'string' || name.trim() === '')) {
    throw invalid(`Expected \`name\` to be a non-empty string, got ${describe(name)}.`);
  }
  // The detector's onLeak already receives every pool's leaks; a pool's own is extra.
  const shared = resolveShared(options, { ...base, onLeak: undefined });
  return { ...shared, name, adapter };
}
