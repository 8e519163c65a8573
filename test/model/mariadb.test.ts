/**
 * Model-based tests of a mariadb pool on a real MariaDB: random programs run unwatched and
 * watched, judged by the pool's counters, the server's processlist and transaction flag,
 * and the reports' lines (see test/helpers/model.ts).
 */
import t from 'tap';
import { modelSuite } from '../helpers/model.js';
import { mariadbDriver } from '../helpers/model-mariadb.js';

t.test('mariadb pool', async (t) => {
  const made = await mariadbDriver(t);
  if (made === undefined) return;
  try {
    await modelSuite(t, made.driver, { numRuns: 100 });
  } finally {
    await made.done();
  }
});
