// Shared benchmark runner: times the variants of a scenario in interleaved rounds and
// reduces the timings to medians and ratios against the scenario's baseline variant.
//
// A scenario is a plain object:
//   { name, description, baseline, budgets?, cycles: { default, quick },
//     setup?(): state, variants: [{ name, run(state, n) }], teardown?(state) }
// `run` performs n cycles and resolves; the runner times it from outside, so a
// variant never reports its own figures and cannot flatter itself.
//
// A `run` may also resolve to an object of extra per-round figures measured elsewhere
// (a service process's CPU time, GC time, bytes allocated: `{ cpuUs, gcUs, allocBytes }`);
// each is summarised as the times are, median and per-round ratios against the baseline's
// same round. `scenario.metrics` may describe them: `{ cpuUs: { label, unit, perCycle,
// digits } }`; `perCycle: false` for a figure that is not a total over the round (a p99
// latency), which is then not divided by the cycles. Scenarios whose `run` resolves to
// nothing get no `metrics` in their results.
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
  const figures = await variant.run(state, n);
  const ns = Number(process.hrtime.bigint() - start);
  return { ns, figures: typeof figures === 'object' && figures !== null ? figures : undefined };
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
    const figures = new Map(variants.map((v) => [v.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < variants.length; i++) {
        const variant = variants[order(variants.length, round)[i]];
        const { ns, figures: extra } = await timeRun(variant, state, cycles);
        times.get(variant.name).push(ns);
        figures.get(variant.name).push(extra);
      }
      log(`  ${scenario.name}: round ${round + 1}/${rounds}`);
    }
    return summarise(scenario, times, figures, { rounds, cycles, warmupCycles });
  } finally {
    if (scenario.teardown) await scenario.teardown(state);
  }
}

// The figures every round of every variant reported: one missing anywhere has no ratios.
function metricKeys(figures) {
  const rounds = [...figures.values()].flat();
  if (rounds.length === 0 || rounds.some((f) => f === undefined)) return [];
  return Object.keys(rounds[0]).filter((key) => rounds.every((f) => Number.isFinite(f[key])));
}

function summariseMetric(perRound, base, info, cycles) {
  const scale = info.perCycle === false ? 1 : cycles;
  const perRoundRatios = perRound.map((x, i) => x / base[i]);
  const value = median(perRound) / scale;
  return {
    median: value,
    ratio: value / (median(base) / scale),
    ratioP25: quantile(perRoundRatios, 0.25),
    ratioP75: quantile(perRoundRatios, 0.75),
    perRound: perRound.map((x) => x / scale),
    perRoundRatios,
  };
}

function summarise(scenario, times, figures, params) {
  const base = times.get(scenario.baseline);
  const baseMedianNs = median(base) / params.cycles;
  const keys = metricKeys(figures);
  const info = (key) => scenario.metrics?.[key] ?? {};
  const baseFigures = figures.get(scenario.baseline);
  const variants = scenario.variants.map(({ name }) => {
    const perRound = times.get(name);
    const perRoundNs = perRound.map((t) => t / params.cycles);
    // Ratios within a round compare runs made seconds apart, so their spread shows the
    // noise a single ratio carries better than the spread of raw times does.
    const perRoundRatios = perRound.map((t, i) => t / base[i]);
    const medianNs = median(perRoundNs);
    const metrics = {};
    for (const key of keys) {
      const pick = (list) => list.map((f) => f[key]);
      metrics[key] = summariseMetric(pick(figures.get(name)), pick(baseFigures), info(key), params.cycles);
    }
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
      ...(keys.length > 0 ? { metrics } : {}),
    };
  });
  const described = keys.length > 0 ? { metricInfo: Object.fromEntries(keys.map((k) => [k, info(k)])) } : {};
  return { name: scenario.name, description: scenario.description, baseline: scenario.baseline, ...params, ...described, variants };
}

const fmt = (x, digits) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

/** The results as a fixed-width text table. */
export function formatTable(results) {
  const header = ['scenario', 'variant', 'ns/cycle', 'ratio', 'IQR of round ratios', 'min–max', 'budget'];
  const rows = [];
  for (const scenario of results) {
    for (const v of scenario.variants) {
      // Rounded for display only: a budget may be a throughput floor turned into a time ceiling (1 / 0.93).
      const budget = v.budget === null ? '' : `≤ ${Number(v.budget.toFixed(3))}× ${v.ratio <= v.budget ? 'ok' : 'OVER'}`;
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

/** The extra per-round figures of the scenarios that have them, as a fixed-width table. */
export function formatMetricsTable(results) {
  const withMetrics = results.filter((s) => s.metricInfo);
  if (withMetrics.length === 0) return '';
  const blocks = [];
  for (const scenario of withMetrics) {
    const keys = Object.keys(scenario.metricInfo);
    const header = ['scenario', 'variant', ...keys.map((k) => `${scenario.metricInfo[k].label ?? k} (${scenario.metricInfo[k].unit ?? 'per cycle'})`)];
    const rows = scenario.variants.map((v) => [
      scenario.name,
      v.name,
      ...keys.map((k) => {
        const m = v.metrics[k];
        const ratio = v.name === scenario.baseline ? '' : ` ${fmt(m.ratio, 2)}× [${fmt(m.ratioP25, 2)}–${fmt(m.ratioP75, 2)}]`;
        return `${fmt(m.median, scenario.metricInfo[k].digits ?? 1)}${ratio}`;
      }),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
    blocks.push([line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n'));
  }
  return blocks.join('\n\n');
}
