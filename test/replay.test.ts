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
