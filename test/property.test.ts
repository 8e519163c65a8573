// Model-based property test: random sequences of pool operations against a real
// generic-pool watched by poolwatch, under sinon fake timers, compared after every
// operation with a small model (open leases with their acquire times, which were
// reported, counts). Time only moves through clock.tickAsync.
import t from 'tap';
import fc from 'fast-check';
import sinon from 'sinon';
import { createPool, type Pool } from 'generic-pool';
import { createDetector, type Detector, type LeakReport, type LeaseInfo, type MisuseEvent, type LeakReleasedEvent } from '../lib/index.js';

const THRESHOLD = 1000;
/** Cap on queued acquire calls, to keep sequences meaningful. */
const MAX_WAITERS = 4;
const POOL_NAME = 'prop';
const EPOCH = 1_700_000_000_000;
const NUM_RUNS = 150;
const NOT_PART = 'Resource not currently part of this pool';

type Throwable = 'acquire' | 'release' | 'destroy' | 'leak' | 'leak-released' | 'misuse';
const throwables: readonly Throwable[] = ['acquire', 'release', 'destroy', 'leak', 'leak-released', 'misuse'];

interface Conn {
  readonly serial: number;
}

// ---------------------------------------------------------------- model

interface ModelLease {
  readonly id: number;
  readonly resource: Conn;
  /** Fake monotonic ms (ms since the clock was installed) when the pool handed the connection over. */
  readonly acquiredAt: number;
  /** How long the acquire call waited in the pool's queue. */
  readonly waitedMs: number;
  reported: boolean;
}

interface Model {
  /** The pool's `max`: acquires beyond it queue. */
  readonly max: number;
  now: number;
  nextId: number;
  /** Open leases in acquire order (= oldest first). */
  open: ModelLease[];
  /** Queued acquire calls, first come first served: when each was made. */
  waiters: number[];
  /** Resources given back and not leased again: the lease id they last belonged to. */
  lastLeaseOf: Map<Conn, number>;
  acquired: number;
  released: number;
  destroyed: number;
  leaked: number;
  misuse: number;
  held: number[];
  waited: number[];
  throwers: Record<Throwable, number>;
}

function newModel(max: number): Model {
  return {
    max,
    now: 0,
    nextId: 1,
    open: [],
    waiters: [],
    lastLeaseOf: new Map(),
    acquired: 0,
    released: 0,
    destroyed: 0,
    leaked: 0,
    misuse: 0,
    held: [],
    waited: [],
    throwers: { acquire: 0, release: 0, destroy: 0, leak: 0, 'leak-released': 0, misuse: 0 },
  };
}

// ---------------------------------------------------------------- real system

type Recorded =
  | { type: 'acquire' | 'release' | 'destroy'; at: number; lease: LeaseInfo }
  | { type: 'leak'; at: number; report: LeakReport }
  | { type: 'leak-released'; at: number; event: LeakReleasedEvent }
  | { type: 'misuse'; at: number; event: MisuseEvent };

interface Real {
  readonly clock: sinon.SinonFakeTimers;
  readonly pool: Pool<Conn>;
  readonly detector: Detector;
  /** Every resource the factory created. */
  readonly created: Set<Conn>;
  /** Promises of queued acquire calls, in the order they were made. */
  readonly waiters: Promise<Conn>[];
  /** Events seen by the recording listeners during the current operation. */
  events: Recorded[];
  /** Errors the throwing listeners threw during the current operation, in order. */
  thrown: Error[];
  /** What the 'error' listener received during the current operation, in order. */
  surfaced: Error[];
  /** Every 'leak' report ever emitted, by lease id. */
  readonly reports: Map<number, LeakReport>;
}

function mono(real: Real): number {
  return real.clock.now - EPOCH;
}

function setup(max: number, cleanups: Array<() => Promise<void>>): { model: Model; real: Real } {
  // Installed before the detector exists, so its timer and clock readings are fake.
  const clock = sinon.useFakeTimers({ now: EPOCH });
  let serial = 0;
  const created = new Set<Conn>();
  const pool = createPool<Conn>(
    {
      create: async () => {
        const conn = { serial: ++serial };
        created.add(conn);
        return conn;
      },
      destroy: async () => {},
    },
    { max, min: 0 },
  );
  const detector = createDetector({ leakThresholdMs: THRESHOLD });
  detector.watch(pool, { name: POOL_NAME });
  const real: Real = { clock, pool, detector, created, waiters: [], events: [], thrown: [], surfaced: [], reports: new Map() };
  const at = () => mono(real);
  detector.on('acquire', (lease) => real.events.push({ type: 'acquire', at: at(), lease }));
  detector.on('release', (lease) => real.events.push({ type: 'release', at: at(), lease }));
  detector.on('destroy', (lease) => real.events.push({ type: 'destroy', at: at(), lease }));
  detector.on('leak', (report) => {
    real.events.push({ type: 'leak', at: at(), report });
    real.reports.set(report.leaseId, report);
  });
  detector.on('leak-released', (event) => real.events.push({ type: 'leak-released', at: at(), event }));
  detector.on('misuse', (event) => real.events.push({ type: 'misuse', at: at(), event }));
  detector.on('error', (error) => real.surfaced.push(error));

  let done = false;
  cleanups.push(async () => {
    if (done) return;
    done = true;
    detector.close();
    clock.restore();
    // Give back what the run left open (through the now unwatched pool), then drain.
    for (const conn of created) if (pool.isBorrowedResource(conn)) await pool.release(conn);
    for (const waiter of real.waiters.splice(0)) await pool.release(await waiter);
    await pool.drain();
    await pool.clear();
  });
  return { model: newModel(max), real };
}

// ---------------------------------------------------------------- invariants

function eq(actual: unknown, expected: unknown, what: string): void {
  if (!Object.is(actual, expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

function deepEq(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/** Checks the events one operation produced against the ones the model expects, then clears them. */
function expectEvents(real: Real, model: Model, expected: Array<{ type: Recorded['type']; leaseId?: number }>): void {
  deepEq(
    real.events.map((e) => e.type),
    expected.map((e) => e.type),
    'event types of this operation',
  );
  // Each listener that throws does so once per event it listens to; each error reaches the 'error' listener once.
  const wantErrors = expected.reduce((n, e) => n + (model.throwers[e.type as Throwable] ?? 0), 0);
  eq(real.thrown.length, wantErrors, 'errors thrown by listeners in this operation');
  eq(real.surfaced.length, real.thrown.length, "errors that reached the 'error' listener");
  real.surfaced.forEach((error, i) => {
    eq((error as Error & { code?: string }).code, 'POOLWATCH_LISTENER_ERROR', 'surfaced error code');
    if (error.cause !== real.thrown[i]) throw new Error(`surfaced error #${i} does not carry the thrown error as its cause`);
  });
  real.events = [];
  real.thrown = [];
  real.surfaced = [];
}

/** Invariants that hold between any two operations. */
function checkState(model: Model, real: Real): void {
  const now = mono(real);
  eq(now, model.now, 'fake time');

  // leases(): the model's open leases, oldest first.
  const leases = real.detector.leases();
  deepEq(
    leases.map((l) => l.leaseId),
    model.open.map((l) => l.id),
    'detector.leases() ids, oldest first',
  );
  leases.forEach((lease, i) => {
    const m = model.open[i]!;
    eq(lease.pool, POOL_NAME, `lease #${m.id} pool`);
    eq(lease.heldMs, now - m.acquiredAt, `lease #${m.id} heldMs`);
    eq(lease.acquiredAt, EPOCH + m.acquiredAt, `lease #${m.id} acquiredAt`);
    eq(lease.waitedMs, m.waitedMs, `lease #${m.id} waitedMs`);
  });

  // stats(): counts agree.
  const stats = real.detector.stats()[POOL_NAME];
  if (stats === undefined) throw new Error(`stats() has no entry for "${POOL_NAME}"`);
  deepEq(
    {
      open: stats.open,
      waiting: stats.waiting,
      acquired: stats.acquired,
      released: stats.released,
      destroyed: stats.destroyed,
      failed: stats.failed,
      leaked: stats.leaked,
      misuse: stats.misuse,
      heldCount: stats.held.count,
      heldMin: stats.held.minMs,
      heldMax: stats.held.maxMs,
      waitedCount: stats.waited.count,
      waitedMin: stats.waited.minMs,
      waitedMax: stats.waited.maxMs,
    },
    {
      open: model.open.length,
      waiting: model.waiters.length,
      acquired: model.acquired,
      released: model.released,
      destroyed: model.destroyed,
      failed: 0,
      leaked: model.leaked,
      misuse: model.misuse,
      heldCount: model.held.length,
      heldMin: model.held.length === 0 ? 0 : Math.min(...model.held),
      heldMax: model.held.length === 0 ? 0 : Math.max(...model.held),
      waitedCount: model.waited.length,
      waitedMin: model.waited.length === 0 ? 0 : Math.min(...model.waited),
      waitedMax: model.waited.length === 0 ? 0 : Math.max(...model.waited),
    },
    'stats()',
  );

  // Every lease past its threshold has been reported (the timer is exact under fake time), none before.
  for (const m of model.open) {
    eq(m.reported, now >= m.acquiredAt + THRESHOLD, `lease #${m.id} reported (model)`);
    eq(real.reports.has(m.id), m.reported, `lease #${m.id} reported (real)`);
  }
  eq(real.reports.size, model.leaked, 'leak reports emitted');
}

// ---------------------------------------------------------------- commands

type Cmd = fc.AsyncCommand<Model, Real>;

function throwingListener(real: Real, event: Throwable, n: number): (payload: unknown) => void {
  return () => {
    const error = new Error(`thrower #${n} on '${event}'`);
    real.thrown.push(error);
    throw error;
  };
}

/** Records in the model that the pool handed `conn` over now, and checks the 'acquire' event. */
function handedOver(model: Model, real: Real, conn: Conn, requestedAt: number): void {
  if (!real.created.has(conn)) throw new Error('acquire resolved to something the factory did not create');
  if (!real.pool.isBorrowedResource(conn)) throw new Error('acquired resource is not borrowed from the pool');
  if (model.open.some((l) => l.resource === conn)) throw new Error('acquire handed out a resource that is already leased');
  const id = model.nextId++;
  const waitedMs = model.now - requestedAt;
  model.open.push({ id, resource: conn, acquiredAt: model.now, waitedMs, reported: false });
  model.lastLeaseOf.delete(conn);
  model.acquired++;
  model.waited.push(waitedMs);
  const event = real.events.find((e) => e.type === 'acquire');
  if (event?.type === 'acquire') {
    eq(event.lease.leaseId, id, "'acquire' event leaseId");
    eq(event.lease.pool, POOL_NAME, "'acquire' event pool");
    eq(event.lease.waitedMs, waitedMs, "'acquire' event waitedMs");
    eq(event.lease.acquiredAt, EPOCH + model.now, "'acquire' event acquiredAt");
  }
}

/** Lets promise callbacks run without moving fake time. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

class Acquire implements Cmd {
  check(model: Readonly<Model>): boolean {
    return model.waiters.length < MAX_WAITERS;
  }
  async run(model: Model, real: Real): Promise<void> {
    const promise = real.pool.acquire();
    if (model.open.length < model.max) {
      handedOver(model, real, await promise, model.now);
      expectEvents(real, model, [{ type: 'acquire' }]);
    } else {
      // The pool is saturated: the call queues until a connection comes back.
      model.waiters.push(model.now);
      real.waiters.push(promise);
      await settle();
      expectEvents(real, model, []);
    }
    checkState(model, real);
  }
  toString(): string {
    return 'acquire';
  }
}

class GiveBack implements Cmd {
  constructor(
    readonly method: 'release' | 'destroy',
    readonly index: number,
  ) {}
  check(model: Readonly<Model>): boolean {
    return model.open.length > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    const i = this.index % model.open.length;
    const lease = model.open[i]!;
    const result = await real.pool[this.method](lease.resource);
    eq(result, undefined, `${this.method}() result`);
    model.open.splice(i, 1);
    model.lastLeaseOf.set(lease.resource, lease.id);
    const heldMs = model.now - lease.acquiredAt;
    model.held.push(heldMs);
    if (this.method === 'release') model.released++;
    else model.destroyed++;

    const expected: Array<{ type: Recorded['type'] }> = [];
    if (lease.reported) {
      expected.push({ type: 'leak-released' });
      const e = real.events.find((r) => r.type === 'leak-released');
      if (e?.type === 'leak-released') {
        eq(e.event.leaseId, lease.id, "'leak-released' leaseId");
        eq(e.event.pool, POOL_NAME, "'leak-released' pool");
        eq(e.event.heldMs, heldMs, "'leak-released' heldMs");
        if (e.event.report !== real.reports.get(lease.id)) throw new Error("'leak-released' does not carry the lease's leak report");
      }
    }
    expected.push({ type: this.method });
    const e = real.events.find((r) => r.type === this.method);
    if (e !== undefined && 'lease' in e) {
      eq(e.lease.leaseId, lease.id, `'${this.method}' event leaseId`);
      eq(e.lease.heldMs, heldMs, `'${this.method}' event heldMs`);
    }
    // A queued acquire call gets a connection now: the released one, or a new one after a destroy.
    const requestedAt = model.waiters.shift();
    if (requestedAt !== undefined) {
      const conn = await real.waiters.shift()!;
      if (this.method === 'release' && conn !== lease.resource) throw new Error('the waiter did not get the released connection');
      handedOver(model, real, conn, requestedAt);
      expected.push({ type: 'acquire' });
    }
    expectEvents(real, model, expected);
    checkState(model, real);
  }
  toString(): string {
    return `${this.method}(open[${this.index}])`;
  }
}

async function expectPoolRejection(promise: Promise<unknown>, what: string): Promise<void> {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  if (error === undefined) throw new Error(`${what}: expected generic-pool to reject`);
  // generic-pool's own error, unchanged: a plain Error with its message, nothing added.
  if (Object.getPrototypeOf(error) !== Error.prototype) throw new Error(`${what}: rejection is not a plain Error: ${String(error)}`);
  eq((error as Error).message, NOT_PART, `${what}: rejection message`);
  deepEq(Object.keys(error as object), [], `${what}: own enumerable keys of the rejection`);
  eq((error as Error).cause, undefined, `${what}: rejection cause`);
}

class DoubleGiveBack implements Cmd {
  constructor(
    readonly method: 'release' | 'destroy',
    readonly index: number,
  ) {}
  check(model: Readonly<Model>): boolean {
    return model.lastLeaseOf.size > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    const entries = [...model.lastLeaseOf];
    const [conn, lastId] = entries[this.index % entries.length]!;
    await expectPoolRejection(real.pool[this.method](conn), `double ${this.method}`);
    model.misuse++;
    const e = real.events[0];
    if (e?.type === 'misuse') {
      eq(e.event.kind, 'double-release', 'misuse kind');
      eq(e.event.method, this.method, 'misuse method');
      eq(e.event.pool, POOL_NAME, 'misuse pool');
      eq(e.event.lease?.leaseId, lastId, 'misuse lease.leaseId (the lease it last belonged to)');
    }
    expectEvents(real, model, [{ type: 'misuse' }]);
    checkState(model, real);
  }
  toString(): string {
    return `double-${this.method}(given-back[${this.index}])`;
  }
}

const foreignValues = {
  object: () => ({ serial: -1 }),
  array: () => [],
  number: () => 42,
  string: () => 'conn',
  null: () => null,
  undefined: () => undefined,
} as const;
type ForeignKind = keyof typeof foreignValues;

class ForeignGiveBack implements Cmd {
  constructor(
    readonly method: 'release' | 'destroy',
    readonly kind: ForeignKind,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const value = foreignValues[this.kind]();
    await expectPoolRejection((real.pool[this.method] as (r: unknown) => Promise<void>)(value), `foreign ${this.method}`);
    model.misuse++;
    const e = real.events[0];
    if (e?.type === 'misuse') {
      eq(e.event.kind, 'foreign-release', 'misuse kind');
      eq(e.event.method, this.method, 'misuse method');
      eq(e.event.pool, POOL_NAME, 'misuse pool');
      eq(e.event.lease, undefined, 'misuse lease of a foreign value');
    }
    expectEvents(real, model, [{ type: 'misuse' }]);
    checkState(model, real);
  }
  toString(): string {
    return `foreign-${this.method}(${this.kind})`;
  }
}

class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const from = model.now;
    await real.clock.tickAsync(this.ms);
    model.now = from + this.ms;
    // Leases whose deadline falls in (from, now], reported in deadline (= acquire) order.
    const due = model.open.filter((l) => !l.reported && l.acquiredAt + THRESHOLD <= model.now);
    const leaks = real.events.filter((e): e is Extract<Recorded, { type: 'leak' }> => e.type === 'leak');
    deepEq(
      leaks.map((e) => e.report.leaseId),
      due.map((l) => l.id),
      `leases reported while advancing ${from} -> ${model.now}`,
    );
    leaks.forEach((e, i) => {
      const lease = due[i]!;
      const deadline = lease.acquiredAt + THRESHOLD;
      const { report } = e;
      eq(report.kind, 'threshold', 'leak kind');
      eq(report.pool, POOL_NAME, 'leak pool');
      eq(report.thresholdMs, THRESHOLD, 'leak thresholdMs');
      eq(report.acquiredAt, EPOCH + lease.acquiredAt, 'leak acquiredAt');
      eq(report.waitedMs, lease.waitedMs, 'leak waitedMs');
      if (e.at < deadline) throw new Error(`lease #${lease.id} reported at ${e.at}, before its deadline ${deadline}`);
      eq(report.heldMs, e.at - lease.acquiredAt, 'leak heldMs (held time when reported)');
      if (report.heldMs < report.thresholdMs) throw new Error(`lease #${lease.id} reported with heldMs ${report.heldMs} < threshold`);
      if (!(report instanceof Error)) throw new Error('leak report is not an Error');
    });
    for (const lease of due) lease.reported = true;
    model.leaked += due.length;
    expectEvents(real, model, due.map(() => ({ type: 'leak' as const })));
    checkState(model, real);
  }
  toString(): string {
    return `tick(${this.ms})`;
  }
}

class AddThrower implements Cmd {
  constructor(readonly event: Throwable) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    model.throwers[this.event]++;
    real.detector.on(this.event, throwingListener(real, this.event, model.throwers[this.event]));
    expectEvents(real, model, []);
    checkState(model, real);
  }
  toString(): string {
    return `addThrowingListener('${this.event}')`;
  }
}

class Check implements Cmd {
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const reports = real.detector.check();
    const want = model.open.filter((l) => l.reported);
    deepEq(
      reports.map((r) => r.leaseId),
      want.map((l) => l.id),
      'detector.check() lease ids',
    );
    reports.forEach((report, i) => {
      if (report !== real.reports.get(want[i]!.id)) throw new Error(`check() report #${report.leaseId} is not the one emitted as 'leak'`);
    });
    // Nothing was due that the timer had not already reported: check() emits nothing new.
    expectEvents(real, model, []);
    checkState(model, real);
  }
  toString(): string {
    return 'check()';
  }
}

const method = fc.constantFrom<'release' | 'destroy'>('release', 'destroy');
const index = fc.nat({ max: 64 });
const commandArbs = [
  fc.constant(new Acquire()),
  fc.constant(new Acquire()),
  fc.constant(new Acquire()),
  fc.tuple(method, index).map(([m, i]) => new GiveBack(m, i)),
  fc.tuple(method, index).map(([m, i]) => new GiveBack(m, i)),
  fc.tuple(method, index).map(([m, i]) => new DoubleGiveBack(m, i)),
  fc.tuple(method, fc.constantFrom(...(Object.keys(foreignValues) as ForeignKind[]))).map(([m, k]) => new ForeignGiveBack(m, k)),
  fc
    .oneof(fc.integer({ min: 0, max: 2 * THRESHOLD }), fc.constantFrom(0, 1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1))
    .map((ms) => new Advance(ms)),
  fc.constant(new Advance(THRESHOLD / 2)),
  fc.constantFrom(...throwables).map((e) => new AddThrower(e)),
  fc.constant(new Check()),
];

t.test('leases, stats, leak, leak-released and misuse events and check() agree with a model of open leases over random operation sequences', async (t) => {
  const cleanups: Array<() => Promise<void>> = [];
  // With an 'error' listener attached, a throwing listener never becomes a process warning.
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  t.teardown(async () => {
    process.off('warning', onWarning);
    for (const cleanup of cleanups) await cleanup();
  });
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(1, 2, 3, 50), fc.commands(commandArbs, { maxCommands: 80, size: 'max' }), async (max, cmds) => {
      try {
        await fc.asyncModelRun(() => setup(max, cleanups), cmds);
      } finally {
        // Restore the clock, close the detector and drain the pool after every run.
        for (const cleanup of cleanups.splice(0)) await cleanup();
      }
    }),
    { numRuns: NUM_RUNS },
  );
  t.pass(`${NUM_RUNS} random sequences matched the model`);
  // Warnings are emitted on the next tick: let them arrive before looking.
  await new Promise((resolve) => setImmediate(resolve));
  t.same(warnings.map((w) => w.message), [], 'no process warnings were emitted');
});
