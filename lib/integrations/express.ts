import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathOf, requestLabels, resolveRequestScopeOptions, runRequestScope, type RequestScopeOptions } from './request-scope.js';

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
function routeOf(req: ExpressRequestLike): () => string {
  let matched: string | undefined;
  return () => {
    if (matched !== undefined) return matched;
    const pattern = req.route?.path;
    if (typeof pattern === 'string') return (matched = (req.baseUrl ?? '') + pattern);
    return pathOf(req.originalUrl ?? req.url);
  };
}

/**
 * Express middleware that runs the rest of the request (later middleware, the route
 * handler, error handlers) in a poolwatch scope labelled `method`, `route` and
 * `requestId`: a connection still leased when the response finishes, or when the client
 * goes away, is reported at once as a `scope-ended` leak naming the acquiring line.
 * `route` is the matched pattern (`/users/:id`) once Express knows it, else the path.
 *
 * `app.use(expressScope())`, before the routes; it changes nothing in the response or
 * in how errors reach Express. Throws a `PoolwatchTypeError` at once for bad options.
 */
export function expressScope<Req extends ExpressRequestLike = ExpressRequestLike>(
  options?: RequestScopeOptions<Req>,
): ExpressMiddleware<Req> {
  const resolved = resolveRequestScopeOptions<Req>(options, 'expressScope()');
  return function poolwatchScope(req, res, next) {
    const { labels, settle } = requestLabels(resolved, req, req, routeOf(req));
    runRequestScope(labels, res, settle, () => next());
  };
}
