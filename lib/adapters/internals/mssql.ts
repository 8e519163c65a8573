import { tarnHolds, type TarnInternals } from './tarn.js';
import type { Internals, Shape } from './probe.js';

/**
 * What poolwatch reads of an mssql `ConnectionPool` (lib/base/connection-pool.js, which
 * the tedious and msnodesqlv8 drivers' pools extend) beyond its documented API:
 * - `pool.pool`: the tarn pool `connect()` makes, whose `used` list says which connections
 *   are leased. There is none before `connect()` has finished and after `close()`
 *   (undefined, then null): mssql's release() then gives nothing back either.
 * - `available` (documented) reads that tarn pool's `numFree()`, and throws without one.
 * - `config.pool` is the app's own pool options, handed to tarn as they are: `max`
 *   (mssql's default 10), `acquireTimeoutMillis` (tarn's default when unset).
 * Checked on mssql 7.0.0 (the first on tarn 3) to 12.7.14 by reading their source;
 * tested on 12.7.14.
 */
export interface MssqlPoolInternals {
  readonly pool?: TarnInternals | null;
  readonly available?: number;
  readonly config?: { readonly pool?: { readonly max?: unknown; readonly acquireTimeoutMillis?: unknown } };
}

/** The pool size mssql gives tarn when `config.pool.max` is unset. */
export const defaultMax = 10;

// Without a tarn pool (not yet connected) there is nothing to read yet: checked again at the first handover.
const tarnPool: Shape<MssqlPoolInternals> = {
  name: 'pool.pool.used',
  serves: ['misuse'],
  present: (p) => p.pool === undefined || p.pool === null || Array.isArray(p.pool.used),
};

export const mssqlInternals: Internals<MssqlPoolInternals> = {
  library: 'mssql',
  checked: '>=7.0.0 <13',
  offers: ['misuse', 'capacity', 'idle', 'acquireTimeout', 'exhaustion'],
  shapes: [
    tarnPool,
    { name: 'pool.available', serves: ['idle'], present: (p) => 'available' in p },
    { name: 'pool.config', serves: ['capacity', 'acquireTimeout'], present: (p) => typeof p.config === 'object' && p.config !== null },
  ],
};

/**
 * Checked once a connection has been handed over, when the tarn pool must exist: passed
 * the ConnectionPool itself (a connection has nothing of its own poolwatch reads).
 */
export const mssqlConnectedShapes: readonly Shape<MssqlPoolInternals>[] = [
  { name: 'pool.pool.used', serves: ['misuse'], present: (p) => typeof p.pool === 'object' && p.pool !== null && Array.isArray(p.pool.used) },
];

/** Whether the tarn pool counts `resource` as leased; true when there is no tarn pool to ask (poolwatch then judges nothing). */
export function mssqlHolds(pool: MssqlPoolInternals, resource: unknown): boolean {
  return tarnHolds(pool.pool ?? undefined, resource);
}

/** Idle connections: none before `connect()` and after `close()`, when `available` would throw. */
export function idleOf(pool: MssqlPoolInternals): number | undefined {
  if (pool.pool === undefined || pool.pool === null) return 0;
  return pool.available;
}
