import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { siteOf } from './helpers/site.js';

// The replay of the seed incident (examples/replay/run.mjs): an embedded PostgreSQL, an
// Express service in a child process and two runs of autocannon load. Short runs, and a
// larger share of missing ids than the default so the pool runs dry early even on a busy
// machine; generous time for PostgreSQL's start on a slow one.
t.setTimeout(5 * 60_000);
const run = promisify(execFile);
const root = join(__dirname, '..');
const service = join(root, 'examples', 'replay', 'service.mjs');

interface At {
  t: number;
}
interface Run {
  name: string;
  firstLeakedAcquire: (At & { request: string }) | null;
  firstReport: (At & { kind: string; callSite: string | null; route: string | null; method: string | null; sinceLeakMs: number }) | null;
  exhausted: Array<At & { reason: string; verdict: string | null; message: string }>;
  firstTimeout: (At & { driverLine: string; poolwatch: string; verdict: string | null }) | null;
  firstReclaim: (At & { callSite: string | null }) | null;
  firstAppError: (At & { message: string }) | null;
  reclaims: number;
  leakedAcquires: number;
  requests: { total: number; served: number; successRate: number };
  reportPath: string;
  reportExists: boolean;
}
interface Replay {
  timeToLineMs: number | null;
  runs: [Run, Run];
}

t.test('the replay: the leak is named at once, the pool runs dry on a leak, and reclaiming keeps it serving', async (t) => {
  const durationS = 8;
  const reports = mkdtempSync(join(tmpdir(), 'poolwatch-replay-test-'));
  t.teardown(() => rmSync(reports, { recursive: true, force: true }));
  const args = ['examples/replay/run.mjs', '--duration', String(durationS), '--miss', '2', '--report', reports, '--json'];
  const { stdout } = await run(process.execPath, args, {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  const replay = JSON.parse(stdout.trim().split('\n').at(-1)!) as Replay;
  const [plain, reclaim] = replay.runs;
  const site = siteOf(service, '// LEAKS');

  t.equal(plain.firstAppError, null, 'no error but the pool timeouts');
  t.ok(plain.firstLeakedAcquire, 'the service recorded its first skipped release');
  const report = plain.firstReport;
  t.ok(report, 'poolwatch reported a leak');
  if (!report || !plain.firstLeakedAcquire) return;
  t.ok(report.callSite?.startsWith(site), `the first report names the leaking line (${report.callSite}, expected ${site}…)`);
  t.equal(report.method, 'GET');
  t.equal(report.route, '/users/:id', 'and the route');
  t.equal(report.kind, 'scope-ended', 'reported as the request ended (expressScope), not after the threshold');
  t.ok(report.t >= plain.firstLeakedAcquire.t, 'after the leak began');

  const timeout = plain.firstTimeout;
  t.ok(timeout, 'a request timed out waiting for a connection');
  if (!timeout) return;
  t.equal(timeout.verdict, 'leak', "the timeout's verdict");
  t.match(timeout.driverLine, /timeout exceeded when trying to connect/, "the driver's own message first");
  t.match(timeout.poolwatch, /A connection leak: /, "then poolwatch's line");
  t.ok(timeout.poolwatch.includes(site), 'naming the leaking line as the holder');
  t.ok(report.t <= timeout.t, 'the line was named before the first request failed');
  t.ok(
    plain.exhausted.some((event) => event.verdict === 'leak'),
    `the pool ran dry on a leak (${plain.exhausted.map((e) => `${e.reason}: ${e.verdict}`).join(', ')})`,
  );

  t.ok(replay.timeToLineMs !== null && replay.timeToLineMs > 0 && replay.timeToLineMs < durationS * 1000, `time from first leak to the line named: ${replay.timeToLineMs} ms`);
  t.equal(replay.timeToLineMs, report.sinceLeakMs);

  t.equal(reclaim.firstAppError, null, 'no error but the pool timeouts, with reclaimAfterMs');
  t.ok(reclaim.reclaims > 0, `reclaims: ${reclaim.reclaims}`);
  t.ok(reclaim.firstReclaim?.callSite?.startsWith(site), 'a reclaimed connection is one the leaking line kept');
  t.ok(
    reclaim.requests.served > plain.requests.served,
    `more requests served with reclaimAfterMs: ${reclaim.requests.served} vs ${plain.requests.served} (${(reclaim.requests.successRate * 100).toFixed(1)}% vs ${(plain.requests.successRate * 100).toFixed(1)}%)`,
  );

  for (const r of replay.runs) {
    t.equal(r.reportPath, join(reports, `${r.name}.html`), `the HTML report of the ${r.name} run goes where --report says`);
    t.ok(r.reportExists && existsSync(r.reportPath), 'and is written');
    if (existsSync(r.reportPath)) t.match(readFileSync(r.reportPath, 'utf8'), /^<!doctype html>/i, 'is an HTML page');
  }
});

interface AttachRun {
  name: string;
  requests: { total: number; served: number };
  attach: {
    exitCode: number | null;
    startedT: number;
    readyT: number | null;
    leakedBefore: number;
    leakedBeforeStart: number;
    leakedBeforeReady: number | null;
    firstLeakAfterAttach: (At & { acquiredT: number; request: string; matchedWithinMs: number | null }) | null;
    firstReport: (At & { kind: string; callSite: string; heldMs: number; thresholdMs: number }) | null;
    sinceLeakMs: number | null;
    sinceAttachMs: number | null;
    holders: Array<{ pool: string; groups: Array<{ callSite: string | null; count: number }>; before: { count: number } }>;
    heldFromBefore: number | null;
    during: { served: number; setup: { served: number }; watching: { served: number } };
    stderr: string[];
  };
}

t.test('the replay with --attach: a service without poolwatch, attached mid-incident, names the line of a leak that began after the attach', async (t) => {
  // Attached half a second into the load, at a miss rate that leaves the pool connections
  // to leak after the attach (on a fast machine) and leaks to see (on a slow one); a
  // threshold short enough that one is reported well before the CLI detaches.
  const thresholdMs = 1000;
  const args = ['examples/replay/run.mjs', '--attach', '--attach-after', '0.5', '--duration', '10', '--miss', '0.3', '--threshold', String(thresholdMs), '--json'];
  const { stdout } = await run(process.execPath, args, { cwd: root, maxBuffer: 64 * 1024 * 1024 });
  const replay = JSON.parse(stdout.trim().split('\n').at(-1)!) as { timeToLineMs: number | null; attachToLineMs: number | null; runs: [AttachRun] };
  const [{ attach: a, requests }] = replay.runs;
  const site = siteOf(service, '// LEAKS');
  const diagnostic = { attach: { ...a, holders: undefined } };

  t.equal(a.exitCode, 0, `the CLI ended well; its stderr: ${a.stderr.join(' | ')}`);
  t.ok(a.readyT !== null && a.readyT > a.startedT, 'the CLI said it was attached, after it started');
  const report = a.firstReport;
  const leak = a.firstLeakAfterAttach;
  t.ok(report, 'the attach reported a leak naming service.mjs', diagnostic);
  t.ok(leak, 'and the service recorded a leak that began after the attach', diagnostic);
  if (!report || !leak) return;
  t.ok(report.callSite.startsWith(site), `the report names the leaking line (${report.callSite}, expected ${site}…)`);
  t.equal(report.kind, 'threshold', 'after the threshold: an attach has no request scope');
  t.ok(report.heldMs >= thresholdMs, `held ${report.heldMs} ms`);
  t.ok(leak.matchedWithinMs !== null && leak.matchedWithinMs < 50, `the reported lease is one the service recorded (acquired ${leak.matchedWithinMs} ms from the report's acquiredAt)`);
  t.ok(a.readyT !== null && leak.acquiredT >= a.startedT, 'acquired after the attach started');

  t.ok(replay.timeToLineMs !== null && replay.timeToLineMs > 0, `time from first leak (after the attach) to the line named: ${replay.timeToLineMs} ms`);
  t.ok(replay.attachToLineMs !== null && replay.attachToLineMs > 0, `time from running attach to the line named: ${replay.attachToLineMs} ms`);
  t.equal(replay.timeToLineMs, a.sinceLeakMs);
  t.equal(replay.attachToLineMs, a.sinceAttachMs);
  t.ok(replay.attachToLineMs! > replay.timeToLineMs!, 'the attach ran before the leak it names began');

  t.ok(a.during.setup.served > 0, `requests were served while the CLI attached and searched the heap (${a.during.setup.served})`);
  t.ok(a.during.watching.served > 0, `and while it watched (${a.during.watching.served})`);
  t.ok(requests.served > a.during.served, 'and before the attach');

  const [pool] = a.holders;
  t.equal(a.holders.length, 1, "the CLI's holders table at detach: one pool");
  t.ok(pool?.groups.some((group) => group.callSite?.startsWith(site)), 'holding leases from the leaking line');
  t.equal(a.heldFromBefore, pool?.before.count);
  // Held from before the attach: every leak acquired before the CLI started (held when the
  // watch began), none acquired after it said it was ready. (A leak handed over after the
  // watch began to a connect() already waiting is neither: `unseen`.)
  t.ok(
    a.heldFromBefore !== null && a.leakedBeforeStart <= a.heldFromBefore && a.heldFromBefore <= a.leakedBeforeReady!,
    `held from before the attach: ${a.heldFromBefore}, between the leaks acquired before the CLI started (${a.leakedBeforeStart}) and before it was ready (${a.leakedBeforeReady})`,
    diagnostic,
  );
});
