// A Prisma 7 app (prisma-client generator + @prisma/adapter-pg) that leaks a pool
// connection the most common Prisma way: an interactive transaction whose callback
// awaits something that never settles. No poolwatch import: run it under
//   node --import poolwatch/register examples/orm/prisma/app.mjs
// Needs DATABASE_URL, and the client from `node examples/orm/prisma/generate.mjs`.
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client.mjs';

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }) });

await prisma.$executeRawUnsafe('CREATE TABLE IF NOT EXISTS "Order" (id SERIAL PRIMARY KEY, status TEXT NOT NULL)');
const order = await prisma.order.create({ data: { status: 'new' } });

// Stands in for a call to a payment service that never answers.
const paymentGateway = () => new Promise(() => {});

async function checkout(id) {
  // The transaction holds one pool connection until its callback settles. Prisma would
  // roll it back after `timeout` (5 s by default); a long one, as apps set for slow work,
  // keeps the connection checked out for the whole run.
  await prisma.$transaction(async (tx) => { // LEAK
    await tx.order.update({ where: { id }, data: { status: 'paying' } });
    await paymentGateway();
  }, { timeout: 600_000 });
}

checkout(order.id);
await new Promise((resolve) => setTimeout(resolve, Number(process.env.HOLD_MS ?? 3000)));
process.exit(0);
