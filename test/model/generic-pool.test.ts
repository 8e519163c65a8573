/**
 * Model-based tests of generic-pool with an in-memory resource: random programs run
 * unwatched and watched, judged by the pool's own counters and the reports' lines (see
 * test/helpers/model.ts).
 */
import t from 'tap';
import { modelSuite } from '../helpers/model.js';
import { genericPoolDriver } from '../helpers/model-generic-pool.js';

t.test('generic-pool', async (t) => {
  await modelSuite(t, genericPoolDriver(), { numRuns: 300 });
});
