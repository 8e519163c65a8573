// How late a leak is reported after its threshold passes (DESIGN.md: within
// max(25 ms, 2% of the threshold)). A measurement with real timers, not a unit test:
// run.mjs calls `measure`.
//
// Each leak: note performance.now() just before acquire (so the figure can only
// overstate: the threshold really starts at hand-over, a little later), hold the
// connection, and time the 'leak' event against start + threshold. The leaks of a batch
// start staggered, so their deadlines fall at different phases of the detector's timer
// and of each other. One batch runs on an idle event loop, one while the same pool runs
// a busy acquire/release loop.
//
// Control: a plain setTimeout armed for the same deadline (rounded up to whole ms as the
// detector rounds its own). Its lateness is the event loop's delay at that moment (GC,
// the load loop's turn, a neighbour on the machine), which no detector can beat;
// budgets.mjs judges poolwatch on lateness beyond it.
import { createPool } from 'generic-pool';
import { watch } from 'poolwatch';
import { median } from '../runner.mjs';

// The load loop yields to the event loop every this many cycles, as an app serving
// requests does at each I/O. A loop that never yields (every acquire here resolves on a
// microtask) would starve all timers, the control's too: a test of the app, not of poolwatch.
const cyclesPerTurn = 100;

function budgetMs(thresholdMs) {
  return Math.max(25, 0.02 * thresholdMs);
}

async function batch(pool, detector, thresholdMs, { leaks, staggerMs, tagPrefix, tags }) {
  const results = [];
  const pending = new Map();
  const onLeak = (report) => {
    const entry = pending.get(report.context?.leak);
    if (!entry) return;
    pending.delete(report.context.leak);
    entry.reportedAt = performance.now();
    entry.done();
  };
  detector.on('leak', onLeak);
  const one = async (k) => {
    await new Promise((resolve) => setTimeout(resolve, k * staggerMs));
    const tag = `${tagPrefix}-${k}`;
    const entry = { tag };
    const reported = new Promise((resolve) => (entry.done = resolve));
    pending.set(tag, entry);
    tags.current = tag; // read by the pool's `context` option, synchronously inside acquire
    const start = performance.now();
    const resource = await pool.acquire();
    tags.current = undefined;
    const deadline = start + thresholdMs;
    const control = new Promise((resolve) =>
      setTimeout(() => resolve(performance.now() - deadline), Math.max(1, Math.ceil(deadline - performance.now()))),
    );
    // A report that never comes must not hang the run: give up well past the budget.
    const giveUp = new Promise((resolve) => setTimeout(resolve, thresholdMs + 20 * budgetMs(thresholdMs) + 1000));
    await Promise.race([reported, giveUp]);
    const latenessMs = entry.reportedAt === undefined ? Infinity : entry.reportedAt - deadline;
    results.push({ tag, latenessMs, controlLatenessMs: await control });
    await pool.release(resource);
  };
  await Promise.all(Array.from({ length: leaks }, (_, k) => one(k)));
  detector.off('leak', onLeak);
  return results;
}

async function withLoad(pool, fn) {
  let stop = false;
  let cycles = 0;
  const loop = (async () => {
    while (!stop) {
      for (let i = 0; i < cyclesPerTurn; i++) await pool.release(await pool.acquire());
      cycles += cyclesPerTurn;
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  try {
    return { results: await fn(), loadCycles: cycles };
  } finally {
    stop = true;
    await loop;
  }
}

async function measureThreshold(thresholdMs, leaks) {
  let id = 0;
  const tags = { current: undefined };
  const pool = watch(
    createPool({ create: async () => ({ id: ++id }), destroy: async () => {} }, { max: 2 * leaks + 4 }),
    { name: `latency-${thresholdMs}`, stacks: 'auto', leakThresholdMs: thresholdMs, context: () => ({ leak: tags.current }) },
  );
  const { detectorOf } = await import('poolwatch');
  const detector = detectorOf(pool);
  // Deadlines spread over ~one threshold's worth of phases, capped so a batch stays short.
  const staggerMs = Math.min(thresholdMs, 300) / leaks + 7;
  const idle = await batch(pool, detector, thresholdMs, { leaks, staggerMs, tagPrefix: 'idle', tags });
  const loaded = await withLoad(pool, () => batch(pool, detector, thresholdMs, { leaks, staggerMs, tagPrefix: 'load', tags }));
  detector.close();
  await pool.drain();
  await pool.clear();
  const all = [...idle, ...loaded.results];
  const lateness = all.map((r) => r.latenessMs);
  return {
    thresholdMs,
    budgetMs: budgetMs(thresholdMs),
    leaks: all.length,
    loadCycles: loaded.loadCycles,
    maxMs: Math.max(...lateness),
    medianMs: median(lateness),
    controlMaxMs: Math.max(...all.map((r) => r.controlLatenessMs)),
    // Per leak, lateness beyond the control timer that shared its deadline (never below 0 for the control).
    maxExcessMs: Math.max(...all.map((r) => r.latenessMs - Math.max(0, r.controlLatenessMs))),
    samples: all,
  };
}

export default {
  name: 'latency',
  description: "generic-pool watched with stacks 'auto'; leaks held past leakThresholdMs, half of them while the pool runs a busy acquire/release loop",
  thresholds: { default: [200, 2000], quick: [200] },
  leaksPerBatch: { default: 6, quick: 4 },

  async measure({ quick, log = () => {} }) {
    const mode = quick ? 'quick' : 'default';
    const rows = [];
    for (const thresholdMs of this.thresholds[mode]) {
      rows.push(await measureThreshold(thresholdMs, this.leaksPerBatch[mode]));
      log(`  latency: threshold ${thresholdMs} ms done`);
    }
    return { name: this.name, description: this.description, cyclesPerTurn, thresholds: rows };
  },
};
