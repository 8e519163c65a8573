import t from 'tap';
import type { Pool } from 'tarn';
import { watch, unwatch, detectorOf, type MisuseEvent } from '../../lib/index.js';
import { compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { siteOf } from '../helpers/site.js';
import { poolsOwnMessage } from '../helpers/errors.js';
import { tarnVersions } from '../helpers/versions.js';

interface Conn {
  id: number;
}

let ids = 0;
const options = (max: number) => ({ create: async (): Promise<Conn> => ({ id: ++ids }), destroy: () => {}, min: 0, max });

// Every test below runs once per version, as a subtest named by it.
for (const { label, tarn: { Pool, TimeoutError } } of tarnVersions()) t.test(label, async (t) => {

t.test('tarn passes the adapter compliance suite', async (t) => {
  compliance<Pool<Conn>, Conn>(t, {
    defaultName: 'tarn',
    acquireSite: siteOf(__filename, '// ACQUIRE'),
    create: async (max) => new Pool(options(max)),
    close: async (pool) => {
      await pool.destroy();
    },
    acquire: (pool) => pool.acquire().promise, // ACQUIRE
    release: (pool, conn) => pool.release(conn),
    // tarn has no per-resource destroy: that compliance test is skipped.
    methods: ['acquire', 'release'],
    createFailing: async () =>
      // A server that never answers: the acquire times out.
      new Pool({ create: () => new Promise<Conn>(() => {}), destroy: () => {}, min: 0, max: 1, acquireTimeoutMillis: 5000 }),
    // destroy() would wait for the create that never settles; its timers were fake, so the pool is just dropped.
    closeFailing: async () => {},
  });
});

t.test("recognises a tarn pool and names it 'tarn'", async (t) => {
  const pool = new Pool(options(1));
  t.teardown(() => pool.destroy());
  watch(pool);
  t.teardown(() => unwatch(pool));
  t.ok(detectorOf(pool)?.stats().tarn);
});

t.test('keeps the pending operation and the true/false result of release', async (t) => {
  const pool = new Pool(options(1));
  t.teardown(() => pool.destroy());
  watch(pool);
  t.teardown(() => unwatch(pool));
  const pending = pool.acquire();
  t.type(pending.promise.then, 'function');
  t.type(pending.abort, 'function', 'still the PendingOperation');
  const conn = await pending.promise;
  t.equal(pool.numUsed(), 1);
  t.equal(pool.release(conn), true);
  t.equal(pool.release(conn), false, 'a refused release still returns false');
});

t.test('emits misuse for a refused release: double and foreign', async (t) => {
  const pool = new Pool(options(1));
  t.teardown(() => pool.destroy());
  const detector = watch(pool) && detectorOf(pool)!;
  t.teardown(() => unwatch(pool));
  const misuse: MisuseEvent[] = [];
  detector.on('misuse', (event) => misuse.push(event));
  const conn = await pool.acquire().promise;
  t.equal(pool.release(conn), true);
  t.equal(pool.release(conn), false);
  t.equal(pool.release({ id: -1 }), false); // FOREIGN
  t.same(
    misuse.map((event) => event.kind),
    ['double-release', 'foreign-release'],
  );
  t.ok(misuse[1]!.callSite?.startsWith(siteOf(__filename, '// FOREIGN')));
});

t.test('does not call a release of a resource leased before watch() misuse', async (t) => {
  const pool = new Pool(options(1));
  t.teardown(() => pool.destroy());
  const early = await pool.acquire().promise;
  const detector = watch(pool) && detectorOf(pool)!;
  t.teardown(() => unwatch(pool));
  const misuse: unknown[] = [];
  detector.on('misuse', (event) => misuse.push(event));
  t.equal(pool.release(early), true);
  t.same(misuse, []);
});

t.test("passes tarn's own TimeoutError to the app unchanged and leaves no lease", async (t) => {
  const clock = fakeClock(t);
  // A full pool: the second acquire waits past acquireTimeoutMillis.
  const timeout = async (pool: Pool<Conn>) => {
    const held = await pool.acquire().promise;
    const waiting = pool.acquire().promise.then(
      () => undefined,
      (error: Error) => error,
    );
    await clock.tickAsync(500);
    const error = await waiting;
    pool.release(held);
    await pool.destroy();
    return error;
  };
  const expected = await timeout(new Pool<Conn>({ ...options(1), acquireTimeoutMillis: 500 }));
  const pool = new Pool<Conn>({ ...options(1), acquireTimeoutMillis: 500 });
  const detector = watch(pool) && detectorOf(pool)!;
  t.teardown(() => unwatch(pool));
  const error = await timeout(pool);
  t.type(error, TimeoutError);
  t.equal(error!.constructor, expected!.constructor);
  t.same({ name: error!.name, message: poolsOwnMessage(error!.message) }, { name: expected!.name, message: expected!.message });
  t.match(error!.message, /\npoolwatch: pool "tarn" gave up waiting for a connection: 1 of 1 connections leased, \d+ waiting; the request that gave up had waited .+?\. Held by:\n {2}1 lease from test\/adapters\/tarn\.test\.ts:\d+:\d+/, 'and names who holds the pool');
  t.same(detector.leases(), []);
  t.match(detector.stats().tarn, { open: 0, waiting: 0, acquired: 1, released: 1, failed: 1 });
});

t.test("the pool's destroy() waits for released resources and leaves nothing open", async (t) => {
  const pool = new Pool(options(2));
  const detector = watch(pool) && detectorOf(pool)!;
  t.teardown(() => unwatch(pool));
  const a = await pool.acquire().promise;
  const b = await pool.acquire().promise;
  const destroyed = pool.destroy();
  pool.release(a);
  pool.release(b);
  await destroyed;
  t.same(detector.leases(), []);
  t.match(detector.stats().tarn, { open: 0, acquired: 2, released: 2, waiting: 0 });
  t.equal(pool.numUsed() + pool.numFree(), 0);
});

t.test('aborts a queued acquire on destroy() without leaving a lease', async (t) => {
  const pool = new Pool(options(1));
  const detector = watch(pool) && detectorOf(pool)!;
  t.teardown(() => unwatch(pool));
  const held = await pool.acquire().promise;
  const queued = pool.acquire().promise.catch((error: Error) => error);
  const destroyed = pool.destroy();
  pool.release(held);
  await destroyed;
  t.match(await queued, { message: 'aborted' });
  t.match(detector.stats().tarn, { open: 0, waiting: 0, failed: 1 });
});

});
