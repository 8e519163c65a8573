import t from 'tap';
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { createPool } from 'generic-pool';
import { createDetector, type LeakReport } from '../../lib/index.js';
import { fastifyScope, type FastifyRequestLike } from '../../lib/integrations/http.js';
import { requestScopeSuite, type Routes, type StartOptions, type Started } from '../helpers/http-scope.js';

async function start(routes: Routes, options: StartOptions): Promise<Started> {
  const { pool, kept } = routes;
  const app = Fastify();
  const labels = options.client ? (request: FastifyRequestLike) => ({ client: request.raw.headers['x-client'] }) : undefined;
  if (options.scoped) await app.register(fastifyScope, { labels, abortGraceMs: options.abortGraceMs });
  // Routes in an encapsulated plugin with a prefix: the scope still covers them.
  await app.register(
    async (users) => {
      users.get<{ Params: { id: string } }>('/:id', async (request) => {
        const conn = await pool.acquire(); // LEAKS HERE
        kept.push(conn);
        return { id: request.params.id };
      });
    },
    { prefix: '/users' },
  );
  app.get('/clean', async (_request, reply) => {
    await pool.release(await pool.acquire());
    reply.code(201).header('x-answer', '42');
    return 'clean';
  });
  app.get('/fail', async () => {
    await pool.release(await pool.acquire());
    throw new Error('boom');
  });
  app.get('/wait', async () => {
    const conn = await pool.acquire(); // HOLDS HERE
    routes.holding();
    await routes.gate;
    await pool.release(conn);
    return 'waited';
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { server: app.server, close: () => app.close() };
}

requestScopeSuite(t, {
  file: __filename,
  // The pattern, prefix included.
  leakyRoute: () => '/users/:id',
  waitRoute: '/wait',
  // The onRequest hook's done() tells nothing of the handler.
  seesHandlerSettle: false,
  start,
});

t.test('covers the hooks after onRequest and a parsed body: a preHandler hook that leaks is reported with the route', async (t) => {
  const detector = createDetector({ leakThresholdMs: 600_000, stacks: 'always' });
  const pool = detector.watch(createPool({ create: async () => ({}), destroy: async () => {} }), { name: 'db' });
  const kept: object[] = [];
  t.teardown(async () => {
    for (const conn of kept) await pool.release(conn);
    detector.close();
  });
  const app = Fastify();
  t.teardown(() => app.close());
  await app.register(fastifyScope);
  app.post('/orders/:id', { preHandler: async () => void kept.push(await pool.acquire()) }, async (request) => request.body);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const reported = new Promise<LeakReport>((resolve) => detector.once('leak', resolve));
  const res = await fetch(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/orders/5`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'post-1', connection: 'close' },
    body: JSON.stringify({ item: 'tea' }),
  });
  t.same(await res.json(), { item: 'tea' });
  t.match(await reported, { kind: 'scope-ended', context: { method: 'POST', route: '/orders/:id', requestId: 'post-1' } });
});

t.test('fails the registration on bad options, naming the option; ignores register() own keys', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  await t.rejects(async () => void (await app.register(fastifyScope, { requestIdHeader: 42 } as never)), { code: 'POOLWATCH_INVALID_OPTION', message: /`requestIdHeader`/ });
  const third = Fastify();
  t.teardown(() => third.close());
  await t.rejects(async () => void (await third.register(fastifyScope, { abortGraceMs: '1s' } as never)), { code: 'POOLWATCH_INVALID_OPTION', message: /`abortGraceMs`/ });
  const other = Fastify();
  t.teardown(() => other.close());
  await t.resolves(async () => void (await other.register(fastifyScope, { prefix: '/api', logLevel: 'warn' })));
});
