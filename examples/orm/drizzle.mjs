// A Drizzle app that leaks a pool connection the most common Drizzle way: a transaction
// whose callback awaits something that never settles. No poolwatch import:
//   DATABASE_URL=postgres://… node --import poolwatch/register examples/orm/drizzle.mjs
// (or mysql://… / mariadb://… for MariaDB, through mysql2).
import { eq, sql } from 'drizzle-orm';
import { mysqlTable, serial as mysqlSerial, text as mysqlText } from 'drizzle-orm/mysql-core';
import { drizzle as mysqlDrizzle } from 'drizzle-orm/mysql2';
import { drizzle as pgDrizzle } from 'drizzle-orm/node-postgres';
import { pgTable, serial, text } from 'drizzle-orm/pg-core';

// Drizzle builds the pool itself (pg.Pool, or mysql2's createPool) from the connection string.
const mysql = /^(mysql|mariadb):/.test(process.env.DATABASE_URL);
const db = mysql ? mysqlDrizzle(process.env.DATABASE_URL) : pgDrizzle(process.env.DATABASE_URL);
const orders = mysql
  ? mysqlTable('drizzle_orders', { id: mysqlSerial('id').primaryKey(), status: mysqlText('status').notNull() })
  : pgTable('drizzle_orders', { id: serial('id').primaryKey(), status: text('status').notNull() });

await db.execute(sql`CREATE TABLE IF NOT EXISTS drizzle_orders (id SERIAL PRIMARY KEY, status VARCHAR(20) NOT NULL)`);
await db.insert(orders).values({ status: 'new' });

// Stands in for a call to a payment service that never answers.
const paymentGateway = () => new Promise(() => {});

async function checkout() {
  // The transaction holds one pool connection until its callback settles.
  await db.transaction(async (tx) => { // LEAK
    await tx.update(orders).set({ status: 'paying' }).where(eq(orders.status, 'new'));
    await paymentGateway();
  });
}

checkout();
await new Promise((resolve) => setTimeout(resolve, Number(process.env.HOLD_MS ?? 3000)));
process.exit(0);
