import t, { type Test } from 'tap';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type Detector } from '../lib/index.js';
import { fakeClock } from './helpers/clock.js';

type Conn = { id: number };
let ids = 0;

function setup(t: Test, max: number): { clock: ReturnType<typeof fakeClock>; detector: Detector; pool: Pool<Conn> } {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: Infinity });
  t.teardown(() => detector.close());
  const pool = detector.watch(createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max }), { name: 'main' });
  return { clock, detector, pool };
}

/** `perSecond` requests a second for `seconds`, each holding its connection `holdMs` once it has one. */
async function steadyLoad(clock: ReturnType<typeof fakeClock>, pool: Pool<Conn>, perSecond: number, holdMs: number, seconds: number): Promise<void> {
  const step = 1000 / perSecond;
  for (let i = 0; i < perSecond * seconds; i++) {
    void pool.acquire().then((conn) => setTimeout(() => void pool.release(conn), holdMs));
    await clock.tickAsync(step);
  }
}

t.test('a steady load the pool serves: Little\'s law, and a max that covers the p99 demand with headroom', async (t) => {
  const { clock, detector, pool } = setup(t, 10);
  // 10 requests a second, each held 500 ms: 5 connections busy on average.
  await steadyLoad(clock, pool, 10, 500, 60);
  const [sizing] = detector.sizing();
  t.match(sizing, {
    pool: 'main',
    capacity: 10,
    acquiresPerSecond: 10,
    meanHeldMs: 500,
    p99HeldMs: 500,
    peakOpen: 5,
    peakWaiting: 0,
    neededConnections: 5,
    // 5 × 1.25, rounded up.
    suggestedMax: 7,
    reason: 'p99 demand 5 ≤ max 10: 7 would do, with 25% headroom',
  });
  // A minute's window moving in 10 s slots: between 50 and 60 s of it.
  t.ok(sizing!.windowMs >= 50_000 && sizing!.windowMs <= 60_000, `windowMs ${sizing!.windowMs}`);
  t.same(detector.snapshot().pools.main!.sizing, sizing, 'snapshot() carries the same figures');
});

t.test('a pool too small for its load: demand counted as asked, not as served, and the waiting seen', async (t) => {
  const { clock, detector, pool } = setup(t, 2);
  // The same load on 2 connections: they serve 4 a second, the rest queue.
  await steadyLoad(clock, pool, 10, 500, 30);
  const [sizing] = detector.sizing();
  t.match(sizing, { capacity: 2, acquiresPerSecond: 10, meanHeldMs: 500, neededConnections: 5, peakOpen: 2, suggestedMax: 7 });
  t.ok(sizing!.peakWaiting > 10, `peakWaiting ${sizing!.peakWaiting}`);
  t.equal(sizing!.reason, 'p99 demand 5 > max 2: requests wait for connections the pool does not have; 7 covers it with 25% headroom');
  // Let the queue drain, so the pool can close.
  await clock.tickAsync(60_000);
});

t.test('with no load in the last minute there is nothing to size', async (t) => {
  const { clock, detector, pool } = setup(t, 10);
  t.match(detector.sizing(), [{ pool: 'main', acquiresPerSecond: 0, suggestedMax: undefined, reason: /no lease was taken in the last 0 s/ }]);
  await steadyLoad(clock, pool, 10, 100, 5);
  t.equal(detector.sizing()[0]!.acquiresPerSecond, 10, 'seen while it lasts');
  // Past the minute, the load has left the window.
  await clock.tickAsync(70_000);
  t.match(detector.sizing()[0], { acquiresPerSecond: 0, neededConnections: 0, suggestedMax: undefined, reason: /no lease was taken in the last 60 s/ });
});

t.test('a pool run dry by a leak is sized by the leak, not by a number', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 1_000 });
  t.teardown(() => detector.close());
  const pool = detector.watch(createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 2, acquireTimeoutMillis: 3_000 }), { name: 'main' });
  // Quick requests the pool serves, then two that never give their connection back.
  await steadyLoad(clock, pool, 10, 20, 5);
  const leaked = [await pool.acquire(), await pool.acquire()];
  const waiting = Array.from({ length: 5 }, () => pool.acquire().then(() => 'served', () => 'timed out'));
  await clock.tickAsync(3_000);
  t.same(await Promise.all(waiting), Array(5).fill('timed out'), 'the pool ran dry');
  const [sizing] = detector.sizing();
  t.equal(sizing!.suggestedMax, undefined, 'no size is suggested: none serves a leak');
  t.match(sizing!.reason, /^2 leases leaked in the last \d+ s \(2 still held\)/, 'the reason says the leak');
  t.match(sizing, { pool: 'main', capacity: 2, peakOpen: 2 }, 'the figures stay');
  for (const conn of leaked) await pool.release(conn);
});
