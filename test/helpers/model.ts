/**
 * Model-based tests against real pools, judged by oracles outside poolwatch.
 *
 * A program is a random sequence of what apps do with a pool (see `Op`). Each program runs
 * twice in the same server: on an unwatched pool, then on a fresh pool watched by a new
 * detector. The oracles:
 *  1. the two runs' traces (every result, error class, name, code and message, and every
 *     error a connection emitted) are identical;
 *  2. after every step of the watched run, poolwatch's open leases are as many as the
 *     pool's own count of connections leased;
 *  3. the server's view of every held connection (pg_stat_activity; MariaDB's processlist,
 *     by the session's own @@in_transaction)
 *     agrees with the activity poolwatch gives its lease;
 *  4. every connection held past the threshold is reported exactly once, naming the line
 *     of the driver's file that took it, and nothing else is reported; a statement in
 *     flight past it is not a leak.
 *
 * Known defects of poolwatch (a driver's `known`) are let pass and counted in the suite's
 * output; their examples replay strictly and are marked TODO. POOLWATCH_MODEL_STRICT=1
 * lets none pass. POOLWATCH_MODEL_DEBUG=1 prints each step and both traces.
 *
 * Time: poolwatch reads performance.now() and Date; only those are faked, so drivers keep
 * their real sockets and timers. Time moves only by the program's `tick`s, and
 * `detector.check()` sweeps after each step, so no assertion depends on the wall clock.
 *
 * A driver's test file gives a `ModelDriver` and calls `modelSuite`. Runs per file:
 * POOLWATCH_MODEL_RUNS (default: the driver's CI budget); a failing run prints its seed
 * and shrunk program, and POOLWATCH_MODEL_SEED replays a seed.
 */
import type { Test } from 'tap';
import fc from 'fast-check';
import sinon from 'sinon';
import { createDetector, type Detector, type LeakReport, type LeaseInfo } from '../../lib/index.js';
import { poolsOwnMessage } from './errors.js';

/** The threshold of the watched run, in fake milliseconds. */
export const THRESHOLD = 1000;
const EPOCH = Date.UTC(2026, 0, 1);

/** How the app wrote the call: awaiting a promise, or passing a callback. */
export type Form = 'promise' | 'callback';
/** How a held connection goes back: release(), release(err) (pg; others: their nearest), destroy. */
export type Giveback = 'plain' | 'error' | 'destroy';

/** One step of a program. `slot` picks a held connection (modulo how many are held); no held connection, no step. */
export type Op =
  | { k: 'acquire'; form: Form }
  | { k: 'poolQuery'; form: Form; v: number }
  | { k: 'burst'; via: 'poolQuery' | 'acquire'; extra: number }
  | { k: 'query'; slot: number; v: number }
  | { k: 'begin'; slot: number }
  | { k: 'commit'; slot: number }
  | { k: 'rollback'; slot: number }
  | { k: 'badQuery'; slot: number }
  | { k: 'slow'; slot: number }
  | { k: 'release'; slot: number; how: Giveback }
  | { k: 'doubleRelease' }
  | { k: 'timeout' }
  | { k: 'kill'; slot: number }
  | { k: 'tick'; ms: number }
  | { k: 'rewatch' }
  | { k: 'restart' };

export interface Program {
  /** Whether the watched run subscribes to 'leak' before watch() or after it. */
  readonly subscribeFirst: boolean;
  /** Whether the watched run watches its pool only at the first `rewatch` step (a pool in use before watch()). */
  readonly lateWatch?: boolean;
  readonly ops: readonly Op[];
}

/** What the server says a connection is doing, in poolwatch's words; 'gone' when it has no session. */
export type ServerState = 'idle' | 'idle-in-transaction' | 'query' | 'gone';

/** SQL in the driver's dialect. Absent: the pool has no SQL (generic-pool), those steps are skipped. */
export interface ModelSql {
  /** A query returning `v`. */
  value(v: number): string;
  /** Opens a transaction and writes in it, as an app's transaction does. */
  readonly begin: readonly string[];
  readonly commit: string;
  readonly rollback: string;
  /** Fails on the server. */
  readonly bad: string;
  /** Waits for the lock `block()` takes, then lets it go: a statement in flight for as long as the test wants. */
  readonly slow: string;
}

/** One connection held by the program, as the driver gives it. */
export interface Held<C> {
  readonly conn: C;
  readonly form: Form;
}

export interface ModelDriver<P, C> {
  /** The pool name poolwatch gives it by default. */
  readonly name: string;
  /** The pool's size. */
  readonly max: number;
  /** `path:line:` per form of the driver file's acquiring lines, as a report's callSite begins. */
  readonly sites: Record<Form, string>;
  readonly sql?: ModelSql;
  /** A new pool, unwatched. */
  create(): Promise<P>;
  close(pool: P): Promise<void>;
  /** The pool's own count of connections handed out and not given back. */
  leased(pool: P): number;
  /** Takes a connection from the pool in `form`; `onError` gets what the connection emits as 'error' later. */
  acquire(pool: P, form: Form, onError: (error: unknown) => void): Promise<C>;
  /** A query through the pool itself (first use by query()), of `sql` (which returns `v`); absent when the pool has none. */
  poolQuery?(pool: P, form: Form, sql: string, v: number): Promise<unknown>;
  /** Runs `sql` on a held connection; the result as comparable data. */
  query?(conn: C, sql: string): Promise<unknown>;
  giveBack(pool: P, conn: C, how: Giveback): Promise<unknown>;
  /**
   * Runs `acquire` with every connection held until the pool's acquire timeout fails it
   * (made short for it, or the program's clock moved by `tick` where the pool times by Date).
   */
  withShortTimeout?(pool: P, acquire: () => Promise<unknown>, tick: (ms: number) => void): Promise<unknown>;
  /** Ends a held connection from the server side, and resolves once the client has seen it end. */
  kill?(pool: P, conn: C): Promise<void>;
  /** Stops the server and starts it again; resolves once every one of `conns` (the held ones) has seen its end. */
  restart?(conns: readonly C[]): Promise<void>;
  /** Takes, from another session, the lock `sql.slow` waits for; resolves to what lets it go. */
  block?(): Promise<() => Promise<void>>;
  /** Resolves once the server shows `conn` running a statement, or once `done()` (it failed at once). */
  running?(conn: C, done: () => boolean): Promise<void>;
  /**
   * Whether the driver has read all the server said on `conn`. pg rejects a failed
   * query's promise on the error and reads the ready-for-query that follows it (a second
   * packet) later: until then it, and so poolwatch, still counts the statement running.
   */
  caughtUp?(conn: C): boolean;
  /** The server's view of each connection. */
  server?(conns: readonly C[]): Promise<ServerState[]>;
  /** Whether two handles are the same connection of the pool (default: the same object; mariadb gives a new handle per lend). */
  sameConnection?(a: C, b: C): boolean;
  /** Ways back that the pool itself cannot take twice (it corrupts its own state): never repeated by a program. */
  readonly unsafeTwice?: readonly Giveback[];
  /** The pool's own figures, for the message of a step that never ends. */
  state?(pool: P): unknown;
  /** Makes a program's trace comparable across runs (connection ids, pids in messages). */
  normalize?(text: string): string;
  /**
   * Known defects of poolwatch being fixed elsewhere, each with what it is: while set, the
   * oracle lets it pass (POOLWATCH_MODEL_STRICT=1 holds it to them all the same).
   * `noActivity`: a lease whose activity poolwatch does not show at all.
   * `killedStaysOpen`: a held connection the server ended, which the pool has dropped, is still an open lease.
   * `lateFollow`: a connection poolwatch begins to follow inside a transaction opened while it did not (taken
   * before watch(), or before an unwatch) shows 'idle'.
   * `staleRelease`: a stale handle's release that gave the pool back a connection lent again leaves its new lease open.
   */
  readonly known?: { readonly noActivity?: string; readonly killedStaysOpen?: string; readonly lateFollow?: string; readonly staleRelease?: string };
}

/** Whether known defects count as failures (POOLWATCH_MODEL_STRICT=1). */
const strict = process.env.POOLWATCH_MODEL_STRICT === '1';
/** POOLWATCH_MODEL_DEBUG=1: each step on stderr as it starts. */
const debug = process.env.POOLWATCH_MODEL_DEBUG === '1';

/** Programs per driver per CI run, unless POOLWATCH_MODEL_RUNS says otherwise. */
export function runs(ciBudget: number): number {
  const n = Number(process.env.POOLWATCH_MODEL_RUNS);
  return Number.isInteger(n) && n > 0 ? n : ciBudget;
}

// ---------------------------------------------------------------- programs

const slot = fc.nat({ max: 7 });
const form = fc.constantFrom<Form>('promise', 'callback');

/** Arbitrary programs; `weights` tunes how often each step comes (0 leaves it out). */
export function programs(weights: Partial<Record<Op['k'], number>> = {}, maxLength = 30): fc.Arbitrary<Program> {
  const w = (k: Op['k'], base: number) => weights[k] ?? base;
  const ops: Array<fc.WeightedArbitrary<Op>> = [
    { weight: w('acquire', 8), arbitrary: fc.record({ k: fc.constant('acquire' as const), form }) },
    { weight: w('poolQuery', 3), arbitrary: fc.record({ k: fc.constant('poolQuery' as const), form, v: fc.nat({ max: 99 }) }) },
    { weight: w('burst', 2), arbitrary: fc.record({ k: fc.constant('burst' as const), via: fc.constantFrom<'poolQuery' | 'acquire'>('poolQuery', 'acquire'), extra: fc.integer({ min: 1, max: 3 }) }) },
    { weight: w('query', 3), arbitrary: fc.record({ k: fc.constant('query' as const), slot, v: fc.nat({ max: 99 }) }) },
    { weight: w('begin', 3), arbitrary: fc.record({ k: fc.constant('begin' as const), slot }) },
    { weight: w('commit', 2), arbitrary: fc.record({ k: fc.constant('commit' as const), slot }) },
    { weight: w('rollback', 1), arbitrary: fc.record({ k: fc.constant('rollback' as const), slot }) },
    { weight: w('badQuery', 2), arbitrary: fc.record({ k: fc.constant('badQuery' as const), slot }) },
    { weight: w('slow', 1), arbitrary: fc.record({ k: fc.constant('slow' as const), slot }) },
    { weight: w('release', 6), arbitrary: fc.record({ k: fc.constant('release' as const), slot, how: fc.constantFrom<Giveback>('plain', 'plain', 'error', 'destroy') }) },
    { weight: w('doubleRelease', 1), arbitrary: fc.constant({ k: 'doubleRelease' as const }) },
    { weight: w('timeout', 1), arbitrary: fc.constant({ k: 'timeout' as const }) },
    { weight: w('kill', 1), arbitrary: fc.record({ k: fc.constant('kill' as const), slot }) },
    { weight: w('tick', 4), arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.constantFrom(100, 400, THRESHOLD, THRESHOLD) }) },
    { weight: w('rewatch', 1), arbitrary: fc.constant({ k: 'rewatch' as const }) },
    // Seconds each: only where a suite asks for it.
    { weight: w('restart', 0), arbitrary: fc.constant({ k: 'restart' as const }) },
  ].filter((o) => o.weight > 0) as Array<fc.WeightedArbitrary<Op>>;
  return fc.record({ subscribeFirst: fc.boolean(), lateWatch: fc.constantFrom(false, false, false, true), ops: fc.array(fc.oneof(...ops), { maxLength }) });
}

// ---------------------------------------------------------------- running a program

interface Slot<C> extends Held<C> {
  /** Fake ms when the pool handed it over. */
  readonly acquiredAt: number;
  /** Its lease in the watched run; undefined when taken while unwatched (before a rewatch). */
  readonly leaseId: number | undefined;
  killed: boolean;
}

interface Watching {
  readonly detector: Detector;
  readonly reports: LeakReport[];
  /** Acquire events not yet matched to a step. */
  fresh: LeaseInfo[];
}

function describe(value: unknown, normalize: (text: string) => string): string {
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown; errno?: unknown; sqlState?: unknown };
    return normalize(`error ${e.constructor.name} ${e.name} code=${String(e.code)} errno=${String(e.errno)} sqlState=${String(e.sqlState)}: ${poolsOwnMessage(e.message)}`);
  }
  return normalize(`value ${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`);
}

async function settle(run: () => Promise<unknown> | unknown): Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** What the watched runs of this process did and checked, by kind: printed after a suite, to show the programs reach what they should. */
const tally = new Map<string, number>();
const tallied = (what: string, n = 1) => tally.set(what, (tally.get(what) ?? 0) + n);

/** An oracle said no: the message says which and where. */
class Violation extends Error {}

/** Real ms a step may take before the run fails as stuck: only ever reached by a hang, never a measure. */
const STUCK_MS = 15_000;

/** `work`, or a Violation naming the step and the pool's state if it never settles. */
async function within(work: Promise<unknown>, step: number, op: Op, state: () => unknown): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Violation(`step ${step} ${JSON.stringify(op)} never ended; the pool: ${JSON.stringify(state())}`)), STUCK_MS);
  });
  try {
    await Promise.race([work, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `program` on a new pool: watched by a new detector when `watched`, checking the
 * oracles after every step. Returns its trace.
 */
async function execute<P extends object, C>(d: ModelDriver<P, C>, program: Program, watched: boolean): Promise<string[]> {
  const normalize = d.normalize ?? ((text: string) => text);
  const trace: string[] = [];
  const note = (step: number, what: string, value: unknown) => {
    trace.push(`${step} ${what}: ${describe(value, normalize)}`);
    if (watched) tallied(`${what.replace(/ (on )?#\d+$/, '')}${value instanceof Error ? ' (failed)' : ''}`);
  };
  const clock = sinon.useFakeTimers({ now: EPOCH, toFake: ['performance', 'Date'] });
  const mono = () => clock.now - EPOCH;
  const pool = await d.create();
  let w: Watching | undefined;
  const held: Array<Slot<C>> = [];
  let lastReleased: Slot<C> | undefined;
  // Given back again the same way, as an app that runs its cleanup twice does.
  let lastHow: Giveback = 'plain';
  const startWatching = () => {
    const detector = createDetector({ leakThresholdMs: THRESHOLD });
    const state: Watching = { detector, reports: [], fresh: [] };
    const subscribe = () => detector.on('leak', (report) => state.reports.push(report));
    detector.on('acquire', (lease) => state.fresh.push(lease));
    if (program.subscribeFirst) subscribe();
    detector.watch(pool, { name: d.name });
    if (!program.subscribeFirst) subscribe();
    return state;
  };
  if (watched && program.lateWatch !== true) w = startWatching();
  const pick = (index: number) => (held.length === 0 ? undefined : held[index % held.length]!);
  // What connections emit may come at any time after the step that caused it: compared as a set, at the end.
  // A set of errors, not of listeners: a connection lent several times carries each borrower's listener.
  const emitted = new Set<string>();
  // Only while the program holds the connection: once given back, whether its end races a later step is timing.
  const ignored = () => {};
  const listener = (lent: { conn?: C }) => (error: unknown) => {
    if (lent.conn !== undefined && held.some((s) => s.conn === lent.conn)) emitted.add(`a connection emitted: ${describe(error, normalize)}`);
  };


  // Lease ids released (given back) by the program; a report made before the release is theirs.
  const released = new Set<number | undefined>();
  // Leases a stale release ended in the pool but not in poolwatch (a known defect, let pass while open).
  const staleOpen = new Set<number>();
  // Connections a statement ran on while poolwatch was not following their lease.
  const usedUnfollowed = new Set<C>();
  const toleratedLate = (s: Slot<C>, server: ServerState, mine: unknown) => {
    const known = !strict && d.known?.lateFollow !== undefined && usedUnfollowed.has(s.conn) && mine === 'idle' && server === 'idle-in-transaction';
    if (known) tallied(`known defect let pass: ${d.known!.lateFollow!}`);
    return known;
  };
  const tolerated = (lease: LeaseInfo | undefined) => {
    const known = !strict && d.known?.noActivity !== undefined && lease !== undefined && lease.activity === undefined;
    if (known) tallied(`known defect let pass: ${d.known!.noActivity!}`);
    return known;
  };

  const take = async (step: number, form: Form) => {
    const lent: { conn?: C } = {};
    const got = await settle(() => d.acquire(pool, form, listener(lent)));
    if (got.ok) lent.conn = got.value as C;
    if (!got.ok) return note(step, `acquire ${form}`, got.error);
    note(step, `acquire ${form}`, 'ok');
    let leaseId: number | undefined;
    if (w !== undefined) {
      if (w.fresh.length !== 1) throw new Violation(`step ${step}: one acquire gave ${w.fresh.length} 'acquire' events`);
      leaseId = w.fresh[0]!.leaseId;
    }
    held.push({ conn: got.value as C, form, acquiredAt: mono(), leaseId, killed: false });
  };

  /** `inFlight`: a connection running a statement, past its threshold, reported `before` times before it began. */
  const check = async (step: number, inFlight?: { slot: Slot<C>; before: number }) => {
    if (w === undefined) return;
    const { detector } = w;
    detector.check();
    const leases = detector.leases();
    const byId = new Map(leases.map((lease) => [lease.leaseId, lease]));
    const untracked = held.some((s) => s.leaseId === undefined);
    // (2) the pool's own count.
    const killed = !strict && d.known?.killedStaysOpen !== undefined ? held.filter((s) => s.killed).length : 0;
    if (!untracked) tallied("oracle: open leases = the pool's own count");
    const stale = leases.filter((lease) => staleOpen.has(lease.leaseId)).length;
    if (stale > 0) tallied(`known defect let pass: ${d.known!.staleRelease!}`);
    if (!untracked && leases.length - stale !== d.leased(pool) && killed > 0 && leases.length - stale - killed === d.leased(pool)) tallied(`known defect let pass: ${d.known!.killedStaysOpen!}`);
    if (!untracked && leases.length - stale !== d.leased(pool) && leases.length - stale - killed !== d.leased(pool)) {
      throw new Violation(`step ${step}: poolwatch has ${leases.length} open leases, the pool counts ${d.leased(pool)} leased`);
    }
    for (const s of held) {
      if (s.leaseId === undefined || s.killed) continue;
      if (!byId.has(s.leaseId)) throw new Violation(`step ${step}: the connection taken as lease #${s.leaseId} is held, poolwatch has no open lease for it`);
    }
    // (4) reported once past the threshold, naming the line; nothing else reported.
    const reports = w.reports;
    const count = new Map<number, LeakReport[]>();
    for (const r of reports) count.set(r.leaseId, [...(count.get(r.leaseId) ?? []), r]);
    const heldIds = new Set(held.map((s) => s.leaseId));
    for (const s of held) {
      if (s.leaseId === undefined || s.killed) continue;
      const got = count.get(s.leaseId) ?? [];
      if (s === inFlight?.slot) {
        tallied('oracle: a statement in flight past the threshold is not a leak');
        if (got.length !== inFlight.before && !tolerated(byId.get(s.leaseId))) throw new Violation(`step ${step}: lease #${s.leaseId}, past its threshold with a statement in flight, was reported as a leak (${got.length - inFlight.before})`);
        continue;
      }
      const due = mono() - s.acquiredAt >= THRESHOLD;
      if (got.length !== (due ? 1 : 0)) {
        throw new Violation(`step ${step}: lease #${s.leaseId} (${s.form}) held ${mono() - s.acquiredAt} ms at a ${THRESHOLD} ms threshold was reported ${got.length} times`);
      }
      if (due && !got[0]!.callSite?.startsWith(d.sites[s.form])) {
        throw new Violation(`step ${step}: lease #${s.leaseId}'s report names ${String(got[0]!.callSite)}, not the line that took it, ${d.sites[s.form]}`);
      }
      if (due) tallied(`oracle: a lease held past its threshold reported once at its line (${s.form})`);
    }
    for (const [id, rs] of count) {
      if (rs.length > 1) throw new Violation(`step ${step}: lease #${id} reported ${rs.length} times`);
      if (!heldIds.has(id) && !released.has(id)) throw new Violation(`step ${step}: lease #${id}, never held past its threshold by the program, was reported (${rs[0]!.kind}, ${String(rs[0]!.callSite)})`);
    }
    // (3) the server's view.
    if (d.server !== undefined) {
      const alive = held.filter((s) => s.leaseId !== undefined && !s.killed);
      while (d.caughtUp !== undefined && !alive.every((s) => s === inFlight?.slot || d.caughtUp!(s.conn))) await new Promise(setImmediate);
      let states = await d.server(alive.map((s) => s.conn));
      // MariaDB answers a statement before its processlist says the thread sleeps again: a connection running
      // nothing the program knows of is asked again until the server's own view has caught up (a hundred times at most).
      for (let tries = 0; tries < 100 && states.some((state, i) => state === 'query' && alive[i] !== inFlight?.slot); tries++) {
        await new Promise(setImmediate);
        states = await d.server(alive.map((s) => s.conn));
      }
      const now = new Map(detector.leases().map((lease) => [lease.leaseId, lease]));
      alive.forEach((s, i) => {
        const server = states[i]!;
        const lease = now.get(s.leaseId!)!;
        const mine = lease.activity;
        tallied(`oracle: the server and poolwatch agree a held connection is ${server}`);
        if (server !== mine && !tolerated(lease) && !toleratedLate(s, server, mine)) throw new Violation(`step ${step}: lease #${s.leaseId} is '${String(mine)}' to poolwatch, '${server}' to the server`);
      });
    }
  };
  const giveBack = async (step: number, s: Slot<C>, how: Giveback) => {
    held.splice(held.indexOf(s), 1);
    released.add(s.leaseId);
    lastReleased = s;
    lastHow = how;
    const got = await settle(() => d.giveBack(pool, s.conn, how));
    note(step, `release ${how}`, got.ok ? got.value ?? 'ok' : got.error);
  };

  try {
    for (const [step, op] of program.ops.entries()) {
      if (debug) process.stderr.write(`${watched ? 'watched' : 'raw'} step ${step} ${JSON.stringify(op)} held ${held.length}\n`);
      if (w !== undefined) w.fresh = [];
      const doing = (async () => { switch (op.k) {
        case 'acquire':
          if (held.length >= d.max) break; // it would wait for ever: see 'timeout'
          await take(step, op.form);
          break;
        case 'poolQuery': {
          if (d.poolQuery === undefined || held.length >= d.max) break;
          const got = await settle(() => d.poolQuery!(pool, op.form, d.sql?.value(op.v) ?? '', op.v));
          note(step, `pool query ${op.form}`, got.ok ? got.value : got.error);
          break;
        }
        case 'burst': {
          // More callers than free connections: the rest queue, and each is served as one is given back.
          if (held.length >= d.max) break;
          const n = d.max - held.length + op.extra;
          const one = async (i: number) => {
            if (op.via === 'poolQuery' && d.poolQuery !== undefined) return d.poolQuery(pool, i % 2 === 0 ? 'promise' : 'callback', d.sql?.value(i) ?? '', i);
            const conn = await d.acquire(pool, i % 2 === 0 ? 'promise' : 'callback', ignored);
            const value = d.query !== undefined && d.sql !== undefined ? await d.query(conn, d.sql.value(i)) : i;
            await d.giveBack(pool, conn, 'plain');
            return value;
          };
          const all = await Promise.all(Array.from({ length: n }, (_, i) => settle(() => one(i))));
          all.forEach((got, i) => note(step, `burst ${op.via} #${i}`, got.ok ? got.value : got.error));
          break;
        }
        case 'query':
        case 'begin':
        case 'commit':
        case 'rollback':
        case 'badQuery': {
          const s = pick(op.slot);
          if (s === undefined || d.query === undefined || d.sql === undefined) break;
          const sql = d.sql;
          if (s.leaseId === undefined) usedUnfollowed.add(s.conn);
          const statements = op.k === 'query' ? [sql.value(op.v)] : op.k === 'begin' ? sql.begin : [op.k === 'commit' ? sql.commit : op.k === 'rollback' ? sql.rollback : sql.bad];
          for (const statement of statements) {
            const got = await settle(() => d.query!(s.conn, statement));
            note(step, `${op.k} on #${held.indexOf(s)}`, got.ok ? got.value : got.error);
          }
          break;
        }
        case 'slow': {
          // Past the threshold while a statement runs: slow, not a leak; a leak once it is idle.
          const s = pick(op.slot);
          if (s === undefined || d.query === undefined || d.sql === undefined || d.block === undefined || d.running === undefined || s.killed) break;
          const unlock = await d.block();
          let done = false;
          const running = settle(() => d.query!(s.conn, d.sql!.slow)).finally(() => (done = true));
          await d.running(s.conn, () => done);
          clock.tick(THRESHOLD);
          const before = w === undefined ? 0 : w.reports.filter((r) => r.leaseId === s.leaseId).length;
          await check(step, done || s.leaseId === undefined ? undefined : { slot: s, before }).finally(unlock);
          const got = await running;
          note(step, `slow on #${held.indexOf(s)}`, got.ok ? got.value : got.error);
          break;
        }
        case 'release': {
          const s = pick(op.slot);
          if (s === undefined) break;
          await giveBack(step, s, op.how);
          break;
        }
        case 'doubleRelease': {
          if (lastReleased === undefined || lastReleased.killed || d.unsafeTwice?.includes(lastHow) === true) break;
          const before = d.leased(pool);
          const got = await settle(() => d.giveBack(pool, lastReleased!.conn, lastHow));
          note(step, `release ${lastHow} again`, got.ok ? got.value ?? 'ok' : got.error);
          // The same connection object lent again since (pg, mysql2, generic-pool): the stale release gives back
          // its new borrower's lease, as the pool's count says. Its new borrower no longer holds it.
          const same = d.sameConnection ?? ((a: C, b: C) => a === b);
          const again = held.find((s) => same(s.conn, lastReleased!.conn));
          if (again !== undefined && d.leased(pool) < before) {
            held.splice(held.indexOf(again), 1);
            released.add(again.leaseId);
            if (!strict && d.known?.staleRelease !== undefined && again.leaseId !== undefined) staleOpen.add(again.leaseId);
            note(step, 'a stale release gave back the connection lent again', 'ok');
          }
          lastReleased = undefined;
          break;
        }
        case 'timeout': {
          // A killed connection may already have left the pool (mariadb drops it at once, mysql2 when it reads the close):
          // with one among the held, whether the pool has room depends on when it noticed.
          if (d.withShortTimeout === undefined || held.length < d.max || held.some((s) => s.killed)) break;
          const got = await settle(() => d.withShortTimeout!(pool, () => d.acquire(pool, 'promise', ignored), (ms) => clock.tick(ms)));
          note(step, 'acquire timing out', got.ok ? 'acquired' : got.error);
          if (got.ok) throw new Violation(`step ${step}: an acquire on a pool with every connection held succeeded`);
          break;
        }
        case 'kill': {
          const s = pick(op.slot);
          if (s === undefined || d.kill === undefined || s.killed) break;
          await d.kill(pool, s.conn);
          s.killed = true;
          note(step, `kill #${held.indexOf(s)}`, 'ok');
          break;
        }
        case 'restart': {
          if (d.restart === undefined) break;
          await d.restart(held.filter((s) => !s.killed).map((s) => s.conn));
          for (const s of held) s.killed = true;
          note(step, 'server restarted', 'ok');
          break;
        }
        case 'tick':
          clock.tick(op.ms);
          break;
        case 'rewatch':
          if (!watched) break;
          if (w === undefined) {
            tallied('watch a pool already in use');
          } else {
            tallied('unwatch and watch again');
            w.detector.unwatch(pool);
            w.detector.close();
          }
          // Connections held now were taken before this watch(): poolwatch knows none of them.
          // Lease ids start again with the new detector.
          for (const [i, s] of held.entries()) held[i] = { ...s, leaseId: undefined };
          released.clear();
          staleOpen.clear();
          w = startWatching();
          break;
      } })();
      await within(doing, step, op, () => d.state?.(pool));
      await within(check(step), step, op, () => d.state?.(pool));
    }
    return [...trace, ...[...emitted].sort()];
  } finally {
    w?.detector.close();
    clock.restore();
    for (const s of held.splice(0)) await settle(() => d.giveBack(pool, s.conn, s.killed ? 'error' : 'plain'));
    await d.close(pool);
  }
}

/** Runs `program` raw and watched; throws with what differs or which oracle failed. */
export async function compare<P extends object, C>(d: ModelDriver<P, C>, program: Program): Promise<void> {
  const raw = await execute(d, program, false);
  const watched = await execute(d, program, true);
  if (debug) process.stderr.write(`unwatched trace:\n  ${raw.join('\n  ')}\nwatched trace:\n  ${watched.join('\n  ')}\n`);
  const at = raw.findIndex((line, i) => line !== watched[i]);
  if (at !== -1 || raw.length !== watched.length) {
    const i = at === -1 ? Math.min(raw.length, watched.length) : at;
    throw new Violation(`the watched pool behaved differently from the unwatched one at trace line ${i}:\n  unwatched: ${raw[i] ?? '(nothing)'}\n  watched:   ${watched[i] ?? '(nothing)'}`);
  }
}

/** Runs `numRuns` random programs (or POOLWATCH_MODEL_SEED's) as one tap test. */
export function modelSuite<P extends object, C>(t: Test, d: ModelDriver<P, C>, options: { numRuns: number; weights?: Partial<Record<Op['k'], number>> }): Promise<void> {
  const seed = process.env.POOLWATCH_MODEL_SEED === undefined ? Date.now() ^ (Math.random() * 0x7fffffff) : Number(process.env.POOLWATCH_MODEL_SEED);
  const numRuns = runs(options.numRuns);
  // Server restarts take seconds each: in random programs only when asked (POOLWATCH_MODEL_RESTARTS=1), on drivers that can.
  const weights = process.env.POOLWATCH_MODEL_RESTARTS === '1' ? { restart: 1, ...options.weights } : options.weights;
  return t.test(`${numRuns} random programs behave as on the unwatched pool, and agree with the pool's own counts, the server's view and the reports' lines (seed ${seed})`, async (t) => {
    t.comment(`seed ${seed}: replay with POOLWATCH_MODEL_SEED=${seed}`);
    const started = Date.now();
    const result = await fc.check(
      fc.asyncProperty(programs(weights), (program) => compare(d, program)),
      { numRuns, seed, endOnFailure: false, interruptAfterTimeLimit: undefined },
    );
    t.comment(`${result.numRuns} programs in ${Date.now() - started} ms; what their watched runs did and checked:`);
    for (const [what, n] of [...tally].sort(([a], [b]) => a.localeCompare(b))) t.comment(`  ${String(n).padStart(6)}  ${what}`);
    tally.clear();
    if (result.failed) {
      t.fail(`seed ${seed}, path ${String(result.counterexamplePath)}: ${String((result.errorInstance as Error | undefined)?.message ?? result.errorInstance)}\nshrunk program: ${JSON.stringify(result.counterexample?.[0])}`);
    } else {
      t.pass(`${result.numRuns} programs passed`);
    }
  }) as unknown as Promise<void>;
}

/** Replays one fixed program (a shrunk counterexample kept as an example); `strict`: no known defect is let pass. */
/** `todo`: a known defect, being fixed elsewhere: the example fails until then, marked so, without failing the file. */
export async function replay<P extends object, C>(t: Test, d: ModelDriver<P, C>, program: Program, options: { strict?: boolean; todo?: string } = {}): Promise<void> {
  const got = await settle(() => compare(options.strict === true ? { ...d, known: undefined } : d, program));
  t.ok(got.ok, got.ok ? 'as unwatched, and every oracle agrees' : String((got.error as Error).message), options.todo === undefined ? {} : { todo: options.todo });
}

/** A test file's timeout: its programs' budget at a generous second each, never under five minutes. */
export function fileTimeout(ciBudget: number): number {
  return Math.max(5 * 60_000, runs(ciBudget) * 1_000);
}

/** Shorthands for writing kept examples. */
export const op = {
  acquire: (form: Form = 'promise'): Op => ({ k: 'acquire', form }),
  poolQuery: (form: Form = 'promise', v = 1): Op => ({ k: 'poolQuery', form, v }),
  burst: (via: 'poolQuery' | 'acquire', extra = 1): Op => ({ k: 'burst', via, extra }),
  query: (slot = 0, v = 1): Op => ({ k: 'query', slot, v }),
  begin: (slot = 0): Op => ({ k: 'begin', slot }),
  commit: (slot = 0): Op => ({ k: 'commit', slot }),
  rollback: (slot = 0): Op => ({ k: 'rollback', slot }),
  badQuery: (slot = 0): Op => ({ k: 'badQuery', slot }),
  slow: (slot = 0): Op => ({ k: 'slow', slot }),
  release: (slot = 0, how: Giveback = 'plain'): Op => ({ k: 'release', slot, how }),
  doubleRelease: (): Op => ({ k: 'doubleRelease' }),
  timeout: (): Op => ({ k: 'timeout' }),
  kill: (slot = 0): Op => ({ k: 'kill', slot }),
  tick: (ms = THRESHOLD): Op => ({ k: 'tick', ms }),
  rewatch: (): Op => ({ k: 'rewatch' }),
  restart: (): Op => ({ k: 'restart' }),
};
