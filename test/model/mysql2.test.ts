/**
 * Model-based tests of a mysql2 pool on a real MariaDB: random programs run unwatched and
 * watched, judged by the pool's counters, the server's processlist and innodb_trx, and the
 * reports' lines (see test/helpers/model.ts).
 */
import t from 'tap';
import { modelSuite } from '../helpers/model.js';
import { mysql2Driver } from '../helpers/model-mysql2.js';

t.test('mysql2 pool (MariaDB server)', async (t) => {
  const made = await mysql2Driver(t);
  if (made === undefined) return;
  try {
    await modelSuite(t, made.driver, { numRuns: 100 });
  } finally {
    await made.done();
  }
});
