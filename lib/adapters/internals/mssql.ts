import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
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
  offers: ['misuse', 'capacity', 'idle', 'acquireTimeout', 'exhaustion', 'reclaim'],
  shapes: [
    tarnPool,
    { name: 'pool.pool._destroy()', serves: ['reclaim'], present: (p) => p.pool === undefined || p.pool === null || destroysOne(p.pool) },
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
  { name: 'pool.pool._destroy()', serves: ['reclaim'], present: (p) => typeof p.pool === 'object' && p.pool !== null && destroysOne(p.pool) },
];

// tarn's own way to destroy one resource, which tarnDestroy() takes.
function destroysOne(pool: TarnInternals): boolean {
  return typeof pool._destroy === 'function' && typeof pool._tryAcquireOrCreate === 'function';
}

/** Whether the tarn pool counts `resource` as leased; true when there is no tarn pool to ask (poolwatch then judges nothing). */
export function mssqlHolds(pool: MssqlPoolInternals, resource: unknown): boolean {
  return tarnHolds(pool.pool ?? undefined, resource);
}

/** Idle connections: none before `connect()` and after `close()`, when `available` would throw. */
export function idleOf(pool: MssqlPoolInternals): number | undefined {
  if (pool.pool === undefined || pool.pool === null) return 0;
  return pool.available;
}

/** A class whose prototype's methods are patched: mssql's base Transaction, Request or PreparedStatement. */
export interface MssqlClass {
  readonly prototype: object;
}

/**
 * mssql's base classes, which every driver's (tedious, msnodesqlv8) Transaction, Request
 * and PreparedStatement extend without overriding their public methods: `begin()`,
 * `query()`, `execute()`, `batch()`, `bulk()`, `prepare()` are the base prototype's own.
 * Each object keeps what it acquires from in `parent` (a ConnectionPool, or a Transaction
 * or PreparedStatement, which lend their own connection), and acquires one setImmediate or
 * more after those calls with `parent.acquire(itself, callback)`.
 */
export interface MssqlBase {
  readonly Transaction: MssqlClass;
  readonly Request: MssqlClass;
  readonly PreparedStatement: MssqlClass;
}

const baseIndex = `${sep}lib${sep}base${sep}index.js`;

// An own data property, read without running a getter.
function own(value: object, key: string): unknown {
  return Object.getOwnPropertyDescriptor(value, key)?.value as unknown;
}

const isClass = (value: unknown): value is MssqlClass =>
  typeof value === 'function' && typeof (value as { prototype?: unknown }).prototype === 'object' && (value as { prototype: unknown }).prototype !== null;

/**
 * The base classes of the mssql copy that made `pool`: read from mssql's `lib/base/index.js`
 * (it exports `ConnectionPool`, `Transaction`, `Request`, `PreparedStatement`) in
 * CommonJS's module cache, which ES imports of mssql fill too; the copy is the one whose
 * `ConnectionPool` is on the pool's prototype chain. Nothing is loaded. Undefined when
 * mssql's modules are not in the cache (a bundled app) or lay out otherwise.
 * Checked on mssql 7.0.0, 9.0.0 and 12.7.14 by reading their source; tested on 12.7.14.
 */
export function mssqlBaseOf(pool: object): MssqlBase | undefined {
  const chain = new Set<unknown>();
  for (let o = Object.getPrototypeOf(pool) as object | null; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    const ctor = own(o, 'constructor');
    if (typeof ctor === 'function') chain.add(ctor);
  }
  const cache = createRequire(join(process.cwd(), 'noop.js')).cache;
  for (const file of Object.keys(cache)) {
    if (!file.endsWith(baseIndex)) continue;
    const exported = cache[file]?.exports as unknown;
    if (typeof exported !== 'object' || exported === null) continue;
    const ConnectionPool = own(exported, 'ConnectionPool');
    if (typeof ConnectionPool !== 'function' || !chain.has(ConnectionPool)) continue;
    const Transaction = own(exported, 'Transaction');
    const Request = own(exported, 'Request');
    const PreparedStatement = own(exported, 'PreparedStatement');
    return isClass(Transaction) && isClass(Request) && isClass(PreparedStatement) ? { Transaction, Request, PreparedStatement } : undefined;
  }
  return undefined;
}
