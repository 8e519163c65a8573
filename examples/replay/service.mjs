// The service of the replay (run.mjs starts it in a process of its own): an ordinary
// Express 5 app over a pg.Pool, with the bug of the seed incident. GET /users/:id checks
// a client out for two queries and, when the user does not exist, answers 404 and
// returns before the release: every lookup of a missing id keeps one connection for
// good. Nothing else is wrong with it.
//
// Configured by REPLAY_SERVICE (JSON: db, leakThresholdMs, reclaimAfterMs, scope, attach);
// tells the runner over IPC what happened and when: `{ type: 'event', event }` messages,
// each with `at` (epoch ms). Answers `{ id, type }` requests with `{ id, ... }`:
// `finish` (counts, and the HTML report written to `report`), `close` (stops, then exits).
// With `attach`, poolwatch is never loaded here: `poolwatch attach` brings its own.
import { performance } from 'node:perf_hooks';
import express from 'express';
import pg from 'pg';

const config = JSON.parse(process.env.REPLAY_SERVICE);
const [{ detectorOf, watch }, { expressScope }] = config.attach ? [{}, {}] : await Promise.all([import('poolwatch'), import('poolwatch/http')]);

// --- What the replay records. Not part of the app: the app would only have its logs. ---
const startedMono = performance.now();
const send = (event) => process.connected && process.send({ type: 'event', event: { at: Date.now(), ...event } });
const counts = { leakedAcquires: 0, reports: {}, poolErrors: 0, otherErrors: 0, exhausted: 0 };
let firstSkipMono;
let firstReport;
let firstTimeout;
let firstOtherError;
// The clients the bug kept, so that the service can close its pool at the end.
const kept = new Set();

/** Called by the buggy path as it skips the release: the time the leak began. */
function skippedRelease(client, req) {
  counts.leakedAcquires++;
  kept.add(client);
  if (config.attach) return recordKept(client, req);
  if (firstSkipMono !== undefined) return;
  firstSkipMono = performance.now();
  send({ name: 'leaked-acquire', request: `${req.method} ${req.originalUrl}` });
}

function onLeak(report) {
  const at = performance.now();
  counts.reports[report.kind] = (counts.reports[report.kind] ?? 0) + 1;
  // A reclaim of a lease already reported is one leak reported twice: its own event.
  if (report.kind === 'reclaimed' && counts.reports.reclaimed === 1) {
    send({ name: 'reclaimed', callSite: report.callSite ?? null, heldMs: report.heldMs, message: report.message });
  }
  if (firstReport !== undefined) return;
  // poolwatch's first report, as its listener gets it: measured from the service's own
  // record of the first skipped release, in this process's monotonic clock.
  firstReport = report;
  send({
    name: 'leak',
    kind: report.kind,
    callSite: report.callSite ?? null,
    route: report.context.route ?? null,
    method: report.context.method ?? null,
    heldMs: report.heldMs,
    sinceLeakMs: firstSkipMono === undefined ? null : at - firstSkipMono,
    message: report.message,
    formatted: report.format(),
  });
}

// --- The app. ---
const pool = new pg.Pool({ ...config.db, max: 10, connectionTimeoutMillis: 1000 });
pool.on('error', () => {}); // an idle client's error (the server going away at the end)
if (!config.attach) watch(pool, {
  leakThresholdMs: config.leakThresholdMs,
  ...(config.reclaimAfterMs === null ? {} : { reclaimAfterMs: config.reclaimAfterMs }),
  onLeak,
});
const detector = config.attach ? undefined : detectorOf(pool);
detector?.on('exhausted', (event) => {
  counts.exhausted++;
  send({ name: 'exhausted', reason: event.reason, verdict: event.verdict ?? null, open: event.open, waiting: event.waiting, message: event.message });
});

const app = express();
if (config.scope && !config.attach) app.use(expressScope());
app.use(express.json());

app.get('/users/:id', async (req, res) => {
  const client = await pool.connect(); // LEAKS
  const { rows } = await client.query('SELECT id, name, email FROM users WHERE id = $1', [req.params.id]);
  if (rows.length === 0) {
    skippedRelease(client, req); // the replay's record; the bug is the line after it
    return res.status(404).json({ error: 'no such user' });
  }
  const { rows: orders } = await client.query('SELECT count(*)::int AS n FROM orders WHERE user_id = $1', [req.params.id]);
  client.release();
  res.json({ ...rows[0], orders: orders[0].n });
});

app.get('/orders', async (req, res) => {
  const { rows } = await pool.query('SELECT id, total, placed_at FROM orders WHERE user_id = $1 ORDER BY id', [req.query.user]);
  res.json(rows);
});

app.post('/transfer', async (req, res) => {
  const { from, to, amount } = req.body;
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amount, from]);
    await client.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [amount, to]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
  res.json({ ok: true });
});

// What the app's error handler would log: here the first error of each kind is kept.
app.use((error, req, res, _next) => {
  if (error?.poolwatch !== undefined || /timeout exceeded when trying to connect/.test(error?.message)) {
    counts.poolErrors++;
    if (firstTimeout === undefined) {
      firstTimeout = error;
      const [driverLine, ...rest] = String(error.message).split('\n');
      send({ name: 'timeout', request: `${req.method} ${req.originalUrl}`, driverLine, poolwatch: rest.join('\n'), verdict: error.poolwatch?.verdict ?? null });
    }
  } else {
    counts.otherErrors++;
    if (firstOtherError === undefined) {
      firstOtherError = error;
      send({ name: 'error', request: `${req.method} ${req.originalUrl}`, message: String(error?.stack ?? error) });
    }
  }
  if (!res.headersSent) res.status(500).json({ error: 'internal error' });
});

// --- Attach mode: no poolwatch here to ask, so the replay records every leak itself: when
// pg-pool handed the client over and when its release was skipped (epoch ms, sub-ms, in
// the clock the runner reads too), so that the runner can tell the leaks the attach saw
// begin from those that began before it.
const acquiredMono = new WeakMap();
if (config.attach) pool.on('acquire', (client) => acquiredMono.set(client, performance.now()));
function recordKept(client, req) {
  const acquired = acquiredMono.get(client);
  send({
    name: 'leaked-acquire',
    n: counts.leakedAcquires,
    request: `${req.method} ${req.originalUrl}`,
    acquiredEpoch: acquired === undefined ? null : performance.timeOrigin + acquired,
    skippedEpoch: performance.timeOrigin + performance.now(),
  });
}

const server = app.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));

async function close() {
  server.closeAllConnections();
  const closed = new Promise((resolve) => server.close(resolve));
  // The kept clients go back destroyed (one poolwatch took back is absorbed), then the pool ends.
  for (const client of kept) client.release(true);
  kept.clear();
  let open = pool.totalCount;
  const ended = new Promise((resolve) => {
    if (open === 0) resolve();
    pool.on('remove', () => --open === 0 && resolve());
  });
  await pool.end();
  await ended;
  await closed;
  detector?.close();
}

process.on('message', async ({ id, type, report }) => {
  try {
    if (type === 'finish' && detector === undefined) {
      // Attach mode: no detector, no HTML report; the pool's own counts.
      const stats = { open: pool.totalCount - pool.idleCount, total: pool.totalCount, waiting: pool.waitingCount };
      process.send({ id, counts, stats, reportPath: null, upMs: performance.now() - startedMono });
    } else if (type === 'finish') {
      const stats = Object.values(detector.stats())[0];
      const reportPath = detector.writeReport(report);
      process.send({
        id,
        counts,
        stats: { acquired: stats.acquired, leaked: stats.leaked, timeouts: stats.timeouts, peakOpen: stats.peakOpen, open: stats.open, waiting: stats.waiting },
        reportPath,
        upMs: performance.now() - startedMono,
      });
    } else if (type === 'close') {
      await close();
      process.send({ id }, () => process.exit(0));
    } else throw new Error(`unknown message type "${type}"`);
  } catch (error) {
    process.send({ id, error: error?.stack ?? String(error) });
  }
});
// The runner went away (Ctrl-C, a crash): nothing left to serve.
process.on('disconnect', () => process.exit(1));
