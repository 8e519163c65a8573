import t from 'tap';
import { createPool } from 'generic-pool';
import { createPool as createMysqlPool } from 'mysql2';
import { watch, unwatch, createDetector, defaultDetector, detectorOf, codes } from '../../lib/index.js';

const pool = () => createPool({ create: async () => ({}), destroy: async () => {} }, { max: 2 });

t.test('defaultDetector() is one detector for the whole process', async (t) => {
  t.equal(defaultDetector(), defaultDetector());
});

t.test("the app's watch() takes over a pool the default detector watches, with the app's options", async (t) => {
  const p = pool();
  defaultDetector().watch(p);
  t.equal(detectorOf(p), defaultDetector());
  t.equal(watch(p, { name: 'main' }), p, 'no error, and the same pool back');
  const mine = detectorOf(p)!;
  t.not(mine, defaultDetector());
  t.same(Object.keys(mine.stats()), ['main']);
  t.notOk(Object.values(defaultDetector().stats()).length, 'the default detector let it go');
  // Its leases are counted once, by the app's detector.
  const conn = await p.acquire();
  t.equal(mine.leases().length, 1);
  t.equal(defaultDetector().leases().length, 0);
  await p.release(conn);
  unwatch(p);
  await p.drain();
  await p.clear();
});

t.test('the default detector watching a pool twice is no error either', async (t) => {
  const p = pool();
  defaultDetector().watch(p);
  t.equal(defaultDetector().watch(p, { name: 'renamed' }), p);
  t.same(Object.keys(defaultDetector().stats()), ['renamed']);
  t.ok(unwatch(p));
  await p.drain();
});

t.test('a pool an app detector watches is still refused to a second one', async (t) => {
  const p = pool();
  const first = createDetector();
  first.watch(p);
  t.throws(() => watch(p), { code: codes.alreadyWatched });
  t.throws(() => defaultDetector().watch(p), { code: codes.alreadyWatched });
  t.equal(detectorOf(p), first);
  first.close();
  await p.drain();
});

t.test('a mysql2 promise pool and its core pool are one pool to detectorOf(), watch() and unwatch()', async (t) => {
  // No query is sent: a mysql2 pool connects on first use.
  const core = createMysqlPool({ host: '127.0.0.1', port: 1 });
  const wrapper = core.promise();
  t.teardown(() => core.end());
  defaultDetector().watch(core);
  t.equal(detectorOf(wrapper), defaultDetector(), 'the wrapper is watched through its core');
  // The app watches the wrapper: its detector takes the shared core over.
  const mine = createDetector();
  mine.watch(wrapper, { name: 'mine' });
  t.equal(detectorOf(core), mine);
  t.equal(detectorOf(wrapper), mine);
  t.same(Object.keys(defaultDetector().stats()), []);
  // A second app detector is refused, in words that say why.
  t.throws(() => createDetector().watch(core), { code: codes.alreadyWatched, message: /through its core pool or another object that shares it \(as "mine"\)/ });
  // Either object unwatches the one pool.
  t.ok(unwatch(core));
  t.equal(detectorOf(wrapper), undefined);
});
