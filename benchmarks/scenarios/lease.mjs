// What lease() costs over the pool's own acquire/release: generic-pool with an in-memory
// resource, acquire+release in sequence, so nothing but the bookkeeping is measured. The
// same pool kind, watched, through its own methods ('watched'), through a lease() handle
// ('lease': lease() then release()) and through lease(pool, fn) ('lease(fn)'). No budget
// in DESIGN.md: for the closing notes and to see it never creeps.
import { createPool } from 'generic-pool';
import { watch, detectorOf, lease } from 'poolwatch';

const max = 10;
const leakThresholdMs = 30_000;
const watchedNames = ['watched', 'lease', 'lease(fn)'];

function makePool() {
  let id = 0;
  return createPool({ create: async () => ({ id: ++id }), destroy: async () => {} }, { max });
}

async function cycles(pool, n) {
  for (let i = 0; i < n; i++) {
    const resource = await pool.acquire();
    await pool.release(resource);
  }
}

async function leases(pool, n) {
  for (let i = 0; i < n; i++) {
    const handle = await lease(pool);
    await handle.release();
  }
}

const use = async (resource) => resource;

async function leasesFn(pool, n) {
  for (let i = 0; i < n; i++) await lease(pool, use);
}

export default {
  name: 'lease',
  description: `lease() vs the pool's own acquire/release: generic-pool 3, in-memory resource, max ${max}, in sequence`,
  baseline: 'raw',
  cycles: { default: 200_000, quick: 60_000 },

  async setup() {
    const pools = { raw: makePool(), control: makePool() };
    for (const name of watchedNames) pools[name] = watch(makePool(), { name, leakThresholdMs });
    return { pools };
  },

  variants: [
    { name: 'raw', run: ({ pools }, n) => cycles(pools.raw, n) },
    // A second unwatched pool: its ratio to 'raw' is what the machine's noise alone gives.
    { name: 'control', run: ({ pools }, n) => cycles(pools.control, n) },
    { name: 'watched', run: ({ pools }, n) => cycles(pools.watched, n) },
    { name: 'lease', run: ({ pools }, n) => leases(pools.lease, n) },
    { name: 'lease(fn)', run: ({ pools }, n) => leasesFn(pools['lease(fn)'], n) },
  ],

  async teardown({ pools }) {
    for (const name of watchedNames) {
      const detector = detectorOf(pools[name]);
      const stats = detector?.stats()[name];
      // No acquires would mean the figures measured nothing; open leases, that the loop leaked.
      if (!stats || stats.acquired === 0 || stats.open !== 0 || stats.misuse !== 0) {
        throw new Error(`lease: pool '${name}' was not tracked as expected: ${JSON.stringify(stats)}`);
      }
      detector.close();
    }
    for (const pool of Object.values(pools)) {
      await pool.drain();
      await pool.clear();
    }
  },
};
