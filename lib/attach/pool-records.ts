/**
 * What a pool itself records about its leased connections, read by `poolwatch attach` at the
 * moment it attaches: poolwatch saw none of those being acquired. Private fields, per
 * library, read defensively: a field that is not there reads as "unknown", never a throw.
 *
 * | library | leased | since when | checked on |
 * | --- | --- | --- | --- |
 * | pg-pool 3 | `_clients` not in `_idle` | not recorded | 3.x |
 * | generic-pool 3 | `_resourceLoans` | `loan.pooledResource.lastBorrowTime` | 3.9 |
 * | tarn 3 (and knex's, mssql's) | `used` | not recorded (`timestamp` is when it was last freed) | 3.0–3.1 |
 * | mysql2 3 | `_allConnections` not in `_freeConnections` | not recorded | 3.x |
 * | sequelize-pool | `_inUseObjects` | not recorded | 7–8 |
 * | mariadb 3 | `activeConnections()`: a count only | not recorded | 3.3–3.5 |
 */

/** One connection leased before the attach. */
export interface HeldEntry {
  /** What identifies this very lease: it changes when the connection is leased again. */
  readonly token: unknown;
  /** Epoch ms when the pool handed it over, when the pool records it. */
  readonly since: number | undefined;
}

/** A library's records of its leases. */
interface Records {
  held(pool: any): HeldEntry[] | undefined;
  /** Whether `entry` is still leased, as the same lease. Undefined: the pool cannot say which. */
  still(pool: any, entry: HeldEntry): boolean | undefined;
  waiting(pool: any): number | undefined;
  /** Why the ages are unknown. */
  readonly noAge?: string;
}

const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

function list(queue: any): unknown[] | undefined {
  if (Array.isArray(queue)) return queue;
  if (typeof queue?.toArray === 'function') return queue.toArray() as unknown[];
  return undefined;
}

const pg: Records = {
  held(pool) {
    const clients = list(pool._clients);
    const idle = list(pool._idle);
    if (clients === undefined || idle === undefined) return undefined;
    const free = new Set(idle.map((item: any) => item?.client));
    // pg-pool assigns `release` afresh at each checkout: it tells this lease from a later one.
    return clients.filter((client) => !free.has(client)).map((client: any) => ({ token: client.release ?? client, since: undefined, client }));
  },
  still(pool, entry) {
    const client = (entry as HeldEntry & { client?: any }).client;
    return list(pool._clients)?.includes(client) === true && !list(pool._idle)?.some((item: any) => item?.client === client) && (client.release ?? client) === entry.token;
  },
  waiting: (pool) => num(pool.waitingCount),
  noAge: 'pg-pool does not record when a client was checked out',
};

const genericPool: Records = {
  held(pool) {
    const loans = pool._resourceLoans;
    if (!(loans instanceof Map)) return undefined;
    return [...loans.entries()].map(([resource, loan]: [unknown, any]) => ({
      token: loan,
      since: num(loan?.pooledResource?.lastBorrowTime) ?? num(loan?._creationTimestamp),
      resource,
    }));
  },
  still(pool, entry) {
    const loans = pool._resourceLoans;
    return loans instanceof Map ? loans.get((entry as HeldEntry & { resource?: unknown }).resource) === entry.token : undefined;
  },
  waiting: (pool) => num(pool.pending),
};

const tarn: Records = {
  held(pool) {
    const used = list(pool.used);
    return used?.map((entry) => ({ token: entry, since: undefined }));
  },
  still: (pool, entry) => list(pool.used)?.includes(entry.token),
  waiting: (pool) => (typeof pool.numPendingAcquires === 'function' ? num(pool.numPendingAcquires()) : undefined),
  noAge: 'tarn does not record when a resource was acquired',
};

const mysql2: Records = {
  held(pool) {
    const all = list(pool._allConnections);
    const free = list(pool._freeConnections);
    if (all === undefined || free === undefined) return undefined;
    const idle = new Set(free);
    return all.filter((connection) => !idle.has(connection)).map((connection) => ({ token: connection, since: undefined }));
  },
  // mysql2 marks nothing per checkout: a connection leased again looks the same.
  still: () => undefined,
  waiting: (pool) => num(list(pool._connectionQueue)?.length),
  noAge: 'mysql2 does not record when a connection was taken',
};

const sequelizePool: Records = {
  held: (pool) => list(pool._inUseObjects)?.map((entry) => ({ token: entry, since: undefined })),
  still: (pool, entry) => list(pool._inUseObjects)?.includes(entry.token),
  waiting: (pool) => num(pool.waiting),
  noAge: 'sequelize-pool does not record when a connection was acquired',
};

const mariadb: Records = {
  held(pool) {
    const count = typeof pool.activeConnections === 'function' ? num(pool.activeConnections()) : undefined;
    return count === undefined ? undefined : Array.from({ length: count }, () => ({ token: undefined, since: undefined }));
  },
  still: () => undefined,
  waiting: (pool) => (typeof pool.taskQueueSize === 'function' ? num(pool.taskQueueSize()) : undefined),
  noAge: 'mariadb does not record when a connection was taken',
};

// Pools that keep their connections in another pool: that pool's records.
const through = (inner: (pool: any) => unknown, records: Records): Records => ({
  held: (pool) => records.held(inner(pool) ?? {}),
  still: (pool, entry) => records.still(inner(pool) ?? {}, entry),
  waiting: (pool) => records.waiting(inner(pool) ?? {}),
  noAge: records.noAge,
});

// By the adapter's `kind`.
const byKind: Record<string, Records> = {
  'pg.Pool (pg-pool)': pg,
  'generic-pool': genericPool,
  tarn,
  mysql2,
  'mysql2 promise pool': through((pool) => pool.pool, mysql2),
  mariadb,
  // A sequelize-pool Pool, or a Sequelize instance's.
  sequelize: through((pool) => (Array.isArray(pool?._inUseObjects) ? pool : pool?.connectionManager?.pool), sequelizePool),
  knex: through((knex) => knex.client?.pool, tarn),
  mssql: through((pool) => pool.pool, tarn),
};

function safely<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** The connections `pool` counts as leased now; undefined when it does not say. */
export function heldNow(kind: string, pool: object): HeldEntry[] | undefined {
  const records = byKind[kind];
  return records === undefined ? undefined : safely(() => records.held(pool));
}

/** Whether each entry is still held as the same lease; undefined for one the pool cannot tell. */
export function stillHeld(kind: string, pool: object, entries: readonly HeldEntry[]): (boolean | undefined)[] {
  const records = byKind[kind];
  return entries.map((entry) => (records === undefined ? undefined : safely(() => records.still(pool, entry))));
}

/** Acquire calls waiting for a connection now, when the pool says. */
export function waitingNow(kind: string, pool: object): number | undefined {
  const records = byKind[kind];
  return records === undefined ? undefined : safely(() => records.waiting(pool));
}

/** Why the pool's leases from before the attach have no age, when they have none. */
export function whyNoAge(kind: string): string | undefined {
  return byKind[kind]?.noAge ?? (byKind[kind] === undefined ? `poolwatch cannot read a ${kind} pool's leases` : undefined);
}
