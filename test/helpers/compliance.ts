/**
 * The tests every adapter passes: acquire, release, destroy, double release, leak,
 * late release, queueing, errors unchanged, unwatch. An adapter's test file gives a
 * harness and calls `compliance(t, harness)`.
 */
import type { Test } from 'tap';
import { createDetector, lease, type Detector, type LeakReport, type MisuseEvent, type LeakReleasedEvent, type LeaseInfo, type WatchOptions } from '../../lib/index.js';
import { fakeClock } from './clock.js';
import { poolsOwnMessage } from './errors.js';
import { siteOf } from './site.js';

// Where the lease() tests below borrow: a report names this line.
const leaseSite = siteOf(__filename, '// LEASE');

export interface Harness<Pool extends object, Conn> {
  /** The pool name poolwatch gives this kind when none is set. */
  readonly defaultName: string;
  /** `path:line:` of the harness's acquiring line, as a report's callSite starts. */
  readonly acquireSite: string;
  /** A new, unwatched pool of `max` connections. */
  create(max: number): Promise<Pool>;
  close(pool: Pool): Promise<void>;
  acquire(pool: Pool): Promise<Conn>;
  /** Whatever the pool's release returns: a value, or a promise to settle. */
  release(pool: Pool, conn: Conn): unknown;
  /** Discards one connection; absent for a pool that has no such method (tarn): that test is skipped. */
  destroy?(pool: Pool, conn: Conn): unknown;
  /** The pool's own methods that watch() replaces and unwatch() must restore. */
  readonly methods: readonly string[];
  /** A pool whose acquire fails; for checking errors reach the app unchanged. */
  createFailing(): Promise<Pool>;
  closeFailing(pool: Pool): Promise<void>;
  /** Options for detector.watch(), e.g. the `adapter` of a pool described by the user. */
  readonly watchOptions?: WatchOptions;
  /** Runs what the pool's acquire waits for under fake timers (postgres.js connects from a timer), after a lease() call. */
  readonly connecting?: () => void;
  /** False for a pool that cannot discard one connection (postgres.js): a lease() handle's destroy() gives it back. */
  readonly leaseDestroys?: boolean;
  /** For a pool whose driver shows what a connection is doing: how to run SQL on one. */
  readonly activity?: ActivityHarness<Conn>;
}

/** SQL for the activity and reclaim tests, in the pool's dialect. */
export interface ActivityHarness<Conn> {
  /** Runs `sql` on a leased connection as the app would, with `values` as parameters. */
  query(conn: Conn, sql: string, values?: unknown[]): Promise<unknown>;
  /** The dialect's first parameter placeholder: `$1` or `?`. */
  readonly param: string;
  readonly begin: string;
  readonly rollback: string;
  /** A session lock: while one session holds it, the same statement in another waits (a query in flight, for as long as the test wants). */
  readonly lock: string;
  readonly unlock: string;
  /** Whether reclaimAfterMs can take back this pool's connections. */
  readonly reclaims: boolean;
}

/** The SQL of the activity tests, per dialect; a harness adds how to query and whether it reclaims. */
export const activitySql = {
  postgres: { param: '$1', begin: 'BEGIN', rollback: 'ROLLBACK', lock: 'SELECT pg_advisory_lock(4242)', unlock: 'SELECT pg_advisory_unlock(4242)' },
  mysql: { param: '?', begin: 'START TRANSACTION', rollback: 'ROLLBACK', lock: "SELECT GET_LOCK('poolwatch-test', 60)", unlock: "SELECT RELEASE_LOCK('poolwatch-test')" },
} as const;

/** Distinctive values that must never reach a report. */
const secretValue = 'sekrit-Qv7x-param';
const secretLiteral = 'lit-Zz91-secret';

type Seen = Recorded & { slow: LeaseInfo[] };

type Outcome = { value: unknown } | { error: { name: string; message: string; code: unknown; class: string } };

async function outcome(run: () => unknown): Promise<Outcome> {
  try {
    return { value: await run() };
  } catch (error) {
    const e = error as Error & { code?: unknown };
    // mariadb numbers each connection in its messages: two pools' refusals differ only there.
    return { error: { name: e.name, message: poolsOwnMessage(e.message).replace(/^\(conn:-?\d+,/, '(conn:N,'), code: e.code, class: e.constructor.name } };
  }
}

interface Recorded {
  acquire: LeaseInfo[];
  release: LeaseInfo[];
  destroy: LeaseInfo[];
  leak: LeakReport[];
  late: LeakReleasedEvent[];
  misuse: MisuseEvent[];
}

function record(detector: Detector): Recorded {
  const seen: Recorded = { acquire: [], release: [], destroy: [], leak: [], late: [], misuse: [] };
  detector.on('acquire', (lease) => seen.acquire.push(lease));
  detector.on('release', (lease) => seen.release.push(lease));
  detector.on('destroy', (lease) => seen.destroy.push(lease));
  detector.on('leak', (report) => seen.leak.push(report));
  detector.on('leak-released', (event) => seen.late.push(event));
  detector.on('misuse', (event) => seen.misuse.push(event));
  return seen;
}

export function compliance<Pool extends object, Conn>(t: Test, h: Harness<Pool, Conn>): void {
  // A lease() call, then whatever its acquire waits for under fake timers.
  const borrowing = <T>(made: T): T => {
    h.connecting?.();
    return made;
  };

  async function setup(t: Test, max = 2) {
    const clock = fakeClock(t);
    const pool = await h.create(max);
    const detector = createDetector({ leakThresholdMs: 1000 });
    detector.watch(pool, h.watchOptions);
    const seen = record(detector);
    t.teardown(async () => {
      detector.close();
      await h.close(pool);
    });
    return { clock, pool, detector, seen };
  }

  t.test('tracks an acquire and its release, leaving no lease open', async (t) => {
    const { clock, pool, detector, seen } = await setup(t);
    const conn = await h.acquire(pool);
    t.equal(detector.leases().length, 1);
    t.equal(detector.leases()[0]!.pool, h.defaultName);
    await clock.tickAsync(250);
    await h.release(pool, conn);
    t.same(detector.leases(), []);
    t.equal(seen.acquire.length, 1);
    t.equal(seen.release.length, 1);
    t.equal(seen.release[0]!.leaseId, seen.acquire[0]!.leaseId);
    t.equal(seen.release[0]!.heldMs, 250);
    t.match(detector.stats()[h.defaultName], { open: 0, acquired: 1, released: 1, leaked: 0, misuse: 0 });
  });

  t.test('ends the lease when the connection is destroyed', { skip: h.destroy === undefined && 'the pool cannot destroy one connection' }, async (t) => {
    const { pool, detector, seen } = await setup(t);
    const conn = await h.acquire(pool);
    await h.destroy!(pool, conn);
    t.same(detector.leases(), []);
    t.equal(seen.destroy.length, 1);
    t.equal(seen.release.length, 0);
    t.match(detector.stats()[h.defaultName], { open: 0, destroyed: 1 });
  });

  t.test('lease() borrows through the pool under the lease() line, and a second release() touches nothing', async (t) => {
    const { pool, detector, seen } = await setup(t, 1);
    const handle = await borrowing(lease(pool)); // LEASE
    t.match(detector.leases(), [{ via: 'lease', pool: h.defaultName }]);
    t.ok(detector.leases()[0]!.callSite?.startsWith(leaseSite), `callSite ${detector.leases()[0]!.callSite} is the lease() line ${leaseSite}`);
    await handle.release();
    t.same(detector.leases(), []);
    t.match(detector.stats()[h.defaultName], { open: 0, acquired: 1, released: 1, misuse: 0 });
    t.same(await outcome(() => handle.release()), { value: undefined }, 'a second release() never throws');
    t.match(seen.misuse, [{ kind: 'stale-release', method: 'release', pool: h.defaultName, current: undefined }]);
    t.ok(seen.misuse[0]!.lease?.callSite?.startsWith(leaseSite), 'it names the lease() line');
    // The pool never saw the second release: it serves the next borrower as usual.
    const next = await h.acquire(pool);
    await h.release(pool, next);
    t.match(detector.stats()[h.defaultName], { open: 0, acquired: 2, released: 2, misuse: 1 });
  });

  t.test("a lease() handle's stale release() touches neither the pool nor the connection's new borrower", async (t) => {
    const { clock, pool, detector, seen } = await setup(t, 1);
    const first = await borrowing(lease(pool)); // LEASE
    await first.release();
    const second = await borrowing(lease(pool)); // LEASE
    const secondId = detector.leases()[0]!.leaseId;
    await first.release();
    t.match(seen.misuse, [{ kind: 'stale-release', method: 'release' }]);
    t.same(detector.leases().map((l) => l.leaseId), [secondId], 'the new borrower still holds its lease');
    // The pool still counts it leased: a third borrower waits for the second's release.
    let third: unknown;
    const waiting = borrowing(lease(pool)).then((handle) => (third = handle));
    await clock.tickAsync(100);
    t.equal(third, undefined, 'the pool did not take the connection back from its new borrower');
    await second.release();
    await (await waiting).release();
    t.match(detector.stats()[h.defaultName], { open: 0, acquired: 3, released: 3, misuse: 1 });
  });

  t.test("a lease() handle's destroy() discards its connection", async (t) => {
    const { pool, detector } = await setup(t);
    const handle = await borrowing(lease(pool));
    await handle.destroy();
    t.same(detector.leases(), []);
    t.match(detector.stats()[h.defaultName], h.leaseDestroys === false ? { open: 0, released: 1, destroyed: 0 } : { open: 0, released: 0, destroyed: 1 });
    t.match(detector.stats()[h.defaultName], { misuse: 0 });
  });

  t.test('lease(pool, fn) gives back when fn resolves, destroys when it rejects, and returns or rethrows unchanged', async (t) => {
    const { pool, detector } = await setup(t);
    const value = { rows: [] };
    t.equal(await borrowing(lease(pool, async (connection) => (t.ok(connection, 'fn gets the connection'), value))), value, "fn's value, unchanged");
    t.match(detector.stats()[h.defaultName], { open: 0, released: 1, destroyed: 0 });
    const failure = new Error('fn failed');
    await t.rejects(
      borrowing(
        lease(pool, async () => {
          throw failure;
        }),
      ).catch((error: unknown) => {
        t.equal(error, failure, "fn's own error object");
        throw error;
      }),
    );
    t.match(detector.stats()[h.defaultName], h.leaseDestroys === false ? { open: 0, released: 2 } : { open: 0, released: 1, destroyed: 1 });
  });

  t.test('await using gives a lease() connection back when its block ends, on return and on throw', async (t) => {
    const { pool, detector } = await setup(t);
    const returns = async () => {
      await using handle = await borrowing(lease(pool));
      t.equal(detector.leases().length, 1, 'held inside the block');
      return handle.connection;
    };
    t.ok(await returns());
    t.match(detector.stats()[h.defaultName], { open: 0, released: 1 });
    const failure = new Error('thrown in the block');
    const throws = async () => {
      await using handle = await borrowing(lease(pool));
      t.ok(handle.connection);
      throw failure;
    };
    await t.rejects(throws(), failure);
    t.match(detector.stats()[h.defaultName], { open: 0, released: 2, misuse: 0 });
  });

  t.test('reports a lease held past leakThresholdMs once, naming the acquiring line', async (t) => {
    const { clock, pool, seen } = await setup(t);
    const conn = await h.acquire(pool);
    await clock.tickAsync(999);
    t.equal(seen.leak.length, 0, 'not before the threshold');
    await clock.tickAsync(1);
    t.equal(seen.leak.length, 1, 'at the threshold');
    await clock.tickAsync(5000);
    t.equal(seen.leak.length, 1, 'only once');
    const report = seen.leak[0]!;
    t.match(report, { kind: 'threshold', pool: h.defaultName, heldMs: 1000, thresholdMs: 1000, waitedMs: 0, context: {} });
    t.ok(report.callSite?.startsWith(h.acquireSite), `callSite ${report.callSite} is the app's line ${h.acquireSite}`);
    t.ok(report instanceof Error, 'usable as an Error');
    t.match(report.stack, new RegExp(`^LeakReport: .*\\n\\s+at .*${h.acquireSite.replace(/[.]/g, '\\.')}`), 'stack starts at the app frame');
    t.notMatch(report.stack, /node_modules|node:internal/, 'library and internal frames removed');
    await h.release(pool, conn);
  });

  t.test('reports a late release with the real held time', async (t) => {
    const { clock, pool, seen } = await setup(t);
    const conn = await h.acquire(pool);
    await clock.tickAsync(4321);
    await h.release(pool, conn);
    t.equal(seen.late.length, 1);
    t.equal(seen.late[0]!.heldMs, 4321);
    t.equal(seen.late[0]!.report, seen.leak[0]);
  });

  t.test('does not count time waiting in the pool queue as holding', async (t) => {
    const { clock, pool, seen, detector } = await setup(t, 1);
    const first = await h.acquire(pool);
    const queued = h.acquire(pool);
    await clock.tickAsync(900);
    await h.release(pool, first);
    const second = await queued;
    await clock.tickAsync(900);
    t.equal(seen.leak.length, 0, 'neither lease was held past the threshold');
    t.equal(detector.leases()[0]!.waitedMs, 900);
    t.equal(detector.leases()[0]!.heldMs, 900);
    await clock.tickAsync(100);
    t.equal(seen.leak.length, 1);
    t.equal(seen.leak[0]!.waitedMs, 900);
    t.equal(seen.leak[0]!.heldMs, 1000);
    await h.release(pool, second);
  });

  t.test('leaves a double release to the pool as it was, and emits misuse', async (t) => {
    const raw = await h.create(2);
    t.teardown(() => h.close(raw));
    const rawConn = await h.acquire(raw);
    await h.release(raw, rawConn);
    const expected = await outcome(() => h.release(raw, rawConn));

    const { pool, seen } = await setup(t);
    const conn = await h.acquire(pool);
    const leaseId = seen.acquire[0]!.leaseId;
    await h.release(pool, conn);
    t.same(await outcome(() => h.release(pool, conn)), expected, 'same result or error as without poolwatch');
    t.equal(seen.misuse.length, 1);
    t.match(seen.misuse[0], { kind: 'double-release', pool: h.defaultName });
    t.equal(seen.misuse[0]!.lease?.leaseId, leaseId, 'names the lease it belonged to');
    t.ok(seen.misuse[0]!.lease?.callSite?.startsWith(h.acquireSite), 'and where it was acquired');
  });

  t.test('passes acquire errors to the app unchanged and keeps no lease', async (t) => {
    const clock = fakeClock(t);
    const raw = await h.createFailing();
    t.teardown(() => h.closeFailing(raw));
    const failing = async (pool: Pool) => {
      const pending = outcome(() => h.acquire(pool));
      await clock.tickAsync(60_000);
      return pending;
    };
    const expected = await failing(raw);
    t.ok('error' in expected, 'the failing pool fails');

    const pool = await h.createFailing();
    const detector = createDetector({ leakThresholdMs: 1000 });
    detector.watch(pool, h.watchOptions);
    t.teardown(async () => {
      detector.close();
      await h.closeFailing(pool);
    });
    t.same(await failing(pool), expected);
    t.same(detector.leases(), []);
    t.match(detector.stats()[h.defaultName], { open: 0, waiting: 0, failed: 1, leaked: 0 });
  });

  t.test('never lets a throwing listener break acquire or release', async (t) => {
    const { pool, detector } = await setup(t);
    const errors: Error[] = [];
    detector.on('error', (error) => errors.push(error));
    detector.on('acquire', () => {
      throw new Error('listener bug');
    });
    detector.on('release', () => {
      throw new Error('listener bug');
    });
    const conn = await h.acquire(pool);
    await h.release(pool, conn);
    t.equal(errors.length, 2);
    t.match(errors[0], { code: 'POOLWATCH_LISTENER_ERROR', cause: { message: 'listener bug' } });
  });

  t.test('unwatch restores the pool methods and stops reporting', async (t) => {
    const { clock, pool, detector, seen } = await setup(t);
    const before = await h.create(1);
    t.teardown(() => h.close(before));
    const own = (p: object) => h.methods.map((m) => (p as Record<string, unknown>)[m]);
    const conn = await h.acquire(pool);
    t.ok(detector.unwatch(pool));
    t.same(own(pool), own(before), 'the same methods as an unwatched pool');
    t.same(h.methods.map((m) => Object.hasOwn(pool, m)), h.methods.map((m) => Object.hasOwn(before, m)));
    await clock.tickAsync(5000);
    t.equal(seen.leak.length, 0);
    await h.release(pool, conn);
  });

  const a = h.activity;
  if (a === undefined) return;

  // A connection of another, unwatched pool of the same kind that holds the lock, so a watched one's query waits on it.
  async function blocker(t: Test) {
    const other = await h.create(1);
    const conn = await h.acquire(other);
    await a!.query(conn, a!.lock);
    let unlocked = false;
    const unlock = async () => {
      if (unlocked) return;
      unlocked = true;
      await a!.query(conn, a!.unlock);
    };
    t.teardown(async () => {
      await unlock();
      await h.release(other, conn);
      await h.close(other);
    });
    return unlock;
  }

  async function watched(t: Test, max: number, options: { reclaimAfterMs?: number } = {}) {
    const clock = fakeClock(t);
    const pool = await h.create(max);
    const detector = createDetector({ leakThresholdMs: 1000, ...options });
    detector.watch(pool, h.watchOptions);
    const seen = record(detector) as Seen;
    seen.slow = [];
    detector.on('slow', (lease) => seen.slow.push(lease));
    t.teardown(async () => {
      detector.close();
      await h.close(pool);
    });
    return { clock, pool, detector, seen };
  }

  t.test('shows what a held connection is doing and its last statement, never a value', async (t) => {
    const { pool, detector } = await watched(t, 2);
    const conn = await h.acquire(pool);
    t.equal(detector.leases()[0]!.activity, 'idle');
    await a.query(conn, `SELECT ${a.param} AS v, '${secretLiteral}' AS w, 424242 AS n`, [secretValue]);
    t.match(detector.leases()[0], { activity: 'idle', lastQuery: 'SELECT ? AS v, ? AS w, ? AS n' });
    await a.query(conn, a.begin);
    t.equal(detector.leases()[0]!.activity, 'idle-in-transaction');
    t.same(detector.stats()[h.defaultName]!.activity, { idle: 0, query: 0, 'idle-in-transaction': 1, listening: 0 }, 'stats() counts open leases by activity, for the metrics');
    await a.query(conn, a.rollback);
    t.equal(detector.leases()[0]!.activity, 'idle');
    const shown = JSON.stringify([detector.snapshot(), detector.leases()]);
    for (const secret of [secretValue, secretLiteral, '424242']) t.notOk(shown.includes(secret), `${secret} is nowhere`);
    await h.release(pool, conn);
  });

  t.test('a lease past its threshold in a query is slow, not a leak, until it sits idle in its transaction', async (t) => {
    const { clock, pool, detector, seen } = await watched(t, 2);
    const unlock = await blocker(t);
    const conn = await h.acquire(pool);
    await a.query(conn, a.begin);
    await a.query(conn, `SELECT ${a.param} AS v`, [secretValue]);
    const running = a.query(conn, a.lock);
    t.equal(detector.leases()[0]!.activity, 'query', 'a query in flight');
    await clock.tickAsync(1500);
    t.equal(seen.leak.length, 0, 'no leak while the query runs');
    t.same(detector.check(), [], 'nor in check()');
    t.equal(seen.slow.length, 1, 'slow, once');
    t.match(seen.slow[0], { activity: 'query', leaseId: detector.leases()[0]!.leaseId });
    t.ok(seen.slow[0]!.callSite?.startsWith(h.acquireSite), 'naming the acquiring line');
    await clock.tickAsync(3000);
    t.equal(seen.slow.length, 1, 'said once');
    await unlock();
    await running;
    await clock.tickAsync(1);
    t.equal(seen.leak.length, 1, 'a leak as soon as it is idle past its threshold');
    const report = seen.leak[0]!;
    t.match(report, { kind: 'threshold', activity: 'idle-in-transaction' });
    t.match(report.message, /^Connection leak in pool "[^"]+" \(idle in an open transaction for /, 'says so first');
    t.match(report.format(), /connection: idle in an open transaction/);
    const shown = JSON.stringify([report, seen.slow]) + report.format();
    t.notOk(shown.includes(secretValue), 'no parameter value in the report');
    await a.query(conn, a.unlock);
    await a.query(conn, a.rollback);
    await h.release(pool, conn);
  });

  t.test('reclaimAfterMs takes back an idle lease in a transaction, a waiter gets a connection, and the late release is absorbed', { skip: !a.reclaims && 'the pool cannot be reclaimed' }, async (t) => {
    const { clock, pool, detector, seen } = await watched(t, 1, { reclaimAfterMs: 5000 });
    const abandoned = await h.acquire(pool);
    await a.query(abandoned, a.begin);
    const waiter = h.acquire(pool);
    await clock.tickAsync(5000);
    const next = await waiter;
    await a.query(next, 'SELECT 1');
    t.same(seen.leak.map((r) => r.kind), ['threshold', 'reclaimed']);
    t.match(seen.leak[1], { kind: 'reclaimed', activity: 'idle-in-transaction', heldMs: 5000 });
    t.equal(detector.leases().length, 1, 'only the waiter holds a connection');
    t.same(await outcome(() => h.release(pool, abandoned)), { value: undefined }, 'the late release never throws');
    t.ok(seen.misuse.length >= 1 && seen.misuse.every((m) => m.kind === 'release-after-reclaim'), 'reported as release-after-reclaim');
    await h.release(pool, next);
    t.match(detector.stats()[h.defaultName], { open: 0, destroyed: 1, leaked: 1 });
  });

  t.test('reclaimAfterMs never touches a connection with a query in flight', { skip: !a.reclaims && 'the pool cannot be reclaimed' }, async (t) => {
    const { clock, pool, detector, seen } = await watched(t, 1, { reclaimAfterMs: 5000 });
    const unlock = await blocker(t);
    const conn = await h.acquire(pool);
    const running = a.query(conn, a.lock);
    await clock.tickAsync(8000);
    t.equal(detector.leases().length, 1, 'still held');
    t.equal(seen.leak.length, 0);
    t.match(detector.stats()[h.defaultName], { destroyed: 0 });
    await unlock();
    await running;
    await clock.tickAsync(1);
    t.same(seen.leak.map((r) => r.kind), ['threshold', 'reclaimed'], 'a leak once idle, and taken back');
  });
}
