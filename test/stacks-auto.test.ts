// stacks: 'auto' (the default) under the real clock: it stops capturing once its capture
// budget is spent, and still gives the next leak from a leaking line its stack. No
// fake timers here: the budget is measured in real capture time, and the leaks are
// scope-ended ones, reported when the scope ends, so nothing waits on the clock.
import t, { type Test } from 'tap';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type LeakReport } from '../lib/index.js';
import { siteOf } from './helpers/site.js';

type Conn = { id: number };
let ids = 0;

function setup(t: Test, stacks: 'auto' | 'never') {
  const detector = createDetector({ stacks });
  const pool: Pool<Conn> = detector.watch(createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 5 }), { name: 'db' });
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  // Connections the test leaks on purpose: given back at the end, so the pool can drain.
  const leaked: Conn[] = [];
  t.teardown(async () => {
    detector.close();
    await Promise.all(leaked.map((conn) => pool.release(conn)));
    await pool.drain();
    await pool.clear();
  });
  return { detector, pool, leaks, leaked };
}

// Short, well-behaved leases until one opens without a stack: the capture budget is spent.
async function spendCaptureBudget(t: Test, detector: ReturnType<typeof createDetector>, pool: Pool<Conn>): Promise<number> {
  for (let i = 1; i <= 200_000; i++) {
    const conn = await pool.acquire();
    const captured = detector.leases()[0]!.callSite !== undefined;
    await pool.release(conn);
    if (!captured) return i;
  }
  t.fail('every lease of 200,000 had its stack captured: the budget never ran out');
  return -1;
}

t.test("'auto' samples stacks, and a line that keeps leaking gets its stack", async (t) => {
  const { detector, pool, leaks, leaked } = setup(t, 'auto');
  const cycles = await spendCaptureBudget(t, detector, pool);
  t.ok(cycles > 1, `the first leases had stacks (budget spent after ${cycles} cycles)`);

  const leakingJob = (job: number) =>
    detector.scope({ job }, async () => {
      leaked.push(await pool.acquire()); // LEAKS
    });
  await leakingJob(1);
  await leakingJob(2);

  t.equal(leaks.length, 2, 'each run of the job leaked one connection');
  t.same(
    leaks.map((report) => report.context),
    [{ job: 1 }, { job: 2 }],
    'every lease keeps its labels, stack or not',
  );
  const site = siteOf(__filename, '// LEAKS');
  const second = leaks[1]!;
  t.ok(second.callSite?.startsWith(site), `the repeated leak names the line: ${second.callSite}`);
  t.match(second.format(), site, 'and its report shows it');
  t.match(second.stack, /leakingJob|stacks-auto\.test/, 'with the stack that led there');

  // The alert lasts: every new lease is captured for a while, not just the next one.
  const conns = await Promise.all([pool.acquire(), pool.acquire()]);
  const after = detector.leases().filter((lease) => lease.leaseId > second.leaseId);
  t.equal(after.length, 2);
  t.ok(
    after.every((lease) => lease.callSite !== undefined),
    'leases opened after a leak all have stacks',
  );
  for (const conn of conns) await pool.release(conn);
});

t.test("'never' keeps labels but no stacks, even after a leak", async (t) => {
  const { detector, pool, leaks, leaked } = setup(t, 'never');
  for (const job of [1, 2]) {
    await detector.scope({ job }, async () => {
      leaked.push(await pool.acquire());
    });
  }
  t.same(
    leaks.map((report) => [report.context, report.callSite]),
    [
      [{ job: 1 }, undefined],
      [{ job: 2 }, undefined],
    ],
  );
});
