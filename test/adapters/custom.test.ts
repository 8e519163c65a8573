import t from 'tap';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createDetector, watch, unwatch, detectorOf, type LeaseInfo } from '../../lib/index.js';
import { compliance } from '../helpers/compliance.js';
import { fakeClock } from '../helpers/clock.js';
import { siteOf } from '../helpers/site.js';
import { ToyPool, type ToyConnection } from '../helpers/toy-pool.js';

const adapter = { acquire: 'getConnection', release: { connection: 'release' }, destroy: { connection: 'destroy' }, name: 'toy' };

function getConnection(pool: ToyPool): Promise<ToyConnection> {
  return new Promise((resolve, reject) => pool.getConnection((error, conn) => (error ? reject(error) : resolve(conn!)))); // ACQUIRE
}

t.test('a callback pool described by the adapter option passes the compliance suite', async (t) => {
  compliance<ToyPool, ToyConnection>(t, {
    defaultName: 'toy',
    acquireSite: siteOf(__filename, '// ACQUIRE'),
    create: async (max) => new ToyPool(max),
    close: async () => {},
    acquire: getConnection,
    release: (_pool, conn) => conn.release(),
    destroy: (_pool, conn) => conn.destroy(),
    methods: ['getConnection'],
    createFailing: async () => new ToyPool(1, Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' })),
    closeFailing: async () => {},
    watchOptions: { adapter },
  });
});

t.test('blames each queued caller at its own line with its own context', async (t) => {
  const requests = new AsyncLocalStorage<{ id: string }>();
  const pool = new ToyPool(1);
  const detector = createDetector({ context: () => ({ requestId: requests.getStore()?.id }) });
  detector.watch(pool, { adapter });
  t.teardown(() => detector.close());
  const seen: Array<{ request: string | undefined; lease: LeaseInfo | undefined }> = [];
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      requests.run({ id: `req-${i}` }, () =>
        new Promise<void>((done) => {
          pool.getConnection((_error, conn) => {
            // Without binding, a queued callback runs inside the previous caller's release().
            seen.push({ request: requests.getStore()?.id, lease: detector.leases()[0] });
            setImmediate(() => {
              conn!.release();
              done();
            });
          });
        }),
      ),
    ),
  );
  t.equal(seen.length, 20);
  for (const [i, { request, lease }] of seen.entries()) {
    t.equal(request, `req-${i}`, 'the callback ran in its caller\'s context');
    t.same(lease?.context, { requestId: `req-${i}` }, 'the lease carries its own labels');
  }
});

t.test('accepts the pool methods themselves, and promise or plain return values', async (t) => {
  const clock = fakeClock(t);
  class SyncPool {
    #n = 0;
    take() {
      return { n: ++this.#n };
    }
    give(_conn: object) {
      return true;
    }
  }
  const pool = new SyncPool();
  const leaks: unknown[] = [];
  watch(pool, { adapter: { acquire: pool.take, release: pool.give }, leakThresholdMs: 100, onLeak: (r) => leaks.push(r) });
  t.teardown(() => unwatch(pool));
  const conn = pool.take();
  t.same(conn, { n: 1 }, 'returns what the pool returns');
  t.equal(pool.give(conn), true);
  pool.take();
  await clock.tickAsync(100);
  t.equal(leaks.length, 1);
  t.match(detectorOf(pool)!.stats().pool, { acquired: 2, released: 1, leaked: 1 });
});

t.test('rejects an adapter that does not fit the pool, naming the option', async (t) => {
  const pool = new ToyPool(1);
  const cases: Array<[unknown, RegExp]> = [
    [{ acquire: 'getConnection' }, /`adapter.release` is required/],
    [{ release: 'x' }, /`adapter.acquire` is required/],
    [{ acquire: 'checkout', release: { connection: 'release' } }, /`adapter.acquire` names `checkout`, but the pool has no method `checkout`/],
    [{ acquire: () => {}, release: { connection: 'release' } }, /`adapter.acquire` is a function .* not a method of the pool/],
    [{ acquire: 'getConnection', release: { conection: 'release' } }, /`adapter.release`/],
    [{ acquire: 'getConnection', release: { connection: 'release' }, relase: 1 }, /Unknown option `adapter.relase`/],
    ['getConnection', /Expected `adapter` to be an object/],
  ];
  for (const [spec, message] of cases) {
    t.throws(() => watch(pool, { adapter: spec as never }), { name: 'PoolwatchTypeError', code: 'POOLWATCH_INVALID_OPTION', message });
  }
  t.equal(detectorOf(pool), undefined, 'nothing was watched');
});
