import t from 'tap';
import { createServer } from 'node:http';
import express, { type Request } from 'express';
import { expressScope } from '../../lib/integrations/http.js';
import { requestScopeSuite, type Routes, type Started } from '../helpers/http-scope.js';

function app(routes: Routes, options: { scoped: boolean; client?: boolean }) {
  const { pool, kept } = routes;
  const app = express();
  if (options.scoped) app.use(expressScope<Request>(options.client ? { labels: (req) => ({ client: req.get('x-client') }) } : undefined));
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

async function start(routes: Routes, options: { scoped: boolean; client?: boolean }): Promise<Started> {
  const server = createServer(app(routes, options));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

requestScopeSuite(t, {
  file: __filename,
  // The pattern with its router's mount path.
  leakyRoute: () => '/users/:id',
  waitRoute: '/wait',
  start,
});

t.test('rejects bad options at once, naming the option', async (t) => {
  t.throws(() => expressScope({ requestIdHeadr: 'x' } as never), { code: 'POOLWATCH_INVALID_OPTION', message: /`requestIdHeadr` in expressScope\(\)/ });
  t.throws(() => expressScope({ labels: 'tenant' } as never), { code: 'POOLWATCH_INVALID_OPTION', message: /`labels` to be a function/ });
});
