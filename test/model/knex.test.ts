/**
 * Model-based tests of knex over pg on a real PostgreSQL: random programs of transactions
 * run unwatched and watched, judged by tarn's counters, pg_stat_activity and the reports'
 * lines (see test/helpers/model.ts).
 */
import t from 'tap';
import { modelSuite } from '../helpers/model.js';
import { knexDriver } from '../helpers/model-knex.js';

t.test('knex (pg)', async (t) => {
  const { driver, done } = await knexDriver(t);
  try {
    await modelSuite(t, driver, { numRuns: 100 });
  } finally {
    await done();
  }
});
