import type { Internals } from './probe.js';

/**
 * What poolwatch relies on of postgres.js 3.4 (the `postgres` package) beyond its
 * README. Its pool lives in closures (queues, connections, the query handler) that no
 * field exposes, so poolwatch reads one field and leans on three behaviours:
 * - `sql.options`, the parsed options (in its typings, not its README): `max` is the capacity;
 * - `reserve()` resolves with a fresh function whose own, writable `release` gives the
 *   connection back (wrapped at each handover; a second call hands it back again);
 * - `begin(fn)` calls `fn` once, when BEGIN has run on the connection it holds, and
 *   settles only after COMMIT or ROLLBACK has given that connection back to the pool
 *   (or the connection closed: 3.4.2 and later reject then).
 * Each instance's `reserve` and `begin` are its own properties, so wrapping them in place
 * touches no other instance.
 */
export interface PostgresInternals {
  readonly options?: { readonly max?: number };
  /** The copy's error class: an instance is a plain function, so this tells which copy made it. */
  readonly PostgresError?: { readonly prototype?: unknown };
}

export const postgresInternals: Internals<PostgresInternals> = {
  library: 'postgres',
  checked: '>=3.4.0 <4',
  offers: ['misuse', 'capacity'],
  shapes: [{ name: 'sql.options.max', serves: ['capacity'], present: (sql) => typeof sql.options?.max === 'number' }],
  related: (sql) => [sql.PostgresError?.prototype],
};

/** The codes postgres.js gives an error when the connection itself went away. */
export const connectionLost: ReadonlySet<unknown> = new Set(['CONNECTION_CLOSED', 'CONNECTION_DESTROYED']);
