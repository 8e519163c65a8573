import t, { type Test } from 'tap';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type Detector, type MisuseEvent } from '../lib/index.js';
import { siteOf } from './helpers/site.js';

type Conn = { id: number };
let ids = 0;

function setup(t: Test, max: number): { detector: Detector; pool: Pool<Conn>; misuse: MisuseEvent[] } {
  const detector = createDetector({ leakThresholdMs: Infinity });
  t.teardown(() => detector.close());
  const pool = detector.watch(createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max }), { name: 'main' });
  const misuse: MisuseEvent[] = [];
  detector.on('misuse', (event) => misuse.push(event));
  return { detector, pool, misuse };
}

const takeFirst = (pool: Pool<Conn>) => pool.acquire(); // FIRST
const takeSecond = (pool: Pool<Conn>) => pool.acquire(); // SECOND

t.test("an acquire that must wait while its own request holds a connection of the pool is misuse, at once, naming both lines", async (t) => {
  const { detector, pool, misuse } = setup(t, 1);
  await detector.scope({ requestId: 'r-1' }, async () => {
    const first = await takeFirst(pool);
    const second = takeSecond(pool);
    // Said as the acquire is made, not when a timeout runs out.
    t.equal(misuse.length, 1);
    t.match(misuse[0], { kind: 'nested-acquire', pool: 'main', method: 'acquire', lease: { context: { requestId: 'r-1' } } });
    t.ok(misuse[0]!.callSite?.startsWith(siteOf(__filename, '// SECOND')), `the waiting acquire: ${misuse[0]!.callSite}`);
    t.ok(misuse[0]!.lease?.callSite?.startsWith(siteOf(__filename, '// FIRST')), `the lease held: ${misuse[0]!.lease?.callSite}`);
    t.match(misuse[0]!.message, /^acquire\(\) waits for a connection of pool "main" at test\/nested-acquire\.test\.ts:\d+:\d+, every one of which is leased, while its own request holds lease #\d+ from test\/nested-acquire\.test\.ts:\d+:\d+: .*self-deadlock/);
    // The pool is unchanged: giving the first back serves the second.
    await pool.release(first);
    await pool.release(await second);
  });
  t.equal(detector.stats().main!.misuse, 1);
});

t.test('no misuse when the pool has a connection free, or when another request holds them', async (t) => {
  const { detector, pool, misuse } = setup(t, 2);
  await detector.scope({ requestId: 'r-1' }, async () => {
    const first = await takeFirst(pool);
    // A second connection is free: nothing waits.
    const second = await takeSecond(pool);
    await pool.release(first);
    await pool.release(second);
  });
  const held = await detector.scope({ requestId: 'r-2' }, async () => [await takeFirst(pool), await takeFirst(pool)]);
  // Another request waits for r-2's connections: that is load, not a self-deadlock.
  const waiting = detector.scope({ requestId: 'r-3' }, async () => pool.release(await takeSecond(pool)));
  // And outside any request scope poolwatch cannot tell whose the held connections are.
  const unscoped = takeSecond(pool);
  for (const conn of held) await pool.release(conn);
  await waiting;
  await pool.release(await unscoped);
  t.same(misuse, []);
});
