// generic-pool with an in-memory resource: acquire+release in sequence. With no I/O
// in the cycle, this isolates what poolwatch adds per lease (DESIGN.md budgets:
// 'auto' ≤ 1.25× raw, 'always' ≤ 5× raw).
import { createPool } from 'generic-pool';
import { watch, detectorOf } from 'poolwatch';

const max = 10;
// Long enough that no lease ever reaches it: the timer path stays out of the figures.
const leakThresholdMs = 30_000;

function makePool() {
  let id = 0;
  return createPool({ create: async () => ({ id: ++id }), destroy: async () => {} }, { max });
}

// One loop for every variant, so all of them run through the same call site and pay
// the same inline-cache state; only the pool object differs.
async function cycles(pool, n) {
  for (let i = 0; i < n; i++) {
    const resource = await pool.acquire();
    await pool.release(resource);
  }
}

const watched = ['never', 'auto', 'always'];

/**
 * A yardstick, not poolwatch: the least any tracker that keeps a record per lease does
 * per cycle, so the 'auto' figure can be read against what is possible on this machine.
 * It sees the handover inside generic-pool as poolwatch does (no promise of its own),
 * reads the clock at acquire and at release (exact held time), and keeps each lease in a
 * linked list and a WeakMap by resource. Nothing else: no counters, stats, events,
 * context or timer. With `stacks`, it also captures each acquire's stack (32 frames, as
 * poolwatch does) in the wrapper itself, the cheapest place: the yardstick for 'always'.
 */
function floorTracked(pool, stacks = false) {
  const acquire = pool.acquire;
  const release = pool.release;
  const queue = pool._waitingClientsQueue;
  const enqueue = queue.enqueue;
  const byResource = new WeakMap();
  const list = { head: null, tail: null, heldMs: 0 };
  let pending = null;
  function resolve(resource) {
    Object.getPrototypeOf(this).resolve.call(this, resource);
    const lease = this.floorLease;
    lease.resource = resource;
    lease.prev = list.tail;
    if (list.tail === null) list.head = lease;
    else list.tail.next = lease;
    list.tail = lease;
    byResource.set(resource, lease);
  }
  queue.enqueue = function (request) {
    request.floorLease = pending;
    request.resolve = resolve;
    return enqueue.apply(this, arguments);
  };
  pool.acquire = function floorAcquire() {
    let trace = null;
    if (stacks) {
      trace = {};
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 32;
      Error.captureStackTrace(trace, floorAcquire);
      Error.stackTraceLimit = limit;
    }
    pending = { at: performance.now(), resource: null, prev: null, next: null, trace };
    return acquire.apply(this, arguments);
  };
  pool.release = function (resource) {
    const at = performance.now();
    const lease = byResource.get(resource);
    if (lease !== undefined) {
      list.heldMs += at - lease.at;
      if (lease.prev === null) list.head = lease.next;
      else lease.prev.next = lease.next;
      if (lease.next === null) list.tail = lease.prev;
      else lease.next.prev = lease.prev;
      lease.prev = lease.next = null;
    }
    return release.apply(this, arguments);
  };
  return pool;
}

export default {
  name: 'generic-pool',
  description: `generic-pool 3, in-memory resource, max ${max}, acquire+release in sequence`,
  baseline: 'raw',
  budgets: { auto: 1.25, always: 5 },
  // ~0.7 µs/cycle raw, ~4.5 µs 'always' on a 2-core VM: 20 default rounds take ~60 s; quick ~12 s
  // (quick rounds of 30,000 cycles, ~30 ms, left CI's check a noise allowance of ~20%).
  cycles: { default: 200_000, quick: 100_000 },

  async setup() {
    const pools = { raw: makePool(), control: makePool() };
    for (const stacks of watched) pools[stacks] = watch(makePool(), { name: stacks, stacks, leakThresholdMs });
    pools.floor = floorTracked(makePool());
    pools['floor+stacks'] = floorTracked(makePool(), true);
    return pools;
  },

  variants: [
    { name: 'raw', run: (pools, n) => cycles(pools.raw, n) },
    // A second unwatched pool: its ratio to 'raw' is what the machine's noise alone gives.
    { name: 'control', run: (pools, n) => cycles(pools.control, n) },
    ...watched.map((stacks) => ({ name: stacks, run: (pools, n) => cycles(pools[stacks], n) })),
    { name: 'floor', run: (pools, n) => cycles(pools.floor, n) },
    { name: 'floor+stacks', run: (pools, n) => cycles(pools['floor+stacks'], n) },
  ],

  async teardown(pools) {
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
