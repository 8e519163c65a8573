import t from 'tap';
import { Summary } from '../lib/summary.js';

t.test('summarises durations with percentiles within the histogram resolution', async (t) => {
  const summary = new Summary();
  for (let ms = 1; ms <= 1000; ms++) summary.add(ms);
  const info = summary.toJSON();
  t.match(info, { count: 1000, meanMs: 500.5, minMs: 1, maxMs: 1000 });
  for (const [name, exact] of [['p50Ms', 500], ['p90Ms', 900], ['p99Ms', 990]] as const) {
    t.ok(info[name] >= exact && info[name] <= exact * 1.2, `${name} ${info[name]} is within 20% above ${exact}`);
  }
});

t.test('handles zero, sub-millisecond and very long durations', async (t) => {
  const summary = new Summary();
  summary.add(0);
  summary.add(0.0004);
  summary.add(3_600_000);
  const info = summary.toJSON();
  t.match(info, { count: 3, minMs: 0, maxMs: 3_600_000 });
  t.ok(info.p50Ms <= 0.002, 'the median is the sub-millisecond value');
  t.equal(info.p99Ms, 3_600_000, 'a percentile never exceeds the maximum');
  t.same(new Summary().toJSON(), { count: 0, meanMs: 0, minMs: 0, maxMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0 });
});
