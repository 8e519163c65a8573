// The shared request-scope suite: every framework integration passes the same tests
// against a real server on 127.0.0.1 and real requests, with a watched generic-pool.
import type { Test } from 'tap';
import { request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type Detector, type LeakReport, type LeakReleasedEvent } from '../../lib/index.js';
import { fakeClock } from './clock.js';
import { siteOf } from './site.js';

export type Conn = { id: number };

/** What a framework's routes use; each test file writes the routes, with the markers. */
export interface Routes {
  pool: Pool<Conn>;
  /** Connections the leaky route keeps, released at teardown. */
  kept: Conn[];
  /** Called by GET /wait once it holds a connection. */
  holding: () => void;
  /** GET /wait releases its connection and answers once this settles; GET /abandon answers, keeping it. */
  gate: Promise<void>;
}

/** How a test starts the app: `abortGraceMs` is passed to the integration as given (undefined: its default). */
export interface StartOptions {
  scoped: boolean;
  client?: boolean;
  abortGraceMs?: number;
}

export interface Started {
  server: Server;
  close: () => Promise<void>;
}

/**
 * A framework under test. `start` serves, on 127.0.0.1 port 0:
 * - GET /users/:id: acquires (line marked `// LEAKS HERE`), keeps the connection, answers 200 `{"id":…}`;
 * - GET /clean: acquires and releases, answers 201 `clean` with header `x-answer: 42`;
 * - GET /fail: acquires and releases, then throws `new Error('boom')` to the framework;
 * - GET /wait: acquires (line marked `// HOLDS HERE`), calls holding(), awaits gate, releases, answers 200;
 * - GET /abandon (where `seesHandlerSettle`): acquires (line marked `// ABANDONS HERE`), calls holding(), awaits
 *   gate, keeps the connection, answers 200, and the handler's promise settles.
 * With `scoped`, behind the integration; with `client`, its `labels` option adds `client` from the `x-client` header.
 */
export interface ScopeHarness {
  /** The test file (`__filename`) that holds the markers. */
  file: string;
  /** The `route` label expected for GET /users/<id>?token=…: the pattern, or the path. */
  leakyRoute: (id: string) => string;
  /** The `route` label expected for GET /wait. */
  waitRoute: string;
  /** Whether the integration sees the handler's promise settle (and the app serves GET /abandon). */
  seesHandlerSettle: boolean;
  start(routes: Routes, options: StartOptions): Promise<Started>;
}

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function get(server: Server, path: string, headers: Record<string, string> = {}): Promise<Response> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves when the server has closed `count` more responses, and every scope ended on them has reported. */
function responsesClosed(server: Server, count: number): Promise<void> {
  return new Promise((resolve) => {
    let left = count;
    const onRequest = (_req: unknown, res: NodeJS.EventEmitter) =>
      res.once('close', () => {
        if (--left > 0) return;
        server.off('request', onRequest);
        // Whatever the order of the 'close' listeners, every one has run after this turn.
        setImmediate(resolve);
      });
    server.on('request', onRequest);
  });
}

/**
 * Sends GET `path` and resolves once the handler calls holding(); `leave()` then closes the
 * connection and resolves once the server has seen the response close, before it finished.
 */
export async function abandoned(server: Server, holding: Promise<void>, path: string, requestId: string): Promise<{ leave: () => Promise<void> }> {
  const { port } = server.address() as AddressInfo;
  const closed = responsesClosed(server, 1);
  const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { 'x-request-id': requestId } });
  req.on('error', () => {});
  req.end();
  await holding;
  return {
    leave: async () => {
      req.destroy();
      await closed;
    },
  };
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

let ids = 0;

async function setup(t: Test, harness: ScopeHarness, options: StartOptions) {
  const detector: Detector = createDetector({ leakThresholdMs: 600_000, stacks: 'always' });
  const pool = detector.watch(createPool<Conn>({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max: 20 }), { name: 'db' });
  const leaks: LeakReport[] = [];
  const late: LeakReleasedEvent[] = [];
  detector.on('leak', (report) => leaks.push(report));
  detector.on('leak-released', (event) => late.push(event));
  const holding = deferred();
  const gate = deferred();
  const routes: Routes = { pool, kept: [], holding: holding.resolve, gate: gate.promise };
  // Unless a test says otherwise, longer than any test runs: what a test sees did not wait for the grace.
  const started = await harness.start(routes, { abortGraceMs: 600_000, ...options });
  t.teardown(async () => {
    gate.resolve();
    started.server.closeAllConnections();
    await started.close();
    for (const conn of routes.kept) await pool.release(conn);
    detector.close();
    await pool.drain();
    await pool.clear();
  });
  /** Resolves with the leaks once there are `count`. */
  const leaked = (count: number) =>
    new Promise<LeakReport[]>((resolve) => {
      if (leaks.length >= count) return resolve(leaks);
      const check = () => {
        if (leaks.length < count) return;
        detector.off('leak', check);
        resolve(leaks);
      };
      detector.on('leak', check);
    });
  return { detector, pool, leaks, late, leaked, routes, holding: holding.promise, gate, server: started.server };
}

/** Records the timers set until `restore()`, so a test can see whether they keep the process alive. */
function recordTimers(): { made: Array<{ hasRef(): boolean }>; restore: () => void } {
  const made: Array<{ hasRef(): boolean }> = [];
  const original = globalThis.setTimeout;
  globalThis.setTimeout = Object.assign((...args: Parameters<typeof setTimeout>) => {
    const timer = original(...args);
    made.push(timer);
    return timer;
  }, original);
  return { made, restore: () => void (globalThis.setTimeout = original) };
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Runs the request-scope tests against one framework. */
export function requestScopeSuite(t: Test, harness: ScopeHarness): void {
  t.test('reports a connection the handler still holds when the response finishes, once, with the request labels and the acquiring line', async (t) => {
    const { leaks, leaked, server } = await setup(t, harness, { scoped: true });
    const closed = responsesClosed(server, 1);
    const res = await get(server, '/users/7?token=hunter2');
    t.equal(res.status, 200);
    t.same(JSON.parse(res.body), { id: '7' });
    const [report] = await leaked(1);
    await closed;
    t.equal(leaks.length, 1, 'exactly one report');
    t.match(report, { kind: 'scope-ended', pool: 'db' });
    t.same(Object.keys(report!.context), ['method', 'route', 'requestId']);
    t.equal(report!.context.method, 'GET');
    t.equal(report!.context.route, harness.leakyRoute('7'), 'the route, without the query string');
    t.match(report!.context.requestId, uuid, 'a generated request id');
    t.ok(report!.callSite!.startsWith(siteOf(harness.file, '// LEAKS HERE')), `names the handler's acquiring line (${report!.callSite})`);
    t.notMatch(JSON.stringify(report), 'hunter2', 'no query string in the report');
    t.notMatch(report!.format(), 'hunter2', 'no query string in the formatted report');
  });

  t.test('reports nothing for a handler that releases its connection', async (t) => {
    const { leaks, detector, server } = await setup(t, harness, { scoped: true });
    const closed = responsesClosed(server, 1);
    const res = await get(server, '/clean');
    t.equal(res.status, 201);
    await closed;
    t.same(leaks, []);
    t.same(detector.leases(), [], 'no lease left open');
  });

  t.test('reports nothing when the client goes away and the handler gives its connection back afterwards', async (t) => {
    const { leaks, late, server, holding, gate, detector } = await setup(t, harness, { scoped: true, abortGraceMs: undefined });
    const clock = fakeClock(t);
    const request = await abandoned(server, holding, '/wait', 'gone-1');
    const timers = recordTimers();
    try {
      await request.leave();
    } finally {
      timers.restore();
    }
    t.same(leaks, [], 'nothing reported as the client goes');
    t.ok(timers.made.length > 0 && timers.made.every((timer) => !timer.hasRef()), 'the grace timer keeps nothing alive');
    const pending = clock.countTimers();
    const released = new Promise<void>((resolve) => detector.once('release', () => resolve()));
    gate.resolve();
    await released;
    // Long enough for the handler to answer and settle.
    await new Promise((resolve) => setImmediate(resolve));
    if (harness.seesHandlerSettle) t.equal(clock.countTimers(), pending - 1, 'the grace timer is cleared once the handler has settled');
    await clock.tickAsync(10_000);
    await new Promise((resolve) => setImmediate(resolve));
    t.same(leaks, [], 'nothing reported when the default grace (10 s) ends either');
    t.same(late, []);
    t.same(detector.leases(), []);
  });

  t.test('reports what the handler still holds once abortGraceMs has passed since the client went away', async (t) => {
    const { leaks, leaked, late, server, holding, gate, detector } = await setup(t, harness, { scoped: true, abortGraceMs: 20 });
    const request = await abandoned(server, holding, '/wait?session=s3cret', 'gone-2');
    await request.leave();
    t.same(leaks, [], 'not as the client goes');
    const [report] = await leaked(1);
    t.match(report, { kind: 'scope-ended', context: { method: 'GET', route: harness.waitRoute, requestId: 'gone-2' } });
    t.ok(report!.callSite!.startsWith(siteOf(harness.file, '// HOLDS HERE')), `names the handler's acquiring line (${report!.callSite})`);
    t.notMatch(JSON.stringify(report), 's3cret', 'no query string in the report');
    const released = new Promise<void>((resolve) => detector.once('leak-released', () => resolve()));
    gate.resolve();
    await released;
    t.equal(late.length, 1, 'the handler released it afterwards: reported as a late release');
    t.equal(leaks.length, 1, 'reported once');
  });

  if (harness.seesHandlerSettle) {
    t.test('reports what the handler still holds as it settles after the client went away, without waiting for the grace', async (t) => {
      const { leaks, leaked, server, holding, gate } = await setup(t, harness, { scoped: true });
      const request = await abandoned(server, holding, '/abandon', 'gone-3');
      await request.leave();
      t.same(leaks, [], 'not as the client goes');
      gate.resolve();
      const [report] = await leaked(1);
      t.match(report, { kind: 'scope-ended', context: { method: 'GET', requestId: 'gone-3' } });
      t.ok(report!.callSite!.startsWith(siteOf(harness.file, '// ABANDONS HERE')), `names the handler's acquiring line (${report!.callSite})`);
    });
  }

  t.test('uses an incoming x-request-id as the requestId', async (t) => {
    const { leaked, server } = await setup(t, harness, { scoped: true });
    await get(server, '/users/1', { 'x-request-id': 'req-abc-123' });
    const [report] = await leaked(1);
    t.equal(report!.context.requestId, 'req-abc-123');
  });

  t.test('gives each of many concurrent requests its own labels', async (t) => {
    const { leaked, server } = await setup(t, harness, { scoped: true, client: true });
    const count = 20;
    const responses = await Promise.all(
      Array.from({ length: count }, (_, i) => get(server, `/users/${i}`, { 'x-request-id': `req-${i}`, 'x-client': `client-${i}` })),
    );
    t.same(responses.map((r) => r.status), Array(count).fill(200));
    const reports = await leaked(count);
    const seen = reports.map((r) => r.context).sort((a, b) => Number(String(a.requestId).slice(4)) - Number(String(b.requestId).slice(4)));
    t.same(
      seen,
      Array.from({ length: count }, (_, i) => ({ method: 'GET', route: harness.leakyRoute(String(i)), requestId: `req-${i}`, client: `client-${i}` })),
    );
  });

  t.test('the client receives the same response with and without the scope, errors included', async (t) => {
    const plain = await setup(t, harness, { scoped: false });
    const scoped = await setup(t, harness, { scoped: true });
    for (const path of ['/clean', '/fail', '/nowhere?q=1']) {
      const [a, b] = await Promise.all([get(plain.server, path), get(scoped.server, path)]);
      const { date: _a, ...aHeaders } = a.headers;
      const { date: _b, ...bHeaders } = b.headers;
      t.same({ status: b.status, headers: bHeaders, body: b.body }, { status: a.status, headers: aHeaders, body: a.body }, `GET ${path}`);
    }
    t.same(scoped.leaks, []);
  });
}
