import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathOf, resolveRequestScopeOptions, runRequestScope, type RequestScopeOptions } from './request-scope.js';

/** What poolwatch reads of a Fastify request (Fastify 4.10+ and 5). */
export interface FastifyRequestLike {
  readonly raw: IncomingMessage;
  /** `url` is the matched route pattern (`/users/:id`, with its prefix); unset for a 404. */
  readonly routeOptions?: { readonly url?: string };
}

interface FastifyReplyLike {
  readonly raw: ServerResponse;
}

type OnRequestHook = (request: FastifyRequestLike, reply: FastifyReplyLike, done: (error?: Error) => void) => void;

interface FastifyLike {
  addHook(name: 'onRequest', hook: OnRequestHook): unknown;
}

/** Options of {@link fastifyScope}: the request scope's, as `app.register()` passes them. */
export type FastifyScopeOptions = RequestScopeOptions<FastifyRequestLike>;

// Keys Fastify's register() reads for itself and leaves in the options it passes on.
const registerKeys = new Set(['prefix', 'logLevel', 'logSerializers']);

/**
 * A Fastify plugin that runs each request, from its `onRequest` hooks on (body parsing,
 * validation, `preHandler` hooks, the route handler, `onSend`, error handlers), in a
 * poolwatch scope labelled `method`, `route` (the matched pattern, e.g. `/users/:id`,
 * else the path without the query string) and `requestId`: a connection still leased
 * when the response finishes is reported at once as a `scope-ended` leak naming the
 * acquiring line; when the client goes away first, the handler has `abortGraceMs` to give
 * its connections back.
 *
 * `await app.register(fastifyScope, options?)`, before other plugins: like a plugin
 * wrapped in fastify-plugin it is not encapsulated, so its hook covers every route, and
 * `onRequest` hooks registered before it run outside the scope. Work in `onResponse`
 * hooks comes after the response finished: give it its own `scope()`. Bad options fail
 * the registration with a `PoolwatchTypeError`.
 */
export function fastifyScope(instance: object, options: FastifyScopeOptions, done: (error?: Error) => void): void {
  let hook: OnRequestHook;
  try {
    const own = Object.fromEntries(Object.entries(options ?? {}).filter(([key]) => !registerKeys.has(key)));
    const resolved = resolveRequestScopeOptions<FastifyRequestLike>(own, 'fastifyScope');
    hook = function poolwatchScope(request, reply, next) {
      const url = request.routeOptions?.url;
      const route = typeof url === 'string' ? url : pathOf(request.raw.url);
      runRequestScope(resolved, request, request.raw, reply.raw, route, next);
    };
  } catch (error) {
    done(error as Error);
    return;
  }
  (instance as FastifyLike).addHook('onRequest', hook);
  done();
}

// What fastify-plugin sets: hooks added by the plugin apply to the whole instance.
Object.assign(fastifyScope, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'poolwatch',
  [Symbol.for('plugin-meta')]: { name: 'poolwatch' },
});
