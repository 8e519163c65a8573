import t, { type Test } from 'tap';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type LeakReport } from '../../lib/index.js';
import { requestScope } from '../../lib/integrations/http.js';
import { pathOf } from '../../lib/integrations/request-scope.js';
import { abandoned, deferred, requestScopeSuite, type Conn, type Routes, type Started } from '../helpers/http-scope.js';
import { fakeClock } from '../helpers/clock.js';
import { captureWarnings } from '../helpers/warnings.js';

// A hand-written router: what a plain node:http app does.
function handler(routes: Routes) {
  const { pool, kept } = routes;
  return async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url!, 'http://x').pathname;
    const users = /^\/users\/([^/]+)$/.exec(path);
    if (users !== null) {
      const conn = await pool.acquire(); // LEAKS HERE
      kept.push(conn);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: users[1] }));
    } else if (path === '/clean') {
      await pool.release(await pool.acquire());
      res.writeHead(201, { 'x-answer': '42' }).end('clean');
    } else if (path === '/fail') {
      await pool.release(await pool.acquire());
      res.writeHead(500).end('boom');
    } else if (path === '/wait') {
      const conn = await pool.acquire(); // HOLDS HERE
      routes.holding();
      await routes.gate;
      await pool.release(conn);
      res.end('waited');
    } else if (path === '/abandon') {
      const conn = await pool.acquire(); // ABANDONS HERE
      routes.holding();
      await routes.gate;
      kept.push(conn);
      res.end('abandoned');
    } else {
      res.writeHead(404).end('not found');
    }
  };
}

async function listen(listener: (req: IncomingMessage, res: ServerResponse) => unknown): Promise<Started> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

requestScopeSuite(t, {
  file: __filename,
  // node:http knows no route patterns: the path.
  leakyRoute: (id) => `/users/${id}`,
  waitRoute: '/wait',
  seesHandlerSettle: true,
  start: (routes, { scoped, client, abortGraceMs }) => {
    const plain = handler(routes);
    if (!scoped) return listen(plain);
    return listen(requestScope(plain, { labels: client ? (req) => ({ client: req.headers['x-client'] }) : undefined, abortGraceMs }));
  },
});

t.test('passes this, the arguments and the return value through, and a thrown error out', async (t) => {
  const self = {};
  const req = { method: 'GET', url: '/x?a=1', headers: {} } as IncomingMessage;
  // A response that never finishes: the scope stays open, the call returns at once.
  const res = Object.assign(new EventEmitter(), { writableFinished: false, destroyed: false }) as unknown as ServerResponse;
  const seen: unknown[] = [];
  const wrapped = requestScope(function (this: unknown, ...args: unknown[]) {
    seen.push(this, ...args);
    return 'result';
  });
  t.equal(wrapped.call(self, req, res), 'result');
  t.same(seen, [self, req, res]);
  t.strictSame(seen[0], self);
  const boom = new Error('boom');
  t.throws(() => requestScope(() => { throw boom; })(req, res), boom);
  t.equal(await requestScope(async () => 'async result')(req, res), 'async result', "a promise settles with the handler's value");
  await t.rejects(requestScope(async () => { throw boom; })(req, res) as Promise<unknown>, boom, "and with the handler's error");
});

/** A server whose handler holds a connection from `pool` until `gate` opens, then releases it and answers. */
async function holdingServer(t: Test, pool: Pool<Conn>, abortGraceMs: number) {
  const holding = deferred();
  const gate = deferred();
  const started = await listen(
    requestScope(
      async (_req, res) => {
        const conn = await pool.acquire();
        holding.resolve();
        await gate.promise;
        await pool.release(conn);
        res.end();
      },
      { abortGraceMs },
    ),
  );
  t.teardown(async () => {
    gate.resolve();
    started.server.closeAllConnections();
    await started.close();
  });
  return { server: started.server, holding: holding.promise, gate };
}

// A detector, closed at the end of `t`, watching an in-memory pool named 'db'.
function watchedPool(t: Test, leakThresholdMs: number) {
  const detector = createDetector({ leakThresholdMs });
  t.teardown(() => detector.close());
  const pool = detector.watch(createPool<Conn>({ create: async () => ({ id: 0 }), destroy: async () => {} }), { name: 'db' });
  return { detector, pool };
}

t.test('abortGraceMs: 0 ends the scope as the client goes, reporting what the handler holds then', async (t) => {
  const { detector, pool } = watchedPool(t, 600_000);
  const reports: LeakReport[] = [];
  detector.on('leak', (report) => reports.push(report));
  const { server, holding } = await holdingServer(t, pool, 0);
  const request = await abandoned(server, holding, '/', 'gone-0');
  await request.leave();
  t.match(reports, [{ kind: 'scope-ended', context: { requestId: 'gone-0' } }]);
});

t.test('a response already closed when the scope begins (its close event gone) still ends the scope', async (t) => {
  const { detector, pool } = watchedPool(t, 600_000);
  const reported = new Promise<LeakReport>((resolve) => detector.once('leak', resolve));
  let kept: Conn | undefined;
  t.teardown(async () => void (kept !== undefined && (await pool.release(kept))));
  const req = { method: 'GET', url: '/late', headers: { 'x-request-id': 'late-1' } } as unknown as IncomingMessage;
  const res = Object.assign(new EventEmitter(), { writableFinished: false, destroyed: true }) as unknown as ServerResponse;
  await requestScope(
    async () => {
      kept = await pool.acquire();
    },
    { abortGraceMs: 0 },
  )(req, res);
  t.match(await reported, { kind: 'scope-ended', context: { route: '/late', requestId: 'late-1' } });
});

t.test('a connection held after the client went away still meets its threshold during the grace', async (t) => {
  const { detector, pool } = watchedPool(t, 1000);
  const reports: LeakReport[] = [];
  detector.on('leak', (report) => reports.push(report));
  const clock = fakeClock(t);
  const { server, holding } = await holdingServer(t, pool, 60_000);
  const request = await abandoned(server, holding, '/', 'gone-t');
  await request.leave();
  await clock.tickAsync(1000);
  t.match(reports, [{ kind: 'threshold', context: { requestId: 'gone-t' } }], 'reported at the threshold, long before the grace ends');
});

t.test('takes the request id from the header the requestIdHeader option names', async (t) => {
  const { detector, pool } = watchedPool(t, 600_000);
  const reports: LeakReport[] = [];
  const reported = new Promise<void>((resolve) => detector.on('leak', (report) => resolve(void reports.push(report))));
  let kept: Conn | undefined;
  const { server, close } = await listen(
    requestScope(
      async (_req, res) => {
        kept = await pool.acquire();
        res.end();
      },
      { requestIdHeader: 'X-Correlation-ID', labels: () => ({ route: 'custom', tenant: 'acme' }) },
    ),
  );
  t.teardown(async () => {
    await close();
    if (kept !== undefined) await pool.release(kept);
  });
  await fetchOnce(server, { 'x-correlation-id': 'corr-9', 'x-request-id': 'not-this-one' });
  await reported;
  t.same(reports[0]!.context, { method: 'GET', route: 'custom', requestId: 'corr-9', tenant: 'acme' }, "the labels option's route wins");
});

t.test('a labels function that throws warns once and the request goes on with the default labels', async (t) => {
  const warnings = captureWarnings(t);
  const { server, close } = await listen(
    requestScope((_req, res) => void res.writeHead(204).end(), {
      labels: () => {
        throw new Error('no tenant');
      },
    }),
  );
  t.teardown(close);
  t.equal((await fetchOnce(server)).statusCode, 204);
  t.equal((await fetchOnce(server)).statusCode, 204);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(warnings.length, 1, 'one warning, not one per request');
  t.match(warnings[0], { code: 'POOLWATCH_LISTENER_ERROR', message: /labels.*no tenant/ });
});

t.test('the route label drops the query string, and the scheme, credentials and host of an absolute target', async (t) => {
  t.equal(pathOf('/users/7?token=hunter2'), '/users/7');
  t.equal(pathOf('http://admin:hunter2@db.internal:8080/users/7?token=x'), '/users/7');
  t.equal(pathOf('*'), '*');
  t.equal(pathOf(''), '/');
  t.equal(pathOf(undefined), '/');
  t.notMatch(pathOf('user:hunter2@host:443'), 'hunter2');
});

t.test('rejects a handler that is not a function and bad options, naming them', async (t) => {
  t.throws(() => requestScope('app' as never), { code: 'POOLWATCH_INVALID_OPTION', message: /handler of requestScope\(\)/ });
  t.throws(() => requestScope(() => {}, null as never), { code: 'POOLWATCH_INVALID_OPTION', message: /options of requestScope\(\) to be an object, got `null`/ });
  t.throws(() => requestScope(() => {}, { requestIdHeader: '' }), { code: 'POOLWATCH_INVALID_OPTION', message: /`requestIdHeader` to be a header name, got `""`/ });
  t.throws(() => requestScope(() => {}, { requestIdHeader: 'x request' }), { code: 'POOLWATCH_INVALID_OPTION' });
  t.throws(() => requestScope(() => {}, { label: () => ({}) } as never), { code: 'POOLWATCH_INVALID_OPTION', message: /Unknown option `label`/ });
  for (const abortGraceMs of [-1, Infinity, Number.NaN, '10s', null]) {
    t.throws(() => requestScope(() => {}, { abortGraceMs } as never), { code: 'POOLWATCH_INVALID_OPTION', message: /`abortGraceMs` to be a non-negative finite number/ }, String(abortGraceMs));
  }
  t.doesNotThrow(() => requestScope(() => {}, { abortGraceMs: 0 }));
});

function fetchOnce(server: import('node:http').Server, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    });
    req.on('error', reject);
    req.end();
  });
}
