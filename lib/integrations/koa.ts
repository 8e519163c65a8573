import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathOf, resolveRequestScopeOptions, runRequestScope, type RequestScopeOptions, type RouteLabel } from './request-scope.js';

/** What poolwatch reads of a Koa context (Koa 2 and 3). */
export interface KoaContextLike {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request target as it came, before any mount rewrote `ctx.url`. */
  readonly originalUrl?: string;
  /** The pattern @koa/router matched (`/users/:id`), once it has routed the request. */
  readonly _matchedRoute?: unknown;
}

/** A Koa middleware, as `app.use()` takes. */
export type KoaMiddleware<Ctx extends KoaContextLike = KoaContextLike> = (ctx: Ctx, next: () => Promise<unknown>) => Promise<unknown>;

/** @koa/router's matched pattern once it has routed, else the path without the query string. */
function routeOf(ctx: KoaContextLike): RouteLabel {
  return (labels) => {
    labels.route = typeof ctx._matchedRoute === 'string' ? ctx._matchedRoute : pathOf(ctx.originalUrl ?? ctx.req.url);
  };
}

/**
 * Koa middleware that runs the downstream middleware in a poolwatch scope labelled
 * `method`, `route` (the pattern @koa/router matched, e.g. `/users/:id`, else the path
 * without the query string) and `requestId`: a connection still leased when the response
 * finishes is reported at once as a `scope-ended` leak naming the acquiring line. When
 * the client goes away first, downstream has `abortGraceMs`, or until its promise
 * settles, to give its connections back. The `labels` option is called with the
 * context.
 *
 * `app.use(koaScope())`, first: it returns a promise that settles as downstream's does,
 * so errors and the response are Koa's as before. Throws a `PoolwatchTypeError` at once
 * for bad options.
 */
export function koaScope<Ctx extends KoaContextLike = KoaContextLike>(options?: RequestScopeOptions<Ctx>): KoaMiddleware<Ctx> {
  const resolved = resolveRequestScopeOptions<Ctx>(options, 'koaScope()');
  return function poolwatchScope(ctx, next) {
    return runRequestScope(resolved, ctx, ctx.req, ctx.res, routeOf(ctx), next);
  };
}
