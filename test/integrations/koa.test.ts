import t from 'tap';
import { createServer } from 'node:http';
import Koa from 'koa';
import { koaScope } from '../../lib/integrations/http.js';
import { requestScopeSuite, type Routes, type StartOptions, type Started } from '../helpers/http-scope.js';

// Koa has no router of its own: the routes are matched by hand, so the route label is the path.
function app(routes: Routes, options: StartOptions) {
  const { pool, kept } = routes;
  const app = new Koa();
  app.silent = true;
  const labels = options.client ? (ctx: Koa.Context) => ({ client: ctx.req.headers['x-client'] }) : undefined;
  if (options.scoped) app.use(koaScope({ labels, abortGraceMs: options.abortGraceMs }));
  app.use(async (ctx) => {
    const users = /^\/users\/([^/]+)$/.exec(ctx.path);
    if (users !== null) {
      const conn = await pool.acquire(); // LEAKS HERE
      kept.push(conn);
      ctx.body = { id: users[1] };
    } else if (ctx.path === '/clean') {
      await pool.release(await pool.acquire());
      ctx.status = 201;
      ctx.set('x-answer', '42');
      ctx.body = 'clean';
    } else if (ctx.path === '/fail') {
      await pool.release(await pool.acquire());
      throw new Error('boom');
    } else if (ctx.path === '/wait') {
      const conn = await pool.acquire(); // HOLDS HERE
      routes.holding();
      await routes.gate;
      await pool.release(conn);
      ctx.body = 'waited';
    } else if (ctx.path === '/abandon') {
      const conn = await pool.acquire(); // ABANDONS HERE
      routes.holding();
      await routes.gate;
      kept.push(conn);
      ctx.body = 'abandoned';
    }
  });
  return app;
}

async function start(routes: Routes, options: StartOptions): Promise<Started> {
  const server = createServer(app(routes, options).callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

requestScopeSuite(t, {
  file: __filename,
  leakyRoute: (id) => `/users/${id}`,
  waitRoute: '/wait',
  seesHandlerSettle: true,
  start,
});

t.test('rejects bad options at once, naming the option', async (t) => {
  t.throws(() => koaScope({ requestIdHeader: null } as never), { code: 'POOLWATCH_INVALID_OPTION', message: /`requestIdHeader`/ });
  t.throws(() => koaScope({ abortGraceMs: Infinity }), { code: 'POOLWATCH_INVALID_OPTION', message: /`abortGraceMs`/ });
});
