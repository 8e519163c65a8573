/**
 * The tests every adapter passes: acquire, release, destroy, double release, leak,
 * late release, queueing, errors unchanged, unwatch. An adapter's test file gives a
 * harness and calls `compliance(t, harness)`.
 */
import type { Test } from 'tap';
import { createDetector, type Detector, type LeakReport, type MisuseEvent, type LeakReleasedEvent, type LeaseInfo, type WatchOptions } from '../../lib/index.js';
import { fakeClock } from './clock.js';
import { poolsOwnMessage } from './errors.js';

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
}

type Outcome = { value: unknown } | { error: { name: string; message: string; code: unknown; class: string } };

async function outcome(run: () => unknown): Promise<Outcome> {
  try {
    return { value: await run() };
  } catch (error) {
    const e = error as Error & { code?: unknown };
    return { error: { name: e.name, message: poolsOwnMessage(e.message), code: e.code, class: e.constructor.name } };
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
}
