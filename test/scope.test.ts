import t, { type Test } from 'tap';
import { EventEmitter } from 'node:events';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, scope, type LeakReport, type LeakReleasedEvent } from '../lib/index.js';
import { fakeClock } from './helpers/clock.js';
import { siteOf } from './helpers/site.js';

type Conn = { id: number };
let ids = 0;
const newPool = (max = 10): Pool<Conn> => createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max });

function setup(t: Test, options: Parameters<typeof createDetector>[0] = {}) {
  const detector = createDetector({ leakThresholdMs: 1000, ...options });
  t.teardown(() => detector.close());
  const leaks: LeakReport[] = [];
  const late: LeakReleasedEvent[] = [];
  detector.on('leak', (report) => leaks.push(report));
  detector.on('leak-released', (event) => late.push(event));
  return { detector, leaks, late, pool: detector.watch(newPool(), { name: 'db' }) };
}

t.test('leases record the scope labels, also from nested async work', async (t) => {
  const { detector, pool, leaks } = setup(t);
  const emitter = new EventEmitter();
  const conns: Conn[] = [];
  await detector.scope({ requestId: 'r-1' }, async () => {
    conns.push(await pool.acquire());
    await new Promise<void>((resolve) => setTimeout(() => pool.acquire().then((c) => resolve(void conns.push(c))), 1));
    await new Promise<void>((resolve) => {
      emitter.once('go', () => pool.acquire().then((c) => resolve(void conns.push(c))));
      setImmediate(() => emitter.emit('go'));
    });
    t.same(detector.leases().map((l) => l.context), [{ requestId: 'r-1' }, { requestId: 'r-1' }, { requestId: 'r-1' }]);
    for (const conn of conns) await pool.release(conn);
  });
  t.same(leaks, [], 'nothing left open, nothing reported');
});

t.test('nested scopes merge their labels, the inner one winning', async (t) => {
  const { detector, pool } = setup(t, { context: () => ({ route: 'from-option', tenant: 'acme' }) });
  await detector.scope({ route: 'GET /users', requestId: 'r-2' }, () =>
    detector.scope({ requestId: 'r-2.1', step: 'load' }, async () => {
      const conn = await pool.acquire();
      t.same(detector.leases()[0]!.context, { route: 'GET /users', tenant: 'acme', requestId: 'r-2.1', step: 'load' }, "the scope's labels win over the option's");
      await pool.release(conn);
    }),
  );
});

t.test('reports a lease still open when its scope ends, at once, naming the acquiring line', async (t) => {
  const clock = fakeClock(t);
  const { detector, pool, leaks, late } = setup(t);
  let kept: Conn | undefined;
  const result = await detector.scope({ requestId: 'r-3' }, async () => {
    kept = await pool.acquire(); // SCOPE LEAK
    const released = await pool.acquire();
    await pool.release(released);
    return 'handler result';
  });
  t.equal(result, 'handler result', "the scope returns fn's result");
  t.equal(leaks.length, 1, 'reported when the scope ended, without waiting for the threshold');
  t.match(leaks[0], { kind: 'scope-ended', pool: 'db', context: { requestId: 'r-3' } });
  t.ok(leaks[0]!.callSite!.startsWith(siteOf(__filename, '// SCOPE LEAK')));
  t.match(leaks[0]!.message, /still held when its scope ended/);
  await clock.tickAsync(5000);
  t.equal(leaks.length, 1, 'not reported again at the threshold');
  await pool.release(kept!);
  t.equal(late.length, 1);
  t.equal(late[0]!.heldMs, 5000);
});

t.test('ends the scope when fn throws or rejects, and passes the error on unchanged', async (t) => {
  const { detector, pool, leaks } = setup(t);
  const boom = new Error('handler failed');
  await t.rejects(
    detector.scope({ requestId: 'r-4' }, async () => {
      await pool.acquire();
      throw boom;
    }),
    boom,
  );
  t.throws(() =>
    detector.scope({ requestId: 'r-5' }, () => {
      throw boom;
    }),
  boom);
  t.same(leaks.map((r) => [r.kind, r.context]), [['scope-ended', { requestId: 'r-4' }]]);
});

t.test('a detached connection outlives its scope; its threshold still applies', async (t) => {
  const clock = fakeClock(t);
  const { detector, pool, leaks } = setup(t);
  const kept = await detector.scope({ job: 'warm-cache' }, async () => {
    const conn = await pool.acquire();
    t.ok(detector.detach(conn), 'found the lease');
    return conn;
  });
  t.equal(leaks.length, 0);
  await clock.tickAsync(1000);
  t.match(leaks, [{ kind: 'threshold', context: { job: 'warm-cache' } }]);
  t.notOk(detector.detach({}), 'false for a connection it does not lease');
  await pool.release(kept);
});

t.test('blames each of many concurrent scopes through a saturated pool with its own labels', async (t) => {
  const { detector } = setup(t);
  const pool = detector.watch(newPool(1), { name: 'one' });
  const seen: Array<[number, unknown]> = [];
  await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      scope({ requestId: `req-${i}` }, async () => {
        const conn = await pool.acquire();
        seen.push([i, detector.leases().find((l) => l.pool === 'one')!.context]);
        await new Promise((resolve) => setImmediate(resolve));
        await pool.release(conn);
      }),
    ),
  );
  t.equal(seen.length, 50);
  for (const [i, context] of seen) t.same(context, { requestId: `req-${i}` });
});

t.test('reports a lease handed over after its scope already ended', async (t) => {
  const { detector, pool, leaks } = setup(t);
  const small = detector.watch(newPool(1), { name: 'small' });
  const first = await small.acquire();
  let pending!: Promise<Conn>;
  await detector.scope({ requestId: 'r-6' }, () => {
    pending = small.acquire(); // not awaited: the scope ends while it waits
  });
  await small.release(first);
  await pending;
  t.match(leaks, [{ kind: 'scope-ended', pool: 'small', context: { requestId: 'r-6' } }]);
  void pool;
});

t.test('rejects scope() arguments that are not labels and a function', async (t) => {
  t.throws(() => scope('r-7' as never, () => {}), { code: 'POOLWATCH_INVALID_OPTION', message: /labels of scope\(\) to be an object, got `"r-7"`/ });
  t.throws(() => scope({}, undefined as never), { code: 'POOLWATCH_INVALID_OPTION', message: /last argument of scope\(\) to be a function/ });
});
