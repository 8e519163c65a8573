import t from 'tap';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { createPool } from 'generic-pool';
import { createDetector } from '../lib/index.js';

t.test('leases carry the active OpenTelemetry trace and span ids', async (t) => {
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  t.teardown(() => {
    context.disable();
    manager.disable();
  });
  const detector = createDetector({ context: () => ({ tenant: 'acme' }) });
  t.teardown(() => detector.close());
  const pool = detector.watch(createPool({ create: async () => ({}), destroy: async () => {} }, { max: 2 }));
  const span = trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 });
  await context.with(trace.setSpan(context.active(), span), async () => {
    await detector.scope({ requestId: 'r-1' }, async () => {
      await pool.acquire();
    });
  });
  await pool.acquire();
  t.same(
    detector.leases().map((lease) => lease.context),
    [
      { tenant: 'acme', requestId: 'r-1', traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' },
      { tenant: 'acme' },
    ],
    'inside a span: its ids with the other labels; outside: none',
  );
});
