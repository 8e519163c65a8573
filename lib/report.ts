import { codes } from './errors.js';
import { codeFrame } from './code-frame.js';
import { formatFrame } from './stack.js';
import type { Lease } from './lease.js';
import type { Labels, StackPolicy } from './options.js';
import { frozenLabels, safeLabels } from './labels.js';

/** Why a lease counts as leaked. */
export type LeakKind = 'threshold' | 'scope-ended' | 'collected';

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

/** Labels as people read them: `route=GET /users requestId=r-7`, or `(none)`. */
export function formatLabels(labels: Labels): string {
  const entries = Object.entries(safeLabels(labels));
  if (entries.length === 0) return '(none)';
  return entries.map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`).join(' ');
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

  /** @internal */
  constructor(lease: Lease, kind: LeakKind, heldMs: number, occurrence = 1) {
    const how = lease.via === lease.watched.adapter.acquireMethod ? '' : ` by ${lease.via}()`;
    const where = lease.callSite === undefined ? how : `, acquired${how} at ${lease.callSite}`;
    const what =
      kind === 'threshold'
        ? `held for ${formatDuration(heldMs)} (threshold ${formatDuration(lease.watched.thresholdMs)})`
        : kind === 'scope-ended'
          ? `still held when its scope ended, after ${formatDuration(heldMs)}`
          : `garbage-collected without a release, after ${formatDuration(heldMs)}`;
    super(`Connection leak in pool "${lease.pool}": lease #${lease.leaseId} ${what}${where}`);
    this.kind = kind;
    this.occurrence = occurrence;
    this.pool = lease.pool;
    this.leaseId = lease.leaseId;
    this.heldMs = Math.round(heldMs);
    this.thresholdMs = lease.watched.thresholdMs;
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
      if (frame !== undefined) out.push('', frame.replace(/^/gm, '    '), '');
    }
    for (const frame of frames.slice(0, frameCount)) {
      out.push(`    ${formatFrame(frame)}`);
    }
    if (frames.length > frameCount) out.push(`    … ${frames.length - frameCount} more frames`);
    out.push(`  context: ${formatLabels(this.context)}`);
    out.push(`  waited ${formatDuration(this.waitedMs)} for the connection; acquired ${new Date(this.acquiredAt).toISOString()}`);
    return out.join('\n');
  }

  toJSON(): object {
    const { kind, pool, leaseId, heldMs, thresholdMs, acquiredAt, waitedMs, via, callSite, stack, occurrence, message, code } = this;
    return { kind, pool, leaseId, heldMs, thresholdMs, acquiredAt, waitedMs, via, callSite, stack, context: safeLabels(this.context), occurrence, message, code };
  }
}
