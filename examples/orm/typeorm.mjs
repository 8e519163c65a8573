// A TypeORM app that leaks a pool connection the most common TypeORM way: a QueryRunner
// taken for a manual transaction and never given back with release(). No poolwatch import:
//   DATABASE_URL=postgres://… node --import poolwatch/register examples/orm/typeorm.mjs
// (or mysql://… / mariadb://… for MariaDB, through mysql2).
import { DataSource, EntitySchema } from 'typeorm';

const url = process.env.DATABASE_URL;
const type = { 'postgres:': 'postgres', 'postgresql:': 'postgres', 'mysql:': 'mysql', 'mariadb:': 'mariadb' }[new URL(url).protocol];

const Order = new EntitySchema({
  name: 'Order',
  tableName: 'typeorm_orders',
  columns: { id: { type: Number, primary: true, generated: true }, status: { type: String } },
});
const dataSource = await new DataSource({ type, url, entities: [Order] }).initialize();

await dataSource.query('CREATE TABLE IF NOT EXISTS typeorm_orders (id SERIAL PRIMARY KEY, status VARCHAR(20) NOT NULL)');
const order = await dataSource.getRepository(Order).save({ status: 'new' });

async function checkout(id) {
  const queryRunner = dataSource.createQueryRunner();
  await queryRunner.connect(); // LEAK
  await queryRunner.startTransaction();
  try {
    await queryRunner.manager.update(Order, { id }, { status: 'paid' });
    await queryRunner.commitTransaction();
  } catch (error) {
    await queryRunner.rollbackTransaction();
    throw error;
  }
  // Missing: `finally { await queryRunner.release(); }`. Without it the connection stays
  // checked out of the pool for good, however the transaction ended.
}

await checkout(order.id);
await new Promise((resolve) => setTimeout(resolve, Number(process.env.HOLD_MS ?? 3000)));
process.exit(0);
