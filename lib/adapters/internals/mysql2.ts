import type { Internals, Shape } from './probe.js';

/** mysql2's ring queue of connections (denque). */
export interface RingQueue {
  readonly length: number;
  get(index: number): unknown;
}

/** What poolwatch reads of a mysql2 3 PoolConnection: `_pool` is null once the pool discarded it; `_released` is false while leased. */
export interface Mysql2ConnectionInternals {
  _pool: object | null;
  _released: boolean;
}

/** What poolwatch reads of a mysql2 3 callback pool (lib/base/pool.js) beyond its documented API. */
export interface Mysql2PoolInternals {
  /** Idle connections. */
  readonly _freeConnections?: RingQueue;
  /** Where every discard meets: destroy(), a connection the server closed or killed, a failed reset. */
  _removeConnection?(connection: unknown): void;
  readonly config?: { readonly connectionLimit?: number; readonly connectionConfig?: object };
}

export const mysql2Internals: Internals<Mysql2PoolInternals> = {
  library: 'mysql2',
  checked: '>=3.20.0 <4',
  offers: ['misuse', 'capacity', 'idle', 'exhaustion', 'destroys', 'activity', 'reclaim'],
  shapes: [
    { name: 'pool._freeConnections', serves: ['idle', 'misuse'], present: (p) => typeof p._freeConnections?.get === 'function' && typeof p._freeConnections.length === 'number' },
    { name: 'pool._removeConnection()', serves: ['destroys'], present: (p) => typeof p._removeConnection === 'function' },
    { name: 'pool.config.connectionLimit', serves: ['capacity'], present: (p) => typeof p.config?.connectionLimit === 'number' },
  ],
};

/** The same shapes, read through a promise pool's core pool (`.pool`). */
export const mysql2PromiseInternals: Internals<{ readonly pool: Mysql2PoolInternals }> = {
  ...mysql2Internals,
  related: (p) => [p.pool],
  shapes: mysql2Internals.shapes.map(({ name, serves, present }) => ({ name, serves, present: (p: { readonly pool: Mysql2PoolInternals }) => present(p.pool) })),
};

/** Checked on the first connection handed over: a pool's connections exist only then. */
export const mysql2ConnectionShapes: readonly Shape<Mysql2ConnectionInternals>[] = [
  { name: 'connection._released', serves: ['misuse'], present: (c) => typeof c._released === 'boolean' },
  { name: 'connection._pool', serves: ['misuse'], present: (c) => typeof c._pool === 'object' },
];

/**
 * Whether mysql2 itself counts `resource` as leased from `pool`: ours, not marked released,
 * not idle. Undefined when the connection does not show it (mysql2 before 3.20 has no `_released`).
 */
export function isLeasedBy(pool: Mysql2PoolInternals, resource: unknown): boolean | undefined {
  const conn = resource as Partial<Mysql2ConnectionInternals> | null;
  if (typeof conn === 'object' && conn !== null && typeof conn._released !== 'boolean') return undefined;
  if (typeof conn !== 'object' || conn === null || conn._pool !== pool || conn._released !== false) return false;
  // Only reached for a release poolwatch has no lease for: a scan is fine here.
  const free = pool._freeConnections!;
  for (let i = 0; i < free.length; i++) if (free.get(i) === conn) return false;
  return true;
}

/** The message of the error `queueLimit` gives: mysql2 has no acquire timeout, so a full queue is how it runs dry. */
export const queueLimitMessage = 'Queue limit reached.';
