import type { Internals } from './probe.js';

/** What poolwatch relies on of a mariadb 3 promise pool beyond its documented API. */
export interface MariadbPoolInternals {
  /** Idle connections (public in mariadb 3, but not in its typings before 3.1). */
  idleConnections?(): number;
}

/**
 * mariadb's promise pool is recognised by its `toString()`, which starts `poolPromise(`:
 * the class name is minified in its CommonJS build, and `poolCallback(` (mariadb/callback)
 * is a different API that is not claimed.
 */
export function isPromisePool(pool: object): boolean {
  try {
    return String(pool).startsWith('poolPromise(');
  } catch {
    return false;
  }
}

export const mariadbInternals: Internals<MariadbPoolInternals> = {
  library: 'mariadb',
  checked: '>=3.3.1 <4',
  // mariadb shows no maximum or acquire timeout on the pool.
  offers: ['misuse', 'idle', 'exhaustion', 'destroys', 'handover', 'activity', 'reclaim'],
  shapes: [{ name: 'pool.idleConnections()', serves: ['idle'], present: (p) => typeof p.idleConnections === 'function' }],
};

/** mariadb's errno for a pool that gave up (`ER_GET_CONNECTION_TIMEOUT`); the same errno also means "could not connect". */
export const timeoutErrno = 45028;
