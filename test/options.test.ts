import t from 'tap';
import { createPool } from 'generic-pool';
import { createDetector, watch, detectorOf } from '../lib/index.js';

const pool = () => createPool({ create: async () => ({}), destroy: async () => {} });

t.test('rejects bad options with a TypeError that names the option and the value', async (t) => {
  const cases: Array<[object, RegExp]> = [
    [{ leakThresholdMs: -1 }, /Expected `leakThresholdMs` to be a positive number or Infinity, got `-1` \(number\)/],
    [{ leakThresholdMs: 0 }, /`leakThresholdMs`.*`0` \(number\)/],
    [{ leakThresholdMs: NaN }, /`leakThresholdMs`.*`NaN` \(number\)/],
    [{ leakThresholdMs: '30s' }, /`leakThresholdMs`.*`"30s"` \(string\)/],
    [{ stacks: 'sometimes' }, /Expected `stacks` to be one of 'always', 'auto', 'never', got `"sometimes"` \(string\)/],
    [{ onLeak: 'log' }, /Expected `onLeak` to be a function, got `"log"` \(string\)/],
    [{ context: { requestId: 1 } }, /Expected `context` to be a function returning labels, got an object/],
    [{ name: '' }, /Expected `name` to be a non-empty string/],
    [{ name: 42 }, /Expected `name` to be a non-empty string, got `42` \(number\)/],
    [{ reclaimAfterMs: 0 }, /Expected `reclaimAfterMs` to be a positive number, or Infinity to leave leases alone, got `0` \(number\)/],
    [{ reclaimAfterMs: '5m' }, /`reclaimAfterMs`.*`"5m"` \(string\)/],
  ];
  for (const [options, message] of cases) {
    const p = pool();
    t.throws(() => watch(p, options as never), { name: 'PoolwatchTypeError', code: 'POOLWATCH_INVALID_OPTION', message }, JSON.stringify(options));
    t.equal(detectorOf(p), undefined, 'the pool is left unwatched');
  }
});

t.test('rejects an unknown option key and suggests the one meant', async (t) => {
  t.throws(() => watch(pool(), { leakThreshold: 1000 } as never), {
    code: 'POOLWATCH_INVALID_OPTION',
    message: /Unknown option `leakThreshold` in watch\(\)\. Did you mean `leakThresholdMs`\?/,
  });
  t.throws(() => createDetector({ stack: 'always' } as never), { message: /Unknown option `stack` in createDetector\(\)\. Did you mean `stacks`\?/ });
  t.throws(() => createDetector({ name: 'main' } as never), { message: /Unknown option `name` in createDetector\(\)/ }, 'a pool name belongs to watch()');
  t.throws(() => createDetector('fast' as never), { message: /Expected the options of createDetector\(\) to be an object, got `"fast"` \(string\)/ });
});

t.test('accepts Infinity as a threshold, turning the timer check off', async (t) => {
  const p = watch(pool(), { leakThresholdMs: Infinity });
  t.teardown(() => detectorOf(p)!.close());
  await p.acquire();
  t.same(detectorOf(p)!.check(), []);
});

t.test('rejects what is not a pool, listing what is supported and pointing to adapter', async (t) => {
  class MyPool {
    checkout() {}
  }
  t.throws(() => watch(new MyPool()), {
    name: 'PoolwatchTypeError',
    code: 'POOLWATCH_UNSUPPORTED_POOL',
    message: /^(?=.*does not recognise a MyPool as a pool\. Supported: )(?=.*generic-pool)(?=.*pg\.Pool)(?=.*mysql2)(?=.*mariadb)(?=.*tarn)(?=.*knex)(?=.*adapter: \{ acquire)/,
  });
  t.throws(() => watch(null as never), { code: 'POOLWATCH_UNSUPPORTED_POOL', message: /Expected a pool to watch, got `null`/ });
});

t.test('refuses to watch a pool twice, and names the pool', async (t) => {
  const p = watch(pool(), { name: 'main' });
  t.teardown(() => detectorOf(p)!.close());
  t.throws(() => watch(p), { code: 'POOLWATCH_ALREADY_WATCHED', message: /already watched \(as "main"\)/ });
  t.throws(() => createDetector().watch(p), { code: 'POOLWATCH_ALREADY_WATCHED' });
});
