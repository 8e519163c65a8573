import t from 'tap';
import { createPool } from 'generic-pool';
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
