// A MikroORM app that leaks a pool connection the most common MikroORM way: a transaction
// whose callback awaits something that never settles. No poolwatch import:
//   DATABASE_URL=postgres://… node --import poolwatch/register examples/orm/mikro-orm.mjs
// (PostgreSQL only: the installed driver is @mikro-orm/postgresql.)
import { EntitySchema, MikroORM } from '@mikro-orm/postgresql';

const Order = new EntitySchema({
  name: 'Order',
  tableName: 'mikro_orders',
  properties: { id: { type: 'number', primary: true }, status: { type: 'string' } },
});
// MikroORM builds its knex instance, and the pool in it, from the connection string.
const orm = await MikroORM.init({ clientUrl: process.env.DATABASE_URL, entities: [Order] });

await orm.em.getConnection().execute('CREATE TABLE IF NOT EXISTS mikro_orders (id SERIAL PRIMARY KEY, status VARCHAR(20) NOT NULL)');
const em = orm.em.fork();
const order = em.create(Order, { status: 'new' });
await em.flush();

// Stands in for a call to a payment service that never answers.
const paymentGateway = () => new Promise(() => {});

async function checkout(id) {
  // The transaction holds one pool connection until its callback settles.
  await orm.em.fork().transactional(async (em) => { // LEAK
    await em.nativeUpdate(Order, { id }, { status: 'paying' });
    await paymentGateway();
  });
}

checkout(order.id);
await new Promise((resolve) => setTimeout(resolve, Number(process.env.HOLD_MS ?? 3000)));
process.exit(0);
