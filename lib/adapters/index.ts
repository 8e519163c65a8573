import { PoolwatchTypeError, codes, describe } from '../errors.js';
import { customAdapter } from './custom.js';
import { genericPool } from './generic-pool.js';
import { knex } from './knex.js';
import { mariadb } from './mariadb.js';
import { mssql } from './mssql.js';
import { mysql2, mysql2Promise } from './mysql2.js';
import { pg } from './pg.js';
import { postgresJs } from './postgres.js';
import { sequelize } from './sequelize.js';
import { tarn } from './tarn.js';
import type { Adapter, BuiltinAdapter } from './types.js';

const builtins: readonly BuiltinAdapter[] = [mysql2, mysql2Promise, mariadb, genericPool, pg, tarn, knex, sequelize, postgresJs, mssql];

/** The adapter for `pool`: the `adapter` option's when given, else the built-in that recognises it. */
export function adapterFor(pool: unknown, spec: unknown): Adapter {
  // A knex instance is a function.
  if ((typeof pool !== 'object' && typeof pool !== 'function') || pool === null) {
    throw new PoolwatchTypeError(codes.unsupportedPool, `Expected a pool to watch, got ${describe(pool)}.`);
  }
  if (spec !== undefined) return customAdapter(pool, spec);
  const adapter = builtins.find((candidate) => candidate.matches(pool));
  if (adapter !== undefined) return adapter;
  const kind = pool.constructor?.name && pool.constructor.name !== 'Object' ? `a ${pool.constructor.name}` : 'this object';
  throw new PoolwatchTypeError(
    codes.unsupportedPool,
    `poolwatch does not recognise ${kind} as a pool. Supported: ${builtins.map((b) => b.kind).join(', ')}. ` +
      "For another pool, say which methods acquire and release: watch(pool, { adapter: { acquire: 'acquire', release: 'release' } }).",
  );
}

/** The object a built-in adapter would instrument for `pool`, when that is another object (a promise pool's core). */
export function underlyingOf(pool: object): object | undefined {
  for (const adapter of builtins) {
    if (adapter.underlying !== undefined && adapter.matches(pool)) return adapter.underlying(pool);
  }
  return undefined;
}
