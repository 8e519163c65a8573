// An Objection.js app that leaks a pool connection the most common Objection way: a
// transaction whose callback awaits something that never settles. No poolwatch import:
//   DATABASE_URL=postgres://… node --import poolwatch/register examples/orm/objection.mjs
// (or mysql://… / mariadb://… for MariaDB, through mysql2).
import Knex from 'knex';
import { Model } from 'objection';

// The pool is the one knex builds for this instance.
const client = /^(mysql|mariadb):/.test(process.env.DATABASE_URL) ? 'mysql2' : 'pg';
const knex = Knex({ client, connection: process.env.DATABASE_URL });
Model.knex(knex);

class Order extends Model {
  static tableName = 'objection_orders';
}

await knex.raw('CREATE TABLE IF NOT EXISTS objection_orders (id SERIAL PRIMARY KEY, status VARCHAR(20) NOT NULL)');
await Order.query().insert({ status: 'new' });

// Stands in for a call to a payment service that never answers.
const paymentGateway = () => new Promise(() => {});

async function checkout() {
  // The transaction holds one pool connection until its callback settles.
  await Order.transaction(async (trx) => { // LEAK
    await Order.query(trx).patch({ status: 'paying' }).where('status', 'new');
    await paymentGateway();
  });
}

checkout();
await new Promise((resolve) => setTimeout(resolve, Number(process.env.HOLD_MS ?? 3000)));
process.exit(0);
