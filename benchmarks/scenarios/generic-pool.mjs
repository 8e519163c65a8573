// generic-pool with an in-memory resource: acquire+release in sequence. With no I/O
// in the cycle, this isolates what poolwatch adds per lease. DESIGN.md's budgets judge it
// against the `floor` yardstick run in the same rounds (floor.mjs, budgets.mjs): the default
// ≤ 1.15× floor, 'always' ≤ 1.15× floor+full.
import { createPool } from 'generic-pool';
import { watch, detectorOf } from 'poolwatch';
import { callSiteDepth, floorCycles, fullDepth } from './floor.mjs';

export const max = 10;
// Long enough that no lease ever reaches it: the timer path stays out of the figures.
const leakThresholdMs = 30_000;

export function makePool() {
  let id = 0;
  return createPool({ create: async () => ({ id: ++id }), destroy: async () => {} }, { max });
}

// One loop for every variant, so all of them run through the same call site and pay
// the same inline-cache state; only the pool object differs.
export async function cycles(pool, n) {
  for (let i = 0; i < n; i++) {
    const resource = await pool.acquire();
    await pool.release(resource);
  }
}

const watched = ['never', 'auto', 'always'];

export default {
  name: 'generic-pool',
  description: `generic-pool 3, in-memory resource, max ${max}, acquire+release in sequence`,
  baseline: 'raw',
  // ~0.7 µs/cycle raw, ~4.5 µs 'always' on a 2-core VM: 20 default rounds take ~70 s; quick ~15 s
  // (quick rounds of 30,000 cycles, ~30 ms, left CI's check a noise allowance of ~20%).
  cycles: { default: 200_000, quick: 100_000 },

  async setup() {
    const pools = { raw: makePool(), control: makePool(), floor: makePool(), 'floor+full': makePool() };
    for (const stacks of watched) pools[stacks] = watch(makePool(), { name: stacks, stacks, leakThresholdMs });
    return { pools, floorLeases: new WeakMap() };
  },

  variants: [
    { name: 'raw', run: ({ pools }, n) => cycles(pools.raw, n) },
    // A second unwatched pool: its ratio to 'raw' is what the machine's noise alone gives.
    { name: 'control', run: ({ pools }, n) => cycles(pools.control, n) },
    ...watched.map((stacks) => ({ name: stacks, run: ({ pools }, n) => cycles(pools[stacks], n) })),
    { name: 'floor', run: ({ pools, floorLeases }, n) => floorCycles(pools.floor, n, callSiteDepth, floorLeases) },
    { name: 'floor+full', run: ({ pools, floorLeases }, n) => floorCycles(pools['floor+full'], n, fullDepth, floorLeases) },
  ],

  async teardown({ pools }) {
    for (const stacks of watched) {
      const detector = detectorOf(pools[stacks]);
      // A watched pool that saw no acquires would mean the wrapper was bypassed and the
      // figures measured nothing; open leases would mean the loop leaked.
      const stats = detector?.stats()[stacks];
      if (!stats || stats.acquired === 0 || stats.open !== 0) {
        throw new Error(`generic-pool: pool '${stacks}' was not tracked as expected: ${JSON.stringify(stats)}`);
      }
      detector.close();
    }
    for (const pool of Object.values(pools)) {
      await pool.drain();
      await pool.clear();
    }
  },
};
