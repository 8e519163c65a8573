import type { Internals } from './probe.js';

/** A sequelize-pool `Pool`: its documented API. */
export interface SequelizePool {
  acquire(): Promise<unknown>;
  release(resource: unknown): void;
  destroy(resource: unknown): Promise<void> | void;
  drain(): Promise<void>;
  destroyAllNow(): Promise<void>;
  readonly maxSize: number;
  readonly minSize: number;
  /** Idle connections. */
  readonly available: number;
}

/**
 * What poolwatch reads of a sequelize-pool `Pool` beyond its documented API (the same
 * from 6.0.0 to 8.0.1):
 * - `_inUseObjects`, one `{ resource }` per connection the pool has handed out; `destroy()`
 *   replaces the array, so it is read afresh each time;
 * - `acquireTimeoutMillis`, the pool's acquire timeout as it resolved it (30000 by default);
 * - the pool destroys idle connections through its own `destroy()` (idle timeout, failed
 *   validation, `destroyAllNow()`), and a worn-out one (`maxUses`) from inside `release()`.
 */
export interface SequelizePoolInternals {
  readonly _inUseObjects?: ReadonlyArray<{ readonly resource: unknown }>;
  readonly acquireTimeoutMillis?: number;
}

/**
 * What poolwatch relies on of a Sequelize 6 instance (the same in 6.1.0 and 6.37.8):
 * - `connectionManager.getConnection(options)` acquires every connection Sequelize uses
 *   (queries and transactions), and `connectionManager.pool` is the sequelize-pool `Pool`
 *   it acquires from (an object holding `read` and `write` pools under replication; unused
 *   by the sqlite dialect);
 * - `transaction()` calls `getConnection()` synchronously, through
 *   `Transaction#prepareEnvironment()`, so the stack taken there is handed to it;
 * - a dialect destroys a connection whose socket fails (`pool.destroy()`, held or idle), and
 *   the query or transaction holding it releases it after, which the pool ignores.
 */
export interface SequelizeInstance {
  readonly connectionManager: {
    getConnection(options?: object): Promise<unknown>;
    releaseConnection(connection: unknown): unknown;
    readonly pool: unknown;
  };
  transaction(...args: unknown[]): Promise<unknown>;
  query(...args: unknown[]): Promise<unknown>;
  getDialect?(): string;
}

/** What `watch()` is given: a sequelize-pool `Pool`, or the Sequelize instance over one. */
export type SequelizeTarget = SequelizePool | SequelizeInstance;

const isFunction = (value: unknown): boolean => typeof value === 'function';

/** Whether `value` has a sequelize-pool `Pool`'s API (its `maxSize`/`minSize` getters tell it from generic-pool 2 and tarn). */
export function isSequelizePool(value: unknown): value is SequelizePool {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Partial<SequelizePool>;
  return (
    isFunction(p.acquire) &&
    isFunction(p.release) &&
    isFunction(p.destroy) &&
    isFunction(p.drain) &&
    isFunction(p.destroyAllNow) &&
    typeof p.maxSize === 'number' &&
    typeof p.minSize === 'number'
  );
}

/** Whether `value` is a Sequelize instance: a connection manager that acquires, and `transaction()`. */
export function isSequelize(value: unknown): value is SequelizeInstance {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Partial<SequelizeInstance>;
  const manager = s.connectionManager as Partial<SequelizeInstance['connectionManager']> | undefined;
  return (
    isFunction(s.transaction) &&
    isFunction(s.query) &&
    isFunction(manager?.getConnection) &&
    isFunction(manager?.releaseConnection) &&
    typeof manager?.pool === 'object' &&
    manager.pool !== null
  );
}

/** The pool a target acquires from: itself, or a Sequelize instance's (possibly not a `Pool`: see `install`). */
export function poolOf(target: SequelizeTarget): unknown {
  return isSequelizePool(target) ? target : (target as SequelizeInstance).connectionManager.pool;
}

/** Whether the pool counts `resource` as handed out; false when it cannot say. */
export function holds(pool: unknown, resource: unknown): boolean {
  const inUse = (pool as SequelizePoolInternals | null)?._inUseObjects;
  if (!Array.isArray(inUse)) return false;
  // As the pool's own release() looks it up: one entry per leased connection, at most max.
  for (let i = 0; i < inUse.length; i++) if ((inUse[i] as { resource?: unknown } | undefined)?.resource === resource) return true;
  return false;
}

/** How long the pool lets an acquire wait (ms). */
export function acquireTimeoutOf(pool: unknown): number | undefined {
  const ms = (pool as SequelizePoolInternals | null)?.acquireTimeoutMillis;
  return typeof ms === 'number' && ms > 0 ? ms : undefined;
}

const pooled = (target: SequelizeTarget) => poolOf(target) as SequelizePoolInternals | null | undefined;

export const sequelizeInternals: Internals<SequelizeTarget> = {
  library: 'sequelize-pool',
  checked: '>=6.0.0 <9',
  // Which copy of sequelize-pool made the pool, when the target is the Sequelize instance.
  related: (target) => [poolOf(target)],
  offers: ['misuse', 'capacity', 'idle', 'acquireTimeout', 'exhaustion', 'destroys', 'activity'],
  shapes: [
    { name: 'pool._inUseObjects', serves: ['misuse', 'destroys'], present: (t) => Array.isArray(pooled(t)?._inUseObjects) },
    { name: 'pool.acquireTimeoutMillis', serves: ['acquireTimeout'], present: (t) => typeof pooled(t)?.acquireTimeoutMillis === 'number' },
  ],
};
