import { tarnShapes, type TarnInternals } from './tarn.js';
import type { Internals } from './probe.js';

/**
 * What poolwatch relies on of knex 3 beyond its documented API:
 * - the client's `acquireConnection()`/`releaseConnection(c)` through which every
 *   connection passes, and `runner(builder)`/`transaction(...)`, which it wraps;
 * - a Runner acquires in `ensureConnection(callback, params)` (params only for a stream),
 *   a Transaction in `acquireConnection(config, callback)`, synchronously from its caller;
 * - `knex.transaction()` and `transactionProvider()` call the instance's
 *   `context.transaction()`, which calls `client.transaction()` synchronously (wrapped when
 *   present, for the app's line; without it the client's is, as before);
 * - `client.pool` is a tarn pool (made at construction when a connection is configured).
 */
export interface KnexInternals {
  readonly client: { readonly pool?: TarnInternals };
}

export const knexInternals: Internals<KnexInternals> = {
  library: 'knex',
  checked: '>=2.2.0 <4',
  related: (k) => [k.client],
  offers: ['misuse', 'capacity', 'idle', 'acquireTimeout', 'exhaustion', 'handover', 'activity', 'reclaim'],
  // The tarn pool's shapes, read through the client; a knex built without a connection has no pool to read yet.
  shapes: tarnShapes.map((shape) => ({ name: `knex.client.${shape.name}`, serves: shape.serves, present: (k: KnexInternals) => k.client.pool === undefined || shape.present(k.client.pool) })),
};
