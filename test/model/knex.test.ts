/**
 * Model-based tests of knex over pg on a real PostgreSQL: random programs of transactions
 * run unwatched and watched, judged by tarn's counters, pg_stat_activity and the reports'
 * lines (see test/helpers/model.ts), then programs kept as examples.
 */
import t from 'tap';
import { fileTimeout, modelSuite, op, replay } from '../helpers/model.js';
import { knexDriver } from '../helpers/model-knex.js';

const BUDGET = 300;
t.setTimeout(fileTimeout(BUDGET));

t.test('knex (pg)', async (t) => {
  const { driver, done } = await knexDriver(t);
  try {
    await modelSuite(t, driver, { numRuns: BUDGET });

    await t.test('an awaited transaction held past the threshold after handler transactions is reported once at its line', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire('callback'), op.release(), op.acquire('callback'), op.release(0, 'error'), op.acquire('promise'), op.tick()] }),
    );
    await t.test('with every transaction held, the next fails with the pool\'s own timeout error', (t) =>
      replay(t, driver, { subscribeFirst: true, ops: [op.acquire(), op.acquire('callback'), op.acquire(), op.timeout(), op.tick()] }),
    );
    await t.test('a server restart under held transactions: the same errors watched, and the pool recovers', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire(), op.acquire('callback'), op.restart(), op.query(0), op.release(0), op.release(0, 'error'), op.poolQuery(), op.acquire(), op.tick()] }),
    );
  } finally {
    await done();
  }
});
