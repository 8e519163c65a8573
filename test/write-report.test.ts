import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool } from 'generic-pool';
import { createDetector } from '../lib/index.js';
import { fakeClock } from './helpers/clock.js';
import { siteOf } from './helpers/site.js';

t.test('writeReport() writes one self-contained file: each pool over time, its leaks and timeouts, who holds it and its sizing', async (t) => {
  const clock = fakeClock(t);
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pool = createPool({ create: async () => ({}), destroy: async () => {} }, { max: 2, acquireTimeoutMillis: 3_000 });
  const detector = createDetector({ leakThresholdMs: 5_000 });
  t.teardown(() => detector.close());
  detector.watch(pool, { name: 'orders' });
  const held = [await pool.acquire(), await pool.acquire()]; // HELD
  await clock.tickAsync(6_000);
  const waiting = pool.acquire().then(
    () => undefined,
    (error: unknown) => error,
  );
  await clock.tickAsync(3_000);
  t.ok(await waiting, 'the pool gave up on a waiter');

  const path = detector.writeReport(join(dir, 'pool.html'));
  t.equal(path, join(dir, 'pool.html'), 'its absolute path');
  t.same(readdirSync(dir), ['pool.html'], 'written whole: no partial file left');
  const html = readFileSync(path, 'utf8');
  t.match(html, /^<!doctype html>/i);
  t.match(html, 'orders');
  t.match(html, siteOf(__filename, '// HELD'), 'the holders, by call site');
  t.match(html, 'Connection leak in pool', 'the leaks are marked');
  t.match(html, 'gave up waiting for a connection', 'and the timeout');
  t.notMatch(html, /(src|href)=["']?https?:/i, 'nothing loaded from the network');
  // Nine seconds, one sample each, and one as the report was written.
  const data = JSON.parse(html.match(/<script type="application\/json"[^>]*>([\s\S]*?)<\/script>/)![1]!.replace(/\\u003c/g, '<'));
  const chart = data.pools[0] as { t: number[]; leased: number[]; waiting: number[] };
  t.ok(chart.t.length >= 9, `${chart.t.length} samples`);
  t.equal(chart.leased.at(-1), 2);
  t.ok(chart.waiting.includes(1), 'the waiter is on the chart');
  for (const conn of held) await pool.release(conn);
});

t.test('writeReport() refuses a path that is not one, naming it', async (t) => {
  const detector = createDetector();
  t.throws(() => detector.writeReport('' as never), { code: 'POOLWATCH_INVALID_OPTION', message: /`path` of writeReport\(\)/ });
  t.throws(() => detector.writeReport(42 as never), { code: 'POOLWATCH_INVALID_OPTION', message: /got `42` \(number\)/ });
});

t.test('sampling stops with the last pool: a closed detector keeps no timer', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector();
  const pool = createPool({ create: async () => ({}), destroy: async () => {} });
  detector.watch(pool);
  t.ok(clock.countTimers() >= 1, 'a sampler while a pool is watched');
  detector.close();
  t.equal(clock.countTimers(), 0);
});
