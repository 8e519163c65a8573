// An OpenTelemetry SDK started after the pool is in use: trace ids appear within a
// second (poolwatch looks for OpenTelemetry's registry at most once a second until it
// exists). Its own file: the registry is process-wide and, once made, stays.
import t from 'tap';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { createPool } from 'generic-pool';
import { createDetector } from '../lib/index.js';
import { fakeClock } from './helpers/clock.js';

t.test('trace ids show once an SDK registers a context manager after the first acquire', async (t) => {
  const clock = fakeClock(t);
  const detector = createDetector();
  t.teardown(() => detector.close());
  const pool = detector.watch(createPool({ create: async () => ({}), destroy: async () => {} }, { max: 4 }));
  await pool.release(await pool.acquire());

  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  t.teardown(() => {
    context.disable();
    manager.disable();
  });
  await clock.tickAsync(1000);
  const span = trace.wrapSpanContext({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 });
  await context.with(trace.setSpan(context.active(), span), () => pool.acquire());
  t.same(detector.leases().map((lease) => lease.context), [{ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' }]);
});
