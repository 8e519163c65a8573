import { formatDuration, formatLabels } from './report.js';
import type { Lease, LeaseInfo } from './lease.js';
import type { Labels } from './options.js';
import { safeLabels } from './labels.js';
import { escapeLines } from './escape.js';
import type { Activity } from './activity.js';

/**
 * Why a pool counts as exhausted: a request has waited too long (`saturated`), the pool
 * gave up on one (`timeout`), or an acquire failed because the pool could not open a
 * connection (`failed`).
 */
export type ExhaustionReason = 'saturated' | 'timeout' | 'failed';

/**
 * What ran the pool dry, as poolwatch judges it from the holders:
 * - `leak`: most holders are idle, or idle in a transaction, well past the pool's usual hold;
 * - `saturation`: the holders are busy: the pool is too small for this load;
 * - `unreachable`: nothing is leased and the pool cannot open a connection;
 * - `self-deadlock`: most holders wait for a second connection of the same pool from their own request.
 */
export type Verdict = 'leak' | 'saturation' | 'unreachable' | 'self-deadlock';

/** A verdict with what backs it. */
export interface Judgement {
  readonly verdict: Verdict;
  /** For `saturation`: the size that would have served the load. */
  readonly suggestedMax?: number | undefined;
  /** For `unreachable`: the driver's own error. */
  readonly cause?: unknown;
}

/** The holders of a pool that ran dry, from one call site. */
export interface HolderGroup {
  /** `path:line:column` of the acquiring line, or undefined when no stack was captured. */
  readonly callSite: string | undefined;
  readonly count: number;
  readonly oldestHeldMs: number;
  /** The labels of up to three of its leases, oldest first. */
  readonly contexts: readonly Labels[];
  /** How many of its leases are idle, running a query, or idle in a transaction, where the driver shows it. */
  readonly activity: Readonly<Partial<Record<Activity, number>>>;
  /** The last statement of its oldest lease that shows one, values replaced by `?`. */
  readonly lastQuery: string | undefined;
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
  /** What ran the pool dry; undefined when poolwatch knows of no holder to judge and the pool could still open connections. */
  readonly verdict: Verdict | undefined;
  /** For `saturation`: the pool size that would have served this load. */
  readonly suggestedMax: number | undefined;
  /** For `unreachable`: the driver's own error, why no connection could be opened. */
  readonly cause: unknown;
  /** The text appended to the pool's own error, and shown in logs. */
  readonly message: string;
}

// Contexts shown per group: enough to see a pattern, not a log storm.
const contextsShown = 3;

interface Group {
  callSite: string | undefined;
  count: number;
  oldestHeldMs: number;
  contexts: Labels[];
  activity: Partial<Record<Activity, number>>;
  lastQuery: string | undefined;
}

/** Open leases grouped by call site, the largest group first: who holds a pool, as every report of it shows. */
export function groupHolders(leases: readonly LeaseInfo[]): HolderGroup[] {
  const bySite = new Map<string | undefined, Group>();
  for (const lease of leases) {
    const callSite = lease.callSite;
    let entry = bySite.get(callSite);
    if (entry === undefined) {
      entry = { callSite, count: 0, oldestHeldMs: 0, contexts: [], activity: {}, lastQuery: undefined };
      bySite.set(callSite, entry);
    }
    entry.count++;
    entry.oldestHeldMs = Math.max(entry.oldestHeldMs, Math.round(lease.heldMs));
    if (entry.contexts.length < contextsShown) {
      // Read through safeLabels only: the context function's own object may throw as it is read.
      const labels = safeLabels(lease.context);
      if (Object.keys(labels).length > 0) entry.contexts.push(labels);
    }
    const activity = lease.activity;
    if (activity !== undefined) entry.activity[activity] = (entry.activity[activity] ?? 0) + 1;
    entry.lastQuery ??= lease.lastQuery;
  }
  return [...bySite.values()]
    .sort((a, b) => b.count - a.count || b.oldestHeldMs - a.oldestHeldMs)
    .map((g) => Object.freeze({ ...g, contexts: Object.freeze(g.contexts), activity: Object.freeze(g.activity) }));
}

const activityWords: Record<Activity, string> = { idle: 'idle', query: 'in a query', 'idle-in-transaction': 'idle in a transaction', listening: 'listening (LISTEN)' };

/** What a group's connections are doing, as a holders line ends: `; idle in a transaction, last query: …`, or nothing. */
export function describeGroupActivity(g: HolderGroup): string {
  const parts = (Object.entries(g.activity) as [Activity, number][]).map(([activity, count]) => (count === g.count ? activityWords[activity] : `${count} ${activityWords[activity]}`));
  const query = g.lastQuery === undefined ? '' : `, last query: ${g.lastQuery}`;
  return parts.length === 0 ? '' : `; ${parts.join(', ')}${query}`;
}

/** Describes who holds a pool: its open leases (oldest first), grouped by call site. */
export function describeExhaustion(
  pool: string,
  reason: ExhaustionReason,
  capacity: number | undefined,
  waiting: number,
  longestWaitMs: number,
  leases: readonly Lease[],
  suppressed: number,
  judgement?: Judgement,
  before = 0,
): ExhaustedEvent {
  const groups = groupHolders(leases);
  // What the pool itself counts as leased: poolwatch's leases and those taken before watch().
  const n = leases.length + before;
  const size = capacity === undefined ? `${n} ${n === 1 ? 'connection' : 'connections'}` : `${n} of ${capacity} connections`;
  const waited = formatDuration(longestWaitMs);
  // For a request that gave up or failed, its own wait: the others may have been served since.
  const queue =
    reason === 'saturated'
      ? `${waiting} waiting, the longest for ${waited}`
      : `${waiting} waiting; the request that ${reason === 'timeout' ? 'gave up' : 'failed'} had waited ${waited}`;
  const verdict = judgement?.verdict;
  let lines: string[];
  if (verdict === 'unreachable') {
    const what = reason === 'timeout' ? `gave up waiting for a connection after ${waited}` : 'could not give a connection';
    const cause = judgement!.cause as { message?: unknown; code?: unknown } | undefined;
    const why = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message.split('\n')[0]! : 'no connection could be opened';
    const leased = n === 0 ? 'none of its connections is leased and' : `${n === 1 ? '1 connection' : `${n} connections`} leased before watch(), and`;
    lines = [`poolwatch: pool "${pool}" ${what}: the database is unreachable (${why}), not a leak: ${leased} it cannot open one; ${waiting} waiting.`];
  } else {
    // The verdict closes the line, in words a responder acts on.
    const said =
      verdict === 'leak'
        ? ` A connection leak: these connections ${leases.some((lease) => lease.activity !== undefined) ? 'sit idle (or idle in a transaction)' : 'have been held'} far past the usual hold; fix the acquiring line below, which does not give its connection back.`
        : verdict === 'self-deadlock'
          ? ' A self-deadlock: the requests holding these connections each wait for a second one from the same pool; take one connection per request, or give it back first.'
          : verdict === 'saturation'
            ? ` Too small for this load, not a leak: the holders are busy${judgement?.suggestedMax === undefined ? '' : `; about ${judgement.suggestedMax} connections would have served it (raise max, or shorten the work)`}.`
            : '';
    lines = [`poolwatch: pool "${pool}" ${reason === 'timeout' ? 'gave up waiting for a connection' : 'ran dry'}: ${size} leased, ${queue}.${said} Held by:`];
  }
  for (const g of groups) {
    const where = g.callSite ?? 'an unknown line (no stack captured)';
    const leasesText = g.count === 1 ? '1 lease' : `${g.count} leases`;
    const contexts = g.contexts.length === 0 ? '' : `; e.g. ${g.contexts.map(formatLabels).join(' | ')}`;
    lines.push(`  ${leasesText} from ${where}, oldest held ${formatDuration(g.oldestHeldMs)}${describeGroupActivity(g)}${contexts}`);
  }
  if (verdict !== 'unreachable') {
    if (before > 0) lines.push(`  ${before === 1 ? '1 lease' : `${before} leases`} taken before watch(): poolwatch cannot name their lines`);
    else if (leases.length === 0) lines.push('  no lease poolwatch knows of (connections taken before watch(), or held by the pool itself)');
  }
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
    verdict: judgement?.verdict,
    suggestedMax: judgement?.suggestedMax,
    cause: judgement?.cause,
    // Each line escaped as one line: a label, a query or a driver's error cannot start a line of its own.
    message: escapeLines(lines),
  });
}

/** An event's message on one line, its holders included: for a table of events, where a line ending in "Held by:" says nothing. */
export function oneLine(message: string): string {
  const [first = '', ...holders] = message.split('\n');
  return holders.length === 0 ? first : `${first} ${holders.map((line) => line.trim()).join('; ')}`;
}

/**
 * Appends the holders to the pool's own error, keeping its class, name, code and the
 * start of its message, so the log line the team already sees names the culprit.
 */
export function nameHolders(error: unknown, event: ExhaustedEvent): void {
  if (typeof error !== 'object' || error === null) return;
  const e = error as Error;
  try {
    // A database out of reach is said by the driver's own words: the responder's search for them must find them as they are.
    if (event.verdict === 'unreachable') {
      Object.defineProperty(e, 'poolwatch', { value: event, configurable: true, writable: true, enumerable: false });
      return;
    }
    const before = e.message;
    e.message = `${before}\n${event.message}`;
    if (typeof e.stack === 'string' && before !== '' && e.stack.includes(before)) e.stack = e.stack.replace(before, e.message);
    Object.defineProperty(e, 'poolwatch', { value: event, configurable: true, writable: true, enumerable: false });
  } catch {
    // A frozen error stays as the pool made it.
  }
}
