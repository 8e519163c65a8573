import t, { type Test } from 'tap';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, codes, type Detector } from '../../lib/index.js';
import { expectNoLeaks, LeakError } from '../../lib/testing/index.js';
import { groupReports, formatReportGroups } from '../../lib/report-group.js';
import { fakeClock } from '../helpers/clock.js';
import { siteOf } from '../helpers/site.js';

type Conn = { id: number };
let ids = 0;
const newPool = (): Pool<Conn> => createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 10 });

function watched(t: Test, name: string): { detector: Detector; pool: Pool<Conn> } {
  const detector = createDetector({ leakThresholdMs: 60_000, stacks: 'always', context: () => ({ suite: 'unit' }) });
  t.teardown(() => detector.close());
  return { detector, pool: detector.watch(newPool(), { name }) };
}

/** The LeakError expectNoLeaks throws, or undefined when it does not throw. */
function caught(fn: () => void): LeakError | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof LeakError) return error;
    throw error;
  }
  return undefined;
}

function acquireHere(pool: Pool<Conn>): Promise<Conn> {
  return pool.acquire(); // ACQUIRE-HELPER
}

t.test('a clean test passes: nothing open, nothing thrown', async (t) => {
  const { detector, pool } = watched(t, 'db');
  const conn = await pool.acquire();
  await pool.release(conn);
  t.doesNotThrow(() => expectNoLeaks(detector));
  t.doesNotThrow(() => expectNoLeaks());
});

t.test('a lease left open throws a LeakError with code POOLWATCH_LEAK naming the test, the acquiring line and its source', async (t) => {
  const clock = fakeClock(t);
  const { detector, pool } = watched(t, 'db');
  await pool.acquire(); // LEAKED-ONCE
  await clock.tickAsync(31_000);
  const error = caught(() => expectNoLeaks(detector, { name: 'loads the user' }));
  t.ok(error, 'throws');
  t.equal(error!.code, 'POOLWATCH_LEAK');
  t.equal(error!.code, codes.leak);
  t.equal(error!.name, 'LeakError');
  t.ok(error instanceof Error);
  t.equal(error!.reports.length, 1);
  t.equal(error!.reports[0]!.kind, 'scope-ended');
  const site = siteOf(__filename, '// LEAKED-ONCE');
  const message = error!.message;
  t.match(message.split('\n')[0], `1 connection still leased after test "loads the user" (1 lease from ${site.slice(0, -1)} in pool "db", held 31.0 s)`);
  t.match(message, `acquired at ${site}`, 'the call site, TypeScript line');
  t.match(message, /> *\d+ \| +await pool\.acquire\(\); \/\/ LEAKED-ONCE/, 'the code frame shows the acquiring line');
  t.match(message, /context: suite=unit/, 'the context labels');
  t.notMatch(message, /\u001b\[/, 'no colour when not asked and stderr is no terminal');
});

t.test('leases from one call site are grouped under one headline with the oldest held time', async (t) => {
  const clock = fakeClock(t);
  const { detector, pool } = watched(t, 'db');
  await acquireHere(pool);
  await clock.tickAsync(20_000);
  await acquireHere(pool);
  await clock.tickAsync(11_000);
  await acquireHere(pool);
  await pool.acquire(); // OTHER-SITE
  const error = caught(() => expectNoLeaks(detector))!;
  t.equal(error.reports.length, 4);
  const helper = siteOf(__filename, '// ACQUIRE-HELPER').slice(0, -1);
  const other = siteOf(__filename, '// OTHER-SITE').slice(0, -1);
  t.match(error.message.split('\n')[0], '4 connections still leased after the test (2 call sites)');
  t.match(error.message, `\n3 leases from ${helper} in pool "db", oldest held 31.0 s\n`);
  t.match(error.message, `\n1 lease from ${other} in pool "db", held 0 ms\n`);
  t.match(error.message, /also lease #2, held 11\.0 s; context: suite=unit\n\s+also lease #3, held 0 ms; context: suite=unit/);
  t.equal(error.message.match(/ACQUIRE-HELPER/g)?.length, 1, 'one code frame for the group');

  const groups = groupReports(error.reports);
  t.same(
    groups.map((group) => [group.reports.map((report) => report.leaseId), group.oldestHeldMs]),
    [
      [[1, 2, 3], 31_000],
      [[4], 0],
    ],
    'groups in the order of their oldest lease, oldest first inside',
  );
  t.equal(formatReportGroups([]), '');
});

t.test('without a detector it checks every detector watching a pool; with one, only that one', async (t) => {
  const a = watched(t, 'a');
  const b = watched(t, 'b');
  await a.pool.acquire();
  await b.pool.acquire();
  const one = caught(() => expectNoLeaks(a.detector))!;
  t.same(one.reports.map((report) => report.pool), ['a'], 'only the given detector');
  const all = caught(() => expectNoLeaks())!;
  t.same(all.reports.map((report) => report.pool), ['b'], "every detector; a's lease was already reported");
  t.match(all.message, 'in pool "b"');
});

t.test('a lease reported by one check is not blamed on the next test, but a new leak is', async (t) => {
  const { detector, pool } = watched(t, 'db');
  const first = await pool.acquire();
  t.ok(caught(() => expectNoLeaks(detector)), 'the test that leaked fails');
  t.doesNotThrow(() => expectNoLeaks(detector), 'the next test, clean, passes though the lease is still open');
  await pool.acquire();
  const error = caught(() => expectNoLeaks(detector))!;
  t.same(error.reports.map((report) => report.leaseId), [2], 'only the new lease');
  await pool.release(first);
});

t.test('leases opened before a clean check are not blamed once released', async (t) => {
  const { detector, pool } = watched(t, 'db');
  const conn = await pool.acquire();
  await pool.release(conn);
  expectNoLeaks(detector);
  const again = await pool.acquire();
  await pool.release(again);
  t.doesNotThrow(() => expectNoLeaks(detector));
});

t.test('colour only when asked (or on a terminal)', async (t) => {
  const { detector, pool } = watched(t, 'db');
  await pool.acquire();
  const error = caught(() => expectNoLeaks(detector, { color: true }))!;
  t.match(error.message, /\u001b\[31m/, 'ANSI colours');
  t.match(error.message.replace(/\u001b\[\d+m/g, ''), 'still leased', 'the same text underneath');
});

t.test('options alone may be given, and a wrong detector is a TypeError', async (t) => {
  const { pool } = watched(t, 'db');
  await pool.acquire();
  t.match(caught(() => expectNoLeaks({ name: 'only options' }))!.message, 'after test "only options"');
  t.throws(() => expectNoLeaks(42 as never), { name: 'PoolwatchTypeError', code: codes.invalidOption });
});
