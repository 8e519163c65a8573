import t, { type Test } from 'tap';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type DetectorOptions, type LeakReport } from '../lib/index.js';
import { fakeClock } from './helpers/clock.js';
import { siteOf } from './helpers/site.js';

type Conn = { id: number };
let ids = 0;
const newPool = (): Pool<Conn> => createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 20 });

function setup(t: Test, options: DetectorOptions = {}) {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 1000, stacks: 'always', ...options });
  t.teardown(() => detector.close());
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  return { clock, detector, leaks, pool: detector.watch(newPool(), { name: 'db' }) };
}

const runReport = (pool: Pool<Conn>) => pool.acquire(); // LONG REPORT
const handleRequest = (pool: Pool<Conn>) => pool.acquire(); // REQUEST

t.test('extend() lets known long work run past the threshold, from now', async (t) => {
  const { clock, detector, leaks, pool } = setup(t);
  const long = await pool.acquire();
  const short = await pool.acquire();
  await clock.tickAsync(500);
  t.ok(detector.extend(long, 5000), 'found the lease');
  await clock.tickAsync(500);
  t.same(leaks.map((r) => r.leaseId), [2], 'the other lease is still reported at its threshold');
  await clock.tickAsync(4499);
  t.equal(leaks.length, 1, 'not before 5 s from the extend() call');
  await clock.tickAsync(1);
  t.match(leaks[1], { leaseId: 1, kind: 'threshold', heldMs: 5500 });
  t.equal(leaks[0]!.thresholdMs, 1000, 'the lease not extended: the pool\'s threshold');
  t.match(leaks[0]!.message, /held for 1\.0 s \(threshold 1\.0 s\)/);
  t.notOk(detector.extend({}, 1000), 'false for a connection it does not lease');
  t.throws(() => detector.extend(long, -1), { code: 'POOLWATCH_INVALID_OPTION', message: /`ms` of extend\(\).*`-1`/ });
  await pool.release(long);
  await pool.release(short);
});

t.test('a call site can have its own threshold', async (t) => {
  const reportSite = siteOf(__filename, '// LONG REPORT').replace(/:$/, '');
  const { clock, leaks, pool } = setup(t, { callSiteThresholdsMs: { [reportSite]: 10_000 } });
  const report = await runReport(pool);
  const request = await handleRequest(pool);
  await clock.tickAsync(1000);
  t.same(leaks.map((r) => r.callSite?.startsWith(siteOf(__filename, '// REQUEST'))), [true], 'only the request is a leak at 1 s');
  await clock.tickAsync(9000);
  t.equal(leaks.length, 2, 'the report at its own 10 s');
  t.match(leaks[1], { heldMs: 10_000, callSite: new RegExp(`^${reportSite.replace(/[.]/g, '\\.')}:\\d+$`) });
  await pool.release(report);
  await pool.release(request);
  t.throws(() => createDetector({ callSiteThresholdsMs: { 'src/a.ts': 0 } }), { code: 'POOLWATCH_INVALID_OPTION', message: /callSiteThresholdsMs\["src\/a\.ts"\]/ });
});

t.test('counts repeated leaks from one call site', async (t) => {
  const { clock, leaks, pool } = setup(t);
  for (let i = 0; i < 3; i++) await handleRequest(pool);
  await clock.tickAsync(1000);
  t.same(leaks.map((r) => r.occurrence), [1, 2, 3]);
  t.match(leaks[2]!.format(), /^poolwatch: .*\(leak 3 from this line\)/);
});

t.test('snapshot() gives every open lease and the figures, as JSON', async (t) => {
  const { clock, detector, pool } = setup(t);
  await detector.scope({ requestId: 'r-1' }, () => handleRequest(pool));
  await clock.tickAsync(250);
  const snapshot = JSON.parse(JSON.stringify(detector.snapshot()));
  t.equal(snapshot.takenAt, new Date().toISOString());
  t.match(snapshot.pools.db.stats, { open: 1, acquired: 1, peakOpen: 1 });
  t.match(snapshot.pools.db.leases, [{ leaseId: 1, heldMs: 250, via: 'acquire', context: { requestId: 'r-1' }, callSite: /^test\/long-work\.test\.ts:\d+:\d+$/ }]);
});

t.test('a report states the limit that applied: extend()\'s or the call site\'s, not the pool\'s threshold', async (t) => {
  const reportSite = siteOf(__filename, '// LONG REPORT').replace(/:$/, '');
  const { clock, detector, leaks, pool } = setup(t, { callSiteThresholdsMs: { [reportSite]: 10_000 } });
  const report = await runReport(pool);
  const extended = await handleRequest(pool);
  await clock.tickAsync(500);
  detector.extend(extended, 2_000);
  await clock.tickAsync(2_000);
  t.equal(leaks.length, 1, 'the extended lease, at 500 ms + 2 s');
  await clock.tickAsync(7_500);
  t.equal(leaks.length, 2, 'the call site\'s own, at 10 s');
  const [fromExtend, fromSite] = leaks as [LeakReport, LeakReport];
  for (const [leak, heldMs, limit, said] of [
    [fromExtend, 2_500, 2_500, '2\\.5 s'],
    [fromSite, 10_000, 10_000, '10\\.0 s'],
  ] as const) {
    t.equal(leak.heldMs, heldMs);
    t.equal(leak.thresholdMs, limit, 'thresholdMs');
    t.match(leak.message, new RegExp(`held for ${said} \\(threshold ${said}\\)`), 'message');
    t.match(leak.format(), new RegExp(`^poolwatch: .*held for ${said} \\(threshold ${said}\\)`), 'format()');
    t.match(JSON.parse(JSON.stringify(leak)), { thresholdMs: limit }, 'JSON');
    t.notMatch(leak.format(), /threshold 1\.0 s/, 'the pool\'s threshold, which did not apply, is not said');
  }
  await pool.release(report);
  await pool.release(extended);
});
