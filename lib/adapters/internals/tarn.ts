import type { Internals } from './probe.js';

/** What poolwatch reads of a tarn 3 `Pool` beyond its documented API. */
export interface TarnInternals {
  /** The leased resources, each holding its `resource` (a protected field). */
  readonly used?: ReadonlyArray<{ resource: unknown }>;
  readonly max?: number;
  readonly acquireTimeoutMillis?: number;
  numFree?(): number;
  /** Runs the pool's destroyer on one resource (its own path for a resource that fails validation). */
  _destroy?(resource: unknown): unknown;
  /** Serves a waiter, creating a resource when there is room. */
  _tryAcquireOrCreate?(): void;
}

export const tarnShapes: Internals<TarnInternals>['shapes'] = [
  { name: 'pool.used', serves: ['misuse'], present: (p) => Array.isArray(p.used) },
  { name: 'pool.max', serves: ['capacity'], present: (p) => typeof p.max === 'number' },
  { name: 'pool.acquireTimeoutMillis', serves: ['acquireTimeout'], present: (p) => typeof p.acquireTimeoutMillis === 'number' },
  { name: 'pool.numFree()', serves: ['idle'], present: (p) => typeof p.numFree === 'function' },
  { name: 'pool._destroy()', serves: ['reclaim'], present: (p) => typeof p._destroy === 'function' },
  { name: 'pool._tryAcquireOrCreate()', serves: ['reclaim'], present: (p) => typeof p._tryAcquireOrCreate === 'function' },
];

export const tarnInternals: Internals<TarnInternals> = {
  library: 'tarn',
  checked: '>=3.0.1 <4',
  offers: ['misuse', 'capacity', 'idle', 'acquireTimeout', 'exhaustion', 'reclaim'],
  shapes: tarnShapes,
};

/**
 * Destroys one leased resource as tarn destroys one that fails validation: out of its
 * leased list, through its destroyer, and a waiter served in its place. tarn has no public
 * way to discard one resource. Returns false, touching nothing, when the pool lacks a field
 * this needs or does not count `resource` as leased.
 */
export function tarnDestroy(pool: TarnInternals | undefined, resource: unknown): boolean {
  const used = pool?.used as Array<{ resource: unknown }> | undefined;
  if (!Array.isArray(used) || typeof pool!._destroy !== 'function' || typeof pool!._tryAcquireOrCreate !== 'function') return false;
  const index = used.findIndex((entry) => entry.resource === resource);
  if (index === -1) return false;
  used.splice(index, 1);
  // tarn's own _destroy never rejects: a destroyer's failure goes to its destroyFail handlers.
  void pool!._destroy(resource);
  pool!._tryAcquireOrCreate();
  return true;
}

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
