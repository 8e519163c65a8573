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
// The same rule judges the service rows (scenarios/service*.mjs), whose control is a
// second raw service process, and their CPU-per-request row on the per-round CPU ratios.
// The leak measurement's rows are counts (leakRows): met or not, with no noise allowance.
import scaleScenario from './scenarios/scale.mjs';

const maxAllowance = Math.log(1.5);

/**
 * Budgets of DESIGN.md this code does not meet yet on the machines it is measured on
 * (2-core shared VMs), each with the ceiling CI holds it to meanwhile: the figure reached
 * in full and quick runs on Node 20, with a little room, so the gap cannot widen
 * unnoticed. Such a row is judged against its ceiling as any row is against its budget
 * (same noise rule); within it the verdict is 'gap', not ok: the table still shows the
 * budget it misses, and `--check` alone fails on it; `--check --known-gaps` (CI) does
 * not. Lower a ceiling when a change brings the figure down; remove the entry when the
 * budget is met.
 *
 * Why this one is open, measured: the default records every acquire's call site, and on
 * these VMs a stack capture taken in a pg client loop costs 5-8 us whatever its depth
 * (V8 walks frames whose code metadata has left the CPU's caches), against a ~27 us
 * connect/SELECT 1/release cycle with client and server on two cores. The pg scenario's
 * 'never' variant (no capture) runs at ~1.03x raw time, 'auto' and 'always' at ~1.3x.
 * On the real service the same capture is ~3% of the CPU per request: with the rest of a
 * lease's bookkeeping, the default lands at ~0.96x throughput and ~1.07x CPU per request
 * on Node 20, at the budget's edge and within one run's noise of it. The request scope
 * costs what AsyncLocalStorage costs on Node 20 (its promise hooks slow every promise of
 * the app): a bare AsyncLocalStorage.run() per request measured 0.90-0.94x throughput on
 * the same kind of service, and the scope lands at ~0.90x. The mariadb row follows
 * poolwatch's promise chaining on mariadb's own pool.query() (~1.0-1.14x across runs).
 */
export const knownGaps = {
  // Time ratios: 1.5x time is 0.67x throughput.
  'pg/auto': 1.5,
  // Met in full runs (0.94-0.97x), at 0.92x in quick ones: held at the edge it sits on.
  'service/always': 1.12,
  'service/default': 1.1,
  // The same pool watched the same way, by the preload instead of watch(). Both of its rows
  // (against raw, and against watch() in the same rounds) are held to this ceiling: quick
  // runs put them at 0.97x throughput and 0.96-1.08x time.
  'service/preload': 1.1,
  'service/default/cpuUs': 1.12,
  'service/scope': 1.16,
  'service-mariadb/poolwatch': 1.2,
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

/**
 * A ratio row: the variant's median time (or, with `metric`, its median of that per-round
 * figure) over the baseline's, or with `against` over that other variant's, judged with
 * the noise rule above. `budget` overrides the scenario's budget for the variant. Its
 * knownGaps key is `scenario/variant`, `scenario/variant/metric` with a metric.
 */
export function ratioRow(results, scenarioName, variantName, label, { throughput = false, metric, against, budget } = {}) {
  const scenario = results.find((s) => s.name === scenarioName);
  const v = scenario?.variants.find((x) => x.name === variantName);
  const control = scenario?.variants.find((x) => x.name === 'control');
  const other = against === undefined ? undefined : scenario?.variants.find((x) => x.name === against);
  if (!v || !control || (against !== undefined && !other)) return { row: label, verdict: 'not run' };
  if (metric !== undefined && !v.metrics?.[metric]) return { row: label, verdict: 'not run' };
  // The figure and the per-round ratios whose spread is the variant's own noise.
  const series = (x) => (metric === undefined ? x : x.metrics[metric]);
  let figure = series(v).ratio;
  let ownRatios = series(v).perRoundRatios;
  if (other) {
    figure = v.medianNs / other.medianNs;
    ownRatios = v.perRoundNs.map((t, i) => t / other.perRoundNs[i]);
  }
  const budget_ = budget ?? v.budget;
  const allowance = Math.abs(ln(series(control).ratio)) + Math.max(halfIqrLog(series(control).perRoundRatios), halfIqrLog(ownRatios));
  const limit = budget_ * Math.exp(allowance);
  let verdict_ = verdict(figure, budget_, limit, allowance > maxAllowance);
  const row = { row: label, unit: metric === undefined ? 'time ratio' : `${metric} ratio`, figure, budget: budget_, allowance, limit, verdict: verdict_ };
  const ceiling = knownGaps[metric === undefined ? `${scenarioName}/${variantName}` : `${scenarioName}/${variantName}/${metric}`];
  if (ceiling !== undefined && verdict_ !== 'ok') {
    // Missing the budget is known: what matters is whether it got worse.
    const gapLimit = ceiling * Math.exp(allowance);
    const atCeiling = verdict(figure, ceiling, gapLimit, allowance > maxAllowance);
    verdict_ = atCeiling === 'ok' || atCeiling === 'ok~' ? 'gap' : atCeiling;
    Object.assign(row, { ceiling, limit: gapLimit, verdict: verdict_, limitShown: `gap ≤ ${gapLimit.toFixed(2)}×` });
  }
  if (throughput) {
    // DESIGN.md states these as throughput floors; the scenarios turned them into time ceilings.
    const limitShown = `${ceiling !== undefined && verdict_ !== 'ok' ? 'gap ' : ''}≥ ${(1 / row.limit).toFixed(2)}×`;
    Object.assign(row, { unit: 'throughput ratio', shown: `${(1 / figure).toFixed(3)}× throughput`, budgetShown: `≥ ${(1 / budget_).toFixed(2)}×`, limitShown });
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

const percent = (x) => `${(100 * x).toFixed(x === 1 || x === 0 ? 0 : 1)}%`;

// A count figure needs no noise allowance: it is met, or it is a known gap whose ceiling
// holds, or it is over. `worse(figure, bound)` says whether figure misses bound.
function countVerdict(met, figure, ceiling, worse) {
  if (met) return 'ok';
  return ceiling !== undefined && !worse(figure, ceiling) ? 'gap' : 'OVER';
}

/**
 * The leak measurement's rows (scenarios/leaks.mjs), per phase. Naming: the share of
 * leak reports (those not caused by a hang-up) whose call site is the leaking line, and
 * every leaked request must have had one; knownGaps `leaks/named-<phase>` would be the
 * lowest share accepted meanwhile. Hang-ups: reports per dropped request, budget 0;
 * knownGaps `leaks/disconnect-<phase>` would be the highest share accepted.
 */
function leakRows(leaks) {
  const naming = 'every leak report names the app\'s acquiring line';
  const hangUp = 'no report when a client disconnects mid-request';
  if (!leaks) return [{ row: naming, verdict: 'not run' }, { row: hangUp, verdict: 'not run' }];
  return leaks.phases.flatMap((p) => {
    const where = `(${p.name}, ${p.connections} connections)`;
    const named = p.reports > 0 && p.named === p.reports && p.named >= p.leakedRequests;
    const namingCeiling = knownGaps[`leaks/named-${p.name}`];
    const share = p.reports === 0 ? 0 : p.share;
    const hangUpShare = p.disconnects === 0 ? NaN : p.disconnectReports / p.disconnects;
    const hangUpCeiling = knownGaps[`leaks/disconnect-${p.name}`];
    const noHangUpReports = p.disconnectReports === 0 && p.disconnects > 0;
    return [
      {
        row: `${naming} ${where}`,
        unit: 'share of leak reports',
        figure: share,
        shown: `${percent(share)} of ${p.reports} reports (${p.leakedRequests} leaked requests; ${p.withoutStack} without a stack)`,
        budget: 1,
        budgetShown: '100%, one per leak',
        limitShown: namingCeiling === undefined || named ? '-' : `gap ≥ ${percent(namingCeiling)}`,
        ...(namingCeiling === undefined ? {} : { ceiling: namingCeiling }),
        verdict: countVerdict(named, share, namingCeiling, (x, floor) => !(x >= floor) || p.named < p.leakedRequests),
      },
      {
        row: `${hangUp} ${where}`,
        unit: 'reports per dropped request',
        figure: hangUpShare,
        shown: `${p.disconnectReports} reports from ${p.disconnects} hang-ups (${percent(hangUpShare)})`,
        budget: 0,
        budgetShown: '0 reports',
        limitShown: hangUpCeiling === undefined || noHangUpReports ? '-' : `gap ≤ ${percent(hangUpCeiling)}`,
        ...(hangUpCeiling === undefined ? {} : { ceiling: hangUpCeiling }),
        verdict: countVerdict(noHangUpReports, hangUpShare, hangUpCeiling, (x, ceiling) => !(x <= ceiling)),
      },
    ];
  });
}

/** Every budget row of DESIGN.md, judged; rows whose scenario did not run say so. */
export function evaluateBudgets(results, measurements) {
  return [
    // Against the floor yardstick run in the same rounds (scenarios/floor.mjs), not raw.
    ratioRow(results, 'generic-pool', 'auto', "generic-pool, in-memory, acquire+release, default, vs floor", { against: 'floor', budget: 1.15 }),
    ratioRow(results, 'generic-pool', 'always', "same, stacks 'always', vs floor+full", { against: 'floor+full', budget: 1.15 }),
    ratioRow(results, 'pg', 'auto', "PostgreSQL, connect/SELECT 1/release, 10 clients, 'auto'", { throughput: true }),
    heapRow(measurements.heap),
    scaleRow(results),
    ...latencyRows(measurements.latency),
    ratioRow(results, 'service', 'default', 'real service (Express 5, pg.Pool 10, 50 connections), default options', { throughput: true }),
    ratioRow(results, 'service', 'default', 'same, CPU per request', { metric: 'cpuUs', budget: 1.05 }),
    ratioRow(results, 'service', 'scope', 'same, with the request scope (expressScope())', { throughput: true }),
    ratioRow(results, 'service', 'always', "same, stacks 'always'", { throughput: true }),
    // Not DESIGN.md rows: the preload watches the pool the way watch() does, so it is held to the same.
    ratioRow(results, 'service', 'preload', 'same, watched by node --import poolwatch/register alone', { throughput: true }),
    ratioRow(results, 'service', 'preload', "same, the preload's vs watch()'s (time)", { against: 'default', budget: 1 }),
    ratioRow(results, 'service-mariadb', 'poolwatch', "mariadb service: poolwatch's default vs leakDetectionTimeout (time)", { against: 'leakDetection', budget: 1 }),
    ...leakRows(measurements.leaks),
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
