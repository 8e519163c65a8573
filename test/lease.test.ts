/**
 * lease(): what the compliance suite (test/helpers/compliance.ts) cannot show for every
 * pool at once. The stale release that pg-pool, generic-pool and tarn accept silently,
 * step by step on each; forgotten handles found by the garbage collector (with
 * `--expose-gc`, set below for this file's process); `await using` natively (Node 24+) and
 * as TypeScript compiles it for Node 20; the preload; bad input.
 */
import t, { type Test } from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import pg from 'pg';
import { createPool as createGenericPool, type Pool as GenericPool } from 'generic-pool';
import { Pool as TarnPool } from 'tarn';
import { createDetector, defaultDetector, detectorOf, lease, unwatch, codes, type Detector, type LeakReport, type MisuseEvent } from '../lib/index.js';
import { expectNoLeaks, LeakError } from '../lib/testing/index.js';
import { startPostgres } from './helpers/postgres.js';
import { siteOf } from './helpers/site.js';
import { captureWarnings } from './helpers/warnings.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const site = (marker: string) => siteOf(__filename, marker);

// One PostgreSQL for the file, started by the first test that needs it.
let started: ReturnType<typeof startPostgres> | undefined;
const database = () => (started ??= startPostgres(t));

interface Conn {
  id: number;
}
let ids = 0;
const genericPool = (max: number): GenericPool<Conn> => createGenericPool({ create: async () => ({ id: ++ids }), destroy: async () => {} }, { max });
const tarnPool = (max: number) => new TarnPool<Conn>({ create: async () => ({ id: ++ids }), destroy: () => {}, min: 0, max });

/** A generic-pool watched by a detector of its own, both closed at the test's end. */
function watchedGenericPool(t: Test, max: number): { pool: GenericPool<Conn>; detector: Detector } {
  const pool = genericPool(max);
  const detector = createDetector();
  detector.watch(pool);
  t.teardown(async () => {
    detector.close();
    await pool.drain();
    await pool.clear();
  });
  return { pool, detector };
}

/** Runs node with `args` from the package root, without this machine's poolwatch settings, to its end. */
async function runNode(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('POOLWATCH_') && key !== 'NODE_OPTIONS'));
  const child = spawn(process.execPath, args, { cwd: join(__dirname, '..'), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, out, err };
}

function record(detector: Detector) {
  const seen = { leak: [] as LeakReport[], misuse: [] as MisuseEvent[] };
  detector.on('leak', (report) => seen.leak.push(report));
  detector.on('misuse', (event) => seen.misuse.push(event));
  return seen;
}

/**
 * Collects garbage until `done()` says what it waited for happened: the registry's
 * callbacks run as a task after the collection that found the handle, never inside it.
 */
async function collect(done: () => boolean): Promise<void> {
  for (let round = 0; round < 50 && !done(); round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * The pools where a late second release by a previous borrower silently gives back the
 * connection its new borrower holds. Each gives: how to borrow and give back without
 * poolwatch, and whether the pool still counts a connection as leased.
 */
interface Case<P extends object, C> {
  name: string;
  create(t: Test): Promise<P>;
  acquire(pool: P): Promise<C>;
  release(pool: P, conn: C): unknown;
  leased(pool: P, conn: C): boolean;
  use(conn: C): Promise<unknown>;
}

async function staleRelease<P extends object, C>(t: Test, c: Case<P, C>): Promise<void> {
  await t.test(`${c.name}: unwatched, a late second release gives back the connection its new borrower holds`, async (t) => {
    const pool = await c.create(t);
    const first = await c.acquire(pool);
    await c.release(pool, first);
    const second = await c.acquire(pool);
    t.equal(second, first, 'the pool hands the same connection to the next borrower');
    await c.release(pool, first);
    t.notOk(c.leased(pool, second), 'the pool took it back from its new borrower, who still uses it');
  });

  await t.test(`${c.name}: through lease(), that late release is refused, names both leases, and leaves the new borrower its connection`, async (t) => {
    const pool = await c.create(t);
    const detector = createDetector();
    detector.watch(pool);
    t.teardown(() => detector.close());
    const seen = record(detector);
    const first = await lease(pool); // FIRST
    await first.release();
    const second = await lease(pool); // SECOND
    t.equal(second.connection, first.connection, 'the same connection, now the second borrower\'s');
    await first.release(); // STALE
    t.ok(c.leased(pool, second.connection as C), 'the pool still counts it leased');
    t.equal(detector.leases().length, 1, "poolwatch still counts the second borrower's lease open");
    await c.use(second.connection as C);
    t.equal(seen.misuse.length, 1);
    const misuse = seen.misuse[0]!;
    t.match(misuse, { kind: 'stale-release', method: 'release' });
    t.ok(misuse.callSite?.startsWith(site('// STALE')), 'names the stale release');
    t.ok(misuse.lease?.callSite?.startsWith(site('// FIRST')), "names the handle's own lease");
    t.ok(misuse.current?.callSite?.startsWith(site('// SECOND')), 'names the lease that holds the connection now');
    t.match(misuse.message, new RegExp(`went to another borrower at ${site('// STALE')}.*acquired at ${site('// FIRST')}.*acquired at ${site('// SECOND')}`));
    await second.release();
    t.notOk(c.leased(pool, second.connection as C));
    t.match(detector.stats()[detector.leases()[0]?.pool ?? Object.keys(detector.stats())[0]!], { open: 0, released: 2, misuse: 1 });
  });
}

t.test('the stale release pools accept silently, refused on real pools', async (t) => {
  await staleRelease<GenericPool<Conn>, Conn>(t, {
    name: 'generic-pool',
    create: async (t) => {
      const pool = genericPool(1);
      t.teardown(async () => {
        await pool.drain();
        await pool.clear();
      });
      return pool;
    },
    acquire: (pool) => pool.acquire(),
    release: (pool, conn) => pool.release(conn),
    leased: (pool, conn) => pool.isBorrowedResource(conn),
    use: async () => undefined,
  });

  await staleRelease<TarnPool<Conn>, Conn>(t, {
    name: 'tarn',
    create: async (t) => {
      const pool = tarnPool(1);
      t.teardown(() => pool.destroy());
      return pool;
    },
    acquire: (pool) => pool.acquire().promise,
    release: (pool, conn) => pool.release(conn),
    leased: (pool) => pool.numUsed() === 1,
    use: async () => undefined,
  });

  const db = await database();
  await staleRelease<pg.Pool, pg.PoolClient>(t, {
    name: 'pg-pool',
    create: async (t) => {
      const pool = new pg.Pool({ ...db, max: 1 });
      t.teardown(() => pool.end());
      return pool;
    },
    acquire: (pool) => pool.connect(),
    // The borrower's own client.release(): pg-pool sets a new one at each checkout, so the first borrower's call releases the second's checkout.
    release: (_pool, client) => client.release(),
    leased: (pool) => pool.idleCount === 0 && pool.totalCount === 1,
    use: (client) => client.query('SELECT 1'),
  });
});

t.test('a handle the collector finds while open is a leak of kind collected, at once, naming the lease() line', async (t) => {
  const pool = genericPool(2);
  // Not drained: drain() would wait for the forgotten connection, which nothing gives back.
  t.teardown(() => pool.clear());
  // A threshold that never comes: the report is the collector's, not the clock's.
  const detector = createDetector({ leakThresholdMs: 3_600_000 });
  detector.watch(pool);
  t.teardown(() => detector.close());
  const seen = record(detector);

  // Released, then dropped: nothing to report.
  await (async () => {
    const handle = await lease(pool);
    await handle.release();
  })();
  // Dropped while open.
  await (async () => {
    const handle = await lease(pool); // FORGOTTEN
    t.ok(handle.connection);
  })();
  t.equal(seen.leak.length, 0, 'nothing before the collector runs');
  await collect(() => seen.leak.length > 0);
  t.equal(seen.leak.length, 1, 'one report: the released handle is not one');
  const report = seen.leak[0]!;
  t.match(report, { kind: 'collected', via: 'lease' });
  t.ok(report.callSite?.startsWith(site('// FORGOTTEN')), `names the lease() line: ${report.callSite}`);
  t.match(report.message, /garbage-collected without a release, after .*, acquired by lease\(\) at/);
  t.match(report.format(), /lease\(\): its handle was dropped while open, so nothing can give the connection back/);
  t.match(detector.stats()['generic-pool'], { open: 1, leaked: 1 }, 'without reclaimAfterMs the connection stays leased');
});

t.test('with reclaimAfterMs, a collected handle\'s connection is taken back at once and a waiter is served', async (t) => {
  const db = await database();
  const pool = new pg.Pool({ ...db, max: 1 });
  t.teardown(() => pool.end());
  // A reclaim age and threshold that never come: only the collector can free the connection.
  const detector = createDetector({ leakThresholdMs: 3_600_000, reclaimAfterMs: 3_600_000 });
  detector.watch(pool);
  t.teardown(() => detector.close());
  const seen = record(detector);
  await (async () => {
    const handle = await lease(pool);
    await handle.connection.query('BEGIN');
  })();
  const waiter = pool.connect();
  await collect(() => seen.leak.length > 0);
  const next = await waiter;
  t.match(seen.leak, [{ kind: 'collected', activity: 'idle-in-transaction' }], 'one report, with what the connection was doing');
  t.equal((await next.query('SELECT 1 AS one')).rows[0].one, 1, 'the waiter got a working connection');
  next.release();
  t.match(detector.stats().pg, { open: 0, destroyed: 1, released: 1, leaked: 1 });
});

t.test('lease() on a pool no detector watches watches it with defaultDetector()', async (t) => {
  const pool = genericPool(1);
  t.teardown(async () => {
    unwatch(pool);
    await pool.drain();
    await pool.clear();
  });
  t.equal(detectorOf(pool), undefined);
  const handle = await lease(pool);
  t.equal(detectorOf(pool), defaultDetector());
  t.match(defaultDetector().leases(), [{ via: 'lease' }]);
  await handle.release();
  t.same(defaultDetector().leases(), []);
});

t.test('expectNoLeaks() shows that a lease left open came from lease(), and how to give it back', async (t) => {
  const { pool, detector } = watchedGenericPool(t, 1);
  const handle = await lease(pool); // LEFT OPEN
  let error: unknown;
  try {
    expectNoLeaks(detector, { color: false });
  } catch (thrown) {
    error = thrown;
  }
  t.ok(error instanceof LeakError);
  const message = (error as LeakError).message;
  t.match(message, new RegExp(`acquired by lease\\(\\) at ${site('// LEFT OPEN').replace(/[.]/g, '\\.')}`));
  t.match(message, /give it back with its handle \(release\(\)\), or declare it with `await using`, or pass lease\(\) a function/);
  await handle.release();
});

t.test('bad input: a clear rejection naming what is wrong, nothing leased', async (t) => {
  await t.rejects(lease(null as unknown as object), { code: codes.unsupportedPool, message: /Expected a pool to lease from, got `null`/ });
  await t.rejects(lease({ acquire() {} }), { code: codes.unsupportedPool });
  const { pool, detector } = watchedGenericPool(t, 1);
  await t.rejects(lease(pool, 'SELECT 1' as never), { code: codes.invalidOption, message: /second argument of lease\(\) to be a function .*got `"SELECT 1"` \(string\)/ });
  t.same(detector.leases(), []);
  t.equal(pool.borrowed, 0);
});

t.test("a pool's acquire error reaches lease() unchanged and leaves no lease", async (t) => {
  const pool = tarnPool(1);
  const refusal = new Error('the database refused');
  // A pool whose every acquire fails at once, as tarn reports a create that failed.
  (pool as unknown as { acquire(): unknown }).acquire = () => ({ promise: Promise.reject(refusal) });
  const detector = createDetector();
  detector.watch(pool);
  t.teardown(async () => {
    detector.close();
    await pool.destroy();
  });
  await t.rejects(lease(pool), refusal);
  t.same(detector.leases(), []);
  t.match(detector.stats().tarn, { open: 0, failed: 1 });
});

t.test("a handle whose connection the app gave back itself: await using's end is quiet, release() is stale", async (t) => {
  const db = await database();
  const pool = new pg.Pool({ ...db, max: 1 });
  t.teardown(() => pool.end());
  const detector = createDetector();
  detector.watch(pool);
  t.teardown(() => detector.close());
  const seen = record(detector);
  await (async () => {
    await using handle = await lease(pool);
    handle.connection.release();
  })();
  t.same(seen.misuse, [], 'the block end gives back nothing, and says nothing');
  const handle = await lease(pool);
  handle.connection.release();
  await handle.release();
  t.match(seen.misuse, [{ kind: 'stale-release' }]);
  t.match(detector.stats().pg, { open: 0, released: 2, misuse: 1 });
  t.equal(pool.idleCount, 1, 'the pool has its one client back, once');
});

t.test('postgres.js cannot discard one connection: destroy() gives it back and says so once', async (t) => {
  const warnings = captureWarnings(t);
  const db = await database();
  const { default: postgres } = await import('postgres');
  const sql = postgres({ host: db.host, port: db.port, user: db.user, password: db.password, database: db.database, max: 1, onnotice: () => {} });
  t.teardown(() => sql.end());
  const detector = createDetector();
  detector.watch(sql);
  t.teardown(() => detector.close());
  await (await lease(sql)).destroy();
  await (await lease(sql)).destroy();
  t.match(detector.stats().postgres, { open: 0, released: 2, destroyed: 0 });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(warnings.filter((w) => (w as Error & { code?: string }).code === 'POOLWATCH_DESTROY_UNSUPPORTED').length, 1);
});

// The same block, compiled by TypeScript for Node 20 (a helper in place of `using`) and, on a
// Node with the syntax, left as it is.
const usingSource = readFileSync(join(__dirname, 'fixtures', 'lease', 'using-block.ts'), 'utf8');

async function runUsing(t: Test, target: ts.ScriptTarget): Promise<{ code: string; module: { returns: Function; throws: Function } }> {
  const { outputText: code } = ts.transpileModule(usingSource, { compilerOptions: { target, module: ts.ModuleKind.ESNext } });
  const dir = mkdtempSync(join(tmpdir(), 'poolwatch-using-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'using-block.mjs');
  writeFileSync(file, code);
  return { code, module: (await import(pathToFileURL(file).href)) as { returns: Function; throws: Function } };
}

async function checkUsing(t: Test, module: { returns: Function; throws: Function }): Promise<void> {
  const { pool, detector } = watchedGenericPool(t, 1);
  const inside: number[] = [];
  const conn = (await module.returns(lease, pool, () => inside.push(detector.leases().length))) as Conn;
  t.ok(conn.id > 0, "the block's return value");
  t.equal(pool.borrowed, 0, 'given back when the block returned');
  const failure = new Error('thrown in the block');
  await t.rejects(module.throws(lease, pool, () => inside.push(detector.leases().length), failure), failure, "the block's own error");
  t.equal(pool.borrowed, 0, 'given back when the block threw');
  t.same(inside, [1, 1], 'held inside the block both times');
  t.match(detector.stats()['generic-pool'], { open: 0, released: 2, misuse: 0 });
}

t.test('await using, as TypeScript compiles it for Node 20: released on return and on throw', async (t) => {
  const { code, module } = await runUsing(t, ts.ScriptTarget.ES2022);
  t.match(code, /__addDisposableResource/, 'the compiled form, not the syntax');
  t.notMatch(code, /await using/);
  await checkUsing(t, module);
});

const nativeUsing = Number(process.versions.node.split('.')[0]) >= 24;
t.test('await using, native: released on return and on throw', { skip: !nativeUsing && `Node ${process.version} has no \`await using\` syntax (the compiled form is tested above)` }, async (t) => {
  const { code, module } = await runUsing(t, ts.ScriptTarget.ESNext);
  t.match(code, /await using handle = await lease\(pool\)/, 'the syntax itself');
  await checkUsing(t, module);
});

t.test('under the preload, lease() borrows from the pool it watches, and a forgotten handle is reported at its line', async (t) => {
  const fixture = join(__dirname, 'fixtures', 'lease', 'preload.mjs');
  const { code, out, err } = await runNode(['--expose-gc', '--import', 'poolwatch/register', fixture]);
  t.equal(code, 0, `exit code; stderr:\n${err}`);
  t.match(out, /watched by the preload's detector: true/);
  t.match(err, new RegExp(`lease #\\d+ garbage-collected without a release, after .*, acquired by lease\\(\\) at ${siteOf(fixture, '// FORGOTTEN').replace(/[.]/g, '\\.')}`));
});

t.test('examples/lease.mjs: every path gives back, the stale release is refused, the forgotten handle is found', async (t) => {
  const example = join(__dirname, '..', 'examples', 'lease.mjs');
  const { code, out, err } = await runNode([example]);
  t.equal(code, 0, `exit code; stderr:\n${err}`);
  t.match(out, /every path gave its connection back: 0 borrowed/);
  t.match(out, /poolwatch: stale-release: release\(\) of a lease\(\) handle whose connection went to another borrower/);
  t.match(out, /the second request still holds it: true/);
  t.match(out, new RegExp(`garbage-collected without a release, after .*, acquired by lease\\(\\) at ${siteOf(example, 'const handle = await lease(pool);').replace(/[.]/g, '\\.')}`));
});
