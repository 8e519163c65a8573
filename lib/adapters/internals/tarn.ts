import type { Internals } from './probe.js';

/** What poolwatch reads of a tarn 3 `Pool` beyond its documented API. */
export interface TarnInternals {
  /** The leased resources, each holding its `resource` (a protected field). */
  readonly used?: ReadonlyArray<{ resource: unknown }>;
  readonly max?: number;
  readonly acquireTimeoutMillis?: number;
  numFree?(): number;
}

export const tarnShapes: Internals<TarnInternals>['shapes'] = [
  { name: 'pool.used', serves: ['misuse'], present: (p) => Array.isArray(p.used) },
  { name: 'pool.max', serves: ['capacity'], present: (p) => typeof p.max === 'number' },
  { name: 'pool.acquireTimeoutMillis', serves: ['acquireTimeout'], present: (p) => typeof p.acquireTimeoutMillis === 'number' },
  { name: 'pool.numFree()', serves: ['idle'], present: (p) => typeof p.numFree === 'function' },
];

export const tarnInternals: Internals<TarnInternals> = {
  library: 'tarn',
  checked: '>=3.0.1 <4',
  offers: ['misuse', 'capacity', 'idle', 'acquireTimeout', 'exhaustion'],
  shapes: tarnShapes,
};

/**
 * Whether tarn's own bookkeeping counts `resource` as leased. A pool that does not show
 * its leased list (a knex `connectionPool` of another kind) counts as leased: poolwatch
 * then has no grounds to call the release misuse.
 */
export function tarnHolds(pool: TarnInternals | undefined, resource: unknown): boolean {
  const used = pool?.used;
  if (!Array.isArray(used)) return true;
  // Only on a release poolwatch has no record of: never on the hot path.
  return used.some((entry) => entry.resource === resource);
}
