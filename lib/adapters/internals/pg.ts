import type { Internals } from './probe.js';

/**
 * What poolwatch reads of a pg-pool 3 pool (`pg.Pool` in pg 8) beyond its documented API:
 * the options it was built with. Its getters (`totalCount`, `idleCount`, `waitingCount`)
 * and the error text of its connection timeout are its public surface.
 */
export interface PgPoolInternals {
  readonly options?: { readonly max?: number; readonly connectionTimeoutMillis?: number };
  readonly idleCount?: number;
}

export const pgInternals: Internals<PgPoolInternals> = {
  library: 'pg-pool',
  checked: '>=3.1.1 <4',
  offers: ['misuse', 'capacity', 'idle', 'acquireTimeout', 'exhaustion', 'destroys', 'handover', 'activity', 'reclaim'],
  shapes: [
    { name: 'pool.options.max', serves: ['capacity'], present: (p) => typeof p.options?.max === 'number' },
    { name: 'pool.options', serves: ['acquireTimeout'], present: (p) => typeof p.options === 'object' && p.options !== null },
    { name: 'pool.idleCount', serves: ['idle'], present: (p) => typeof p.idleCount === 'number' },
  ],
};

/** The message pg-pool rejects `connect()` with when `connectionTimeoutMillis` runs out. */
export const timeoutMessage = 'timeout exceeded when trying to connect';
