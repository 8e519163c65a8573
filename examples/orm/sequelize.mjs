// A Sequelize app that leaks a pool connection the most common Sequelize way: an unmanaged
// transaction that is never committed nor rolled back. No poolwatch import:
//   DATABASE_URL=postgres://… node --import poolwatch/register examples/orm/sequelize.mjs
// (or mysql://… through mysql2, mariadb://… through mariadb, for MariaDB).
import { DataTypes, Sequelize } from 'sequelize';

// The dialect comes from the URL's scheme; the pool is Sequelize's own (sequelize-pool).
const sequelize = new Sequelize(process.env.DATABASE_URL, { logging: false });
const Order = sequelize.define('Order', { status: DataTypes.STRING(20) }, { tableName: 'sequelize_orders', timestamps: false });

await sequelize.query('CREATE TABLE IF NOT EXISTS sequelize_orders (id SERIAL PRIMARY KEY, status VARCHAR(20) NOT NULL)');
await Order.create({ status: 'new' });

async function checkout() {
  // The transaction holds one pool connection until commit() or rollback().
  const t = await sequelize.transaction(); // LEAK
  await Order.update({ status: 'paying' }, { where: { status: 'new' }, transaction: t });
  await Order.create({ status: 'paid' }, { transaction: t });
  // Missing: `await t.commit()` (and `await t.rollback()` in a catch): the connection
  // stays checked out of the pool for good.
}

await checkout();
await new Promise((resolve) => setTimeout(resolve, Number(process.env.HOLD_MS ?? 3000)));
process.exit(0);
