/**
 * lease() is typed by the pool it is given: the handle's `connection` is the pool's own
 * connection type. Checked by the compiler (npm test runs tsc on the tests first): a wrong
 * type fails the build, not a run.
 */
import t from 'tap';
import type pg from 'pg';
import type { Pool as GenericPool } from 'generic-pool';
import type { Pool as TarnPool } from 'tarn';
import type * as mysql2 from 'mysql2';
import type * as mysql2Promise from 'mysql2/promise';
import type * as mariadb from 'mariadb';
import type postgres from 'postgres';
import type { Sequelize } from 'sequelize';
import type { Knex } from 'knex';
import { lease, type ConnectionOf, type PoolLease } from '../lib/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(check: Equal<A, B>): Equal<A, B> => check;

interface Conn {
  id: number;
}

same<ConnectionOf<pg.Pool>, pg.PoolClient>(true);
same<ConnectionOf<GenericPool<Conn>>, Conn>(true);
same<ConnectionOf<TarnPool<Conn>>, Conn>(true);
same<ConnectionOf<mysql2.Pool>, mysql2.PoolConnection>(true);
same<ConnectionOf<mysql2Promise.Pool>, mysql2Promise.PoolConnection>(true);
same<ConnectionOf<mariadb.Pool>, mariadb.PoolConnection>(true);
same<ConnectionOf<postgres.Sql>, postgres.ReservedSql>(true);
same<ConnectionOf<Sequelize>, Awaited<ReturnType<Sequelize['connectionManager']['getConnection']>>>(true);
// knex's connection is its driver's, which its types do not say.
same<ConnectionOf<Knex>, unknown>(true);

// What an app writes: the handle and lease(pool, fn) carry the pool's types through.
async function typed(pool: pg.Pool): Promise<number> {
  const handle: PoolLease<pg.PoolClient> = await lease(pool);
  await handle.release();
  await using client = await lease(pool);
  const result = await client.connection.query<{ n: number }>('SELECT 1 AS n');
  const n: number = await lease(pool, async (connection: pg.PoolClient) => (await connection.query<{ n: number }>('SELECT 2 AS n')).rows[0]!.n);
  return result.rows[0]!.n + n;
}

t.test('lease() is typed by its pool (checked at compile time)', async (t) => {
  t.type(typed, 'function');
});
