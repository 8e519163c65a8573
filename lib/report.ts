import { codes } from './errors.js';
import { codeFrame } from './code-frame.js';
import { formatFrame } from './stack.js';
import type { Lease } from './lease.js';
import type { Labels, StackPolicy } from './options.js';
import { frozenLabels, safeLabels } from './labels.js';
import { escapeLine, escapeLines } from './escape.js';
import type { Activity } from './activity.js';

/** Why a lease counts as leaked. */
export type LeakKind = 'threshold' | 'scope-ended' | 'collected' | 'reclaimed';

/** Options of {@link LeakReport.format}. */
export interface FormatOptions {
  /** Show the source line of the call site. Default `true`. */
  codeFrame?: boolean;
  /** How many app frames to show. Default `5`. */
  frames?: number;
}

/** Formats a duration for people: `850 ms`, `31.2 s`, `4 min 10 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms - minutes * 60_000) / 1000)} s`;
}

/** Labels as people read them, on one line: `route=GET /users requestId=r-7`, or `(none)`. Control characters in them are escaped. */
export function formatLabels(labels: Labels): string {
  const entries = Object.entries(safeLabels(labels));
  if (entries.length === 0) return '(none)';
  return escapeLine(entries.map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`).join(' '));
}

/** What a lease's activity means, as a report says it. */
export function describeActivity(activity: Activity | undefined, sinceMs: number | undefined, lastQuery: string | undefined): string | undefined {
  if (activity === undefined) return undefined;
  const since = sinceMs === undefined ? '' : ` for ${formatDuration(sinceMs)}`;
  const what =
    activity === 'query' ? `running a query${since}` : activity === 'idle' ? `idle${since}` : activity === 'listening' ? `listening for notifications${since}` : `idle in an open transaction${since}`;
  return lastQuery === undefined ? what : `${what}; last query: ${escapeLine(lastQuery)}`;
}

const whyNoStack: Record<StackPolicy, string> = {
  never: "no stack was captured (stacks: 'never'); set stacks: 'auto' or 'always' to see the acquiring line",
  auto: 'no app frame was found in the acquiring stack',
  always: 'no app frame was found in the acquiring stack',
};

/**
 * A leaked lease. Also an Error: its `stack` is the acquisition stack, library frames
 * removed, so test runners and loggers show where the connection was taken.
 */
export class LeakReport extends Error {
  override readonly name = 'LeakReport';
  readonly code = codes.leak;
  readonly kind: LeakKind;
  readonly pool: string;
  readonly leaseId: number;
  /** How long it had been held when reported. */
  readonly heldMs: number;
  /** The limit this lease was held to: `extend()`'s or its call site's own (`callSiteThresholdsMs`), else the pool's `leakThresholdMs`. */
  readonly thresholdMs: number;
  /** Epoch ms when the pool handed the connection over. */
  readonly acquiredAt: number;
  /** How long the acquire call waited for the connection; not part of `heldMs`. */
  readonly waitedMs: number;
  /** `path:line:column` of the app's acquiring line, when a stack was captured. */
  readonly callSite: string | undefined;
  /** The method the app called to get the connection, e.g. `acquire` or `query`. */
  readonly via: string;
  /** Labels at acquire time; `{}` when none. */
  readonly context: Labels;
  readonly #lease: Lease;

  /** How many leaks this pool has reported from the same call site, this one included. */
  readonly occurrence: number;
  /** What the connection was doing when reported, where the driver lets poolwatch see it. */
  readonly activity: Activity | undefined;
  /** Epoch ms when that activity began. */
  readonly activitySince: number | undefined;
  /** The last statement sent on it, literals and parameter values replaced by `?`. */
  readonly lastQuery: string | undefined;

  /** @internal */
  constructor(lease: Lease, kind: LeakKind, heldMs: number, occurrence = 1) {
    const how = lease.via === lease.watched.adapter.acquireMethod ? '' : ` by ${lease.via}()`;
    const where = lease.callSite === undefined ? how : `, acquired${how} at ${lease.callSite}`;
    // The limit that applied to this lease: extend()'s or its call site's own, else the pool's.
    const limitMs = lease.watched.limitOf(lease);
    const what =
      kind === 'threshold'
        ? `held for ${formatDuration(heldMs)} (threshold ${formatDuration(limitMs)})`
        : kind === 'scope-ended'
          ? `still held when its scope ended, after ${formatDuration(heldMs)}`
          : kind === 'reclaimed'
            ? `taken back after ${formatDuration(heldMs)} held (reclaimAfterMs ${formatDuration(lease.watched.reclaimAfterMs)}): the pool destroyed its connection`
            : `garbage-collected without a release, after ${formatDuration(heldMs)}`;
    const activity = lease.activity;
    const activitySince = lease.activitySince;
    // The strongest sign of a leak comes first: a transaction left open holds its locks too.
    const activityMs = lease.follow === null ? 0 : Math.max(0, lease.acquiredMono + heldMs - Math.max(lease.follow.sinceMono, lease.acquiredMono));
    const first = activity === 'idle-in-transaction' ? ` (idle in an open transaction for ${formatDuration(activityMs)})` : '';
    // One line, whatever the pool's name or the call site's path holds.
    super(escapeLine(`Connection leak in pool "${lease.pool}"${first}: lease #${lease.leaseId} ${what}${where}`));
    this.activity = activity;
    this.activitySince = activitySince;
    this.lastQuery = lease.lastQuery;
    this.kind = kind;
    this.occurrence = occurrence;
    this.pool = lease.pool;
    this.leaseId = lease.leaseId;
    this.heldMs = Math.round(heldMs);
    this.thresholdMs = limitMs;
    this.acquiredAt = lease.acquiredAt;
    this.waitedMs = Math.round(lease.waitedMs);
    this.callSite = lease.callSite;
    this.via = lease.via;
    this.context = frozenLabels(lease.context);
    this.#lease = lease;
    const frames = lease.stack ?? `    (${whyNoStack[lease.watched.stacks]})`;
    Object.defineProperty(this, 'stack', {
      value: `${this.name}: ${this.message}\n${frames}`,
      writable: true,
      configurable: true,
    });
  }

  /** The text shown in logs and test output: message, call site with its source line, app frames, context. */
  format(options: FormatOptions = {}): string {
    const { codeFrame: withCode = true, frames: frameCount = 5 } = options;
    const lease = this.#lease;
    const repeat = this.occurrence > 1 ? ` (leak ${this.occurrence} from this line)` : '';
    const out = [`poolwatch: ${this.message}${repeat}`];
    const { site, frames } = lease.origin;
    if (site === undefined) {
      out.push(`  ${whyNoStack[lease.watched.stacks]}`);
    } else if (withCode) {
      const frame = codeFrame(site.file!, site.line, site.column);
      if (frame !== undefined) out.push('', ...frame.split('\n').map((line) => `    ${line}`), '');
    }
    for (const frame of frames.slice(0, frameCount)) {
      out.push(`    ${formatFrame(frame)}`);
    }
    if (frames.length > frameCount) out.push(`    … ${frames.length - frameCount} more frames`);
    const doing = describeActivity(this.activity, this.activitySince === undefined ? undefined : this.acquiredAt + this.heldMs - this.activitySince, this.lastQuery);
    if (doing !== undefined) out.push(`  connection: ${doing}`);
    if (this.via === 'lease') out.push(`  lease(): ${this.kind === 'collected' ? 'its handle was dropped while open, so nothing can give the connection back' : 'give it back with its handle (release()), or declare it with `await using`, or pass lease() a function'}`);
    out.push(`  context: ${formatLabels(this.context)}`);
    out.push(`  waited ${formatDuration(this.waitedMs)} for the connection; acquired ${new Date(this.acquiredAt).toISOString()}`);
    // Each line escaped as one line: nothing in a label, a query or a path can start a line of its own.
    return escapeLines(out);
  }

  toJSON(): object {
    const { kind, pool, leaseId, heldMs, thresholdMs, acquiredAt, waitedMs, via, callSite, stack, occurrence, message, code, activity, activitySince, lastQuery } = this;
    return { kind, pool, leaseId, heldMs, thresholdMs, acquiredAt, waitedMs, via, callSite, stack, context: safeLabels(this.context), occurrence, message, code, activity, activitySince, lastQuery };
  }
}
