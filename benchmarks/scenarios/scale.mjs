// Cost per cycle with 10,000 leases open vs 10 open (DESIGN.md: ≤ 1.2×). Each variant's
// pool holds N leases open (acquired, never released) for the whole scenario, and the
// timed cycles are acquire+release on top of them.
//
// The pool is a minimal one written here (O(1) acquire and release, a free list), watched
// through the `adapter` option, not generic-pool: generic-pool 3 costs ~27 µs a cycle
// with 10,000 loans out against ~0.8 µs with 10 (a 30× rise, all in its
// _dispatchPooledResourceToNextWaitingClient), which buries poolwatch's ~0.7 µs: a
// doubling of poolwatch's cost at 10,000 would move the watched ratio by ~3%. With a
// flat pool the ratio is poolwatch's scaling and nothing else.
//
// The raw pool is still measured the same way, in case the pool or the engine (Map/WeakMap
// sizes, GC of a bigger heap) does not scale flat: the budget row (budgets.mjs) is
// (auto 10000 / auto 10) ÷ (raw 10000 / raw 10), per round, median; both ratios are
// reported. 'control-10' is a second raw pool with 10 open: its ratio to 'raw-10' is the
// noise of this run.
import { watch, detectorOf } from 'poolwatch';

class FlatPool {
  #free = [];
  #id = 0;
  borrowed = 0;
  async acquire() {
    this.borrowed++;
    return this.#free.pop() ?? { id: ++this.#id };
  }
  async release(resource) {
    this.borrowed--;
    this.#free.push(resource);
  }
}
const adapter = { acquire: 'acquire', release: 'release', name: 'flat' };

const few = 10;
const many = 10_000;
// Nothing may become a leak while the scenario runs (a report would cost time in the
// rounds), yet the timer stays armed as in real use: Infinity would switch it off.
const leakThresholdMs = 3_600_000;

// One loop for every variant, as in generic-pool.mjs: only the pool object differs.
async function cycles(pool, n) {
  for (let i = 0; i < n; i++) {
    const resource = await pool.acquire();
    await pool.release(resource);
  }
}

// name → [watched?, leases held open]
const pools = {
  'raw-10': [false, few],
  'control-10': [false, few],
  'raw-10000': [false, many],
  'auto-10': [true, few],
  'auto-10000': [true, many],
};

export default {
  name: 'scale',
  description: `minimal O(1) in-memory pool (watched via \`adapter\`), acquire+release in sequence with ${few} or ${many} other leases held open; watched: stacks 'auto'`,
  baseline: 'raw-10',
  // Same cycle counts as generic-pool.mjs: a similar loop, under 1 µs a cycle raw.
  cycles: { default: 200_000, quick: 30_000 },
  // For budgets.mjs: which variants make the scale ratios.
  scaleRatios: { watched: ['auto-10000', 'auto-10'], raw: ['raw-10000', 'raw-10'], control: ['control-10', 'raw-10'] },

  async setup() {
    const state = {};
    for (const [name, [watched, open]] of Object.entries(pools)) {
      let pool = new FlatPool();
      if (watched) pool = watch(pool, { name, stacks: 'auto', leakThresholdMs, adapter });
      const held = [];
      for (let i = 0; i < open; i++) held.push(await pool.acquire());
      state[name] = { pool, held };
    }
    return state;
  },

  variants: Object.keys(pools).map((name) => ({ name, run: (state, n) => cycles(state[name].pool, n) })),

  async teardown(state) {
    for (const [name, [watched, open]] of Object.entries(pools)) {
      const { pool, held } = state[name];
      if (watched) {
        const detector = detectorOf(pool);
        // The held leases must still be open and none reported: otherwise the rounds
        // measured something other than 'N leases open, no leaks'.
        const stats = detector?.stats()[name];
        if (!stats || stats.acquired <= open || stats.open !== open || stats.leaked !== 0) {
          throw new Error(`scale: pool '${name}' was not tracked as expected: ${JSON.stringify(stats)}`);
        }
        detector.close();
      }
      for (const resource of held) await pool.release(resource);
      if (pool.borrowed !== 0) throw new Error(`scale: pool '${name}' ended with ${pool.borrowed} borrowed`);
    }
  },
};
