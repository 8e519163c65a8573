import t from 'tap';
import { createServer } from 'node:http';
import express, { type Request } from 'express';
import type { AddressInfo } from 'node:net';
import { createPool } from 'generic-pool';
import { createDetector, type LeakReport } from '../../lib/index.js';
import { expressScope } from '../../lib/integrations/http.js';
import { requestScopeSuite, type Routes, type StartOptions, type Started } from '../helpers/http-scope.js';

// Express's default error handler logs each error a route throws with console.error (in any
// env but 'test'): GET /fail's, once for the plain app and once for the scoped one. Captured
// here instead of printed; a test after the routes' checks sees that is all that was logged.
const logged = t.capture(console, 'error', () => {});

function app(routes: Routes, options: StartOptions) {
  const { pool, kept } = routes;
  const app = express();
  const labels = options.client ? (req: Request) => ({ client: req.get('x-client') }) : undefined;
  if (options.scoped) app.use(expressScope<Request>({ labels, abortGraceMs: options.abortGraceMs }));
  const users = express.Router();
  users.get('/:id', async (req, res) => {
    const conn = await pool.acquire(); // LEAKS HERE
    kept.push(conn);
    res.json({ id: req.params.id });
  });
  app.use('/users', users);
  app.get('/clean', async (_req, res) => {
    await pool.release(await pool.acquire());
    res.status(201).set('x-answer', '42').send('clean');
  });
  app.get('/fail', async () => {
    await pool.release(await pool.acquire());
    throw new Error('boom');
  });
  app.get('/wait', async (_req, res) => {
    const conn = await pool.acquire(); // HOLDS HERE
    routes.holding();
    await routes.gate;
    await pool.release(conn);
    res.send('waited');
  });
  return app;
}

async function start(routes: Routes, options: StartOptions): Promise<Started> {
  const server = createServer(app(routes, options));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

requestScopeSuite(t, {
  file: __filename,
  // The pattern with its router's mount path.
  leakyRoute: () => '/users/:id',
  waitRoute: '/wait',
  // next() tells nothing of the handler.
  seesHandlerSettle: false,
  start,
});

t.test('a lease taken before routing, or in a nested scope, is reported with the route matched afterwards', async (t) => {
  const detector = createDetector({ leakThresholdMs: 600_000 });
  const pool = detector.watch(createPool({ create: async () => ({}), destroy: async () => {} }, { max: 3 }), { name: 'db' });
  const kept: object[] = [];
  t.teardown(async () => {
    for (const conn of kept) await pool.release(conn);
    detector.close();
  });
  const reports: LeakReport[] = [];
  const reported = new Promise<void>((resolve) => detector.on('leak', (report) => reports.push(report) === 3 && resolve()));
  const app = express();
  app.use(expressScope());
  app.use(async (_req, _res, next) => {
    kept.push(await pool.acquire());
    next();
  });
  app.get('/orders/:id', (_req, res) => void res.send('ok'));
  app.get('/items/:id', (_req, res) =>
    detector.scope({ step: 'load' }, async () => {
      kept.push(await pool.acquire());
      res.send('ok');
    }),
  );
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  t.equal(await (await fetch(`http://127.0.0.1:${port}/orders/5`)).text(), 'ok');
  t.equal(await (await fetch(`http://127.0.0.1:${port}/items/6`)).text(), 'ok');
  await reported;
  const seen = reports.map(({ context: { route, step } }) => `${String(route)} ${String(step)}`).sort();
  t.same(seen, ['/items/:id load', '/items/:id undefined', '/orders/:id undefined']);
});

t.test('express logged the error GET /fail threw, once per app, and nothing else', async (t) => {
  await new Promise((resolve) => setImmediate(resolve));
  t.same(logged.args().map(([error]) => (error as Error).message), ['boom', 'boom']);
});

t.test('rejects bad options at once, naming the option', async (t) => {
  t.throws(() => expressScope({ requestIdHeadr: 'x' } as never), { code: 'POOLWATCH_INVALID_OPTION', message: /`requestIdHeadr` in expressScope\(\)/ });
  t.throws(() => expressScope({ labels: 'tenant' } as never), { code: 'POOLWATCH_INVALID_OPTION', message: /`labels` to be a function/ });
  t.throws(() => expressScope({ abortGraceMs: -5 }), { code: 'POOLWATCH_INVALID_OPTION', message: /`abortGraceMs`.*got `-5`/ });
});
