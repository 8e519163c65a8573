/**
 * Model-based tests of a mariadb pool on a real MariaDB: random programs run unwatched and
 * watched, judged by the pool's counters, the server's processlist and transaction flag,
 * and the reports' lines (see test/helpers/model.ts), then programs they found, kept as examples.
 */
import t from 'tap';
import { fileTimeout, modelSuite, op, replay } from '../helpers/model.js';
import { mariadbDriver } from '../helpers/model-mariadb.js';

const BUDGET = 400;
t.setTimeout(fileTimeout(BUDGET));

t.test('mariadb pool', async (t) => {
  const made = await mariadbDriver(t);
  if (made === undefined) return;
  const { driver, done } = made;
  try {
    await modelSuite(t, driver, { numRuns: BUDGET });

    await t.test('with every connection held, an acquire fails with the pool\'s own timeout error', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire(), op.acquire('callback'), op.begin(1), op.acquire(), op.timeout(), op.tick()] }),
    );
    await t.test('a statement in flight past the threshold is not a leak; idle after it, it is', (t) =>
      replay(t, driver, { subscribeFirst: true, ops: [op.acquire(), op.begin(), op.slow(), op.tick(100)] }),
    );
    // KNOWN DEFECT, found by these tests: enable once fixed, by removing `todo`.
    await t.test('a held connection the server killed, which the pool dropped, is no open lease', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire(), op.kill()] }, { strict: true, todo: 'known defect: the mariadb adapter keeps the lease of a connection the pool dropped' }),
    );
  } finally {
    await done();
  }
});

t.test('mariadb pool of one connection', async (t) => {
  const made = await mariadbDriver(t, 1);
  if (made === undefined) return;
  const { driver, done } = made;
  try {
    // KNOWN DEFECT, found by these tests: enable once fixed, by removing `todo`.
    await t.test("a stale handle's second release() gives the pool back the connection lent again since: its new lease ends with it", (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire(), op.release(), op.acquire('callback'), op.doubleRelease(), op.tick()] }, { strict: true, todo: "known defect: the mariadb adapter keeps the new borrower's lease open" }),
    );
  } finally {
    await done();
  }
});
