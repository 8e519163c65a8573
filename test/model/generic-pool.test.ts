/**
 * Model-based tests of generic-pool with an in-memory resource: random programs run
 * unwatched and watched, judged by the pool's own counters and the reports' lines (see
 * test/helpers/model.ts), then programs kept as examples.
 */
import t from 'tap';
import { fileTimeout, modelSuite, op, replay } from '../helpers/model.js';
import { genericPoolDriver } from '../helpers/model-generic-pool.js';

const BUDGET = 1000;
t.setTimeout(fileTimeout(BUDGET));

t.test('generic-pool', async (t) => {
  const driver = genericPoolDriver();
  await modelSuite(t, driver, { numRuns: BUDGET });

  await t.test('a stale release of a resource lent again gives back its new borrower\'s lease, in the pool and in poolwatch alike', (t) =>
    replay(t, driver, { subscribeFirst: false, ops: [op.acquire(), op.release(), op.acquire('callback'), op.doubleRelease(), op.tick()] }),
  );
  await t.test('leases taken before an unwatch are not the new watch\'s; those taken after are reported once at their line', (t) =>
    replay(t, driver, { subscribeFirst: true, ops: [op.acquire(), op.rewatch(), op.acquire('callback'), op.tick(), op.release(0), op.tick()] }),
  );
});
