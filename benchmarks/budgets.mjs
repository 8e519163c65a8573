// DESIGN.md's "Performance budgets" table, one row each, judged against one run's
// figures with a noise allowance measured by that same run.
//
// Verdicts:
//   ok      the figure meets the budget outright;
//   ok~     it misses the budget by less than the run's own noise: not evidence of a miss;
//   OVER    it misses the budget by more than the noise: a regression (--check exits 1);
//   noisy   it misses the budget, and the run was too noisy to tell a miss from noise
//           (allowance above `maxAllowance`): inconclusive, rerun (--check exits 3);
//   gap     it misses a budget listed in `knownGaps`, but not that entry's ceiling
//           (judged the same way): a known shortfall that did not get worse. --check
//           fails it like OVER unless --known-gaps is given (as CI does).
//
// The noise rule for ratio rows (time ratios; lower is better), in log space since
// ratios multiply:
//   allowance = |ln(control ratio)|  +  max(half-IQR of ln(control per-round ratios),
//                                           half-IQR of ln(variant per-round ratios))
//   limit     = budget × e^allowance
// The control is a second raw pool, identical to the baseline: its median ratio should be
// 1, and how far it is not is bias that two identical pools show in this run (position,
// heap placement), which more rounds do not remove. The half-IQR of per-round ratios is
// ~0.67 σ of one round; the median of n rounds has a standard error of ~1.25 σ/√n, so the
// half-IQR is ~1.7 standard errors at 10 rounds and ~2.4 at 20: a one-sided 95–99% bound
// on how far the variant's median can sit from its true value by scatter alone. The
// variant's own scatter counts too, since a slower variant's rounds can swing wider
// than the control's. Noise can only widen the limit, never narrow it, so a sound change
// does not fail on a noisy machine; and the allowance is capped at `maxAllowance` (×1.5)
// before a miss is called 'noisy' instead of ok~, so a 2× regression is never passed
// as noise: it is OVER, or at worst inconclusive.
import scaleScenario from './scenarios/scale.mjs';

const maxAllowance = Math.log(1.5);

/**
 * Budgets of DESIGN.md this code does not meet yet on the machines it is measured on
 * (2-core shared VMs), each with the ceiling CI holds it to meanwhile: the figure reached
 * on the Node CI benchmarks with (20; full and quick runs) with a little room, so the gap
 * cannot widen unnoticed. Node 24's ratios run ~5% higher: its raw cycle is faster. Such a row is judged against its ceiling as any row is against its budget
 * (same noise rule); within it the verdict is 'gap', not ok: the table still shows the
 * budget it misses, and `--check` alone fails on it; `--check --known-gaps` (CI) does
 * not. Lower a ceiling when a change brings the figure down; remove the entry when the
 * budget is met.
 *
 * Why these are open, measured (see the CHANGELOG and README): on these VMs one clock
 * read costs ~45 ns and a stack capture ~2 µs, against a ~0.7 µs raw generic-pool cycle.
 * A bare tracker with two clock reads, a lease record and its WeakMap entry, and
 * nothing else, already runs at ~1.36–1.41× raw, and ~5.0× capturing every stack: the
 * generic-pool scenario measures both in every run ('floor', 'floor+stacks').
 */
export const knownGaps = {
  'generic-pool/auto': 1.75,
  'generic-pool/always': 6.9,
  // A time ratio: 1.5× time is 0.67× throughput.
  'pg/always': 1.5,
};

const ln = Math.log;
const halfIqrLog = (ratios) => {
  const logs = ratios.map(ln).sort((a, b) => a - b);
  const q = (p) => {
    const pos = (logs.length - 1) * p;
    const lo = Math.floor(pos);
    return logs[lo] + (logs[Math.ceil(pos)] - logs[lo]) * (pos - lo);
  };
  return (q(0.75) - q(0.25)) / 2;
};
const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  const m = (s.length - 1) / 2;
  return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2;
};

// A figure against its ceiling (`budget`) and the ceiling widened by the run's noise (`limit`).
function verdict(figure, budget, limit, allowanceTooWide) {
  if (!Number.isFinite(figure)) return 'OVER';
  if (figure <= budget) return 'ok';
  if (figure > limit) return 'OVER';
  return allowanceTooWide ? 'noisy' : 'ok~';
}

export function ratioRow(results, scenarioName, variantName, label, { throughput = false } = {}) {
  const scenario = results.find((s) => s.name === scenarioName);
  const v = scenario?.variants.find((x) => x.name === variantName);
  const control = scenario?.variants.find((x) => x.name === 'control');
  if (!v || !control) return { row: label, verdict: 'not run' };
  const allowance = Math.abs(ln(control.ratio)) + Math.max(halfIqrLog(control.perRoundRatios), halfIqrLog(v.perRoundRatios));
  const limit = v.budget * Math.exp(allowance);
  let verdict_ = verdict(v.ratio, v.budget, limit, allowance > maxAllowance);
  const row = { row: label, unit: 'time ratio', figure: v.ratio, budget: v.budget, allowance, limit, verdict: verdict_ };
  const ceiling = knownGaps[`${scenarioName}/${variantName}`];
  if (ceiling !== undefined && verdict_ !== 'ok') {
    // Missing the budget is known: what matters is whether it got worse.
    const gapLimit = ceiling * Math.exp(allowance);
    const atCeiling = verdict(v.ratio, ceiling, gapLimit, allowance > maxAllowance);
    verdict_ = atCeiling === 'ok' || atCeiling === 'ok~' ? 'gap' : atCeiling;
    Object.assign(row, { ceiling, limit: gapLimit, verdict: verdict_, limitShown: `gap ≤ ${gapLimit.toFixed(2)}×` });
  }
  if (throughput) {
    // DESIGN.md states these as throughput floors; pg.mjs turned them into time ceilings.
    const limitShown = `${ceiling !== undefined && verdict_ !== 'ok' ? 'gap ' : ''}≥ ${(1 / row.limit).toFixed(2)}×`;
    Object.assign(row, { unit: 'throughput ratio', shown: `${(1 / v.ratio).toFixed(3)}× throughput`, budgetShown: `≥ ${(1 / v.budget).toFixed(2)}×`, limitShown });
  }
  return row;
}

function scaleRow(results) {
  const label = 'cost per cycle, 10,000 leases open vs 10';
  const scenario = results.find((s) => s.name === 'scale');
  if (!scenario) return { row: label, verdict: 'not run' };
  const byName = Object.fromEntries(scenario.variants.map((v) => [v.name, v.perRoundNs]));
  const perRound = ([num, den]) => byName[num].map((t, i) => t / byName[den][i]);
  const { watched, raw, control } = scaleScenario.scaleRatios;
  const watchedRatios = perRound(watched);
  const rawRatios = perRound(raw);
  const controlRatios = perRound(control);
  // poolwatch answers only for its own scaling: generic-pool's (the raw ratio) is divided out.
  const net = watchedRatios.map((r, i) => r / rawRatios[i]);
  const figure = median(net);
  const budget = 1.2;
  // As for ratio rows, but the net figure combines four timings, two ratios' worth of
  // scatter: the control's spread (one ratio) counts √2 times; net's own spread already has both.
  const allowance = Math.abs(ln(median(controlRatios))) + Math.max(Math.SQRT2 * halfIqrLog(controlRatios), halfIqrLog(net));
  const limit = budget * Math.exp(allowance);
  return {
    row: label,
    unit: 'ratio of ratios',
    figure,
    watchedRatio: median(watchedRatios),
    rawRatio: median(rawRatios),
    shown: `${figure.toFixed(2)}× (auto ${median(watchedRatios).toFixed(2)}×, raw ${median(rawRatios).toFixed(2)}×)`,
    budget,
    allowance,
    limit,
    verdict: verdict(figure, budget, limit, allowance > maxAllowance),
  };
}

function heapRow(heap) {
  const label = '1,000,000 acquire/release cycles: retained heap';
  if (!heap) return { row: label, verdict: 'not run' };
  const kb = (b) => `${(b / 1000).toFixed(0)} kB`;
  // Additive, not multiplicative: heap noise is bytes the raw pool also retained (or
  // freed) in this run, not a share of the figure.
  const limit = heap.budgetBytes + heap.noiseBytes;
  return {
    row: label,
    unit: 'bytes per 1M cycles, watched − raw',
    figure: heap.netGrowthPer1MBytes,
    shown: `${kb(heap.netGrowthPer1MBytes)} (watched ${kb(heap.watchedGrowthBytes)}, raw ${kb(heap.rawGrowthBytes)} over ${heap.cycles.toLocaleString('en')})`,
    budget: heap.budgetBytes,
    budgetShown: `< ${kb(heap.budgetBytes)}`,
    limit,
    limitShown: kb(limit),
    verdict: verdict(heap.netGrowthPer1MBytes, heap.budgetBytes, limit, heap.noiseBytes > heap.budgetBytes / 2),
  };
}

function latencyRows(latency) {
  if (!latency) return [{ row: 'leak reported after the threshold passes', verdict: 'not run' }];
  return latency.thresholds.map((t) => {
    // Judged on lateness beyond the control timer sharing each leak's deadline: the event
    // loop's own delay at that moment is the machine's, not poolwatch's.
    return {
      row: `leak reported after a ${t.thresholdMs} ms threshold`,
      unit: 'ms late, max over leaks',
      figure: t.maxMs,
      excessMs: t.maxExcessMs,
      shown: `max ${t.maxMs.toFixed(1)} ms, median ${t.medianMs.toFixed(1)} ms (control max ${t.controlMaxMs.toFixed(1)} ms)`,
      budget: t.budgetMs,
      budgetShown: `≤ ${t.budgetMs} ms`,
      limitShown: `≤ ${t.budgetMs} ms beyond control`,
      // No 'noisy' here: the per-leak subtraction already removes the event loop's delay.
      verdict: t.maxMs <= t.budgetMs ? 'ok' : t.maxExcessMs <= t.budgetMs ? 'ok~' : 'OVER',
    };
  });
}

/** Every budget row of DESIGN.md, judged; rows whose scenario did not run say so. */
export function evaluateBudgets(results, measurements) {
  return [
    ratioRow(results, 'generic-pool', 'auto', "generic-pool, in-memory, acquire+release, stacks 'auto'"),
    ratioRow(results, 'generic-pool', 'always', "same, stacks 'always'"),
    ratioRow(results, 'pg', 'auto', "PostgreSQL, connect/SELECT 1/release, 10 clients, 'auto'", { throughput: true }),
    ratioRow(results, 'pg', 'always', "same, 'always'", { throughput: true }),
    heapRow(measurements.heap),
    scaleRow(results),
    ...latencyRows(measurements.latency),
  ];
}

/** The budget rows as a fixed-width text table. */
export function formatBudgetTable(rows) {
  const header = ['budget row', 'figure', 'budget', 'noise limit', 'verdict'];
  const cell = (row) => [
    row.row,
    row.shown ?? (Number.isFinite(row.figure) ? `${row.figure.toFixed(2)}×` : row.figure === undefined ? '-' : String(row.figure)),
    row.budgetShown ?? (row.budget === undefined ? '-' : `≤ ${row.budget}×`),
    row.limitShown ?? (row.limit === undefined ? '-' : `≤ ${row.limit.toFixed(2)}×`),
    row.verdict,
  ];
  const rows_ = rows.map(cell);
  const widths = header.map((h, i) => Math.max(h.length, ...rows_.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows_.map(line)].join('\n');
}
