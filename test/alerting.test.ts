import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { createPool } from 'generic-pool';
import { Registry } from 'prom-client';
import { createDetector, type LeakKind } from '../lib/index.js';
import { registerPrometheusMetrics } from '../lib/integrations/prometheus.js';
import { fakeClock } from './helpers/clock.js';
import { startPostgres } from './helpers/postgres.js';
import pg from 'pg';

// The alerting rules, the Grafana dashboard and the runbook they link to
// (examples/prometheus/alerts.yml, examples/grafana/poolwatch.json, docs/runbook.md)
// may only use what poolwatch/prometheus really writes. tap runs test files from the
// project root.
const rulesFile = resolve('examples/prometheus/alerts.yml');
const dashboardFile = resolve('examples/grafana/poolwatch.json');
const runbookFile = resolve('docs/runbook.md');

// ---------------------------------------------------------------------------------------
// PromQL: the metric names and labels an expression uses.

/** What one PromQL expression refers to. */
interface PromqlRefs {
  /** Metric names, each once: those with a selector first. */
  names: string[];
  /** Per metric name, the labels its selectors match on. */
  selectorLabels: Map<string, Set<string>>;
  /** Labels named in by / without / on / ignoring / group_left / group_right. */
  groupingLabels: Set<string>;
  /** Every label matcher of a named selector, with its (unquoted) value. */
  matchers: { name: string; label: string; op: string; value: string }[];
}

// Words that are never metric names when they stand alone (functions and aggregations are
// told by the `(` that follows them).
const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'atan2']);

function promqlRefs(expr: string): PromqlRefs {
  const strings: string[] = [];
  // Strings first (a label value may look like a name, a brace or a '#'), then comments.
  let text = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, (s) => `"\u0000${strings.push(s.slice(1, -1)) - 1}"`);
  text = text.replace(/#[^\n]*/g, ' ');
  const names: string[] = [];
  const selectorLabels = new Map<string, Set<string>>();
  const matchers: PromqlRefs['matchers'] = [];
  const note = (name: string) => {
    if (!names.includes(name)) names.push(name);
    if (!selectorLabels.has(name)) selectorLabels.set(name, new Set());
  };
  // Selectors: `name{…}` or `{__name__="name", …}`.
  text = text.replace(/(?<![\w:.$])([a-zA-Z_:][\w:]*)?(\s*)\{([^}]*)\}/g, (_, before: string | undefined, space: string, body: string) => {
    const keyword = before !== undefined && keywords.has(before.toLowerCase());
    const found = [...body.matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"\u0000(\d+)"/g)].map(([, label, op, i]) => ({ label: label!, op: op!, value: strings[Number(i)]! }));
    const byName = found.find((m) => m.label === '__name__' && m.op === '=');
    const name = before !== undefined && !keyword ? before : byName?.value;
    if (name !== undefined) {
      note(name);
      for (const m of found) {
        if (m.label === '__name__') continue;
        selectorLabels.get(name)!.add(m.label);
        matchers.push({ name, ...m });
      }
    }
    // Leaves the name (or the keyword) standing, without its braces.
    return `${keyword ? `${before}${space}` : ''} ${name ?? ''} `;
  });
  // Ranges, subqueries and their durations.
  text = text.replace(/\[[^\]]*\]/g, ' ');
  const groupingLabels = new Set<string>();
  text = text.replace(/(?<![\w:])(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/gi, (_, _word: string, list: string) => {
    for (const label of list.split(',').map((s) => s.trim())) if (label !== '') groupingLabels.add(label);
    return ' ';
  });
  // What stands alone: not after a digit (5m, 1e3), a '.' or a '$' (Grafana's variables),
  // not followed by more of a name or by '(' (a function), and not a keyword.
  for (const [, name] of text.matchAll(/(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    if (!keywords.has(name!.toLowerCase())) note(name!);
  }
  return { names, selectorLabels, groupingLabels, matchers };
}

t.test('the PromQL reader finds metric names and labels, and nothing else', async (t) => {
  const a = promqlRefs(
    'histogram_quantile(0.99, sum by (db_client_connection_pool_name, le) (rate(db_client_connection_wait_time_seconds_bucket{db_client_connection_pool_name=~"$pool", kind!="rate"}[$__rate_interval]))) > 1',
  );
  t.same(a.names, ['db_client_connection_wait_time_seconds_bucket'], 'not histogram_quantile, sum, rate, the label value "rate" nor $pool');
  t.same([...a.groupingLabels], ['db_client_connection_pool_name', 'le']);
  t.same([...a.selectorLabels.get('db_client_connection_wait_time_seconds_bucket')!], ['db_client_connection_pool_name', 'kind']);
  t.same(a.matchers[1], { name: 'db_client_connection_wait_time_seconds_bucket', label: 'kind', op: '!=', value: 'rate' });

  const b = promqlRefs(`sum without (x) (a_total unless a_total offset 15m) # not_a_metric
    or on (job) group_left (instance) b > bool 3 * max_over_time(c:recorded[5m:1m] offset 1h) - 1e3 + 0x1F + Inf - NaN`);
  t.same(b.names.sort(), ['a_total', 'b', 'c:recorded'], 'not offset, m, bool, comments, numbers, Inf, NaN');
  t.same([...b.groupingLabels], ['x', 'job', 'instance']);

  const c = promqlRefs('d{state="used"} >= ignoring (state) e and {__name__="f", g="h"} or {i="j"}');
  t.same(c.names.sort(), ['d', 'e', 'f'], 'a name given as __name__, and not the keyword before a selector');
  t.same([...c.selectorLabels.get('f')!], ['g']);
  t.same([...c.groupingLabels], ['state']);

  t.same(promqlRefs('sum(rate(x_bucket[5m])) by (le)').names, ['x_bucket']);
  t.same(promqlRefs('time() - 1').names, [], 'a function with no argument is no metric');
});

// ---------------------------------------------------------------------------------------
// What the export writes.

/** The exposition text of a registry: families with their type, and the labels and values of each series name. */
interface Exported {
  types: Map<string, string>;
  labels: Map<string, Set<string>>;
  values: Map<string, Set<string>>;
}

function readExposition(text: string): Exported {
  const exported: Exported = { types: new Map(), labels: new Map(), values: new Map() };
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) exported.types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (sample === null) throw new Error(`unexpected exposition line: ${line}`);
    const labels = exported.labels.get(sample[1]!) ?? new Set<string>();
    exported.labels.set(sample[1]!, labels);
    for (const [, label, value] of (sample[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels.add(label!);
      const values = exported.values.get(label!) ?? new Set<string>();
      exported.values.set(label!, values);
      values.add(value!);
    }
  }
  return exported;
}

/** The family a series name belongs to: itself, or the histogram (summary) it is a `_bucket`, `_sum` or `_count` of. */
function familyOf(exported: Exported, name: string): string | undefined {
  if (exported.types.has(name)) return name;
  const part = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (part === null) return undefined;
  const type = exported.types.get(part[1]!);
  return type === 'histogram' || (type === 'summary' && part[2] !== 'bucket') ? part[1] : undefined;
}

// Every kind a leak report may have: tsc fails here when LeakKind changes.
const leakKinds: Record<LeakKind, true> = { threshold: true, 'scope-ended': true, collected: true, reclaimed: true };
// Labels Prometheus adds when it scrapes.
const targetLabels = ['job', 'instance'];

/**
 * A real registry with poolwatch/prometheus on a generic-pool that served load and timed
 * out, another that leaked, and a pg pool on a real PostgreSQL (whose connections show their activity)
 * with one client idle in a transaction and one acquire refused.
 */
async function realExport(t: Test): Promise<Exported> {
  const db = await startPostgres(t);
  const clock = fakeClock(t);
  const registry = new Registry();
  const detector = createDetector({ leakThresholdMs: 5000 });
  t.teardown(() => detector.close());
  let ids = 0;
  const pool = detector.watch(createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 2, acquireTimeoutMillis: 1000 }), { name: 'main' });
  t.teardown(async () => {
    await pool.drain();
    await pool.clear();
  });
  const pgPool = detector.watch(new pg.Pool({ ...db, max: 2 }), { name: 'orders' });
  t.teardown(() => pgPool.end());
  const refusing = detector.watch(new pg.Pool({ ...db, password: 'wrong-password', max: 1 }), { name: 'refusing' });
  t.teardown(() => refusing.end());
  // pool.end() resolves before its idle clients have closed: the server's stop at teardown may reach them.
  pgPool.on('error', () => {});
  const registration = registerPrometheusMetrics(detector, { registry });
  t.teardown(() => registration.unregister());

  // Load: 10 acquires a second, each held 150 ms, for 3 s.
  for (let i = 0; i < 30; i++) {
    void pool.acquire().then((conn) => setTimeout(() => void pool.release(conn), 150));
    await clock.tickAsync(100);
  }
  await clock.tickAsync(1000);
  // Both connections kept: the next acquire times out.
  const held = [await pool.acquire(), await pool.acquire()];
  const failing = pool.acquire().then(
    () => 'served',
    (error: Error) => error.name,
  );
  await clock.tickAsync(1000);
  t.equal(await failing, 'TimeoutError');
  for (const conn of held) await pool.release(conn);
  // The leaks are another pool's: a pool that leaked is sized by its leak, with no suggested max.
  const leaky = detector.watch(createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 2 }), { name: 'leaky' });
  t.teardown(async () => {
    await leaky.drain();
    await leaky.clear();
  });
  const leaked = [await leaky.acquire(), await leaky.acquire()];
  await clock.tickAsync(5000);
  for (const conn of leaked) await leaky.release(conn);
  const inTransaction = await pgPool.connect();
  await inTransaction.query('BEGIN');
  await refusing.connect().then(
    (client) => client.release(),
    () => undefined,
  );

  const exported = readExposition(await registry.metrics());
  await inTransaction.query('ROLLBACK');
  inTransaction.release();
  // What the scenario must have produced, or the checks below could pass on too little.
  t.same(
    [...exported.types.keys()].sort(),
    [
      'db_client_connection_count',
      'db_client_connection_max',
      'db_client_connection_pending_requests',
      'db_client_connection_timeouts_total',
      'db_client_connection_use_time_seconds',
      'db_client_connection_wait_time_seconds',
      'poolwatch_acquire_failures_total',
      'poolwatch_connections_by_activity',
      'poolwatch_connections_needed',
      'poolwatch_leaks_total',
      'poolwatch_oldest_lease_seconds',
      'poolwatch_suggested_max',
    ],
    'every family of the export',
  );
  for (const name of ['poolwatch_leaks_total', 'poolwatch_suggested_max', 'poolwatch_connections_needed', 'db_client_connection_use_time_seconds_bucket', 'db_client_connection_wait_time_seconds_bucket', 'poolwatch_connections_by_activity', 'poolwatch_oldest_lease_seconds', 'poolwatch_acquire_failures_total']) {
    t.ok(exported.labels.has(name), `the scenario produced ${name}`);
  }
  t.same([...(exported.values.get('db_client_connection_state') ?? [])].sort(), ['idle', 'used']);
  t.same([...(exported.values.get('poolwatch_activity') ?? [])].sort(), ['idle', 'idle-in-transaction', 'listening', 'query']);
  return exported;
}

/** Checks one expression against the export: its names are series the export writes, its labels are on them. */
function checkExpr(t: Test, exported: Exported, where: string, expr: string): string[] {
  const refs = promqlRefs(expr);
  t.not(refs.names.length, 0, `${where}: refers to a metric`);
  const usable = new Set(targetLabels);
  for (const name of refs.names) {
    const family = familyOf(exported, name);
    if (family === undefined) {
      t.fail(`${where}: ${name} is not a metric poolwatch/prometheus writes`, { expr });
      continue;
    }
    const labels = exported.labels.get(name);
    if (labels === undefined) {
      t.fail(`${where}: ${name} has no series of its own (a ${exported.types.get(family)}: use ${name}_bucket, _sum or _count)`, { expr });
      continue;
    }
    for (const label of labels) usable.add(label);
    for (const label of refs.selectorLabels.get(name)!) {
      t.ok(labels.has(label) || targetLabels.includes(label), `${where}: ${name} has the label ${label}`, { expr, found: [...labels] });
    }
  }
  for (const label of refs.groupingLabels) t.ok(usable.has(label), `${where}: the label ${label} it groups or matches on is on one of ${refs.names.join(', ')}`, { expr });
  for (const m of refs.matchers) {
    if (m.op !== '=' && m.op !== '!=') continue;
    if (m.label === 'poolwatch_leak_kind') t.ok(m.value in leakKinds, `${where}: ${m.value} is a leak kind`);
    if (m.label === 'db_client_connection_state') t.ok(exported.values.get(m.label)?.has(m.value), `${where}: ${m.value} is a connection state the export writes`);
  }
  return refs.names;
}

// ---------------------------------------------------------------------------------------
// The files.

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RulesFile {
  groups: { name: string; rules: Rule[] }[];
}

const rulesText = readFileSync(rulesFile, 'utf8');
const rules = parse(rulesText) as RulesFile;
const alertRules = () => rules.groups.flatMap((group) => group.rules);

interface Target {
  refId?: string;
  expr?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[];
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; definition?: string; query?: string | { query: string } }[] };
}

const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as Dashboard;
/** Every panel, those in rows too. */
const allPanels = (panels: Panel[]): Panel[] => panels.flatMap((p) => (p.type === 'row' ? allPanels(p.panels ?? []) : [p]));

/** GitHub's anchor of a Markdown heading. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
const runbook = readFileSync(runbookFile, 'utf8');
const anchors = new Set([...runbook.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6} (.+)$/gm)].map(([, heading]) => slug(heading!)));

t.test('the rules file is YAML Prometheus can load: groups of alerts with a severity, a summary, a description and a runbook', async (t) => {
  t.ok(Array.isArray(rules.groups) && rules.groups.length > 0, 'groups');
  const names = new Set<string>();
  for (const rule of alertRules()) {
    t.type(rule.alert, 'string', 'every rule is an alert');
    t.notOk(names.has(rule.alert!), `${rule.alert} once`);
    names.add(rule.alert!);
    t.type(rule.expr, 'string', `${rule.alert}: expr`);
    t.match(rule.for, /^\d+[smh]$/, `${rule.alert}: for`);
    t.match(rule.labels?.severity, /^(critical|warning|info)$/, `${rule.alert}: labels.severity`);
    for (const key of ['summary', 'description', 'runbook_url']) t.type(rule.annotations?.[key], 'string', `${rule.alert}: annotations.${key}`);
    const link = /^docs\/runbook\.md#(.+)$/.exec(rule.annotations?.runbook_url ?? '');
    t.ok(link !== null && anchors.has(link[1]!), `${rule.alert}: runbook_url ${rule.annotations?.runbook_url} is a heading of docs/runbook.md`);
  }
  t.same([...names].sort(), ['PoolwatchAcquireTimeouts', 'PoolwatchConnectionLeak', 'PoolwatchConnectionReclaimed', 'PoolwatchDatabaseUnreachable', 'PoolwatchIdleInTransaction', 'PoolwatchPoolSaturated', 'PoolwatchPoolUndersized', 'PoolwatchSlowAcquire']);
});

t.test('the runbook links only to its own headings', async (t) => {
  const links = [...runbook.matchAll(/\]\(#([^)]+)\)/g)].map(([, anchor]) => anchor!);
  t.not(links.length, 0);
  for (const anchor of links) t.ok(anchors.has(anchor), `#${anchor} is a heading`);
  for (const verdict of ['leak', 'saturation', 'unreachable', 'self-deadlock']) t.ok(anchors.has(verdict), `a section for the verdict ${verdict}`);
});

t.test('the dashboard: a Prometheus input, a pool variable, and every panel queries something', async (t) => {
  t.equal(dashboard.__inputs[0]?.pluginId, 'prometheus');
  t.ok(dashboard.schemaVersion >= 36, 'a schema Grafana 9+ reads');
  t.ok(dashboard.templating.list.some((v) => v.name === 'pool' && v.type === 'query'), 'the pool variable');
  const panels = allPanels(dashboard.panels);
  t.ok(panels.length >= 6);
  t.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique');
  for (const panel of panels) {
    t.ok((panel.targets ?? []).length > 0, `"${panel.title}" has a target`);
    for (const target of panel.targets ?? []) t.type(target.expr, 'string', `"${panel.title}" ${target.refId}: an expr`);
  }
});

t.test('every metric and label the rules and the dashboard use is one poolwatch/prometheus writes', async (t) => {
  const exported = await realExport(t);
  const used = new Set<string>();
  for (const rule of alertRules()) for (const name of checkExpr(t, exported, `alert ${rule.alert}`, rule.expr)) used.add(familyOf(exported, name) ?? name);
  const onDashboard = new Set<string>();
  for (const panel of allPanels(dashboard.panels)) {
    for (const target of panel.targets ?? []) {
      for (const name of checkExpr(t, exported, `panel "${panel.title}" ${target.refId}`, target.expr ?? '')) onDashboard.add(familyOf(exported, name) ?? name);
    }
  }
  for (const variable of dashboard.templating.list) {
    const query = typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
    const values = /^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)$/.exec(query);
    t.ok(values !== null, `variable ${variable.name}: label_values(metric, label)`);
    if (values !== null) t.ok(exported.labels.get(values[1]!)?.has(values[2]!), `variable ${variable.name}: ${values[1]} has ${values[2]}`);
  }
  t.same([...onDashboard].sort(), [...exported.types.keys()].sort(), 'the dashboard shows every family of the export');
  t.ok(used.has('poolwatch_leaks_total') && used.has('db_client_connection_timeouts_total'), 'the alerts cover leaks and timeouts');
});

// ---------------------------------------------------------------------------------------
// promtool: the rules load, the dashboard's queries parse, and the alerts fire when they should.

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not here
    }
  }
  return undefined;
}

const promtool = onPath('promtool');

function run(t: Test, args: string[], cwd?: string): void {
  const result = spawnSync(promtool!, args, { encoding: 'utf8', cwd });
  t.equal(result.status, 0, `promtool ${args.join(' ')}`, { stdout: result.stdout, stderr: result.stderr });
}

// Series of one pool on one instance, as Prometheus stores what it scraped.
const at = (name: string, pool: string, extra = '') => `${name}{job="app",instance="a:9464",db_client_connection_pool_name="${pool}"${extra}}`;
const alertLabels = (pool: string, severity: string, extra: Record<string, string> = {}) => ({ job: 'app', instance: 'a:9464', db_client_connection_pool_name: pool, ...extra, severity });

t.test('promtool', { skip: promtool === undefined && process.env.CI !== 'true' ? 'no promtool on PATH: apt-get install prometheus' : false }, async (t) => {
  if (promtool === undefined) return void t.fail('no promtool on PATH (CI=true): apt-get install prometheus');
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-alerting-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  t.test('check rules', async (t) => run(t, ['check', 'rules', rulesFile]));

  t.test("the dashboard's queries are valid PromQL", async (t) => {
    const exprs = allPanels(dashboard.panels).flatMap((panel) => (panel.targets ?? []).map((target) => target.expr!));
    const record = exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr: expr.replaceAll('$__rate_interval', '5m').replaceAll('$pool', '.+') }));
    writeFileSync(join(dir, 'dashboard.yml'), stringify({ groups: [{ name: 'dashboard', rules: record }] }));
    run(t, ['check', 'rules', join(dir, 'dashboard.yml')]);
  });

  t.test('the alerts fire on the series that mean trouble, and not on the others', async (t) => {
    // The same rules without their annotations: promtool compares those word for word.
    const bare = { groups: rules.groups.map((group) => ({ ...group, rules: group.rules.map(({ annotations: _, ...rule }) => rule) })) };
    writeFileSync(join(dir, 'rules.yml'), stringify(bare));
    const tests = [
      {
        // Timeouts counted from 11m on, none after 20m.
        interval: '1m',
        input_series: [
          { series: at('db_client_connection_timeouts_total', 'main'), values: '0x10 1x9 3x30' },
          { series: at('db_client_connection_timeouts_total', 'calm'), values: '0x50' },
        ],
        alert_rule_test: [
          { eval_time: '5m', alertname: 'PoolwatchAcquireTimeouts', exp_alerts: [] },
          { eval_time: '13m', alertname: 'PoolwatchAcquireTimeouts', exp_alerts: [{ exp_labels: alertLabels('main', 'critical') }] },
          { eval_time: '22m', alertname: 'PoolwatchAcquireTimeouts', exp_alerts: [{ exp_labels: alertLabels('main', 'critical') }] },
          { eval_time: '35m', alertname: 'PoolwatchAcquireTimeouts', exp_alerts: [] },
        ],
      },
      {
        // A pool's first leak: its series appears at 10m, already at 1; two more at 40m.
        // Reclaims from 20m on: their own alert, not the leak alert.
        interval: '1m',
        input_series: [
          { series: at('poolwatch_leaks_total', 'main', ',poolwatch_leak_kind="threshold"'), values: '_x10 1x29 3x40' },
          { series: at('poolwatch_leaks_total', 'main', ',poolwatch_leak_kind="reclaimed"'), values: '_x20 1x60' },
        ],
        alert_rule_test: [
          { eval_time: '5m', alertname: 'PoolwatchConnectionLeak', exp_alerts: [] },
          { eval_time: '12m', alertname: 'PoolwatchConnectionLeak', exp_alerts: [{ exp_labels: alertLabels('main', 'warning', { poolwatch_leak_kind: 'threshold' }) }] },
          { eval_time: '30m', alertname: 'PoolwatchConnectionLeak', exp_alerts: [] },
          { eval_time: '42m', alertname: 'PoolwatchConnectionLeak', exp_alerts: [{ exp_labels: alertLabels('main', 'warning', { poolwatch_leak_kind: 'threshold' }) }] },
          { eval_time: '70m', alertname: 'PoolwatchConnectionLeak', exp_alerts: [] },
          { eval_time: '15m', alertname: 'PoolwatchConnectionReclaimed', exp_alerts: [] },
          { eval_time: '23m', alertname: 'PoolwatchConnectionReclaimed', exp_alerts: [{ exp_labels: alertLabels('main', 'warning') }] },
          { eval_time: '45m', alertname: 'PoolwatchConnectionReclaimed', exp_alerts: [] },
        ],
      },
      {
        // "main": every connection leased and requests waiting; "busy": full, nobody waits.
        interval: '1m',
        input_series: [
          { series: at('db_client_connection_count', 'main', ',db_client_connection_state="used"'), values: '10x20' },
          { series: at('db_client_connection_count', 'main', ',db_client_connection_state="idle"'), values: '0x20' },
          { series: at('db_client_connection_max', 'main'), values: '10x20' },
          { series: at('db_client_connection_pending_requests', 'main'), values: '0 0 4x18' },
          { series: at('db_client_connection_count', 'busy', ',db_client_connection_state="used"'), values: '10x20' },
          { series: at('db_client_connection_max', 'busy'), values: '10x20' },
          { series: at('db_client_connection_pending_requests', 'busy'), values: '0x20' },
        ],
        alert_rule_test: [
          { eval_time: '5m', alertname: 'PoolwatchPoolSaturated', exp_alerts: [] },
          { eval_time: '8m', alertname: 'PoolwatchPoolSaturated', exp_alerts: [{ exp_labels: alertLabels('main', 'warning') }] },
        ],
      },
      {
        // "main": every acquire waits 1 to 2.5 s; "calm": under 0.5 s.
        interval: '1m',
        input_series: [
          ...['0.5', '1', '2.5', '+Inf'].map((le) => ({ series: at('db_client_connection_wait_time_seconds_bucket', 'main', `,le="${le}"`), values: le === '2.5' || le === '+Inf' ? '0+60x30' : '0x30' })),
          ...['0.5', '1', '2.5', '+Inf'].map((le) => ({ series: at('db_client_connection_wait_time_seconds_bucket', 'calm', `,le="${le}"`), values: '0+60x30' })),
        ],
        alert_rule_test: [
          { eval_time: '5m', alertname: 'PoolwatchSlowAcquire', exp_alerts: [] },
          { eval_time: '15m', alertname: 'PoolwatchSlowAcquire', exp_alerts: [{ exp_labels: alertLabels('main', 'warning') }] },
        ],
      },
      {
        // "main" needs 14 of its 10; "fine" 6 of its 10.
        interval: '1m',
        input_series: [
          { series: at('poolwatch_suggested_max', 'main'), values: '14x30' },
          { series: at('db_client_connection_max', 'main'), values: '10x30' },
          { series: at('poolwatch_suggested_max', 'fine'), values: '6x30' },
          { series: at('db_client_connection_max', 'fine'), values: '10x30' },
        ],
        alert_rule_test: [
          { eval_time: '10m', alertname: 'PoolwatchPoolUndersized', exp_alerts: [] },
          { eval_time: '20m', alertname: 'PoolwatchPoolUndersized', exp_alerts: [{ exp_labels: alertLabels('main', 'info') }] },
        ],
      },
    ];
    tests.push(
      {
        // "main": a connection idle in a transaction from 6m, its lease ever older; "calm": one, but young.
        interval: '1m',
        input_series: [
          { series: at('poolwatch_connections_by_activity', 'main', ',poolwatch_activity="idle-in-transaction"'), values: '0x5 1x20' },
          { series: at('poolwatch_oldest_lease_seconds', 'main'), values: '0x5 30+60x20' },
          { series: at('poolwatch_connections_by_activity', 'calm', ',poolwatch_activity="idle-in-transaction"'), values: '1x25' },
          { series: at('poolwatch_oldest_lease_seconds', 'calm'), values: '5x25' },
        ],
        alert_rule_test: [
          { eval_time: '5m', alertname: 'PoolwatchIdleInTransaction', exp_alerts: [] },
          { eval_time: '12m', alertname: 'PoolwatchIdleInTransaction', exp_alerts: [{ exp_labels: alertLabels('main', 'warning', { poolwatch_activity: 'idle-in-transaction' }) }] },
        ],
      },
      {
        // "main": acquires fail from 6m with nothing leased and no timeout; "busy": its failures are timeouts of a full pool.
        interval: '1m',
        input_series: [
          { series: at('poolwatch_acquire_failures_total', 'main'), values: '0x5 0+3x20' },
          { series: at('db_client_connection_timeouts_total', 'main'), values: '0x26' },
          { series: at('db_client_connection_count', 'main', ',db_client_connection_state="used"'), values: '0x26' },
          { series: at('poolwatch_acquire_failures_total', 'busy'), values: '0x5 0+3x20' },
          { series: at('db_client_connection_timeouts_total', 'busy'), values: '0x5 0+3x20' },
          { series: at('db_client_connection_count', 'busy', ',db_client_connection_state="used"'), values: '10x26' },
        ],
        alert_rule_test: [
          { eval_time: '4m', alertname: 'PoolwatchDatabaseUnreachable', exp_alerts: [] },
          { eval_time: '12m', alertname: 'PoolwatchDatabaseUnreachable', exp_alerts: [{ exp_labels: alertLabels('main', 'critical') }] },
        ],
      },
    );
    writeFileSync(join(dir, 'tests.yml'), stringify({ rule_files: ['rules.yml'], evaluation_interval: '1m', tests }));
    run(t, ['test', 'rules', 'tests.yml'], dir);
  });
});
