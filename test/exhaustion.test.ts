import t, { type Test } from 'tap';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type ExhaustedEvent } from '../lib/index.js';
import { fakeClock } from './helpers/clock.js';
import { siteOf } from './helpers/site.js';

type Conn = { id: number };
let ids = 0;
const newPool = (options: { max: number; acquireTimeoutMillis?: number }): Pool<Conn> =>
  createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, options);

function setup(t: Test, options: { max: number; acquireTimeoutMillis?: number }) {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 600_000, stacks: 'always' });
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(options), { name: 'main' });
  const events: ExhaustedEvent[] = [];
  detector.on('exhausted', (event) => events.push(event));
  return { clock, detector, pool, events };
}

const takeForUsers = (pool: Pool<Conn>) => pool.acquire(); // USERS
const takeForReports = (pool: Pool<Conn>) => pool.acquire(); // REPORTS

t.test('names every holder, grouped by call site, once a request has waited 5 s for a saturated pool', async (t) => {
  const { clock, detector, pool, events } = setup(t, { max: 3 });
  const held: Conn[] = [];
  held.push(await detector.scope({ route: 'GET /users' }, () => takeForUsers(pool)));
  await clock.tickAsync(1000);
  held.push(await takeForUsers(pool));
  held.push(await detector.scope({ job: 'nightly' }, () => takeForReports(pool)));
  const waiting = pool.acquire();
  await clock.tickAsync(4999);
  t.same(events, [], 'not while the wait is short');
  await clock.tickAsync(1);
  t.equal(events.length, 1);
  const event = events[0]!;
  t.match(event, { pool: 'main', reason: 'saturated', capacity: 3, open: 3, waiting: 1, longestWaitMs: 5000, suppressed: 0 });
  t.same(event.holders.map((h) => h.heldMs), [6000, 5000, 5000], 'every holder, oldest first');
  t.same(
    event.groups.map((g) => [g.callSite?.replace(/:\d+$/, ''), g.count, g.oldestHeldMs]),
    [
      [siteOf(__filename, '// USERS').replace(/:$/, ''), 2, 6000],
      [siteOf(__filename, '// REPORTS').replace(/:$/, ''), 1, 5000],
    ],
  );
  t.same(event.groups[0]!.contexts, [{ route: 'GET /users' }]);
  t.equal(event.verdict, 'leak', 'held far past the usual hold, with no activity to say otherwise');
  t.match(event.message, /pool "main" ran dry: 3 of 3 connections leased, 1 waiting, the longest for 5\.0 s\. A connection leak: .* Held by:\n {2}2 leases from test\/exhaustion\.test\.ts:\d+:\d+, oldest held 6\.0 s; e\.g\. route=GET \/users\n {2}1 lease from .*e\.g\. job=nightly/);
  await pool.release(held.pop()!);
  await waiting;
  for (const conn of held) await pool.release(conn);
});

t.test('says nothing of a busy pool whose queued requests are served in time', async (t) => {
  const { clock, pool, events } = setup(t, { max: 2 });
  for (let round = 0; round < 50; round++) {
    const conns = await Promise.all([pool.acquire(), pool.acquire()]);
    const queued = [pool.acquire(), pool.acquire(), pool.acquire()];
    await clock.tickAsync(100);
    for (const conn of conns) await pool.release(conn);
    for (const conn of await Promise.all(queued.slice(0, 2))) await pool.release(conn);
    await pool.release(await queued[2]!);
    await clock.tickAsync(100);
  }
  await clock.tickAsync(60_000);
  t.same(events, [], 'every request waited, none for long');
});

t.test('reports a saturated pool at most once per interval, counting what it left out', async (t) => {
  const { clock, pool, events } = setup(t, { max: 1 });
  const conn = await pool.acquire();
  const waiters = [pool.acquire(), pool.acquire()];
  await clock.tickAsync(5000);
  t.equal(events.length, 1);
  t.match(events[0], { waiting: 2, longestWaitMs: 5000, suppressed: 0 });
  waiters.push(pool.acquire());
  await clock.tickAsync(5000);
  t.equal(events.length, 1, 'not again within 10 s');
  waiters.push(pool.acquire());
  await clock.tickAsync(5000);
  t.equal(events.length, 2);
  t.match(events[1], { waiting: 4, longestWaitMs: 15_000, suppressed: 1 });
  await pool.release(conn);
  for (const waiter of waiters) await pool.release(await waiter);
});

t.test("names the holders in the pool's own timeout error, keeping its class, name and message start", async (t) => {
  const { clock, detector, pool, events } = setup(t, { max: 1, acquireTimeoutMillis: 2000 });
  const conn = await takeForUsers(pool);
  const failing = pool.acquire().then(
    () => undefined,
    (error: unknown) => error,
  );
  await clock.tickAsync(2000);
  const error = (await failing) as Error & { poolwatch?: ExhaustedEvent };
  t.equal(error.constructor.name, 'TimeoutError');
  t.equal(error.name, 'TimeoutError');
  t.match(error.message, /^ResourceRequest timed out\npoolwatch: pool "main" gave up waiting for a connection: 1 of 1 connections leased, 0 waiting; the request that gave up had waited 2\.0 s\. A connection leak: .* Held by:\n {2}1 lease from test\/exhaustion\.test\.ts:\d+:\d+, oldest held 2\.0 s/);
  t.notMatch(error.message, /0 waiting, the longest/, 'no longest wait among none waiting');
  t.match(error.stack, /^TimeoutError: ResourceRequest timed out\npoolwatch: pool "main"/, 'the stack shows it too');
  t.match(error.poolwatch, { reason: 'timeout', open: 1 });
  t.same(events.map((e) => [e.reason, e.longestWaitMs]), [['saturated', 1000], ['timeout', 2000]], 'the wait at half the pool\'s timeout, then the timeout');
  t.match(detector.stats().main, { timeouts: 1, failed: 1, capacity: 1, peakOpen: 1 });
  await pool.release(conn);
});

t.test('stats() show the peak of open leases and wait-time percentiles', async (t) => {
  const { clock, detector, pool } = setup(t, { max: 2 });
  const a = await pool.acquire();
  const b = await pool.acquire();
  const queued = pool.acquire();
  await clock.tickAsync(300);
  await pool.release(a);
  const c = await queued;
  await pool.release(b);
  await pool.release(c);
  const stats = detector.stats().main!;
  t.match(stats, { peakOpen: 2, capacity: 2, acquired: 3, waited: { count: 3, maxMs: 300 } });
  t.ok(stats.waited.p99Ms >= 300 * 0.99 && stats.waited.p99Ms <= 300, `p99 ${stats.waited.p99Ms} ≈ 300 ms`);
});

t.test('connections leased before watch() count as leased, as the pool counts them, and are said to be unknown', async (t) => {
  const clock = fakeClock(t);
  const pool = newPool({ max: 3, acquireTimeoutMillis: 12_000 });
  // Taken before poolwatch was there, as under `poolwatch attach`.
  const before = [await pool.acquire(), await pool.acquire()];
  const detector = createDetector({ leakThresholdMs: 600_000, stacks: 'always' });
  t.teardown(() => detector.close());
  detector.watch(pool, { name: 'main' });
  const events: ExhaustedEvent[] = [];
  detector.on('exhausted', (event) => events.push(event));
  const held = await takeForUsers(pool);
  const failing = pool.acquire().then(
    () => undefined,
    (error: unknown) => error as Error,
  );
  await clock.tickAsync(5_000);
  t.equal(events.length, 1, 'the pool ran dry: its request waited 5 s');
  t.match(events[0]!.message, /^poolwatch: pool "main" ran dry: 3 of 3 connections leased, 1 waiting, the longest for 5\.0 s\./);
  t.match(events[0]!.message, /Held by:\n {2}1 lease from test\/exhaustion\.test\.ts:\d+:\d+, oldest held 5\.0 s\n {2}2 leases taken before watch\(\): poolwatch cannot name their lines$/);
  await clock.tickAsync(7_000);
  const error = (await failing)!;
  t.match(error.message, /\npoolwatch: pool "main" gave up waiting for a connection: 3 of 3 connections leased, 0 waiting; the request that gave up had waited 12\.0 s\./);
  await pool.release(held);
  for (const conn of before) await pool.release(conn);
});
