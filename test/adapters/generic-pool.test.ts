import t from 'tap';
import { createPool, type Pool } from 'generic-pool';
import { watch, unwatch, detectorOf, type LeakReport } from '../../lib/index.js';
import { compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { siteOf } from '../helpers/site.js';

interface Conn {
  id: number;
}

let ids = 0;
const factory = { create: async (): Promise<Conn> => ({ id: ++ids }), destroy: async () => {} };

async function close(pool: Pool<Conn>) {
  await pool.drain();
  await pool.clear();
}

t.test('generic-pool passes the adapter compliance suite', async (t) => {
  compliance<Pool<Conn>, Conn>(t, {
    defaultName: 'generic-pool',
    acquireSite: siteOf(__filename, '// ACQUIRE'),
    create: async (max) => createPool(factory, { max }),
    close,
    acquire: (pool) => pool.acquire(), // ACQUIRE
    release: (pool, conn) => pool.release(conn),
    destroy: (pool, conn) => pool.destroy(conn),
    methods: ['acquire', 'release', 'destroy', 'use'],
    createFailing: async () =>
      createPool(
        {
          // A server that never answers: the acquire times out.
          create: () => new Promise<Conn>(() => {}),
          destroy: async () => {},
        },
        { max: 1, acquireTimeoutMillis: 5000 },
      ),
    // drain() would wait for the create that never settles; the pool holds no timer, so it is just dropped.
    closeFailing: async () => {},
  });
});

t.test('tracks pool.use() and blames the line that called it', async (t) => {
  const clock = fakeClock(t);
  const pool = createPool(factory, { max: 1 });
  const leaks: LeakReport[] = [];
  watch(pool, { leakThresholdMs: 1000, onLeak: (report) => leaks.push(report) });
  t.teardown(() => {
    unwatch(pool);
    return close(pool);
  });
  let finish!: () => void;
  const using = pool.use(() => new Promise<void>((resolve) => (finish = resolve))); // USE
  await clock.tickAsync(1500);
  t.equal(leaks.length, 1);
  t.ok(leaks[0]!.callSite?.startsWith(siteOf(__filename, '// USE')), `callSite ${leaks[0]!.callSite}`);
  finish();
  await using;
  t.match(detectorOf(pool)!.stats()['generic-pool'], { open: 0, released: 1, leaked: 1 });
});

t.test('keeps the pool promise library and resolved values', async (t) => {
  const pool = createPool(factory, { max: 1 });
  watch(pool);
  t.teardown(() => {
    unwatch(pool);
    return close(pool);
  });
  const pending = pool.acquire();
  t.type(pending.then, 'function');
  const conn = await pending;
  t.ok(pool.isBorrowedResource(conn), 'the pool handed out this very object');
  t.equal(await pool.release(conn), undefined);
});

t.test('does not call a release of a connection leased before watch() misuse', async (t) => {
  const pool = createPool(factory, { max: 1 });
  const early = await pool.acquire();
  const detector = watch(pool) && detectorOf(pool)!;
  t.teardown(() => {
    unwatch(pool);
    return close(pool);
  });
  const misuse: unknown[] = [];
  detector.on('misuse', (event) => misuse.push(event));
  await pool.release(early);
  t.same(misuse, []);
});

t.test('names a release of a connection the pool never leased as misuse', async (t) => {
  const pool = createPool(factory, { max: 1 });
  const detector = watch(pool) && detectorOf(pool)!;
  t.teardown(() => {
    unwatch(pool);
    return close(pool);
  });
  const misuse: { kind: string; callSite: string | undefined }[] = [];
  detector.on('misuse', (event) => misuse.push(event));
  await t.rejects(pool.release({ id: -1 }), { message: 'Resource not currently part of this pool' }); // FOREIGN
  t.equal(misuse.length, 1);
  t.equal(misuse[0]!.kind, 'foreign-release');
  t.ok(misuse[0]!.callSite?.startsWith(siteOf(__filename, '// FOREIGN')));
});
