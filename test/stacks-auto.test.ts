// stacks: 'auto' (the default) under the real clock: every lease records the app's
// acquiring line with a short capture, full stacks come within a time budget, and the
// short capture's depth adapts to where the app's line sits below a library's frames.
// No fake timers: the budget is measured in real capture time, and the leaks are
// scope-ended ones, reported when the scope ends, so nothing waits on the clock.
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type Detector, type LeaseInfo, type LeakReport } from '../lib/index.js';
import { siteOf } from './helpers/site.js';
import { framesPastSite, shortPastSite } from './helpers/short-capture.js';

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

// Eight frames of the app's own below its acquiring line, so a full stack shows more than a short one (at most shortPastSite).
const nested = <R>(depth: number, fn: () => R): R => (depth === 0 ? fn() : nested(depth - 1, fn));

/**
 * Short leases from `acquire` until one has a short stack: the full-stack budget is
 * spent. Every lease must name the acquiring line, `site`.
 */
async function spendFullStackBudget(t: Test, detector: Detector, pool: Pool<Conn>, acquire: () => Promise<Conn>, site: string): Promise<number> {
  for (let i = 1; i <= 200_000; i++) {
    const conn = await nested(8, acquire);
    const lease = detector.leases()[0]!;
    await pool.release(conn);
    if (!lease.callSite?.startsWith(site)) {
      t.fail(`lease ${i} does not name its acquiring line ${site}: ${lease.callSite}`);
      return -1;
    }
    if (framesPastSite(lease) <= shortPastSite) return i;
  }
  t.fail('every lease of 200,000 had its full stack captured: the budget never ran out');
  return -1;
}

// A stand-in for an ORM: thirteen frames of a package under node_modules between the app's call and the pool.
function fakeOrm(t: Test): { acquireThrough: (pool: Pool<Conn>) => Promise<Conn> } {
  const root = mkdtempSync(join(tmpdir(), 'poolwatch-orm-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'node_modules', 'fake-orm');
  mkdirSync(dir, { recursive: true });
  const layers = Array.from({ length: 12 }, (_, i) => `function layer${i}(pool) { return ${i === 11 ? 'pool.acquire()' : `layer${i + 1}(pool)`}; }`);
  writeFileSync(join(dir, 'index.js'), `${layers.join('\n')}\nexports.acquireThrough = function acquireThrough(pool) { return layer0(pool); };\n`);
  return createRequire(join(root, 'app.js'))('fake-orm');
}

t.test("'auto' names the acquiring line of every lease, also once its full-stack budget is spent", async (t) => {
  const { detector, pool, leaks, leaked } = setup(t, 'auto');
  const shortLease = () => pool.acquire(); // SHORT LEASE
  const cycles = await spendFullStackBudget(t, detector, pool, shortLease, siteOf(__filename, '// SHORT LEASE'));
  t.ok(cycles > 1, `the first leases had full stacks (budget spent after ${cycles} cycles)`);

  const leakingJob = (job: number) =>
    detector.scope({ job }, async () => {
      leaked.push(await pool.acquire()); // LEAKS
    });
  await leakingJob(1);
  await leakingJob(2);

  t.equal(leaks.length, 2, 'each run of the job leaked one connection');
  t.same(leaks.map((report) => report.context), [{ job: 1 }, { job: 2 }], 'every lease keeps its labels');
  const site = siteOf(__filename, '// LEAKS');
  for (const report of leaks) {
    t.ok(report.callSite?.startsWith(site), `the leak names the line: ${report.callSite}`);
    t.match(report.format(), site, 'and its report shows it');
    t.notMatch(report.format(), /no stack was captured/);
  }
});

t.test("the first acquires teach a pool how deep the app's line sits below a library's frames", async (t) => {
  const orm = fakeOrm(t);
  const { detector, pool, leaks, leaked } = setup(t, 'auto');
  const site = siteOf(__filename, '// THROUGH THE ORM');
  const acquire = () => orm.acquireThrough(pool); // THROUGH THE ORM
  // Ends on the first short capture, which must name the app's line too.
  const cycles = await spendFullStackBudget(t, detector, pool, acquire, site);
  t.ok(cycles > 0, `short captures reach the app's line (from lease ${cycles} on)`);
  await detector.scope({ job: 'orm' }, async () => {
    leaked.push(await nested(8, acquire));
  });
  t.equal(leaks.length, 1);
  const report = leaks[0]!;
  t.ok(report.callSite?.startsWith(site), `names the app's line, not the library's: ${report.callSite}`);
  t.match(report.stack, /layer11[\s\S]*layer0[\s\S]*acquireThrough/, "with the library's frames that led there");
});

t.test('a report cut short of the app\'s line deepens the captures for the leaks after it', async (t) => {
  const orm = fakeOrm(t);
  const { detector, pool, leaks, leaked } = setup(t, 'auto');
  // The pool learns its call sites from a path where the app's line is the first frame.
  const direct = () => pool.acquire(); // DIRECT
  await spendFullStackBudget(t, detector, pool, direct, siteOf(__filename, '// DIRECT'));
  const site = siteOf(__filename, '// DEEP PATH');
  for (let i = 0; i < 5; i++) {
    await detector.scope({ i }, async () => {
      leaked.push(await nested(8, () => orm.acquireThrough(pool))); // DEEP PATH
    });
  }
  const named = leaks.map((report) => report.callSite?.startsWith(site) === true);
  const first = named.indexOf(true);
  t.ok(first !== -1 && first <= 2, `within three leaks the report names the app's line (${named.join(', ')})`);
  t.ok(named.slice(first).every(Boolean), 'and every one after it does');
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
