// Shared benchmark runner: times the variants of a scenario in interleaved rounds and
// reduces the timings to medians and ratios against the scenario's baseline variant.
//
// A scenario is a plain object:
//   { name, description, baseline, budgets?, cycles: { default, quick },
//     setup?(): state, variants: [{ name, run(state, n) }], teardown?(state) }
// `run` performs n cycles and resolves; the runner times it from outside, so a
// variant never reports its own figures and cannot flatter itself.
export function median(values) {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile, q in [0, 1]. */
export function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * The order of the variants in a round: rows of a Williams design, so over a full set
 * of rounds every variant runs in every position and after every other variant equally
 * often. A plain rotation balances positions but keeps the same predecessor, and what
 * the previous variant left behind (heap, caches) then biases one variant for good.
 */
export function order(n, round) {
  const base = [0];
  for (let lo = 1, hi = n - 1; base.length < n; ) base.push(base.length % 2 === 1 ? lo++ : hi--);
  // An odd number of variants needs the mirrored square too for predecessors to balance.
  const rows = n % 2 === 0 ? n : 2 * n;
  const r = round % rows;
  const row = base.map((v) => (v + r) % n);
  return r < n ? row : row.reverse();
}

async function timeRun(variant, state, n) {
  // No forced gc() before a run: tried, it made every run ~10% slower (raw 0.80 vs
  // 0.72 µs/cycle), a start-up cost no real app pays, and the Williams order already
  // spreads one variant's leftover garbage evenly over the others.
  const start = process.hrtime.bigint();
  await variant.run(state, n);
  return Number(process.hrtime.bigint() - start);
}

/**
 * Runs one scenario. Each round runs every variant once, in a different order each
 * round (see `order`), so that drift (thermal, frequency scaling, a neighbour's load,
 * GC debt) lands on every variant in turn instead of always on the same one. Rounds
 * in a multiple of `order`'s cycle (n, or 2n for an odd n variants) balance fully.
 */
export async function runScenario(scenario, { rounds, cycles, warmupCycles, log = () => {} }) {
  const { variants, baseline } = scenario;
  if (!variants.some((v) => v.name === baseline)) throw new Error(`${scenario.name}: no baseline variant "${baseline}"`);
  const state = scenario.setup ? await scenario.setup() : undefined;
  try {
    // Two interleaved warm-up passes: the first gets code optimised, the second lets it
    // settle after every variant has run (shared code paths see all their shapes).
    for (let pass = 0; pass < 2; pass++) {
      for (const variant of variants) await variant.run(state, warmupCycles);
    }
    const times = new Map(variants.map((v) => [v.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < variants.length; i++) {
        const variant = variants[order(variants.length, round)[i]];
        times.get(variant.name).push(await timeRun(variant, state, cycles));
      }
      log(`  ${scenario.name}: round ${round + 1}/${rounds}`);
    }
    return summarise(scenario, times, { rounds, cycles, warmupCycles });
  } finally {
    if (scenario.teardown) await scenario.teardown(state);
  }
}

function summarise(scenario, times, params) {
  const base = times.get(scenario.baseline);
  const baseMedianNs = median(base) / params.cycles;
  const variants = scenario.variants.map(({ name }) => {
    const perRound = times.get(name);
    const perRoundNs = perRound.map((t) => t / params.cycles);
    // Ratios within a round compare runs made seconds apart, so their spread shows the
    // noise a single ratio carries better than the spread of raw times does.
    const perRoundRatios = perRound.map((t, i) => t / base[i]);
    const medianNs = median(perRoundNs);
    return {
      name,
      medianNs,
      ratio: medianNs / baseMedianNs,
      ratioMin: Math.min(...perRoundRatios),
      ratioP25: quantile(perRoundRatios, 0.25),
      ratioP75: quantile(perRoundRatios, 0.75),
      ratioMax: Math.max(...perRoundRatios),
      budget: scenario.budgets?.[name] ?? null,
      perRoundNs,
      perRoundRatios,
    };
  });
  return { name: scenario.name, description: scenario.description, baseline: scenario.baseline, ...params, variants };
}

const fmt = (x, digits) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

/** The results as a fixed-width text table. */
export function formatTable(results) {
  const header = ['scenario', 'variant', 'ns/cycle', 'ratio', 'IQR of round ratios', 'min–max', 'budget'];
  const rows = [];
  for (const scenario of results) {
    for (const v of scenario.variants) {
      const budget = v.budget === null ? '' : `≤ ${v.budget}× ${v.ratio <= v.budget ? 'ok' : 'OVER'}`;
      rows.push([
        scenario.name,
        v.name,
        fmt(v.medianNs, 0),
        `${fmt(v.ratio, 2)}×`,
        `${fmt(v.ratioP25, 2)}–${fmt(v.ratioP75, 2)}`,
        `${fmt(v.ratioMin, 2)}–${fmt(v.ratioMax, 2)}`,
        budget,
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const numeric = new Set([2, 3]);
  const line = (cells) =>
    cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
