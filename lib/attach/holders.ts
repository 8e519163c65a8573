import { formatDuration, formatLabels } from '../report.js';
import { escapeLines } from '../escape.js';
import { describeGroupActivity, type HolderGroup } from '../exhaustion.js';

/**
 * Who holds the connections of one pool, as `poolwatch attach` and `status` print it:
 * plain data, made in the target and sent to the CLI as JSON.
 */
export interface PoolHolders {
  /** The pool's name in reports. */
  readonly pool: string;
  /** The kind of pool, e.g. `pg.Pool (pg-pool)`. */
  readonly kind: string;
  /** `attach`: watched by the attach; `app`: by the app's own poolwatch; `none`: not watched (status). */
  readonly watchedBy: 'attach' | 'app' | 'none';
  readonly capacity: number | undefined;
  /** Connections leased now, by the pool's own count when it says, else poolwatch's. */
  readonly leased: number | undefined;
  readonly waiting: number | undefined;
  /** The leases poolwatch follows, grouped by call site, the largest group first. */
  readonly groups: readonly HolderGroupData[];
  /** Connections leased before the attach and still held, as the pool itself says. */
  readonly before: HeldBefore;
}

/** The leases of one call site, as `exhausted` groups them. */
export type HolderGroupData = HolderGroup;

/** Connections leased before the attach, which poolwatch did not see being acquired. */
export interface HeldBefore {
  readonly count: number;
  /** How long each has been held, oldest first, for those whose pool records it. */
  readonly heldMs: readonly number[];
  /** Why the ages are unknown, when the pool does not record them. */
  readonly noAge: string | undefined;
}


const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** The text of one held-from-before line: `1 connection held from before the attach, for 12.0 s`. */
export function describeHeldBefore(before: HeldBefore, indent = ''): string {
  const what = `${indent}${plural(before.count, 'lease', 'leases')} held from before the attach`;
  if (before.heldMs.length === 0) return `${what}, age unknown${before.noAge === undefined ? '' : ` (${before.noAge})`}`;
  const ages = before.heldMs.map(formatDuration).join(', ');
  const unknown = before.count - before.heldMs.length;
  return `${what}, held ${ages}${unknown > 0 ? ` and ${unknown} of unknown age` : ''}`;
}

/** The holders table, one block per pool. */
export function formatHolders(pools: readonly PoolHolders[]): string {
  if (pools.length === 0) return 'poolwatch: no pool of a supported library was found in the target.';
  const out: string[] = [];
  for (const pool of pools) {
    const size = pool.capacity === undefined ? '' : `, max ${pool.capacity}`;
    const by = pool.watchedBy === 'app' ? ", watched by the app's own poolwatch" : pool.watchedBy === 'none' ? ', not watched' : '';
    const leased = pool.leased === undefined ? 'leased count unknown' : `${pool.leased}${pool.capacity === undefined ? '' : ` of ${pool.capacity}`} ${pool.leased === 1 && pool.capacity === undefined ? 'connection' : 'connections'} leased`;
    const waiting = pool.waiting === undefined ? '' : `, ${pool.waiting} waiting`;
    out.push(`pool "${pool.pool}" (${pool.kind}${size}${by}): ${leased}${waiting}`);
    for (const group of pool.groups) {
      const contexts = group.contexts.length === 0 ? '' : `; e.g. ${group.contexts.map(formatLabels).join(' | ')}`;
      const where = group.callSite ?? 'an unknown line (no stack captured)';
      out.push(`  ${plural(group.count, 'lease', 'leases')} from ${where}, oldest held ${formatDuration(group.oldestHeldMs)}${describeGroupActivity(group)}${contexts}`);
    }
    if (pool.before.count > 0) out.push(describeHeldBefore(pool.before, '  '));
    if (pool.groups.length === 0 && pool.before.count === 0) {
      out.push(pool.leased === undefined ? `  which connections are leased is unknown${pool.before.noAge === undefined ? '' : ` (${pool.before.noAge})`}` : '  no lease held');
    }
  }
  // Each line escaped as one line: a query, a label or a path from the target cannot start a line of its own.
  return escapeLines(out);
}
