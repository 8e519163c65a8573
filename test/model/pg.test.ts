/**
 * Model-based tests of pg.Pool on a real PostgreSQL: random programs run unwatched and
 * watched, judged by the pool's counters, pg_stat_activity and the reports' lines (see
 * test/helpers/model.ts), then programs they found, kept as examples.
 */
import t from 'tap';
import { fileTimeout, modelSuite, op, replay } from '../helpers/model.js';
import { pgDriver } from '../helpers/model-pg.js';

const BUDGET = 400;
t.setTimeout(fileTimeout(BUDGET));

t.test('pg.Pool', async (t) => {
  const { driver, done } = await pgDriver(t);
  try {
    await modelSuite(t, driver, { numRuns: BUDGET });

    await t.test('a stale release of a client lent again gives back its new borrower\'s lease, in the pool and in poolwatch alike', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire(), op.release(), op.acquire(), op.doubleRelease(), op.tick()] }),
    );
    await t.test('a client killed by the server after a burst emits the same errors watched', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.burst('acquire', 3), op.acquire(), op.kill(), op.release(0, 'error')] }),
    );
    await t.test('a failed statement in a held transaction leaves it idle in transaction to both, and it is reported once at its line', (t) =>
      replay(t, driver, { subscribeFirst: true, ops: [op.acquire('callback'), op.begin(), op.badQuery(), op.tick(), op.tick()] }),
    );
    await t.test('a statement in flight past the threshold is not a leak; idle after it, it is', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire(), op.begin(), op.slow(), op.tick(100)] }),
    );
    await t.test('with every client held, an acquire fails with the pool\'s own timeout error', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire(), op.acquire('callback'), op.acquire(), op.timeout(), op.tick()] }),
    );
    await t.test('a server restart under held clients, in and out of a transaction: the same errors watched, and the pool recovers', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire(), op.acquire('callback'), op.begin(1), op.restart(), op.query(0), op.release(0, 'error'), op.release(0), op.acquire(), op.query(1), op.tick()] }),
    );
    // First use by pool.query() or connect(callback) once marked the pool as lacking activity: each order, strictly.
    const known = { strict: true };
    await t.test('after first use by pool.query(), a held client still shows what it is doing', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.poolQuery(), op.acquire()] }, known),
    );
    await t.test('after first use by several pool.query() calls at once, a held client still shows what it is doing', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.burst('poolQuery', 1), op.acquire(), op.begin()] }, known),
    );
    await t.test('after first use by pool.query() with a callback, a held client still shows what it is doing', (t) =>
      replay(t, driver, { subscribeFirst: true, ops: [op.poolQuery('callback'), op.acquire('callback'), op.begin()] }, known),
    );
    await t.test('after first use by connect() with a callback, a held client still shows what it is doing', (t) =>
      replay(t, driver, { subscribeFirst: false, ops: [op.acquire('callback'), op.begin()] }, known),
    );
    await t.test('a client first followed inside a transaction opened before watch() shows idle in transaction, as the server says', (t) =>
      replay(t, driver, { subscribeFirst: false, lateWatch: true, ops: [op.acquire(), op.begin(), op.rewatch(), op.release(), op.acquire()] }, { strict: true }),
    );
    await t.test('a client given back mid-transaction by a lease poolwatch did not follow shows idle in transaction to its next borrower', (t) =>
      replay(t, driver, { subscribeFirst: true, lateWatch: true, ops: [op.acquire(), op.rewatch(), op.acquire(), op.begin(0), op.release(0), op.acquire()] }, { strict: true }),
    );
  } finally {
    await done();
  }
});
