// A Kysely app that leaks a pool connection the most common Kysely way: a transaction
// whose callback awaits something that never settles. No poolwatch import:
//   DATABASE_URL=postgres://… node --import poolwatch/register examples/orm/kysely.mjs
// (or mysql://… / mariadb://… for MariaDB, through mysql2).
import { Kysely, MysqlDialect, PostgresDialect, sql } from 'kysely';
import { createPool } from 'mysql2';
import pg from 'pg';

const uri = process.env.DATABASE_URL;
const dialect = /^(mysql|mariadb):/.test(uri)
  ? new MysqlDialect({ pool: createPool({ uri }) })
  : new PostgresDialect({ pool: new pg.Pool({ connectionString: uri }) });
const db = new Kysely({ dialect });

await sql`CREATE TABLE IF NOT EXISTS kysely_orders (id SERIAL PRIMARY KEY, status VARCHAR(20) NOT NULL)`.execute(db);
await db.insertInto('kysely_orders').values({ status: 'new' }).execute();

// Stands in for a call to a payment service that never answers.
const paymentGateway = () => new Promise(() => {});

async function checkout() {
  // The transaction holds one pool connection until its callback settles.
  await db.transaction().execute(async (trx) => { // LEAK
    await trx.updateTable('kysely_orders').set({ status: 'paying' }).where('status', '=', 'new').execute();
    await paymentGateway();
  });
}

checkout();
await new Promise((resolve) => setTimeout(resolve, Number(process.env.HOLD_MS ?? 3000)));
process.exit(0);
