import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { formatDuration, formatLabels } from './report.js';
import { escapeLines } from './escape.js';
import type { PoolSizing } from './sizing.js';
import type { HolderGroup, Verdict } from './exhaustion.js';
import type { Activity } from './activity.js';

/** One pool's picture over time, as the detector recorded it. */
export interface PoolTimeline {
  readonly name: string;
  /** The pool's max, when it says. */
  readonly capacity: number | undefined;
  /** Samples, oldest first: epoch ms, and the leased / idle (undefined when the pool does not say) / waiting counts then. */
  readonly samples: ReadonlyArray<{ readonly at: number; readonly leased: number; readonly idle: number | undefined; readonly waiting: number }>;
  /** What happened, to be marked on the chart. */
  readonly marks: ReadonlyArray<{ readonly at: number; readonly kind: 'leak' | 'timeout' | 'reclaimed' | 'slow'; readonly text: string; readonly verdict?: Verdict }>;
  /** Who holds it now, grouped by call site. */
  readonly holders: readonly HolderGroup[];
  readonly sizing: PoolSizing;
}

export interface ReportData {
  readonly title: string;
  readonly generatedAt: number;
  readonly pools: readonly PoolTimeline[];
}

type MarkKind = PoolTimeline['marks'][number]['kind'];

// uPlot (~50 KB minified, no dependencies): a canvas time-series chart small enough to
// inline in every report. Read once, on the first report. The build is CommonJS, so the
// module's own `require` resolves it (as it does under tap's TypeScript loader).
let assets: { readonly js: string; readonly css: string } | undefined;

function uplotAssets(): { readonly js: string; readonly css: string } {
  if (assets === undefined) {
    const read = (file: string) => readFileSync(require.resolve(`uplot/dist/${file}`), 'utf8');
    assets = { js: inlineScript(read('uPlot.iife.min.js')), css: inlineStyle(read('uPlot.min.css')) };
  }
  return assets;
}

// Text inside <script>/<style> ends at the first `</script` / `</style`: never let one through.
const inlineScript = (js: string) => js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
const inlineStyle = (css: string) => css.replace(/<\/(style)/gi, '<\\/$1');

const htmlEscapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

// Text for a person to read on the page: a bidi override (U+202E…) would reorder what
// follows it, a control character hide itself; both are shown as escapes. Line breaks are
// kept: HTML folds them, and the tooltip shows them.
const readable = (text: string) => escapeLines(text.split('\n'));

/** Text as HTML text or attribute value: control and bidi characters made visible, `& < > " '` escaped. */
function escapeHtml(text: string): string {
  return readable(text).replace(/[&<>"']/g, (c) => htmlEscapes[c]!);
}

/** JSON for a `<script type="application/json">`: `<` as `\u003c`, so `</script>` or `<!--` cannot end or bend it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const finite = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n);
const count = (n: unknown) => (finite(n) ? String(Math.round(n)) : '?');
const decimal = (n: unknown, digits = 2) => (finite(n) ? String(Math.round(n * 10 ** digits) / 10 ** digits) : '?');
const duration = (ms: unknown) => (finite(ms) ? formatDuration(Math.max(0, ms)) : '?');
const utcTime = (at: number) => (finite(at) ? `${new Date(at).toISOString().slice(11, 23)}` : '?');
const utcDateTime = (at: number) => (finite(at) ? new Date(at).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : 'an unknown time');
const capacityOf = (capacity: number | undefined) => (finite(capacity) ? capacity : undefined);

const activityWords: Record<Activity, string> = { idle: 'idle', query: 'in a query', 'idle-in-transaction': 'idle in a transaction', listening: 'listening (LISTEN)' };
const markWords: Record<MarkKind, string> = { leak: 'leak', timeout: 'timeout', reclaimed: 'reclaimed', slow: 'slow' };

function describeActivity(g: HolderGroup): string {
  const parts = Object.entries(g.activity ?? {})
    .filter(([, n]) => finite(n) && n > 0)
    .map(([activity, n]) => `${n} ${activityWords[activity as Activity] ?? activity}`);
  return parts.length === 0 ? '—' : parts.join(', ');
}

function holdersTable(holders: readonly HolderGroup[]): string {
  if (holders.length === 0) return '<p class="note">No connection is held.</p>';
  const rows = holders.map((g) => {
    const site = g.callSite === undefined ? '<i>unknown line (no stack captured)</i>' : `<code>${escapeHtml(g.callSite)}</code>`;
    const query = g.lastQuery === undefined ? '—' : `<code>${escapeHtml(g.lastQuery)}</code>`;
    const contexts = (g.contexts ?? []).length === 0 ? '—' : g.contexts.map((labels) => `<div>${escapeHtml(formatLabels(labels))}</div>`).join('');
    return `<tr><td>${site}</td><td class="n">${count(g.count)}</td><td class="n">${duration(g.oldestHeldMs)}</td><td>${escapeHtml(describeActivity(g))}</td><td>${query}</td><td>${contexts}</td></tr>`;
  });
  return `<table class="holders">
<thead><tr><th>Call site</th><th>Leases</th><th>Oldest held</th><th>Activity</th><th>Last query</th><th>Example contexts</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

// Past this many rows, the events table shows the latest only; the chart shows them all.
const eventsShown = 200;

type ReportMark = PoolTimeline['marks'][number];

// What makes two events the same, for the table: kind, verdict and text with its counts,
// durations and lease ids left out (a number after ':' stays: a call site's line and column).
const sameKey = (m: ReportMark) => `${m.kind}\u0000${m.verdict ?? ''}\u0000${String(m.text).replace(/(?<![:\w.])\d+(?:\.\d+)?/g, '#')}`;

interface MarkGroup {
  readonly first: ReportMark;
  last: ReportMark;
  count: number;
}

/** Events that say the same again (a timeout flood, one line leaking in a loop) as one group each, in order of their first. */
function groupMarks(marks: readonly ReportMark[]): MarkGroup[] {
  const groups = new Map<string, MarkGroup>();
  for (const m of marks) {
    const key = sameKey(m);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { first: m, last: m, count: 1 });
    else {
      group.last = m;
      group.count++;
    }
  }
  return [...groups.values()];
}

function eventsTable(marks: PoolTimeline['marks']): string {
  if (marks.length === 0) return '';
  const groups = groupMarks(marks);
  const shown = groups.slice(-eventsShown);
  const rows = shown.map(({ first, last, count: times }) => {
    const when = times === 1 ? utcTime(first.at) : `${utcTime(first.at)}–${utcTime(last.at)}`;
    const repeats = times === 1 ? '' : ` <small>(×${times}; the latest shown)</small>`;
    return `<tr><td class="n">${when}</td><td><span class="key ${escapeHtml(last.kind)}"></span>${escapeHtml(markWords[last.kind] ?? String(last.kind))}</td><td>${last.verdict === undefined ? '' : escapeHtml(last.verdict)}</td><td>${escapeHtml(last.text)}${repeats}</td></tr>`;
  });
  const more = groups.length > shown.length ? `<p class="note">The earliest ${groups.length - shown.length} kinds of event are left out; the chart marks them all.</p>` : '';
  return `<h3>Events (UTC)</h3>${more}
<table class="events">
<thead><tr><th>Time</th><th>Kind</th><th>Verdict</th><th>What</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

function sizingBlock(s: PoolSizing): string {
  const items: [string, string][] = [
    ['Needed connections', decimal(s.neededConnections)],
    ['Suggested max', s.suggestedMax === undefined ? '—' : count(s.suggestedMax)],
    ['Acquires/s', decimal(s.acquiresPerSecond)],
    ['Mean held', duration(s.meanHeldMs)],
    ['p99 held', duration(s.p99HeldMs)],
    ['Peak open', count(s.peakOpen)],
    ['Peak waiting', count(s.peakWaiting)],
  ];
  return `<h3>Sizing <small>(last ${duration(s.windowMs)})</small></h3>
<p>${escapeHtml(String(s.reason ?? ''))}</p>
<dl class="sizing">${items.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join('')}</dl>`;
}

interface ChartData {
  t: number[];
  leased: (number | null)[];
  idle: (number | null)[] | null;
  waiting: (number | null)[];
  max: number | null;
  marks: { at: number; kind: MarkKind; text: string; verdict: Verdict | null }[];
}

const orNull = (n: unknown) => (finite(n) ? n : null);

function chartData(pool: PoolTimeline): ChartData {
  // uPlot wants x ascending; times in seconds.
  const samples = pool.samples.filter((s) => finite(s.at)).sort((a, b) => a.at - b.at);
  const hasIdle = samples.some((s) => finite(s.idle));
  return {
    t: samples.map((s) => s.at / 1000),
    leased: samples.map((s) => orNull(s.leased)),
    idle: hasIdle ? samples.map((s) => orNull(s.idle)) : null,
    waiting: samples.map((s) => orNull(s.waiting)),
    max: capacityOf(pool.capacity) ?? null,
    marks: pool.marks.filter((m) => finite(m.at)).map((m) => ({ at: m.at / 1000, kind: m.kind, text: readable(String(m.text)), verdict: m.verdict ?? null })),
  };
}

function poolSection(pool: PoolTimeline, i: number, chart: ChartData): string {
  const max = capacityOf(pool.capacity);
  const last = pool.samples.length === 0 ? undefined : pool.samples.reduce((a, b) => (b.at >= a.at ? b : a));
  const now =
    last === undefined
      ? ''
      : `<p class="now">At ${utcTime(last.at)} UTC: ${count(last.leased)} leased${finite(last.idle) ? `, ${count(last.idle)} idle` : ''}, ${count(last.waiting)} waiting.</p>`;
  const kinds = (['leak', 'timeout', 'reclaimed', 'slow'] as const).filter((k) => pool.marks.some((m) => m.kind === k));
  const legend =
    kinds.length === 0
      ? ''
      : `<p class="marks">${kinds.map((k) => `<span class="key ${k}"></span>${markWords[k]} (${pool.marks.filter((m) => m.kind === k).length})`).join(' ')} <small>— hover a mark for what happened</small></p>`;
  const body =
    chart.t.length === 0
      ? '<p class="note empty">No samples were recorded for this pool.</p>'
      : `<div class="chart" id="chart-${i}" data-pool="${i}" role="img" aria-label="${escapeHtml(`leased, idle and waiting connections of ${pool.name} over time`)}"></div>${legend}`;
  return `<section class="pool" id="pool-${i}">
<h2>${escapeHtml(pool.name)} <small>${max === undefined ? 'max not reported' : `max ${max}`}</small></h2>
${now}${body}
${eventsTable(pool.marks)}
<h3>Holders</h3>
${holdersTable(pool.holders)}
${sizingBlock(pool.sizing)}
</section>`;
}

const css = `
body{font:14px/1.45 system-ui,sans-serif;color:#1f2937;margin:0 auto;padding:1em 1.5em 3em;max-width:1100px}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.25em;margin:0 0 .4em}h3{font-size:1em;margin:1.2em 0 .4em}
small,.note,.meta{color:#6b7280;font-weight:normal}
.pool{border-top:2px solid #e5e7eb;padding-top:1em;margin-top:1.5em}
.chart{width:100%;min-height:300px;position:relative}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e5e7eb;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f9fafb}td.n{text-align:right;white-space:nowrap}
code{font:12px ui-monospace,monospace;word-break:break-all}
.key{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin:0 .3em 0 .6em;vertical-align:-1px}
.key.leak{background:#b91c1c}.key.timeout{background:#ea580c}.key.reclaimed{background:#15803d}.key.slow{background:#7c3aed}
.tip{position:absolute;top:0;z-index:10;pointer-events:none;background:#111827;color:#fff;padding:.3em .5em;border-radius:4px;font-size:12px;max-width:360px;white-space:pre-wrap}
.sizing{display:flex;flex-wrap:wrap;gap:.4em 1.5em;margin:0}.sizing dt{color:#6b7280;font-size:12px}.sizing dd{margin:0;font-weight:600}
`;

// The page's own script: reads the JSON, draws a chart per pool with its marks, and says
// it is done with <body data-ready>. Text from the data reaches the page by textContent only.
const client = `(() => {
'use strict';
const data = JSON.parse(document.getElementById('poolwatch-data').textContent);
const markColor = { leak: '#b91c1c', timeout: '#ea580c', reclaimed: '#15803d', slow: '#7c3aed' };
const pad = (n, w) => String(n).padStart(w || 2, '0');
const utc = (s) => { const d = new Date(s * 1000); return pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()); };
const tzDate = (s) => uPlot.tzDate(new Date(s * 1000), 'Etc/UTC');
const stepped = uPlot.paths.stepped({ align: 1 });
const charts = [];

function marks(list) {
  let tip;
  return { hooks: {
    init: [(u) => { tip = document.createElement('div'); tip.className = 'tip'; tip.hidden = true; u.over.appendChild(tip); }],
    draw: [(u) => {
      const ctx = u.ctx, { left, top, width, height } = u.bbox, px = uPlot.pxRatio;
      let drawn = 0;
      ctx.save();
      for (const m of list) {
        const x = Math.round(u.valToPos(m.at, 'x', true));
        if (x < left - 1 || x > left + width + 1) continue;
        ctx.strokeStyle = ctx.fillStyle = markColor[m.kind] || '#000';
        ctx.lineWidth = 1.5 * px;
        ctx.setLineDash(m.kind === 'slow' ? [4 * px, 3 * px] : []);
        ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
        ctx.beginPath(); ctx.moveTo(x - 5 * px, top); ctx.lineTo(x + 5 * px, top); ctx.lineTo(x, top + 8 * px); ctx.closePath(); ctx.fill();
        drawn++;
      }
      ctx.restore();
      u.root.dataset.marks = String(drawn);
    }],
    setCursor: [(u) => {
      const at = u.cursor.left;
      let best = null, dist = 6;
      if (at != null && at >= 0) for (const m of list) { const d = Math.abs(u.valToPos(m.at, 'x') - at); if (d <= dist) { best = m; dist = d; } }
      if (!best) { tip.hidden = true; return; }
      tip.textContent = utc(best.at) + ' ' + best.kind + (best.verdict ? ' (' + best.verdict + ')' : '') + '\\n' + best.text;
      tip.hidden = false;
      tip.style.left = Math.min(u.valToPos(best.at, 'x') + 8, u.over.clientWidth - tip.offsetWidth) + 'px';
    }],
  } };
}

data.pools.forEach((pool, i) => {
  const el = document.getElementById('chart-' + i);
  if (!el || pool.t.length === 0) return;
  const series = [{ value: (u, v) => (v == null ? '-' : utc(v) + ' UTC') }];
  const values = [pool.t];
  const add = (label, stroke, ys, extra) => { series.push(Object.assign({ label, stroke, width: 2, paths: stepped, points: { show: false } }, extra)); values.push(ys); };
  add('leased', '#2563eb', pool.leased, { fill: 'rgba(37,99,235,0.08)' });
  if (pool.idle) add('idle', '#16a34a', pool.idle, { width: 1.5 });
  add('waiting', '#dc2626', pool.waiting);
  if (pool.max != null) add('max', '#6b7280', pool.t.map(() => pool.max), { dash: [6, 4], width: 1.5 });
  const size = () => ({ width: Math.max(300, el.clientWidth), height: 300 });
  charts.push([el, size, new uPlot(Object.assign(size(), {
    tzDate,
    series,
    scales: { y: { range: (u, lo, hi) => [0, Math.max(1, Math.ceil((hi || 0) * 1.1))] } },
    axes: [{}, { label: 'connections', size: 50, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }],
    plugins: [marks(pool.marks)],
  }), values, el)]);
});
addEventListener('resize', () => { for (const [, size, u] of charts) u.setSize(size()); });
document.body.dataset.ready = String(charts.length);
})();`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The whole report: one HTML file that opens with no network. */
export function renderReport(data: ReportData): string {
  const { js, css: uplotCss } = uplotAssets();
  const pools = data?.pools ?? [];
  const charts = pools.map(chartData);
  const sections = pools.map((pool, i) => poolSection(pool, i, charts[i]!));
  const title = escapeHtml(String(data?.title ?? 'poolwatch report'));
  // Nothing but the inline scripts may run, and nothing may be fetched: a hostile label that got past the escaping still could not.
  const policy = `default-src 'none'; script-src ${sha256(js)} ${sha256(client)}; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${policy}">
<title>${title}</title>
<style>${uplotCss}</style>
<style>${css}</style>
</head>
<body>
<h1>${title}</h1>
<p class="meta">Generated ${escapeHtml(utcDateTime(data?.generatedAt))} by poolwatch. ${pools.length === 1 ? '1 pool' : `${pools.length} pools`}; times in UTC.</p>
${sections.length === 0 ? '<p class="note empty">No pool is watched: there is nothing to chart.</p>' : sections.join('\n')}
<script type="application/json" id="poolwatch-data">${scriptJson({ pools: charts })}</script>
<script>${js}</script>
<script>${client}</script>
</body>
</html>
`;
}
