/**
 * Model-based tests of pg.Pool on a real PostgreSQL: random programs run unwatched and
 * watched, judged by the pool's counters, pg_stat_activity and the reports' lines (see
 * test/helpers/model.ts), then the programs they found, kept as examples.
 */
import t from 'tap';
import { modelSuite, replay } from '../helpers/model.js';
import { pgDriver } from '../helpers/model-pg.js';

t.test('pg.Pool', async (t) => {
  const { driver, done } = await pgDriver(t);
  try {
    await modelSuite(t, driver, { numRuns: 100 });
  } finally {
    await done();
  }
});
