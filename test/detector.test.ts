import t from 'tap';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, watch, unwatch, detectorOf, channelNames, type LeakReport } from '../lib/index.js';
import sinon from 'sinon';
import createDebug from 'debug';
import { fakeClock } from './helpers/clock.js';
import { captureDebug } from './helpers/secrets.js';
import { captureWarnings } from './helpers/warnings.js';

type Conn = { id: number };
let ids = 0;
function newPool(max = 10): Pool<Conn> {
  return createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max });
}

t.test('watches several pools with one detector and per-pool thresholds', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 1000 });
  t.teardown(() => detector.close());
  const fast = detector.watch(newPool(), { name: 'fast' });
  const slow = detector.watch(newPool(), { name: 'slow', leakThresholdMs: 5000 });
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  await slow.acquire();
  await clock.tickAsync(1);
  await fast.acquire();
  await clock.tickAsync(1000);
  t.same(leaks.map((r) => [r.pool, r.thresholdMs]), [['fast', 1000]]);
  await clock.tickAsync(3999);
  t.same(leaks.map((r) => [r.pool, r.thresholdMs]), [['fast', 1000], ['slow', 5000]]);
  t.same(detector.leases().map((l) => l.pool), ['slow', 'fast'], 'leases() is oldest first across pools');
  t.same(Object.keys(detector.stats()), ['fast', 'slow']);
  t.equal(detectorOf(fast), detector);
});

t.test('names unnamed pools after their kind, and refuses a name used twice', async (t) => {
  const detector = createDetector();
  t.teardown(() => detector.close());
  detector.watch(newPool());
  detector.watch(newPool());
  t.same(Object.keys(detector.stats()), ['generic-pool', 'generic-pool#2']);
  detector.watch(newPool(), { name: 'main' });
  t.throws(() => detector.watch(newPool(), { name: 'main' }), { code: 'POOLWATCH_INVALID_OPTION', message: /"main" already names a watched pool/ });
});

t.test('check() reports due leaks at once and returns every open leak', async (t) => {
  // Only the clocks are fake: poolwatch's real, unref'd timer is an hour away and never runs here.
  const clock = sinon.useFakeTimers({ toFake: ['performance', 'Date'] });
  t.teardown(() => clock.restore());
  const pool = watch(newPool(), { leakThresholdMs: 3_600_000 });
  const detector = detectorOf(pool)!;
  t.teardown(() => detector.close());
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  const old = await pool.acquire();
  clock.tick(3_600_500);
  await pool.acquire();
  t.equal(leaks.length, 0, 'the timer has not run');
  const found = detector.check();
  t.equal(found.length, 1);
  t.equal(leaks.length, 1, 'check() emitted the leak it found');
  t.equal(found[0], leaks[0]);
  t.equal(detector.check()[0], found[0], 'and does not report it twice');
  await pool.release(old);
  t.same(detector.check(), []);
});

t.test('once() and off() stop a listener', async (t) => {
  const pool = watch(newPool());
  const detector = detectorOf(pool)!;
  t.teardown(() => detector.close());
  let once = 0;
  let on = 0;
  const count = () => on++;
  detector.once('acquire', () => once++);
  detector.on('acquire', count);
  await pool.release(await pool.acquire());
  detector.off('acquire', count);
  await pool.release(await pool.acquire());
  t.equal(once, 1);
  t.equal(on, 1);
});

t.test('publishes the events on diagnostics_channel', async (t) => {
  const clock = fakeClock(t);
  const pool = watch(newPool(), { name: 'dc', leakThresholdMs: 100 });
  t.teardown(() => detectorOf(pool)!.close());
  const got: Array<[string, unknown]> = [];
  const names = Object.values(channelNames);
  const handlers = names.map((name) => {
    const handler = (message: unknown) => got.push([name, message]);
    subscribe(name, handler);
    return () => unsubscribe(name, handler);
  });
  t.teardown(() => handlers.forEach((off) => off()));
  const conn = await pool.acquire();
  await clock.tickAsync(100);
  await pool.release(conn);
  await pool.release(conn).catch(() => {});
  t.same(got.map(([name]) => name), ['poolwatch:acquire', 'poolwatch:leak', 'poolwatch:leak-released', 'poolwatch:release', 'poolwatch:misuse']);
  t.match(got[1]![1], { kind: 'threshold', pool: 'dc', heldMs: 100 });
});

t.test('surfaces a throwing listener once as a process warning and goes on', async (t) => {
  const pool = watch(newPool());
  const detector = detectorOf(pool)!;
  t.teardown(() => detector.close());
  const warnings = captureWarnings(t);
  detector.on('acquire', () => {
    throw new Error('boom');
  });
  for (let i = 0; i < 3; i++) await pool.release(await pool.acquire());
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(warnings.length, 1, 'once, not once per acquire');
  t.match(warnings[0], { name: 'ListenerError', code: 'POOLWATCH_LISTENER_ERROR', message: /'acquire' listener threw: boom/ });
  t.match(detector.stats()['generic-pool'], { acquired: 3, released: 3 });
});

t.test('records the context option labels, and survives a context function that throws', async (t) => {
  const detector = createDetector({ context: () => ({ tenant: 'acme' }) });
  t.teardown(() => detector.close());
  const good = detector.watch(newPool(), { name: 'good' });
  const bad = detector.watch(newPool(), {
    name: 'bad',
    context: () => {
      throw new Error('no store');
    },
  });
  const errors: Error[] = [];
  detector.on('error', (error) => errors.push(error));
  await good.acquire();
  const conn = await bad.acquire();
  t.ok(conn, 'the acquire still succeeds');
  t.same(detector.leases().map((l) => [l.pool, l.context]), [['good', { tenant: 'acme' }], ['bad', {}]]);
  t.match(errors, [{ message: /`context` function threw: no store/ }]);
});

t.test('captures stacks per policy, and says what to change when there is none', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 10 });
  t.teardown(() => detector.close());
  const never = detector.watch(newPool(), { name: 'never', stacks: 'never' });
  const always = detector.watch(newPool(), { name: 'always', stacks: 'always' });
  await never.acquire();
  await always.acquire();
  await clock.tickAsync(10);
  const [a, b] = detector.check();
  t.equal(a!.pool, 'never');
  t.equal(a!.callSite, undefined);
  t.match(a!.format(), /no stack was captured \(stacks: 'never'\); set stacks: 'auto' or 'always'/);
  t.match(a!.stack, /stacks: 'never'/);
  t.match(b!.callSite, /^test\/detector\.test\.ts:\d+:\d+$/);
});

t.test('close() unwatches every pool, and unwatch() of an unwatched pool is false', async (t) => {
  const detector = createDetector();
  const a = detector.watch(newPool());
  const b = detector.watch(newPool(), { name: 'b' });
  detector.close();
  t.equal(detectorOf(a), undefined);
  t.equal(detectorOf(b), undefined);
  t.notOk(Object.hasOwn(a, 'acquire'), 'the prototype method shows through again');
  t.equal(unwatch(a), false);
  t.same(detector.stats(), {});
});

t.test("calls the detector's onLeak once per leak, whatever options watch() gets", async (t) => {
  const clock = fakeClock(t);
  const reports: LeakReport[] = [];
  const detector = createDetector({ leakThresholdMs: 100, onLeak: (report) => reports.push(report) });
  t.teardown(() => detector.close());
  const bare = detector.watch(newPool());
  const named = detector.watch(newPool(), { name: 'named' });
  await bare.acquire();
  await named.acquire();
  await clock.tickAsync(100);
  t.same(reports.map((r) => r.pool), ['generic-pool', 'named']);
});

t.test('refuses a listener for an unknown event or one that is not a function', async (t) => {
  const detector = createDetector();
  t.throws(() => detector.on('leek' as never, () => {}), { code: 'POOLWATCH_INVALID_OPTION', message: /Unknown event `"leek"` \(string\)\. Expected one of: acquire, release, destroy, leak,/ });
  t.throws(() => detector.once('leak', 'log' as never), { code: 'POOLWATCH_INVALID_OPTION', message: /listener of 'leak' to be a function, got `"log"`/ });
});

t.test('debug.enable() at run time turns lease lines on and off at once', async (t) => {
  const detector = createDetector();
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(), { name: 'db' });
  await pool.release(await pool.acquire());
  const lines = captureDebug(t);
  await pool.release(await pool.acquire());
  // The lines as debug hands them to its log function: format, then arguments.
  t.match(lines, [/acquired lease #%d after %s db 2 /, /lease #%d after %s db released 2 /]);
  createDebug.disable();
  await pool.release(await pool.acquire());
  t.equal(lines.length, 2, 'and none once disabled');
});
