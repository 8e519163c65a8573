// Promises poolwatch keeps under input a careful user would not give it: thresholds past
// setTimeout's limit, listeners that reject, a pool named `__proto__`, labels that do not
// serialise, a context function that returns no labels, a pool that cannot connect.
import t from 'tap';
import diagnostics from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type ExhaustedEvent, type LeakReport, type LeaseInfo } from '../lib/index.js';
import { expectNoLeaks } from '../lib/testing/index.js';
import { fakeClock } from './helpers/clock.js';
import { captureWarnings } from './helpers/warnings.js';

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

t.test('labels that cannot be serialised render placeholders in format(), JSON, snapshot() and expectNoLeaks', async (t) => {
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  const labels = {
    big: 12345678901234567890n,
    cyclic,
    get broken(): string {
      throw new Error('getter failed');
    },
    huge: 'x'.repeat(5 * 1024 * 1024),
    plain: 'req-7',
  };
  const warnings = captureWarnings(t);
  const detector = createDetector({ leakThresholdMs: 600_000 });
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(), { name: 'db' });
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  let conn!: Conn;
  await detector.scope(labels, async () => {
    conn = await pool.acquire();
  });
  t.equal(leaks.length, 1);
  const report = leaks[0]!;
  const text = report.format();
  t.match(text, /big=12345678901234567890n/);
  t.match(text, /cyclic=\{"name":"loop","self":"\[circular\]"\}/);
  t.match(text, /broken=\[unreadable\]/);
  t.match(text, /plain=req-7/);
  t.ok(text.length < 4096, `a 5 MB label is clipped (${text.length} characters)`);
  const json = JSON.parse(JSON.stringify(report));
  t.match(json.context, { big: '12345678901234567890n', cyclic: { name: 'loop', self: '[circular]' }, broken: '[unreadable]', plain: 'req-7' });
  t.ok(JSON.stringify(report).length < 8192, 'and so is the JSON');
  t.doesNotThrow(() => JSON.stringify(detector.snapshot()), 'snapshot() serialises');
  t.doesNotThrow(() => JSON.stringify(detector.leases()), 'leases() serialises');
  t.throws(() => expectNoLeaks(detector), { code: 'POOLWATCH_LEAK', message: /plain=req-7/ }, 'expectNoLeaks names the leak instead of throwing on its labels');
  await pool.release(conn);
  await new Promise((resolve) => setImmediate(resolve));
  t.match(warnings, [{ code: 'POOLWATCH_LISTENER_ERROR', message: /a label could not be read \(getter failed\)/ }], 'the unreadable label is said once');
});

// Labels whose very reading throws: a getter, a toJSON, a Proxy whose traps throw.
const throwingGetter = () => ({
  requestId: 'r-getter',
  get user(): string {
    throw new Error('getter failed');
  },
});
const throwingToJson = () => ({
  requestId: 'r-tojson',
  payload: {
    toJSON() {
      throw new Error('toJSON failed');
    },
  },
  toJSON() {
    throw new Error('labels toJSON failed');
  },
});
const throwingProxy = () =>
  new Proxy(
    { requestId: 'r-proxy' },
    {
      ownKeys() {
        throw new Error('ownKeys failed');
      },
      getOwnPropertyDescriptor() {
        throw new Error('getOwnPropertyDescriptor failed');
      },
      preventExtensions() {
        throw new Error('preventExtensions failed');
      },
    },
  );

for (const [what, make] of [
  ['a throwing getter', throwingGetter],
  ['a toJSON that throws', throwingToJson],
  ['a Proxy whose ownKeys throws', throwingProxy],
] as const) {
  for (const from of ['context', 'scope', 'context and scope'] as const) {
    t.test(`labels with ${what}, from ${from}: the leak is reported, serialised and failed by expectNoLeaks`, async (t) => {
      const clock = fakeClock(t);
      captureWarnings(t);
      const detector = createDetector({ leakThresholdMs: 1_000, ...(from === 'scope' ? {} : { context: make }) });
      t.teardown(() => detector.close());
      const pool = detector.watch(newPool(), { name: 'db' });
      const leaks: LeakReport[] = [];
      detector.on('leak', (report) => void leaks.push(report));
      const views: LeaseInfo[] = [];
      detector.on('acquire', (view) => void views.push(view));
      const errors: Error[] = [];
      detector.on('error', (error) => void errors.push(error));
      let conn: Conn | undefined;
      const take = async () => {
        conn = await pool.acquire();
        return 'done';
      };
      const result = from === 'context' ? await take() : await detector.scope(make() as Record<string, unknown>, take);
      t.equal(result, 'done', 'the app runs as without poolwatch');
      t.teardown(() => pool.release(conn!));
      t.equal(views.length, 1, 'the acquire was seen');
      t.doesNotThrow(() => JSON.stringify(views[0]), 'its view serialises');
      t.doesNotThrow(() => JSON.stringify(detector.leases()), 'leases() serialises');
      t.doesNotThrow(() => JSON.stringify(detector.snapshot()), 'snapshot() serialises');
      await clock.tickAsync(1_000);
      t.equal(leaks.length, 1, 'the leak is reported');
      const report = leaks[0]!;
      let json = '';
      t.doesNotThrow(() => (json = JSON.stringify(report)), 'JSON.stringify(report) does not throw');
      t.match(JSON.parse(json), { code: 'POOLWATCH_LEAK', pool: 'db' });
      t.doesNotThrow(() => report.format(), 'format() does not throw');
      t.match(report.format(), /context: .*\S/);
      t.doesNotThrow(() => inspect(report), 'nor does util.inspect');
      t.same(errors, [], 'poolwatch itself had nothing to surface');
      const error = (() => {
        try {
          expectNoLeaks(detector);
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      t.match(error, { name: 'LeakError', code: 'POOLWATCH_LEAK' }, 'expectNoLeaks throws its LeakError');
    });
  }
}

t.test('a context function that returns a promise or a Map is said once, and its labels left out', async (t) => {
  for (const [what, returned] of [
    ['a promise', async () => ({ requestId: 'r-1' })],
    ['a Map', () => new Map([['requestId', 'r-1']])],
  ] as const) {
    const errors: Error[] = [];
    const detector = createDetector({ context: returned as never });
    t.teardown(() => detector.close());
    detector.on('error', (error) => errors.push(error));
    const pool = detector.watch(newPool(), { name: 'db' });
    for (let i = 0; i < 3; i++) await pool.release(await pool.acquire());
    const conn = await pool.acquire();
    t.same(detector.leases()[0]!.context, {}, `${what}: no labels`);
    t.equal(errors.length, 1, `${what}: said once, not once per acquire`);
    t.match(errors[0]!.message, new RegExp(`the \`context\` function returned ${what}`));
    await pool.release(conn);
  }
});

t.test('watch() is all or nothing: a method it cannot replace leaves the pool as it was, with a coded error', async (t) => {
  const pool = newPool();
  const own = { acquire: pool.acquire, release: pool.release, destroy: pool.destroy };
  // A pool (or a proxy, or a frozen wrapper) whose destroy cannot be replaced: acquire and release are patched first.
  Object.defineProperty(pool, 'destroy', { value: own.destroy, writable: false, configurable: false });
  const detector = createDetector();
  t.teardown(() => detector.close());
  t.throws(() => detector.watch(pool, { name: 'db' }), { name: 'WatchError', code: 'POOLWATCH_WATCH_FAILED', cause: TypeError });
  t.equal(pool.acquire, own.acquire, 'acquire is its own again');
  t.equal(pool.release, own.release, 'release is its own again');
  t.notOk(Object.hasOwn(pool, 'acquire'), 'no own property left behind');
  t.same(detector.stats(), {}, 'and the detector does not count it as watched');
  await pool.release(await pool.acquire());
});

t.test("a pool whose max getter throws is still watched: its size is unknown, its leases counted", async (t) => {
  const pool = newPool();
  // generic-pool's max reads its _config: a pool missing it (or a proxy that refuses) throws from the getter.
  Object.defineProperty(pool, 'max', { get: () => { throw new TypeError('no config'); }, configurable: true });
  const detector = createDetector();
  t.teardown(() => detector.close());
  t.equal(detector.watch(pool, { name: 'db' }), pool);
  const conn = await pool.acquire();
  t.match(detector.stats().db, { open: 1, capacity: undefined });
  await pool.release(conn);
  t.match(detector.stats().db, { open: 0, released: 1 });
});

t.test('a look-alike pool whose acquire returns no promise gives the app exactly what it returned', async (t) => {
  const conn = { id: 1 };
  // generic-pool's shape, without its internals, and an acquire that answers synchronously.
  const lookAlike = {
    acquire: () => conn,
    release: () => undefined,
    destroy: () => undefined,
    isBorrowedResource: () => false,
    drain: async () => undefined,
  };
  const warned = captureWarnings(t);
  const detector = createDetector();
  t.teardown(() => detector.close());
  detector.watch(lookAlike, { name: 'odd' });
  await new Promise((resolve) => process.nextTick(resolve));
  t.match(warned, [{ code: 'POOLWATCH_DEGRADED', message: /pool "odd" .* lacks what poolwatch reads for: handover/ }], 'what it lacks is said');
  let got: unknown;
  t.doesNotThrow(() => {
    got = lookAlike.acquire();
  }, 'no TypeError thrown into the app');
  t.equal(got, conn, 'the same value');
  t.same(detector.leases(), [], 'and no lease left waiting');
});

t.test("a pool that cannot create a connection times out with its own message, not a leak's", async (t) => {
  const clock = fakeClock(t);
  // The database is out of reach: creating a connection never completes.
  const pool = createPool<Conn>({ create: () => new Promise<Conn>(() => {}), destroy: async () => {} }, { max: 2, acquireTimeoutMillis: 1_000 });
  const detector = createDetector();
  t.teardown(() => detector.close());
  detector.watch(pool, { name: 'db' });
  const events: ExhaustedEvent[] = [];
  detector.on('exhausted', (event) => events.push(event));
  const failing = pool.acquire().then(
    () => undefined,
    (error: unknown) => error as Error & { poolwatch?: unknown },
  );
  await clock.tickAsync(1_000);
  const error = (await failing)!;
  t.equal(error.message, 'ResourceRequest timed out', "the pool's own message, untouched");
  t.match(error.poolwatch, { verdict: 'unreachable', cause: error }, 'the verdict rides beside it, on error.poolwatch');
  t.notOk(Object.keys(error).includes('poolwatch'), 'not enumerable: a logger that prints the error sees it as the pool made it');
  t.match(events, [{ reason: 'timeout', open: 0, holders: [], verdict: 'unreachable', message: /gave up waiting for a connection after 1\.0 s: the database is unreachable .*none of its connections is leased and it cannot open one/ }], 'the event says why');
  t.match(detector.stats().db, { timeouts: 1, failed: 1, open: 0 });
});

t.test('a pool run dry by connections taken before watch() is not called unreachable', async (t) => {
  const clock = fakeClock(t);
  const pool = createPool<Conn>({ create: async () => ({}) as Conn, destroy: async () => {} }, { max: 1, acquireTimeoutMillis: 1_000 });
  // Leased before poolwatch was there (an attach arriving mid-incident): no lease it knows of.
  const before = await pool.acquire();
  const detector = createDetector();
  t.teardown(() => detector.close());
  detector.watch(pool, { name: 'db' });
  const failing = pool.acquire().then(
    () => undefined,
    (error: unknown) => error as Error & { poolwatch?: { verdict?: unknown; message: string } },
  );
  await clock.tickAsync(1_000);
  const error = (await failing)!;
  t.equal(error.poolwatch?.verdict, undefined, 'no verdict rather than a wrong one');
  t.notMatch(error.message, /unreachable/);
  t.match(error.message, /gave up waiting for a connection: 1 of 1 connections leased, .*\n {2}1 lease taken before watch\(\): poolwatch cannot name their lines$/);
  await pool.release(before);
});

t.test("tarn's timeout after a failing create keeps tarn's own message", async (t) => {
  const { Pool: TarnPool } = await import('tarn');
  const make = () =>
    new TarnPool<Conn>({
      create: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:1');
      },
      destroy: async () => {},
      min: 0,
      max: 1,
      acquireTimeoutMillis: 50,
      createRetryIntervalMillis: 10,
    });
  const outcome = async (pool: InstanceType<typeof TarnPool<Conn>>) => {
    const error = (await pool.acquire().promise.then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    await pool.destroy();
    return error;
  };
  const expected = await outcome(make());
  const pool = make();
  const detector = createDetector();
  t.teardown(() => detector.close());
  detector.watch(pool, { name: 'tarn' });
  const error = await outcome(pool);
  t.equal(error.constructor, expected.constructor);
  t.equal(error.message, expected.message, 'the same message as without poolwatch');
  t.notMatch(error.message, /Held by/);
});

// A connection and a pool that carry secrets the way drivers do: in the connection's
// config, and in the pool's options.
const secret = 'pw-Vk3q9-never-in-a-payload';
type SecretConn = { id: number; config: { password: string; connectionString: string } };
const secretPool = (): Pool<SecretConn> => {
  const config = { password: secret, connectionString: `postgres://app:${secret}@db/app` };
  const pool = createPool<SecretConn>({ create: async () => ({ id: ++ids, config }), destroy: async () => {} }, { max: 1, acquireTimeoutMillis: 50 });
  (pool as unknown as { config: object }).config = config;
  return pool;
};

t.test('event payloads and channel messages are frozen views with no path to a connection, a pool or a password', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 1_000, context: () => ({ requestId: 'r-1' }) });
  t.teardown(() => detector.close());
  const pool = detector.watch(secretPool(), { name: 'db' });
  const payloads: Array<[string, object]> = [];
  for (const event of ['acquire', 'release', 'destroy', 'leak', 'leak-released', 'misuse', 'exhausted'] as const) {
    detector.on(event, (payload: object) => void payloads.push([event, payload]));
    const onMessage = (message: unknown) => void payloads.push([`poolwatch:${event}`, message as object]);
    diagnostics.subscribe(`poolwatch:${event}`, onMessage);
    t.teardown(() => diagnostics.unsubscribe(`poolwatch:${event}`, onMessage));
  }
  const conn = await pool.acquire();
  await clock.tickAsync(1_000); // leak
  const waiter = pool.acquire().catch(() => undefined); // exhausted: times out with one leased
  await clock.tickAsync(50);
  await waiter;
  await pool.release(conn); // leak-released, release
  void pool.release(conn).catch(() => undefined); // misuse
  await pool.destroy(await pool.acquire()); // acquire, destroy

  const seen = new Set(payloads.map(([name]) => name));
  for (const event of ['acquire', 'release', 'destroy', 'leak', 'leak-released', 'misuse', 'exhausted']) {
    t.ok(seen.has(event) && seen.has(`poolwatch:${event}`), `${event} was emitted and published`);
  }
  for (const [name, payload] of payloads) {
    const text = inspect(payload, { depth: Infinity, showHidden: true, getters: true });
    t.notMatch(text, secret, `${name}: no password in util.inspect`);
    t.notMatch(text, /SecretConn|config|connectionString|_waitingClientsQueue|WatchedPool|ledger/, `${name}: no connection, pool or poolwatch record`);
    if (name === 'leak' || name === 'poolwatch:leak') continue; // a LeakReport is an Error, which runners annotate
    t.ok(Object.isFrozen(payload), `${name}: frozen`);
  }
  const acquired = payloads.find(([name]) => name === 'acquire')![1] as LeaseInfo;
  t.match(acquired, { pool: 'db', via: 'acquire', context: { requestId: 'r-1' } }, 'a view reads like the lease');
  t.match(acquired.callSite, /hostile-input\.test\.ts:\d+:\d+$/, 'with its call site');
  t.match(inspect(acquired), /callSite: '.*hostile-input\.test\.ts/, 'console.log shows the values, not [Getter]');
  t.same(Object.keys(JSON.parse(JSON.stringify(acquired))).sort(), ['acquiredAt', 'callSite', 'context', 'heldMs', 'leaseId', 'pool', 'stack', 'via', 'waitedMs']);
});

t.test('a listener that writes to its payload changes nothing poolwatch counts or reports', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 1_000, context: () => ({ requestId: 'r-1' }) });
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(), { name: 'db' });
  const vandal = (view: LeaseInfo) => {
    const payload = view as unknown as Record<string, unknown>;
    for (const key of ['pool', 'leaseId', 'heldMs', 'state', 'deadline', 'resource', 'acquiredMono', 'context']) {
      try {
        payload[key] = key === 'context' ? { requestId: 'forged' } : -1;
      } catch {
        // Frozen: strict-mode code gets a TypeError, which is the point.
      }
    }
    const context = payload.context as Record<string, unknown> | undefined;
    try {
      if (context !== undefined) context.requestId = 'forged';
    } catch {}
  };
  detector.on('acquire', vandal).on('release', vandal);
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));
  await pool.release(await pool.acquire());
  const held = await pool.acquire();
  t.same(detector.stats().db, { ...detector.stats().db, open: 1, acquired: 2, released: 1, leaked: 0 }, 'stats unchanged by the writes');
  await clock.tickAsync(1_000);
  t.equal(leaks.length, 1, 'the open lease is still reported on time');
  t.equal(leaks[0]!.pool, 'db');
  t.same(leaks[0]!.context, { requestId: 'r-1' }, 'with the labels it was acquired with');
  await pool.release(held);
  t.equal(detector.stats().db!.open, 0);
});

t.test('a pool that hands out frozen connections gives the app exactly what it gives, and poolwatch says once it cannot follow them', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector({ leakThresholdMs: 1_000 });
  t.teardown(() => detector.close());
  const made: object[] = [];
  const pool = {
    async checkout() {
      const conn = Object.freeze({ id: made.length + 1, release() {} });
      made.push(conn);
      return conn;
    },
  };
  detector.watch(pool, { name: 'db', adapter: { acquire: 'checkout', release: { connection: 'release' } } });
  const errors: Error[] = [];
  detector.on('error', (error) => errors.push(error));
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => leaks.push(report));

  const first = await pool.checkout();
  const second = await pool.checkout();
  t.equal(first, made[0], 'the app gets the connection the pool made');
  t.equal(second, made[1]);
  t.equal(errors.length, 1, 'said once, not per acquire');
  t.match(errors[0]!.message, /cannot see when pool "db" gets a connection back \(its release cannot be wrapped: .*\); such leases are not tracked/);
  t.match(detector.stats().db, { acquired: 2, open: 0, untracked: 2 }, 'counted as untracked, not open');
  await clock.tickAsync(1_000);
  t.same(leaks, [], 'so they are never reported as leaks');
});
