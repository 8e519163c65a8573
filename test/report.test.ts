import t, { type Test } from 'tap';
import { createPool } from 'generic-pool';
import { watch, detectorOf, formatDuration, type LeakReport } from '../lib/index.js';
import { fakeClock } from './helpers/clock.js';
import { siteOf } from './helpers/site.js';

async function leakOne(t: Test, options: object = {}): Promise<LeakReport> {
  const clock = fakeClock(t);
  const pool = createPool({ create: async () => ({ password: 'hunter2' }), destroy: async () => {} });
  watch(pool, { name: 'users-db', leakThresholdMs: 30_000, context: () => ({ route: 'GET /users', requestId: 'r-7' }), ...options });
  t.teardown(() => detectorOf(pool)!.close());
  await clock.tickAsync(12);
  await pool.acquire(); // LEAK
  await clock.tickAsync(30_000);
  return detectorOf(pool)!.check()[0]!;
}

t.test('a report carries every field of the contract', async (t) => {
  const report = await leakOne(t);
  t.match(report, {
    kind: 'threshold',
    pool: 'users-db',
    leaseId: 1,
    heldMs: 30_000,
    thresholdMs: 30_000,
    acquiredAt: Date.UTC(2026, 0, 1) + 12,
    waitedMs: 0,
    context: { route: 'GET /users', requestId: 'r-7' },
    code: 'POOLWATCH_LEAK',
    name: 'LeakReport',
  });
  t.ok(report.callSite!.startsWith(siteOf(__filename, '// LEAK')), 'callSite is the TypeScript line (source maps on)');
  t.equal(report.message, `Connection leak in pool "users-db": lease #1 held for 30.0 s (threshold 30.0 s), acquired at ${report.callSite}`);
});

t.test('JSON.stringify gives every field and no connection internals', async (t) => {
  const report = await leakOne(t);
  const json = JSON.parse(JSON.stringify(report));
  t.same(Object.keys(json).sort(), ['acquiredAt', 'callSite', 'code', 'context', 'heldMs', 'kind', 'leaseId', 'message', 'occurrence', 'pool', 'stack', 'thresholdMs', 'via', 'waitedMs']);
  t.notMatch(JSON.stringify(report), /hunter2/, 'the connection object is not serialised');
  t.notMatch(report.format(), /hunter2/);
});

t.test('format() shows the message, the source line, app frames and the context', async (t) => {
  const report = await leakOne(t);
  const text = report.format();
  const [first, ...rest] = text.split('\n');
  t.equal(first, `poolwatch: ${report.message}`);
  t.match(rest.join('\n'), /> *\d+ \| {3}await pool\.acquire\(\); \/\/ LEAK\n\s+\| +\^/, 'a code frame marks the acquiring call');
  t.match(text, /\n {4}at leakOne \(test\/report\.test\.ts:\d+:\d+\)/, 'app frames with relative paths');
  t.match(text, /context: route=GET \/users requestId=r-7/);
  t.match(text, /waited 0 ms for the connection/);
  t.notMatch(text, /node_modules|node:internal/);
  t.notMatch(report.format({ codeFrame: false }), /\| +\^/, 'the code frame can be left out');
});

t.test('formats durations for people', async (t) => {
  t.equal(formatDuration(850.4), '850 ms');
  t.equal(formatDuration(31_249), '31.2 s');
  t.equal(formatDuration(250_000), '4 min 10 s');
});
