import { installedVersion, nameClass, type Internals, type Shape } from './probe.js';

/**
 * What poolwatch reads of a pg-pool 3 pool (`pg.Pool` in pg 8) beyond its documented API:
 * the options it was built with. Its getters (`totalCount`, `idleCount`, `waitingCount`)
 * and the error text of its connection timeout are its public surface.
 */
export interface PgPoolInternals {
  readonly options?: { readonly max?: number; readonly connectionTimeoutMillis?: number };
  readonly idleCount?: number;
  /**
   * Every client the pool has made and not removed: those connecting too. pg-pool assigns
   * `release` to a client the first time it hands it over, so one without is still being
   * opened (or set up by the `onConnect` and `verify` hooks), not leased.
   */
  readonly _clients?: ReadonlyArray<{ readonly release?: unknown }>;
}

export const pgInternals: Internals<PgPoolInternals> = {
  library: 'pg-pool',
  checked: '>=3.1.1 <4',
  offers: ['misuse', 'capacity', 'idle', 'acquireTimeout', 'exhaustion', 'destroys', 'handover', 'activity', 'reclaim'],
  shapes: [
    { name: 'pool.options.max', serves: ['capacity'], present: (p) => typeof p.options?.max === 'number' },
    { name: 'pool.options', serves: ['acquireTimeout'], present: (p) => typeof p.options === 'object' && p.options !== null },
    { name: 'pool.idleCount', serves: ['idle'], present: (p) => typeof p.idleCount === 'number' },
    { name: 'pool._clients', serves: ['exhaustion'], present: (p) => Array.isArray(p._clients) },
  ],
};

/** The message pg-pool rejects `connect()` with when `connectionTimeoutMillis` runs out. */
export const timeoutMessage = 'timeout exceeded when trying to connect';

/** What poolwatch reads of a pg `Client` (checked against pg >=8.0.3 <9) to follow its activity. */
export interface PgClientInternals {
  readonly connection?: { on?: unknown };
  readonly readyForQuery?: unknown;
  readonly native?: unknown;
  query?: unknown;
  /** Public in later pg 8 releases: the status of the last ReadyForQuery ('I', 'T', 'E'), or null before one. */
  getTransactionStatus?: unknown;
}

/** Checked on the first client handed over: the pool's `Client` option may be another class than pg's. */
export const pgClientShapes: readonly Shape<PgClientInternals>[] = [
  { name: 'client.connection (its protocol connection, an EventEmitter)', serves: ['activity'], present: (c) => typeof c.connection?.on === 'function' },
  // pg sets it at the client's first ReadyForQuery, just after pg-pool hands a new client over.
  { name: 'client.readyForQuery', serves: ['activity'], present: (c) => typeof c.readyForQuery === 'boolean', ready: (c) => c.readyForQuery !== undefined },
];

/** Names the class of the clients a pg pool makes, for a warning that they lack a shape. */
export function pgClientName(client: unknown): string {
  const native = (client as PgClientInternals | null)?.native;
  if (typeof native === 'object' && native !== null) {
    const version = installedVersion('pg-native');
    return `pg's native Client (pg-native${version === undefined ? '' : ` ${version}`})`;
  }
  return nameClass(client, 'pg', 'Client');
}

/**
 * How many clients pg-pool has handed over and not had back: its clients that were ever
 * handed over, less the idle ones. Its public `totalCount` counts clients still connecting,
 * which are nobody's: with a database out of reach, every client is one.
 */
export function leasedClients(pool: PgPoolInternals): number | undefined {
  const clients = pool._clients;
  if (!Array.isArray(clients) || typeof pool.idleCount !== 'number') return undefined;
  let handed = 0;
  for (const client of clients) if (typeof client?.release === 'function') handed++;
  return Math.max(0, handed - pool.idleCount);
}
