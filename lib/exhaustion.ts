import { formatDuration, formatLabels } from './report.js';
import type { Lease, LeaseInfo } from './lease.js';
import type { Labels } from './options.js';
import { safeLabels } from './labels.js';

/** Why a pool counts as exhausted. */
export type ExhaustionReason = 'saturated' | 'timeout';

/** The holders of a pool that ran dry, from one call site. */
export interface HolderGroup {
  /** `path:line:column` of the acquiring line, or undefined when no stack was captured. */
  readonly callSite: string | undefined;
  readonly count: number;
  readonly oldestHeldMs: number;
  /** The labels of up to three of its leases, oldest first. */
  readonly contexts: readonly Labels[];
}

/**
 * Waiting for a connection hurts: a request has waited for a good share of the pool's
 * acquire timeout (`saturated`), or the pool gave up on one (`timeout`). Who holds it.
 */
export interface ExhaustedEvent {
  readonly pool: string;
  readonly reason: ExhaustionReason;
  /** The pool's maximum size, when it says. */
  readonly capacity: number | undefined;
  readonly open: number;
  readonly waiting: number;
  /** How long the longest-waiting request had waited (for `timeout`, the one that gave up). */
  readonly longestWaitMs: number;
  /** Every open lease, oldest first. */
  readonly holders: readonly LeaseInfo[];
  /** The holders grouped by call site, the largest group first. */
  readonly groups: readonly HolderGroup[];
  /** Events left out since the last one, by the rate limit. */
  readonly suppressed: number;
  /** The text appended to the pool's own error, and shown in logs. */
  readonly message: string;
}

// Contexts shown per group: enough to see a pattern, not a log storm.
const contextsShown = 3;

function group(leases: readonly Lease[], at: number): HolderGroup[] {
  const bySite = new Map<string | undefined, { callSite: string | undefined; count: number; oldestHeldMs: number; contexts: Labels[] }>();
  for (const lease of leases) {
    const callSite = lease.callSite;
    let entry = bySite.get(callSite);
    if (entry === undefined) {
      entry = { callSite, count: 0, oldestHeldMs: at - lease.acquiredMono, contexts: [] };
      bySite.set(callSite, entry);
    }
    entry.count++;
    if (entry.contexts.length < contextsShown && Object.keys(lease.context).length > 0) entry.contexts.push(safeLabels(lease.context));
  }
  return [...bySite.values()]
    .sort((a, b) => b.count - a.count || b.oldestHeldMs - a.oldestHeldMs)
    .map((g) => Object.freeze({ ...g, contexts: Object.freeze(g.contexts) }));
}

/** Describes who holds a pool: its open leases (oldest first), grouped by call site. */
export function describeExhaustion(
  pool: string,
  reason: ExhaustionReason,
  capacity: number | undefined,
  waiting: number,
  longestWaitMs: number,
  leases: readonly Lease[],
  at: number,
  suppressed: number,
): ExhaustedEvent {
  const groups = group(leases, at);
  const n = leases.length;
  const size = capacity === undefined ? `${n} ${n === 1 ? 'connection' : 'connections'}` : `${n} of ${capacity} connections`;
  const waited = formatDuration(longestWaitMs);
  const lines =
    reason === 'timeout' && n === 0
      ? [`poolwatch: pool "${pool}" gave up waiting for a connection after ${waited} with none leased: it could not create one (is the database down or out of reach?); ${waiting} waiting.`]
      : [`poolwatch: pool "${pool}" ${reason === 'timeout' ? 'gave up waiting for a connection' : 'ran dry'}: ${size} leased, ${waiting} waiting, the longest for ${waited}. Held by:`];
  for (const g of groups) {
    const where = g.callSite ?? 'an unknown line (no stack captured)';
    const leasesText = g.count === 1 ? '1 lease' : `${g.count} leases`;
    const contexts = g.contexts.length === 0 ? '' : `; e.g. ${g.contexts.map(formatLabels).join(' | ')}`;
    lines.push(`  ${leasesText} from ${where}, oldest held ${formatDuration(g.oldestHeldMs)}${contexts}`);
  }
  if (n === 0 && reason !== 'timeout') lines.push('  no lease poolwatch knows of (connections taken before watch(), or held by the pool itself)');
  // Frozen like every payload: one listener cannot change what the next one, or the error, shows.
  return Object.freeze({
    pool,
    reason,
    capacity,
    open: leases.length,
    waiting,
    longestWaitMs,
    holders: Object.freeze(leases.map((lease) => Object.freeze(lease.toJSON() as LeaseInfo))),
    groups: Object.freeze(groups),
    suppressed,
    message: lines.join('\n'),
  });
}

/**
 * Appends the holders to the pool's own error, keeping its class, name, code and the
 * start of its message, so the log line the team already sees names the culprit.
 */
export function nameHolders(error: unknown, event: ExhaustedEvent): void {
  if (typeof error !== 'object' || error === null) return;
  const e = error as Error;
  try {
    const before = e.message;
    e.message = `${before}\n${event.message}`;
    if (typeof e.stack === 'string' && before !== '' && e.stack.includes(before)) e.stack = e.stack.replace(before, e.message);
    Object.defineProperty(e, 'poolwatch', { value: event, configurable: true, writable: true, enumerable: false });
  } catch {
    // A frozen error stays as the pool made it.
  }
}
