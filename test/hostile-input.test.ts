// Promises poolwatch keeps under input a careful user would not give it: thresholds past
// setTimeout's limit, listeners that reject, a pool named `__proto__`.
import t from 'tap';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type LeakReport } from '../lib/index.js';
import { fakeClock } from './helpers/clock.js';

type Conn = { id: number };
let ids = 0;
const newPool = (): Pool<Conn> => createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 2 });

// Past setTimeout's limit, Node (and sinon, like it) fires the timer after 1 ms instead:
// poolwatch would then wake every millisecond for weeks and never report in time.
const beyondTimerLimit = 2 ** 31 + 5_000;

t.test('a threshold beyond setTimeout\'s limit reports the leak when it passes, and not before', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: beyondTimerLimit });
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(), { name: 'db' });
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  const conn = await pool.acquire();
  await clock.tickAsync(beyondTimerLimit - 1);
  t.same(leaks, [], 'not before the threshold');
  await clock.tickAsync(1);
  t.equal(leaks.length, 1, 'at the threshold');
  t.equal(leaks[0]!.heldMs, beyondTimerLimit);
  await pool.release(conn);
});

t.test("a threshold beyond setTimeout's limit arms no timer Node has to cut short", async (t) => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const detector = createDetector({ leakThresholdMs: beyondTimerLimit });
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(), { name: 'db' });
  const conn = await pool.acquire();
  // Real timers: one Node cut short would fire after 1 ms, before this one, and warn.
  await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setImmediate(resolve));
  t.same(warnings.filter((warning) => warning.name === 'TimeoutOverflowWarning'), [], 'no TimeoutOverflowWarning');
  await pool.release(conn);
});

t.test('extend() beyond setTimeout\'s limit postpones the report that long', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 1_000 });
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(), { name: 'db' });
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  const conn = await pool.acquire();
  t.ok(detector.extend(conn, beyondTimerLimit));
  await clock.tickAsync(beyondTimerLimit - 1);
  t.same(leaks, []);
  await clock.tickAsync(1);
  t.equal(leaks.length, 1);
  await pool.release(conn);
});

t.test('a listener or onLeak that rejects is handled like one that throws: never an unhandled rejection', async (t) => {
  const errors: Error[] = [];
  const detector = createDetector({
    leakThresholdMs: 600_000,
    onLeak: async () => {
      throw new Error('detector onLeak failed');
    },
  });
  t.teardown(() => detector.close());
  detector.on('error', (error) => errors.push(error));
  const pool = detector.watch(newPool(), {
    name: 'db',
    onLeak: async () => {
      throw new Error('pool onLeak failed');
    },
  });
  detector.on('acquire', async () => {
    throw new Error('listener failed');
  });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  let conn!: Conn;
  await detector.scope({ job: 1 }, async () => {
    conn = await pool.acquire();
  });
  // Two turns of the event loop: a rejection nobody handles is reported by then.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  t.same(unhandled, [], 'no unhandled rejection');
  t.match(
    errors.map((error) => error.message).sort(),
    [/'acquire' listener rejected: listener failed$/, /'leak' listener rejected: detector onLeak failed$/, /the `onLeak` function rejected: pool onLeak failed$/],
  );
  t.match(errors[0], { name: 'ListenerError', code: 'POOLWATCH_LISTENER_ERROR' });
  await pool.release(conn);
});

t.test('a pool named __proto__ is in stats() and snapshot() like any other', async (t) => {
  const detector = createDetector();
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(), { name: '__proto__' });
  const conn = await pool.acquire();
  const stats = detector.stats();
  t.ok(Object.hasOwn(stats, '__proto__'), 'an own key of stats()');
  t.match(Object.getOwnPropertyDescriptor(stats, '__proto__')?.value, { open: 1, acquired: 1 });
  t.equal(Object.getPrototypeOf(stats), Object.prototype, "stats() keeps Object's prototype");
  const snapshot = JSON.parse(JSON.stringify(detector.snapshot()));
  t.ok(Object.hasOwn(snapshot.pools, '__proto__'), 'and of snapshot().pools');
  t.equal(Object.getOwnPropertyDescriptor(snapshot.pools, '__proto__')?.value.leases.length, 1);
  await pool.release(conn);
});
