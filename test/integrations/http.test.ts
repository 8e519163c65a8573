import t from 'tap';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { createPool } from 'generic-pool';
import { createDetector, type LeakReport } from '../../lib/index.js';
import { requestScope } from '../../lib/integrations/http.js';
import { pathOf } from '../../lib/integrations/request-scope.js';
import { requestScopeSuite, type Conn, type Routes, type Started } from '../helpers/http-scope.js';

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
  start: (routes, { scoped, client }) => {
    const plain = handler(routes);
    if (!scoped) return listen(plain);
    return listen(requestScope(plain, client ? { labels: (req) => ({ client: req.headers['x-client'] }) } : undefined));
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
});

t.test('takes the request id from the header the requestIdHeader option names', async (t) => {
  const detector = createDetector({ leakThresholdMs: 600_000 });
  t.teardown(() => detector.close());
  const pool = detector.watch(createPool<Conn>({ create: async () => ({ id: 0 }), destroy: async () => {} }), { name: 'db' });
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
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
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
