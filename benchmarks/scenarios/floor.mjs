// Yardsticks for the generic-pool budgets, not poolwatch: what the least possible
// per-lease tracking costs on this machine, so poolwatch's 'auto' and 'always' figures
// can be read against it. Its own scenario, run after the budget ones: its requests take
// other shapes in generic-pool's code, which would change the code the budget variants
// run through if they ran side by side.
import { cycles, makePool } from './generic-pool.mjs';

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
  name: 'floor',
  description: 'generic-pool cycle as in generic-pool.mjs, with the least a per-lease tracker does (floor), and that plus a stack per acquire (floor+stacks)',
  baseline: 'raw',
  cycles: { default: 200_000, quick: 100_000 },

  async setup() {
    return { raw: makePool(), floor: floorTracked(makePool()), 'floor+stacks': floorTracked(makePool(), true) };
  },

  variants: ['raw', 'floor', 'floor+stacks'].map((name) => ({ name, run: (pools, n) => cycles(pools[name], n) })),

  async teardown(pools) {
    for (const pool of Object.values(pools)) {
      await pool.drain();
      await pool.clear();
    }
  },
};
