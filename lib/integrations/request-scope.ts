import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { endScope, openScope, runInScope, type RefreshLabels } from '../context.js';
import { ListenerError, PoolwatchTypeError, codes, describe } from '../errors.js';
import type { Labels } from '../options.js';
import { WatchedPool } from '../watched-pool.js';
import { warn } from '../warn.js';
import { onRejected } from '../rejections.js';
import { safeLabels } from '../labels.js';
import { escapeLine } from '../escape.js';

/**
 * Options of every request scope (`requestScope`, `expressScope`, `fastifyScope`,
 * `koaScope`). `Req` is what the framework calls the request: node's `IncomingMessage`,
 * Express's `req`, Fastify's `request`, Koa's `ctx`.
 */
export interface RequestScopeOptions<Req = IncomingMessage> {
  /**
   * Extra labels for the request's leases, merged over `method`, `route` and
   * `requestId` (a key of the same name wins). Called once per request, before the
   * handler; it must return its labels, not a promise of them. If it throws, rejects or
   * returns no object, the request goes on with the default labels and that is shown
   * once as a process warning; a label it cannot read is shown as `[unreadable]`.
   * Default none.
   */
  labels?: (req: Req) => Labels | undefined | null;
  /** The incoming header whose value becomes `requestId`. Default `'x-request-id'`. */
  requestIdHeader?: string;
  /**
   * When the client goes away before the response has finished, how long (ms) the
   * handler may go on holding connections before those still leased are reported
   * (`scope-ended`). The scope ends sooner if the handler's promise settles in that time,
   * where the integration sees it (`requestScope` with an async handler, `koaScope`); `0`
   * ends it as the client goes. Leases still meet their pool's threshold meanwhile.
   * Default `10000`.
   */
  abortGraceMs?: number;
}

/** Options after validation: the header name is lower-case, as node keys `req.headers`. */
export interface ResolvedRequestScope<Req> {
  readonly labels: ((req: Req) => Labels | undefined | null) | undefined;
  readonly requestIdHeader: string;
  readonly abortGraceMs: number;
}

// A handler that outlives its client is usually still waiting on its queries: 10 s lets
// a slow but healthy one finish and give its connections back, and is still well under
// the default leakThresholdMs (30 s), so a real leak on an abandoned request is reported
// as `scope-ended`, naming the request, before the threshold would report it.
const defaultAbortGraceMs = 10_000;
// setTimeout takes at most 2^31-1 ms; a longer delay would fire at once.
const maxTimerMs = 2_147_483_647;

const keys = ['labels', 'requestIdHeader', 'abortGraceMs'];

function invalid(message: string): PoolwatchTypeError {
  return new PoolwatchTypeError(codes.invalidOption, message);
}

/** Validates request scope options at setup; throws a TypeError naming the option and value. */
export function resolveRequestScopeOptions<Req>(options: unknown, where: string): ResolvedRequestScope<Req> {
  if (options === undefined) return { labels: undefined, requestIdHeader: 'x-request-id', abortGraceMs: defaultAbortGraceMs };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid(`Expected the options of ${where} to be an object, got ${describe(options)}.`);
  }
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) throw invalid(`Unknown option \`${key}\` in ${where}. Expected one of: ${keys.join(', ')}.`);
  }
  const { labels, requestIdHeader = 'x-request-id', abortGraceMs = defaultAbortGraceMs } = options as Record<string, unknown>;
  if (labels !== undefined && typeof labels !== 'function') {
    throw invalid(`Expected \`labels\` to be a function returning labels, got ${describe(labels)}.`);
  }
  if (typeof requestIdHeader !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(requestIdHeader)) {
    throw invalid(`Expected \`requestIdHeader\` to be a header name, got ${describe(requestIdHeader)}.`);
  }
  if (typeof abortGraceMs !== 'number' || !Number.isFinite(abortGraceMs) || abortGraceMs < 0) {
    throw invalid(`Expected \`abortGraceMs\` to be a non-negative finite number of milliseconds, got ${describe(abortGraceMs)}.`);
  }
  return {
    labels: labels as ResolvedRequestScope<Req>['labels'],
    requestIdHeader: requestIdHeader.toLowerCase(),
    abortGraceMs: Math.min(abortGraceMs, maxTimerMs),
  };
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
 * The `route` label: the path, or, where the framework learns the matched pattern only
 * while routing (after the scope began), a function that sets `labels.route` to what is
 * known by then. It is called as leases record the labels, and as the scope ends.
 */
export type RouteLabel = string | RefreshLabels;

function warnLabels<Req>(options: ResolvedRequestScope<Req>, what: string, error: unknown): void {
  if (warned.has(options)) return;
  warned.add(options);
  let why: string;
  try {
    why = escapeLine(String((error as Error)?.message ?? error));
  } catch {
    why = 'an error whose message cannot be read';
  }
  warn(new ListenerError(`poolwatch: the \`labels\` option of a request scope ${what}: ${why}`, error));
}

function extraLabels<Req>(options: ResolvedRequestScope<Req>, req: Req): Labels | undefined {
  let extra: unknown;
  try {
    extra = options.labels!(req);
  } catch (error) {
    warnLabels(options, 'threw', error);
    return undefined;
  }
  if (extra === undefined || extra === null) return undefined;
  // An async labels function: its labels come too late for the request, and its rejection is said, not left unhandled.
  onRejected(extra, (error) => warnLabels(options, 'rejected', error));
  let refused: string | undefined;
  try {
    if (typeof extra !== 'object' || Array.isArray(extra)) refused = describe(extra);
    else if (extra instanceof Map) refused = 'a Map';
    else if (typeof (extra as PromiseLike<unknown>).then === 'function') refused = 'a promise (it must not be async)';
  } catch {
    refused = 'an object that cannot be read';
  }
  if (refused !== undefined) {
    warnLabels(options, `returned ${refused}, not an object of labels; its labels are left out`, new TypeError('return a plain object such as { tenant }'));
    return undefined;
  }
  // Read once, defensively: a getter or Proxy trap that throws is shown as unreadable, never thrown into the request.
  return safeLabels(extra as Labels);
}

/**
 * Runs `run` (the handler, or the rest of the framework's chain) in a scope labelled
 * `method`, `route`, `requestId` and the `labels` option's. The scope ends when the
 * response has finished; when the client went away first, once a promise `run` returned
 * settles, or `abortGraceMs` later, whichever comes first. Returns what `run` returns (a
 * promise as one that settles the same way) and throws what it throws: the framework sees
 * no difference.
 */
export function runRequestScope<Req, R>(
  options: ResolvedRequestScope<Req>,
  req: Req,
  raw: IncomingMessage,
  res: ServerResponse,
  route: RouteLabel,
  run: () => R,
): R {
  const extra = options.labels === undefined ? undefined : extraLabels(options, req);
  const live = typeof route !== 'string' && (extra === undefined || !('route' in extra));
  const labels: Record<string, unknown> = {
    method: raw.method ?? 'GET',
    route: typeof route === 'string' ? route : undefined,
    requestId: requestIdOf(raw, options.requestIdHeader),
  };
  if (live) (route as RefreshLabels)(labels);
  // Defined as own data: a label named `__proto__` stays a label.
  if (extra !== undefined) for (const key of Object.keys(extra)) Object.defineProperty(labels, key, { value: extra[key], enumerable: true, writable: true, configurable: true });
  const scope = openScope(labels, live ? (route as RefreshLabels) : undefined);
  const graceMs = options.abortGraceMs;
  // Set once the client has gone while the handler may still hold connections.
  let grace: ReturnType<typeof setTimeout> | undefined;
  const end = () => {
    if (grace !== undefined) clearTimeout(grace);
    endScope(scope, WatchedPool.scopeEnded);
  };
  // 'close' comes after 'finish', or alone when the connection closed first: one listener tells both.
  const closed = () => {
    if (scope.ended || grace !== undefined) return;
    if (res.writableFinished || graceMs === 0) return end();
    grace = setTimeout(end, graceMs);
    // poolwatch never keeps the process alive.
    grace.unref?.();
  };
  res.on('close', closed);
  // Closed before the scope began ('close' sets it): the event is gone.
  const early = res.destroyed;
  let result: R;
  try {
    result = runInScope(scope, run);
  } catch (error) {
    end();
    throw error;
  }
  if (early) queueMicrotask(closed);
  if (typeof (result as PromiseLike<unknown> | null)?.then !== 'function') return result;
  // Only a promise settling after the client left ends the scope early: one settled before
  // says nothing of work still feeding the response (a stream). Chained, so a rejection
  // nobody handles is still reported as unhandled, as the handler's was.
  return (result as PromiseLike<unknown>).then(
    (value) => {
      if (grace !== undefined) end();
      return value;
    },
    (error: unknown) => {
      if (grace !== undefined) end();
      throw error;
    },
  ) as R;
}

/** A node:http request listener, as `http.createServer()` takes. */
export type RequestListener<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  req: Req,
  res: Res,
) => unknown;

/**
 * Wraps a node:http request listener so each request runs in a poolwatch scope labelled
 * `method`, `route` (the path, without the query string) and `requestId`: a connection
 * the handler still holds when the response finishes is reported at once as a
 * `scope-ended` leak naming the acquiring line. When the client goes away first, the
 * handler has `abortGraceMs`, or until its promise settles, to give its connections back.
 *
 * `http.createServer(requestScope(async (req, res) => { … }))`
 *
 * The handler is called with the same `this` and arguments; its return value is passed
 * on (a promise as one that settles the same way), and what it throws reaches the server
 * as before. Throws a `PoolwatchTypeError` at once for bad options.
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
    return runRequestScope(resolved, req, req, res, pathOf(req.url), () => handler.call(this, req, res));
  };
}
