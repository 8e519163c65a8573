import t from 'tap';
import type { Pool } from 'generic-pool';
import { watch, unwatch, detectorOf, createDetector, type LeakReport } from '../../lib/index.js';
import { compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { siteOf } from '../helpers/site.js';
import { genericPoolVersions } from '../helpers/versions.js';
import { captureWarnings } from '../helpers/warnings.js';

interface Conn {
  id: number;
}

let ids = 0;
const factory = { create: async (): Promise<Conn> => ({ id: ++ids }), destroy: async () => {} };

async function close(pool: Pool<Conn>) {
  await pool.drain();
  await pool.clear();
}

// Every test below runs once per version, as a subtest named by it.
// Every warning of the file, asserted at its end: Node would print them.
const warned = captureWarnings(t);

for (const { label, genericPool: { createPool } } of genericPoolVersions()) t.test(label, async (t) => {

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

// A pool with generic-pool's methods but not its internals (a fork, a wrapper, another
// major version): poolwatch follows the promise acquire() returns instead.
class LookAlikePool {
  readonly #pool: Pool<Conn>;
  constructor(pool: Pool<Conn>) {
    this.#pool = pool;
  }
  get max() {
    return this.#pool.max;
  }
  acquire(priority?: number) {
    return this.#pool.acquire(priority);
  }
  release(conn: Conn) {
    return this.#pool.release(conn);
  }
  destroy(conn: Conn) {
    return this.#pool.destroy(conn);
  }
  isBorrowedResource(conn: Conn) {
    return this.#pool.isBorrowedResource(conn);
  }
  drain() {
    return this.#pool.drain();
  }
  clear() {
    return this.#pool.clear();
  }
}

t.test('a generic-pool look-alike without its internals passes the compliance suite', async (t) => {
  compliance<LookAlikePool, Conn>(t, {
    defaultName: 'generic-pool',
    acquireSite: siteOf(__filename, '// LOOK-ALIKE ACQUIRE'),
    create: async (max) => new LookAlikePool(createPool(factory, { max })),
    close: async (pool) => {
      await pool.drain();
      await pool.clear();
    },
    acquire: (pool) => pool.acquire(), // LOOK-ALIKE ACQUIRE
    release: (pool, conn) => pool.release(conn),
    destroy: (pool, conn) => pool.destroy(conn),
    methods: ['acquire', 'release', 'destroy'],
    createFailing: async () =>
      new LookAlikePool(createPool({ create: () => new Promise<Conn>(() => {}), destroy: async () => {} }, { max: 1, acquireTimeoutMillis: 5000 })),
    closeFailing: async () => {},
  });
});

t.test('returns the pool’s own kind of promise', async (t) => {
  class OwnPromise<T> extends Promise<T> {}
  // generic-pool's typings omit its `Promise` option.
  const pool = createPool(factory, { max: 1, Promise: OwnPromise } as Parameters<typeof createPool>[1]);
  watch(pool);
  t.teardown(() => {
    unwatch(pool);
    return close(pool);
  });
  const pending = pool.acquire();
  t.type(pending, OwnPromise);
  await pool.release(await pending);
});

t.test('unwatch leaves the request queue as generic-pool made it', async (t) => {
  const pool = createPool(factory, { max: 1 });
  const queue = (pool as unknown as { _waitingClientsQueue: object })._waitingClientsQueue;
  watch(pool);
  t.ok(Object.hasOwn(queue, 'enqueue'), 'watched: the queue is followed');
  unwatch(pool);
  t.notOk(Object.hasOwn(queue, 'enqueue'), 'unwatched: its own method again');
  const conn = await pool.acquire();
  await pool.release(conn);
  await close(pool);
});

t.test('acquires refused without a request (draining, queue full) fail as they would unwatched', async (t) => {
  const full = createPool(factory, { max: 1, maxWaitingClients: 0 });
  const draining = createPool(factory, { max: 1 });
  const detector = createDetector();
  detector.watch(full, { name: 'full' });
  detector.watch(draining, { name: 'draining' });
  t.teardown(async () => {
    detector.close();
    await close(full);
  });
  const held = await full.acquire();
  await t.rejects(full.acquire(), { message: 'max waitingClients count exceeded' });
  await full.release(held);
  await draining.drain();
  await t.rejects(draining.acquire(), { message: 'pool is draining and cannot accept work' });
  t.match(detector.stats(), { full: { open: 0, acquired: 1, released: 1, failed: 1, waiting: 0 }, draining: { open: 0, acquired: 0, failed: 1, waiting: 0 } });
});

t.test('an acquire made from an acquire listener is tracked as its own lease', async (t) => {
  const pool = createPool(factory, { max: 2 });
  const detector = createDetector();
  detector.watch(pool, { name: 'db' });
  t.teardown(() => {
    detector.close();
    return close(pool);
  });
  await pool.release(await pool.acquire()); // a connection is idle: the next handover happens inside acquire()
  let inner: Promise<Conn> | undefined;
  detector.once('acquire', () => {
    inner = pool.acquire();
  });
  const outer = await pool.acquire();
  const second = await inner!;
  t.not(outer, second);
  t.equal(detector.leases().length, 2);
  await pool.release(outer);
  await pool.release(second);
  t.match(detector.stats().db, { open: 0, acquired: 3, released: 3, waiting: 0 });
});

});

t.test('says once what a look-alike lacks, and what that costs, whatever the number of its pools and versions', async (t) => {
  t.equal(warned.length, 1, 'one warning in the whole file');
  t.match(warned[0], {
    code: 'POOLWATCH_DEGRADED',
    message: /which lacks what poolwatch reads for: handover \(no pool\._waitingClientsQueue\.enqueue\(\).*acquireTimeout \(no pool\._config/,
  });
});
