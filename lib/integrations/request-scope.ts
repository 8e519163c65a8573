import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { scope } from '../detector.js';
import { ListenerError, PoolwatchTypeError, codes, describe } from '../errors.js';
import type { Labels } from '../options.js';

/**
 * Options of every request scope (`requestScope`, `expressScope`, `fastifyScope`,
 * `koaScope`). `Req` is what the framework calls the request: node's `IncomingMessage`,
 * Express's `req`, Fastify's `request`, Koa's `ctx`.
 */
export interface RequestScopeOptions<Req = IncomingMessage> {
  /**
   * Extra labels for the request's leases, merged over `method`, `route` and
   * `requestId` (a key of the same name wins). Called once per request, before the
   * handler; if it throws, the request goes on with the default labels and the error
   * is shown once as a process warning. Default none.
   */
  labels?: (req: Req) => Labels | undefined | null;
  /** The incoming header whose value becomes `requestId`. Default `'x-request-id'`. */
  requestIdHeader?: string;
}

/** Options after validation: the header name is lower-case, as node keys `req.headers`. */
export interface ResolvedRequestScope<Req> {
  readonly labels: ((req: Req) => Labels | undefined | null) | undefined;
  readonly requestIdHeader: string;
}

const keys = ['labels', 'requestIdHeader'];

function invalid(message: string): PoolwatchTypeError {
  return new PoolwatchTypeError(codes.invalidOption, message);
}

/** Validates request scope options at setup; throws a TypeError naming the option and value. */
export function resolveRequestScopeOptions<Req>(options: unknown, where: string): ResolvedRequestScope<Req> {
  if (options === undefined) return { labels: undefined, requestIdHeader: 'x-request-id' };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid(`Expected the options of ${where} to be an object, got ${describe(options)}.`);
  }
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) throw invalid(`Unknown option \`${key}\` in ${where}. Expected one of: ${keys.join(', ')}.`);
  }
  const { labels, requestIdHeader = 'x-request-id' } = options as Record<string, unknown>;
  if (labels !== undefined && typeof labels !== 'function') {
    throw invalid(`Expected \`labels\` to be a function returning labels, got ${describe(labels)}.`);
  }
  if (typeof requestIdHeader !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(requestIdHeader)) {
    throw invalid(`Expected \`requestIdHeader\` to be a header name, got ${describe(requestIdHeader)}.`);
  }
  return { labels: labels as ResolvedRequestScope<Req>['labels'], requestIdHeader: requestIdHeader.toLowerCase() };
}

/**
 * The path of a request target, without its query string (which can carry tokens) and,
 * for an absolute-form target, without its scheme, credentials and host.
 */
export function pathOf(target: string | undefined): string {
  if (target === undefined || target === '') return '/';
  const query = target.indexOf('?');
  const path = query === -1 ? target : target.slice(0, query);
  if (path.startsWith('/') || path === '*') return path;
  // Absolute form (`http://user:pass@host/path`) keeps the path; anything else (a CONNECT
  // authority) loses what could be credentials.
  if (/^https?:\/\//i.test(path)) {
    try {
      return new URL(path).pathname;
    } catch {
      // not a URL after all
    }
  }
  return path.slice(path.lastIndexOf('@') + 1);
}

/** The `requestId` label: the incoming header's value when there is one, else a new UUID. */
export function requestIdOf(req: IncomingMessage, header: string): string {
  const value = req.headers[header];
  const id = Array.isArray(value) ? value[0] : value;
  return typeof id === 'string' && id !== '' ? id : randomUUID();
}

// A labels function that fails warns once per middleware, not once per request.
const warned = new WeakSet<object>();

/**
 * A request's labels: `method`, `route` and `requestId`, then the `labels` option's.
 * `route` may be a function: the framework learns the matched pattern only while
 * routing, after the scope began, so it is read each time the labels are, until
 * `settle()` fixes it (and lets go of the request).
 */
export function requestLabels<Req>(
  options: ResolvedRequestScope<Req>,
  req: Req,
  raw: IncomingMessage,
  route: string | (() => string),
): { labels: Labels; settle: () => void } {
  let extra: Labels | undefined | null;
  if (options.labels !== undefined) {
    try {
      extra = options.labels(req);
      if (extra !== undefined && extra !== null && (typeof extra !== 'object' || Array.isArray(extra))) {
        throw new TypeError(`it returned ${describe(extra)}, not an object of labels`);
      }
    } catch (error) {
      extra = undefined;
      if (!warned.has(options)) {
        warned.add(options);
        process.emitWarning(new ListenerError(`poolwatch: the \`labels\` option of a request scope threw: ${(error as Error)?.message ?? String(error)}`, error));
      }
    }
  }
  const labels: Record<string, unknown> = { method: raw.method ?? 'GET' };
  let settle = noop;
  if (typeof route === 'string' || (extra != null && 'route' in extra)) {
    labels.route = typeof route === 'string' ? route : undefined;
  } else {
    let read: (() => string) | undefined = route;
    let fixed = '';
    Object.defineProperty(labels, 'route', { enumerable: true, get: () => (read === undefined ? fixed : read()) });
    settle = () => {
      if (read === undefined) return;
      fixed = read();
      read = undefined;
    };
  }
  labels.requestId = requestIdOf(raw, options.requestIdHeader);
  if (extra != null) for (const [key, value] of Object.entries(extra)) labels[key] = value;
  return { labels, settle };
}

function noop(): void {}

/**
 * Settles once `res` has finished sending or its connection closed (the client went
 * away), whichever comes first. Never rejects.
 */
export function responseDone(res: ServerResponse): Promise<void> {
  if (res.writableFinished || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('finish', done);
      res.off('close', done);
      resolve();
    };
    res.on('finish', done);
    res.on('close', done);
  });
}

/**
 * Runs `run` (the handler, or the rest of the framework's chain) in a scope labelled
 * `labels` that ends when the response is done. Returns what `run` returns, unchanged,
 * and throws what it throws: the framework sees no difference.
 */
export function runRequestScope<R>(labels: Labels, res: ServerResponse, settle: () => void, run: () => R): R {
  let result!: R;
  // The scope's own promise only ends the scope; it never rejects, so nothing is unhandled.
  void scope(labels, () => {
    const done = responseDone(res).then(settle);
    result = run();
    return done;
  });
  return result;
}

/** A node:http request listener, as `http.createServer()` takes. */
export type RequestListener<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  req: Req,
  res: Res,
) => unknown;

/**
 * Wraps a node:http request listener so each request runs in a poolwatch scope labelled
 * `method`, `route` (the path, without the query string) and `requestId`: a connection
 * the handler still holds when the response finishes, or when the client goes away, is
 * reported at once as a `scope-ended` leak naming the acquiring line.
 *
 * `http.createServer(requestScope(async (req, res) => { … }))`
 *
 * The handler is called with the same `this`, arguments and return value; what it throws
 * reaches the server as before. Throws a `PoolwatchTypeError` at once for bad options.
 */
export function requestScope<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  handler: RequestListener<Req, Res>,
  options?: RequestScopeOptions<Req>,
): RequestListener<Req, Res> {
  if (typeof handler !== 'function') {
    throw invalid(`Expected the handler of requestScope() to be a request listener function, got ${describe(handler)}.`);
  }
  const resolved = resolveRequestScopeOptions<Req>(options, 'requestScope()');
  return function scopedRequestListener(this: unknown, req: Req, res: Res): unknown {
    const { labels, settle } = requestLabels(resolved, req, req, pathOf(req.url));
    return runRequestScope(labels, res, settle, () => handler.call(this, req, res));
  };
}
