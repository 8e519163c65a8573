/**
 * Model-based tests of a mysql2 pool on a real MariaDB: random programs run unwatched and
 * watched, judged by the pool's counters, the server's processlist and transaction flag,
 * and the reports' lines (see test/helpers/model.ts), then programs they found, kept as examples.
 */
import t from 'tap';
import { fileTimeout, modelSuite, op, replay } from '../helpers/model.js';
import { mysql2Driver } from '../helpers/model-mysql2.js';

const BUDGET = 300;
t.setTimeout(fileTimeout(BUDGET));

t.test('mysql2 pool (MariaDB server)', async (t) => {
  const made = await mysql2Driver(t);
  if (made === undefined) return;
  const { driver, done } = made;
  try {
    await modelSuite(t, driver, { numRuns: BUDGET });

    await t.test('a held connection killed by the server ends its lease as the pool drops it, and emits the same errors watched', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire(), op.burst('poolQuery', 1), op.kill(), op.tick(), op.release()] }),
    );
    await t.test('a stale release of a connection lent again gives back its new borrower\'s lease, in the pool and in poolwatch alike', (t) =>
      replay(t, driver, { subscribeFirst: true, ops: [op.acquire('callback'), op.release(), op.acquire(), op.doubleRelease(), op.tick()] }),
    );
    // KNOWN DEFECT, found by these tests: enable once fixed, by removing `todo`.
    await t.test('a connection first followed inside a transaction opened before watch() shows idle in transaction, as the server says', (t) =>
      replay(t, driver, { subscribeFirst: false, lateWatch: true, ops: [op.acquire(), op.begin(), op.rewatch(), op.release(), op.acquire()] }, { strict: true, todo: 'known defect: a mysql2 connection first followed mid-transaction shows idle' }),
    );
  } finally {
    await done();
  }
});
