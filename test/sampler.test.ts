// The full-stack budget of stacks: 'auto' (half a percent of hold time and of the process's
// time, 1 ms up front), driven with explicit times. Each test starts far beyond the
// previous one's times: the process-wide budget is shared state.
import t from 'tap';
import { Sampler } from '../lib/sampler.js';

let epoch = 1e9;
const start = () => (epoch += 1e8);

t.test("'auto' captures until its credit is spent, then earns it back from time passing", async (t) => {
  const at = start();
  const sampler = new Sampler('auto');
  t.ok(sampler.wants(at), 'a fresh process has credit');
  sampler.spent(2);
  t.notOk(sampler.wants(at + 1), 'spent');
  sampler.held(1_000);
  t.notOk(sampler.wants(at + 2), 'connection time alone does not refill the process budget');
  t.ok(sampler.wants(at + 300), 'half a percent of 0.3 s refills it');
});

t.test('ten connections held at once earn no more capture time than the wall clock allows', async (t) => {
  const at = start();
  const sampler = new Sampler('auto');
  sampler.wants(at);
  sampler.spent(2);
  // 10 leases each held 50 ms over the same 50 ms: 0.5 s of holding in 0.05 s.
  for (let i = 0; i < 10; i++) sampler.held(50);
  t.notOk(sampler.wants(at + 50), 'half a percent of 50 ms does not pay back 2 ms of captures');
  t.ok(sampler.wants(at + 300), 'while half a percent of 300 ms does');
});

t.test('the process budget is shared by every pool', async (t) => {
  const at = start();
  const one = new Sampler('auto');
  const two = new Sampler('auto');
  t.ok(one.wants(at));
  one.spent(2);
  t.notOk(two.wants(at + 1), "another pool's sampler sees the budget spent");
});

t.test('a leak tops the full-stack credit up to its starting amount, no more', async (t) => {
  const at = start();
  const sampler = new Sampler('auto');
  sampler.wants(at);
  sampler.spent(5);
  t.notOk(sampler.wants(at + 1), 'spent');
  sampler.alert();
  let captured = 0;
  for (let i = 0; i < 1000 && sampler.wants(at + 2); i++) {
    captured++;
    sampler.spent(0.125);
  }
  t.equal(captured, 8, '1 ms of full captures after the leak, then the budget holds again');
  t.notOk(sampler.wants(at + 3));
});

t.test("'always' and 'never' ignore the budget", async (t) => {
  const at = start();
  const always = new Sampler('always');
  const never = new Sampler('never');
  always.spent(1e6);
  t.ok(always.wants(at));
  never.alert();
  t.notOk(never.wants(at + 1));
});
