// Every callback a user gives poolwatch may be async: what it rejects with is surfaced
// once, like what a sync one throws, and never becomes an unhandled rejection (which
// ends a Node process by default).
import t, { type Test } from 'tap';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import diagnostics from 'node:diagnostics_channel';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type LeakReport } from '../lib/index.js';
import { requestScope } from '../lib/integrations/http.js';
import { fakeClock } from './helpers/clock.js';
import { captureWarnings } from './helpers/warnings.js';

type Conn = { id: number };
let ids = 0;
const newPool = (): Pool<Conn> => createPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 2 });

function unhandledRejections(t: Test): unknown[] {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => void seen.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  return seen;
}

// Two turns of the event loop: a rejection nobody handles is reported by then, and a warning emitted.
const settle = async () => {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
};

t.test("an async 'error' listener that rejects is said once as a process warning, not left unhandled", async (t) => {
  const unhandled = unhandledRejections(t);
  const warnings = captureWarnings(t);
  const detector = createDetector({
    context: () => {
      throw new Error('context failed');
    },
  });
  t.teardown(() => detector.close());
  detector.on('error', async () => {
    throw new Error('error listener failed');
  });
  const pool = detector.watch(newPool(), { name: 'db' });
  for (let i = 0; i < 3; i++) await pool.release(await pool.acquire());
  await settle();
  t.same(unhandled, [], 'no unhandled rejection');
  t.match(warnings, [{ name: 'ListenerError', code: 'POOLWATCH_LISTENER_ERROR', message: /an 'error' listener rejected: error listener failed$/ }], 'one warning for three rejections');
});

t.test("a once() listener's rejection is surfaced like an on() listener's", async (t) => {
  const unhandled = unhandledRejections(t);
  const detector = createDetector();
  t.teardown(() => detector.close());
  const errors: Error[] = [];
  detector.on('error', (error) => void errors.push(error));
  detector.once('acquire', async () => {
    throw new Error('once failed');
  });
  const pool = detector.watch(newPool(), { name: 'db' });
  await pool.release(await pool.acquire());
  await settle();
  t.same(unhandled, []);
  t.match(errors, [{ code: 'POOLWATCH_LISTENER_ERROR', message: /'acquire' listener rejected: once failed$/ }]);
});

t.test('an async context function that rejects is surfaced, its labels left out, never unhandled', async (t) => {
  const unhandled = unhandledRejections(t);
  const detector = createDetector({
    // Typed out by TypeScript; a JavaScript app can still pass one.
    context: (async () => {
      throw new Error('context lookup failed');
    }) as never,
  });
  t.teardown(() => detector.close());
  const errors: Error[] = [];
  detector.on('error', (error) => void errors.push(error));
  const pool = detector.watch(newPool(), { name: 'db' });
  const conn = await pool.acquire();
  t.teardown(() => pool.release(conn));
  await settle();
  t.same(unhandled, [], 'no unhandled rejection');
  t.same(detector.leases()[0]!.context, {}, 'no labels');
  t.match(
    errors.map((error) => error.message).sort(),
    [/the `context` function rejected: context lookup failed$/, /the `context` function returned a promise/],
    'the rejection is said, beside the promise itself',
  );
});

t.test('a thenable whose then() throws is surfaced like a throw', async (t) => {
  const detector = createDetector();
  t.teardown(() => detector.close());
  const errors: Error[] = [];
  detector.on('error', (error) => void errors.push(error));
  detector.on('acquire', (() => ({
    get then() {
      throw new Error('then getter failed');
    },
  })) as never);
  const pool = detector.watch(newPool(), { name: 'db' });
  await t.resolves(async () => pool.release(await pool.acquire()), 'the acquire is untouched');
  t.match(errors, [{ message: /'acquire' listener rejected: then getter failed$/ }]);
});

t.test("a request scope's async labels function that rejects warns once and the request goes on", async (t) => {
  const clock = fakeClock(t);
  const unhandled = unhandledRejections(t);
  const warnings = captureWarnings(t);
  const detector = createDetector({ leakThresholdMs: 60_000 });
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(), { name: 'db' });
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => void leaks.push(report));
  const kept: Conn[] = [];
  t.teardown(() => Promise.all(kept.map((conn) => pool.release(conn))));
  const listener = requestScope(
    async (_req: IncomingMessage, res: ServerResponse) => {
      kept.push(await pool.acquire());
      res.end('ok');
    },
    {
      labels: (async () => {
        throw new Error('labels lookup failed');
      }) as never,
    },
  );
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address() as AddressInfo;
  for (let i = 0; i < 2; i++) {
    const body = await new Promise<string>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: `/r/${i}`, headers: { 'x-request-id': `req-${i}` } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve(text));
      })
        .on('error', reject)
        .end();
    });
    t.equal(body, 'ok', `request ${i} is served`);
  }
  await clock.tickAsync(0);
  await settle();
  t.same(unhandled, [], 'no unhandled rejection');
  t.match(warnings, [{ code: 'POOLWATCH_LISTENER_ERROR', message: /the `labels` option of a request scope/ }], 'said once for two requests');
  t.match(
    leaks.map((report) => report.context),
    [{ requestId: 'req-0' }, { requestId: 'req-1' }],
    'and the leaks are still reported, with the default labels',
  );
});

t.test("a diagnostics_channel subscriber that throws or rejects is surfaced to the detector's 'error' listeners, not thrown by Node", async (t) => {
  const unhandled = unhandledRejections(t);
  const uncaught: unknown[] = [];
  // Node reports a throwing subscriber this way, on the next tick: collected so the process survives to tell.
  const onUncaught = (error: unknown) => void uncaught.push(error);
  process.prependListener('uncaughtException', onUncaught);
  t.teardown(() => process.off('uncaughtException', onUncaught));
  const detector = createDetector();
  t.teardown(() => detector.close());
  const errors: Error[] = [];
  detector.on('error', (error) => void errors.push(error));
  const throwing = () => {
    throw new Error('subscriber threw');
  };
  const rejecting = async () => {
    throw new Error('subscriber rejected');
  };
  const seen: unknown[] = [];
  const plain = (message: unknown) => void seen.push(message);
  for (const fn of [throwing, rejecting, plain]) {
    diagnostics.subscribe('poolwatch:acquire', fn);
    t.teardown(() => void diagnostics.unsubscribe('poolwatch:acquire', fn));
  }
  const pool = detector.watch(newPool(), { name: 'db' });
  await pool.release(await pool.acquire());
  await settle();
  t.same(uncaught, [], 'no uncaught exception');
  t.same(unhandled, [], 'no unhandled rejection');
  t.equal(seen.length, 1, 'the other subscriber still gets the message');
  t.match(
    errors.map((error) => error.message).sort(),
    [/'poolwatch:acquire' subscriber rejected: subscriber rejected$/, /'poolwatch:acquire' subscriber threw: subscriber threw$/],
  );
  t.ok(diagnostics.unsubscribe('poolwatch:acquire', plain), 'unsubscribe() finds a subscriber by the function given');
});

t.test("a request scope's labels that throw as they are read are shown as unreadable; the request and its leak report go on", async (t) => {
  const clock = fakeClock(t);
  captureWarnings(t);
  const detector = createDetector({ leakThresholdMs: 60_000 });
  t.teardown(() => detector.close());
  const pool = detector.watch(newPool(), { name: 'db' });
  const leaks: LeakReport[] = [];
  detector.on('leak', (report) => void leaks.push(report));
  const kept: Conn[] = [];
  t.teardown(() => Promise.all(kept.map((conn) => pool.release(conn))));
  const hostile = [
    {
      tenant: 't-1',
      get user(): string {
        throw new Error('getter failed');
      },
    },
    new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('ownKeys failed');
        },
      },
    ),
  ];
  let n = 0;
  const server = createServer(
    requestScope(
      async (_req: IncomingMessage, res: ServerResponse) => {
        kept.push(await pool.acquire());
        res.end('ok');
      },
      { labels: () => hostile[n++]! },
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address() as AddressInfo;
  for (let i = 0; i < hostile.length; i++) {
    const status = await new Promise<number | undefined>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: `/r/${i}`, headers: { 'x-request-id': `req-${i}` } }, (res) => {
        res.resume().on('end', () => resolve(res.statusCode));
      })
        .on('error', reject)
        .end();
    });
    t.equal(status, 200, `request ${i} is served`);
  }
  await clock.tickAsync(0);
  t.match(
    leaks.map((report) => report.context),
    [
      { requestId: 'req-0', tenant: 't-1', user: '[unreadable]' },
      { requestId: 'req-1', labels: '[unreadable]' },
    ],
    'both leaks are reported, what could not be read shown as such',
  );
});
