import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathOf, resolveRequestScopeOptions, runRequestScope, type RequestScopeOptions, type RouteLabel } from './request-scope.js';

/** What poolwatch reads of an Express request (Express 4 and 5). */
export interface ExpressRequestLike extends IncomingMessage {
  /** The full request target, before routers strip their mount path. */
  originalUrl?: string;
  /** The mount path of the router the matched route belongs to. */
  baseUrl?: string;
  /** The matched route, once the router has found it. */
  route?: { path?: unknown };
}

/** An Express middleware, as `app.use()` takes. */
export type ExpressMiddleware<Req extends ExpressRequestLike = ExpressRequestLike> = (
  req: Req,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

/**
 * The matched route pattern (`/users/:id`, with the mount path of its router) once
 * Express has routed the request, else the path without the query string.
 */
function routeOf(req: ExpressRequestLike): RouteLabel {
  let matched = false;
  return (labels) => {
    if (matched) return;
    const pattern = req.route?.path;
    matched = typeof pattern === 'string';
    labels.route = matched ? (req.baseUrl ?? '') + (pattern as string) : pathOf(req.originalUrl ?? req.url);
  };
}

/**
 * Express middleware that runs the rest of the request (later middleware, the route
 * handler, error handlers) in a poolwatch scope labelled `method`, `route` and
 * `requestId`: a connection still leased when the response finishes is reported at once
 * as a `scope-ended` leak naming the acquiring line; when the client goes away first, the
 * handler has `abortGraceMs` to give its connections back. `route` is the matched pattern
 * (`/users/:id`) once Express knows it, else the path.
 *
 * `app.use(expressScope())`, before the routes; it changes nothing in the response or
 * in how errors reach Express. Throws a `PoolwatchTypeError` at once for bad options.
 */
export function expressScope<Req extends ExpressRequestLike = ExpressRequestLike>(
  options?: RequestScopeOptions<Req>,
): ExpressMiddleware<Req> {
  const resolved = resolveRequestScopeOptions<Req>(options, 'expressScope()');
  return function poolwatchScope(req, res, next) {
    runRequestScope(resolved, req, req, res, routeOf(req), next);
  };
}
