import { describe } from './errors.js';
import { installAll } from './adapters/patch.js';
import { debugLogger, enabledCheck } from './log.js';
import { now, toEpoch } from './clock.js';
import { Lease, leaseView, pending, open, closed, failed } from './lease.js';
import { noLabels } from './labels.js';
import { channels } from './channels.js';
import { Ledger } from './ledger.js';
import { LeakReport, formatDuration, type LeakKind } from './report.js';
import { Sampler } from './sampler.js';
import { Summary, type SummaryInfo } from './summary.js';
import { LoadWindow, type PoolSizing } from './sizing.js';
import { Timeline } from './timeline.js';
import type { Activity } from './activity.js';
import { fullDepth, captureTrace, libraryMatcher, originOf, type Origin, type Trace } from './stack.js';
import { currentScope, mergeLabels, type Scope } from './context.js';
import { traceLabels } from './trace-ids.js';
import { describeExhaustion, groupHolders, nameHolders, oneLine, type ExhaustedEvent, type ExhaustionReason, type HolderGroup, type Judgement } from './exhaustion.js';
import type { Adapter, Tracker } from './adapters/types.js';
import { manifest, probe, probeShapes, warnDegraded, type Capability, type CapabilityManifest, type Shape } from './adapters/internals/probe.js';
import { warn } from './warn.js';
import { onRejected } from './rejections.js';
import type { Emitter, MisuseKind } from './events.js';
import type { Labels, ResolvedOptions } from './options.js';

const logLease = debugLogger('poolwatch:lease');
const leaseLogging = enabledCheck(logLease);
const logLeak = debugLogger('poolwatch:leak');
const leakLogging = enabledCheck(logLeak);
// A saturated pool reports who holds it at most this often.
const exhaustedIntervalMs = 10_000;
// A request waiting this long (or half the pool's own acquire timeout, when that is
// sooner) hurts: the pool then names who holds it. Brief queueing on a busy pool that
// serves everyone is normal, and says nothing.
const hurtingWaitMs = 5_000;
// Call-site captures reach this many frames past the app's own line, so a report shows
// who called it. More cost ~0.3-1 µs each in a real service's cold stack; full stacks
// come within the sampler's budget.
const contextFrames = 1;
const shallowestDepth = 1 + contextFrames;
// A library reaches one route by paths of different lengths (objection's startTransaction()
// calls knex.transaction() three frames deeper than its transaction(cb) does): a route whose
// app line sits below k library frames captures up to this many more than k, so a path the
// probes did not see still reaches the app. None when the app calls the pool itself.
const spareFrames = 4;
// The first acquires by each route under 'auto' take full stacks and are read at once, to
// learn how deep the app's line sits below it before the depth matters.
const probes = 8;
// Routes a pool learns apart; callers past them (a wrapper made per call) share one.
const maxRoutes = 64;

/**
 * One way the app reaches a pool: the wrapper it calls through (`query()`, `connect()`, an
 * ORM's `transaction()`). How deep the app's line sits below one route says nothing of
 * another's, so each learns its own depth, from its own first acquires.
 */
class Route {
  /** Frames a call-site capture takes under 'auto': learnt from full captures, only ever grows. */
  depth = shallowestDepth;
  /** Full captures still to be read, to learn `depth`. */
  probes = probes;
}

// A stack cut short before any app frame (a path deeper than those seen so far) doubles the route's depth.
function learnDepth(route: Route, trace: Trace, origin: Origin): void {
  let depth = route.depth;
  if (origin.appDepth > 0) depth = Math.max(depth, origin.appDepth + Math.min(origin.appDepth - 1, spareFrames) + contextFrames);
  else if (origin.captured >= trace.depth) depth = Math.max(depth, trace.depth * 2);
  route.depth = Math.min(depth, fullDepth);
}

// A holder idle this long past the pool's usual (p99) hold, or this long at all when the pool has no history, counts as stuck.
const stuckFloorMs = 1_000;
const stuckFactor = 2;

// Error codes of a connection that could not be opened: the network, the server refusing,
// or the credentials. Node's, PostgreSQL's SQLSTATE classes 08/28/57P, MySQL's and MariaDB's.
const connectCodes = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE', 'ENOENT',
  '28000', '28P01', '53300', '57P01', '57P02', '57P03',
  'ER_ACCESS_DENIED_ERROR', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN', 'PROTOCOL_CONNECTION_LOST', 'ER_CONNECTION_TIMEOUT', 'ER_GET_CONNECTION_TIMEOUT', 'ER_HOST_IS_BLOCKED', 'ER_DBACCESS_DENIED_ERROR', 'ER_SOCKET_UNEXPECTED_CLOSE', 'ER_CONNECTION_ALREADY_CLOSED',
]);

/** Whether `error`, failing an acquire, says the database could not be reached or refused the connection. */
export function isConnectFailure(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, errors, message } = e as { code?: unknown; errors?: unknown; message?: unknown };
    if (typeof code === 'string' && (connectCodes.has(code) || code.startsWith('08'))) return true;
    // Node's happy-eyeballs connect fails with one error per address.
    if (Array.isArray(errors) && errors.some((inner) => isConnectFailure(inner))) return true;
    // pg's own words for a connect that ran out of time or a socket closed while connecting.
    if (typeof message === 'string' && /^Connection terminated|^connect E[A-Z]+|timeout expired/.test(message)) return true;
  }
  return false;
}

// The `adapter` option: leases and double releases, from the methods it names; nothing else is known of the pool.
function customManifest(adapter: Adapter): CapabilityManifest {
  const can = { misuse: true, capacity: false, idle: false, acquireTimeout: false, exhaustion: false, destroys: true, handover: true, activity: false, reclaim: false };
  return manifest(adapter.kind, undefined, undefined, can, []);
}

// A figure read from the pool at watch(): a getter of the pool's that throws leaves it unknown, never fails watch().
function asked(read: () => number | undefined): number | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

function isPowerOfTen(n: number): boolean {
  while (n % 10 === 0) n /= 10;
  return n === 1;
}

/** Per-pool figures from `detector.stats()`. */
export interface PoolStats {
  /** Leases open now. */
  readonly open: number;
  /** Acquire calls waiting for a connection now. */
  readonly waiting: number;
  readonly acquired: number;
  readonly released: number;
  readonly destroyed: number;
  /** Acquire calls that failed or timed out. */
  readonly failed: number;
  /** Acquire calls the pool gave up on for want of a connection (its timeout or queue limit). */
  readonly timeouts: number;
  /** The pool's maximum size, when it says. */
  readonly capacity: number | undefined;
  /** Open connections the pool holds ready, not leased, now: when it says. */
  readonly idle: number | undefined;
  /** The most leases open at once: what the pool really needed. */
  readonly peakOpen: number;
  readonly leaked: number;
  readonly misuse: number;
  /** Leases poolwatch had to stop following: it could not see their connection come back (see the `error` event). */
  readonly untracked: number;
  /** How long connections were held, over closed leases. */
  readonly held: SummaryInfo;
  /** How long acquire calls waited for a connection. */
  readonly waited: SummaryInfo;
  /** What poolwatch can see of this pool: the library and version, and what a missing private field took away. */
  readonly capabilities: CapabilityManifest;
  /** Open leases by what their connection is doing, when the driver shows it (the `activity` capability). */
  readonly activity: Readonly<Record<Activity, number>> | undefined;
  /** How long the oldest open lease has been held; 0 with none open. */
  readonly oldestHeldMs: number;
}

/** A `lease()` call acquiring: its stack, and the lease the pool's acquire opened for it. */
export interface Handing {
  readonly trace: Trace | null;
  lease: Lease | null;
}

/** What a watched pool needs from its detector. */
export interface DetectorHost {
  readonly emitter: Emitter;
  nextLeaseId(): number;
  /** A lease now open will be due at `deadline` (monotonic ms). */
  schedule(deadline: number): void;
}

/** One pool under watch: its options, open leases and figures. Implements what the adapter calls. */
export class WatchedPool implements Tracker {
  readonly ledger = new Ledger();
  readonly isLibrary: (file: string) => boolean;
  readonly thresholdMs: number;
  /** `reclaimAfterMs` as in force here: Infinity when off, or when the pool cannot be reclaimed. */
  readonly reclaimAfterMs: number;
  readonly stacks: ResolvedOptions['stacks'];
  readonly #sampler: Sampler;
  readonly #context: ResolvedOptions['context'];
  readonly #onLeak: ResolvedOptions['onLeak'];
  readonly #uninstall: () => void;
  readonly #siteThresholds: ReadonlyArray<readonly [string, number]>;
  // Leaks so far per call site: a site that keeps leaking is logged with a count, not once per lease.
  readonly #leaksBySite = new Map<string | undefined, number>();
  // Leases held to a limit other than the pool's threshold (extend(), a call site's own): set
  // only on those rare paths, read only when a report or a slow lease says which limit applied.
  readonly #limits = new WeakMap<Lease, number>();
  #active = true;
  #contextRefused = false;
  #lostSaid = false;
  #connectionProbed = false;
  // Leases past their threshold kept out of reports because their connection LISTENs (see #listening).
  readonly #listeningPast = new WeakSet<Lease>();
  // The resource poolwatch is destroying now: its own destroy is not the app's.
  #reclaimingNow: unknown = undefined;
  // A lease() handle's destroy now under way: the pool's own give-back it goes through ends the lease as a destroy.
  #destroyingNow: unknown = undefined;
  /** The lease() call now acquiring from this pool: the acquire's lease is its handle's (see {@link WatchedPool.begin}). */
  handing: Handing | null = null;
  /** What the probe at watch() found this pool's library offers. */
  capabilities: CapabilityManifest;
  /** Whether to follow what connections do (the `activity` capability): a field, read at each handover. */
  following: boolean;
  #waiting = 0;
  #acquired = 0;
  #released = 0;
  #destroyed = 0;
  #failed = 0;
  #leaked = 0;
  #misused = 0;
  #timeouts = 0;
  #untracked = 0;
  #peakOpen = 0;
  // Per reason, so a flood of saturation events does not hide the first timeout.
  readonly #lastExhausted = { saturated: -Infinity, timeout: -Infinity, failed: -Infinity };
  readonly #suppressed = { saturated: 0, timeout: 0, failed: 0 };
  /** The pool's maximum size; Infinity when it does not say. */
  readonly capacity: number;
  readonly #held = new Summary();
  readonly #waited = new Summary();
  // The last minute's load, for sizing().
  readonly #load = new LoadWindow(now());
  /** The last hour, sampled each second, with what happened: for the HTML report. */
  readonly timeline = new Timeline();
  /** Requests that found every connection leased and are still waiting, oldest first. */
  readonly #queued = new Set<Lease>();
  /**
   * Connections the pool had leased when watch() began (as under `poolwatch attach`), at
   * most: poolwatch cannot see them come back, so it is read again from the pool whenever
   * the pool looks full, and reaches 0 for good once they are all back.
   */
  #before = 0;
  readonly #hurtingWaitMs: number;
  readonly #routes = new Map<Function, Route>();
  readonly #otherRoutes = new Route();
  // The route of the last capture: most acquires of a pool come one way, and a Map lookup costs more.
  #lastCaller: Function | null = null;
  #lastRoute: Route = this.#otherRoutes;
  /** Under 'auto': the next acquire takes a full stack, as the budget allows one. */
  #full = false;

  constructor(
    readonly name: string,
    readonly target: object,
    readonly adapter: Adapter,
    options: ResolvedOptions,
    readonly host: DetectorHost,
  ) {
    this.thresholdMs = options.leakThresholdMs;
    this.stacks = options.stacks;
    this.#sampler = new Sampler(options.stacks);
    this.#context = options.context;
    this.#onLeak = options.onLeak;
    // Longest prefix first, so 'src/a.ts:42' wins over 'src/a.ts'.
    this.#siteThresholds = Object.entries(options.callSiteThresholdsMs ?? {}).sort(([a], [b]) => b.length - a.length);
    this.isLibrary = libraryMatcher(adapter.libraries);
    this.capabilities = adapter.internals === undefined ? customManifest(adapter) : probe(adapter.internals, target as never);
    const can = this.capabilities.can;
    this.following = can.activity;
    const capacity = can.capacity ? asked(() => adapter.capacity?.(target)) : undefined;
    this.capacity = typeof capacity === 'number' && capacity > 0 ? capacity : Infinity;
    const timeout = can.acquireTimeout ? asked(() => adapter.acquireTimeoutMs?.(target)) : undefined;
    this.#hurtingWaitMs = typeof timeout === 'number' && timeout > 0 ? Math.min(hurtingWaitMs, timeout / 2) : hurtingWaitMs;
    this.reclaimAfterMs = Infinity;
    this.#before = this.#leasedByPool();
    this.#uninstall = installAll(() => adapter.install(target, this));
    // Said only once watch() has succeeded, and once per library version and capability.
    if (this.capabilities.degraded.length > 0) warnDegraded(name, this.capabilities);
    if (options.reclaimAfterMs !== Infinity) {
      if (can.activity && can.reclaim && typeof adapter.reclaim === 'function') this.reclaimAfterMs = options.reclaimAfterMs;
      else {
        warn(
          `poolwatch: reclaimAfterMs is off for pool "${name}" (${this.capabilities.library}): poolwatch cannot see what its connections are doing, or cannot destroy one through the pool, so it never takes one back.`,
          'POOLWATCH_RECLAIM_UNSUPPORTED',
        );
      }
    }
  }

  get reclaiming(): boolean {
    return this.reclaimAfterMs !== Infinity;
  }

  absorb(resource: unknown, method: string, caller: Function): boolean {
    try {
      const last = this.ledger.last(resource);
      // poolwatch's own destroy goes through to the pool.
      if (last === undefined || !last.reclaimed || resource === this.#reclaimingNow || this.ledger.find(resource) !== undefined) return false;
      if (this.#active) this.#misuse(resource, method, caller);
      return true;
    } catch (error) {
      this.host.emitter.surface(this, `internal error on ${method}`, error);
      return false;
    }
  }

  /** A lease past its threshold or reclaim age whose connection just went idle: look again now. */
  wake(lease: Lease): void {
    if (lease.state !== open || !this.#active) return;
    const at = now();
    // Its handle is gone: nobody can give it back, and its query has ended. One that still
    // listens is left to the app, which may hold its client for that: looked at again after its next query.
    if (lease.collected && this.reclaimAfterMs !== Infinity) {
      const activity = lease.activity;
      if (activity === 'listening') lease.follow!.waiter = lease;
      else if (activity !== 'query') {
        this.#takeBack(lease, at, null);
        return;
      }
    }
    if ((lease.slow || this.#listeningPast.has(lease)) && lease.report === null) this.ledger.postpone(lease, at);
    this.host.schedule(at);
  }

  probeConnection(shapes: readonly Shape<never>[], connection: unknown, lackedBy?: (connection: unknown) => string): void {
    if (this.#connectionProbed) return;
    this.#connectionProbed = true;
    try {
      // A shape the driver sets only once the connection is ready (a new pg client is handed
      // over just before): judged once the handover's synchronous work is done.
      if (shapes.some((shape) => shape.ready?.(connection as never) === false)) queueMicrotask(() => this.#probeConnection(shapes, connection, lackedBy));
      else this.#probeConnection(shapes, connection, lackedBy);
    } catch (error) {
      this.host.emitter.surface(this, 'internal error probing a connection', error);
    }
  }

  #probeConnection(shapes: readonly Shape<never>[], connection: unknown, lackedBy: ((connection: unknown) => string) | undefined): void {
    try {
      if (!this.#active) return;
      const m = this.capabilities;
      const can = { ...m.can } as Record<Capability, boolean>;
      let lost = probeShapes(shapes, connection as never, can);
      if (lost.length === 0) return;
      if (lackedBy !== undefined) {
        const culprit = lackedBy(connection);
        lost = lost.map((l) => ({ ...l, lackedBy: culprit }));
      }
      this.capabilities = manifest(m.library, m.version, m.checked, can, [...m.degraded, ...lost]);
      this.following = can.activity;
      // Leases followed before the lack showed (a connection judged once ready) show no activity either.
      if (!can.activity) for (const lease of this.ledger) lease.follow = null;
      warnDegraded(this.name, this.capabilities, lost);
    } catch (error) {
      this.host.emitter.surface(this, 'internal error probing a connection', error);
    }
  }

  lost(lease: Lease, error: unknown): void {
    if (lease.state !== open || !this.#active) return;
    lease.state = closed;
    lease.lost = true;
    lease.releasedMono = now();
    this.ledger.remove(lease);
    lease.scope?.open.delete(lease);
    this.#untracked++;
    if (this.#lostSaid) return;
    this.#lostSaid = true;
    this.host.emitter.surface(
      this,
      `cannot see when pool "${this.name}" gets a connection back (its release cannot be wrapped: ${(error as Error)?.message ?? String(error)}); such leases are not tracked, and the app's connections are as the pool gave them`,
      error,
    );
  }

  begin(caller: Function, via?: string, given?: Trace | null): Lease {
    const at = now();
    const handing = this.handing;
    if (handing !== null) {
      // The acquire lease() makes: named after the lease() call, whatever path the pool takes.
      this.handing = null;
      via = 'lease';
      given = handing.trace;
    }
    this.#waiting++;
    this.#load.requested(at);
    // Every connection is leased: this request will wait.
    const queued = this.ledger.size + this.#before >= this.capacity && this.#poolFull();
    let trace = given ?? null;
    // Adapters take the short capture in their own wrapper (acquireWrapper); what is left
    // here is a full one under 'auto', which the pool learns from, or a caller without one.
    if (given === undefined && this.stacks !== 'never') trace = this.stacks === 'auto' ? this.#captureAuto(caller, at) : captureTrace(caller);
    if (this.stacks === 'auto') this.#planCapture(at);
    const scope = currentScope();
    const labels = this.#context === undefined && scope === undefined ? traceLabels(at) : mergeLabels(this.#labels(), scope, traceLabels(at));
    const lease = new Lease(this, at, labels ?? noLabels, trace, via ?? this.adapter.acquireMethod, scope);
    if (handing !== null) handing.lease = lease;
    if (queued) {
      this.#queue(lease, at);
      if (scope !== undefined && scope.open.size !== 0) this.#nestedAcquire(lease, scope.open);
    }
    return lease;
  }

  /**
   * An acquire that must wait while its own scope (its request) holds a connection of this
   * pool: under load every connection can be held by requests that each wait for a second
   * one, which only they could give back. Said at once, naming both lines.
   */
  #nestedAcquire(lease: Lease, open: ReadonlySet<Lease>): void {
    let held: Lease | undefined;
    for (const candidate of open) {
      if (candidate.watched === this) {
        held = candidate;
        break;
      }
    }
    if (held === undefined) return;
    this.#misused++;
    const callSite = lease.callSite;
    const message =
      `${lease.via}() waits for a connection of pool "${this.name}"${callSite === undefined ? '' : ` at ${callSite}`}, every one of which is leased, ` +
      `while its own request holds lease #${held.leaseId}${held.callSite === undefined ? '' : ` from ${held.callSite}`}: ` +
      'if every holder does the same, none can go on (a self-deadlock); take one connection per request, or give it back first';
    if (this.host.emitter.wanted('misuse')) {
      this.host.emitter.emit('misuse', Object.freeze({ kind: 'nested-acquire' as const, pool: this.name, method: lease.via, message, callSite, lease: leaseView(held) }));
    }
    if (logLeak.enabled) logLeak('%s: misuse: %s', this.name, message);
  }

  capture(caller: Function): Trace | null {
    if (this.stacks === 'never') return null;
    if (this.stacks === 'always') return captureTrace(caller);
    const at = now();
    const trace = this.#captureAuto(caller, at);
    this.#planCapture(at);
    return trace;
  }

  /**
   * How many frames an acquire wrapper above `caller` should capture itself now, or 0 when
   * `begin` takes the stack: a full one (the route's first acquires, or the budget allows
   * one), or none.
   */
  captureDepth(caller: Function): number {
    if (this.stacks !== 'auto') return this.stacks === 'always' ? fullDepth : 0;
    if (this.#full) return 0;
    const route = this.#route(caller);
    return route.probes > 0 ? 0 : route.depth;
  }

  #route(caller: Function): Route {
    if (caller === this.#lastCaller) return this.#lastRoute;
    let route = this.#routes.get(caller);
    if (route === undefined) {
      if (this.#routes.size >= maxRoutes) route = this.#otherRoutes;
      else this.#routes.set(caller, (route = new Route()));
    }
    this.#lastCaller = caller;
    this.#lastRoute = route;
    return route;
  }

  // Decided one acquire ahead, so an adapter's wrapper can take the short capture in its own frame.
  #planCapture(at: number): void {
    this.#full = this.#sampler.wants(at);
  }

  #captureAuto(caller: Function, at: number): Trace {
    const route = this.#route(caller);
    return this.#full || route.probes > 0 ? this.#captureFull(caller, route, at) : captureTrace(caller, route.depth);
  }

  // Under 'auto': a full stack, charged to the budget. A probe's is read at once, to learn
  // how deep the app's line sits; later ones only if a report reads them (reading one costs
  // several captures' worth, in formatting and its garbage).
  #captureFull(caller: Function, route: Route, at: number): Trace {
    const trace = captureTrace(caller);
    if (route.probes > 0) {
      route.probes--;
      learnDepth(route, trace, originOf(trace, this.isLibrary));
    }
    this.#sampler.spent(now() - at);
    return trace;
  }

  /**
   * What a parsed stack says about the call sites of the route it was captured on: how
   * many frames a capture needs to reach the app's own line.
   */
  learn(trace: Trace, origin: Origin): void {
    if (this.stacks === 'auto') learnDepth(this.#route(trace.above), trace, origin);
  }

  handover(lease: Lease, resource: unknown, immediate?: boolean): void {
    // A callback called twice, or a handover after unwatch: nothing to record.
    if (lease.state !== pending || !this.#active) return;
    try {
      // A clock read is a good share of a cycle's cost: one per acquire, when it can be.
      const at = immediate === true ? lease.requestedMono : now();
      this.#waiting--;
      if (this.#queued.size !== 0) this.#queued.delete(lease);
      lease.state = open;
      lease.resource = resource;
      lease.acquiredMono = at;
      lease.leaseId = this.host.nextLeaseId();
      lease.deadline = at + this.thresholdMs;
      // The pool handed out a connection we still count as leased: it came back by a path we do not see.
      const stale = this.ledger.add(lease);
      if (stale !== undefined) this.#close(stale, at, false);
      this.#acquired++;
      if (this.ledger.size > this.#peakOpen) this.#peakOpen = this.ledger.size;
      this.#load.acquired(at, this.ledger.size);
      this.#waited.add(at - lease.requestedMono);
      if (lease.deadline !== Infinity) this.host.schedule(lease.deadline);
      // What most acquires skip, kept out of line so this path stays small enough to inline.
      if (lease.scope !== undefined || this.host.emitter.listened.acquire || channels.acquire.hasSubscribers || leaseLogging()) this.#opened(lease, at);
    } catch (error) {
      this.host.emitter.surface(this, 'internal error on acquire', error);
    }
  }

  #opened(lease: Lease, at: number): void {
    const scope = lease.scope;
    if (scope !== undefined) {
      // Handed over after its scope ended (an acquire nobody awaited): already a leak.
      if (scope.ended) this.report(lease, 'scope-ended', at);
      else scope.open.add(lease);
    }
    const { emitter } = this.host;
    if (emitter.listened.acquire || channels.acquire.hasSubscribers) emitter.emit('acquire', leaseView(lease));
    if (leaseLogging()) logLease('%s: acquired lease #%d after %s', this.name, lease.leaseId, formatDuration(lease.waitedMs));
  }

  fail(lease: Lease, error?: unknown): void {
    if (lease.state !== pending || !this.#active) return;
    lease.state = failed;
    this.#waiting--;
    this.#failed++;
    if (this.#queued.size !== 0) this.#queued.delete(lease);
    if (error === undefined) return;
    try {
      const timedOut = this.adapter.isExhaustion?.(error) === true;
      // With no connection leased, a failed acquire is a database out of reach: the pool could
      // not open one. Its error stays exactly as it was (the responder searches for the
      // driver's words); the verdict is on error.poolwatch and the event.
      if (!timedOut && !(this.ledger.size === 0 && isConnectFailure(error))) return;
      if (timedOut) this.#timeouts++;
      const at = now();
      const event = this.#exhaustion(timedOut ? 'timeout' : 'failed', at, at - lease.requestedMono, error, lease);
      this.timeline.mark({ at: toEpoch(at), kind: 'timeout', text: oneLine(event.message), verdict: event.verdict });
      // The error is named whatever the rate limit: each one reaches some log line.
      nameHolders(error, event);
    } catch (failure) {
      this.host.emitter.surface(this, 'internal error naming the holders', failure);
    }
  }

  // Whether the pool is full, counting what it still holds from before watch(): read from the
  // pool only while some of those may be held, and only when poolwatch's own count says full.
  #poolFull(): boolean {
    if (this.#before === 0) return true;
    this.#before = Math.max(0, this.#leasedByPool() - this.ledger.size);
    return this.ledger.size + this.#before >= this.capacity;
  }

  // A request found every connection leased: if it is still waiting when waiting starts to hurt, the holders are named.
  #queue(lease: Lease, at: number): void {
    // A pending lease's deadline is its wait check; the handover sets its hold deadline.
    lease.deadline = at + this.#hurtingWaitMs;
    this.#queued.add(lease);
    this.#load.queued(at, this.#queued.size);
    this.host.schedule(lease.deadline);
  }

  /** Names the holders when a waiter has waited too long; returns when to look again. */
  #checkWaiting(at: number): number {
    let crossed = false;
    let longest = -1;
    for (const lease of this.#queued) {
      // Insertion order is request order: the first is the longest waiter.
      if (longest < 0) longest = at - lease.requestedMono;
      if (lease.deadline === Infinity) continue;
      // The first one not yet due ends the scan.
      if (lease.deadline > at) return crossed ? this.#reportWait(at, longest, lease.deadline) : lease.deadline;
      lease.deadline = Infinity;
      crossed = true;
    }
    return crossed ? this.#reportWait(at, longest, Infinity) : Infinity;
  }

  #reportWait(at: number, longest: number, next: number): number {
    // Checked before describing anything: a pool that stays saturated crosses the line often.
    if (at - this.#lastExhausted.saturated < exhaustedIntervalMs) {
      this.#suppressed.saturated++;
      return next;
    }
    try {
      this.#exhaustion('saturated', at, longest);
    } catch (failure) {
      this.host.emitter.surface(this, 'internal error describing the holders', failure);
    }
    return next;
  }

  /**
   * What ran the pool dry, from its holders: nobody (the database cannot be reached), the
   * holders waiting on the pool themselves, holders sitting idle long past the usual hold
   * (a leak), or busy ones (too small a pool).
   */
  #judge(leases: readonly Lease[], at: number, error: unknown, failing: Lease | undefined): Judgement | undefined {
    const n = leases.length;
    if (n === 0) {
      if (error === undefined) return undefined;
      // The pool counts connections leased that poolwatch never saw: taken before watch() (an
      // attach mid-incident). A timeout then is theirs, not a database out of reach: no verdict
      // rather than a wrong one. A connect that failed is the database's, whoever holds the rest.
      if (!isConnectFailure(error) && this.#leasedByPool() > 0) return undefined;
      const cause = (error as { cause?: unknown }).cause;
      return { verdict: 'unreachable', cause: isConnectFailure(cause) ? cause : error };
    }
    // Requests waiting on this pool: those queued for want of a connection, and the one that just gave up
    // (a pool that does not say its size queues nobody poolwatch can see).
    const waitingScopes = new Set<Scope>();
    for (const waiter of this.#queued) if (waiter.scope !== undefined) waitingScopes.add(waiter.scope);
    if (failing?.scope !== undefined) waitingScopes.add(failing.scope);
    let nested = 0;
    let stuck = 0;
    const held = this.#held;
    const usual = held.count === 0 ? 0 : held.toJSON().p99Ms;
    const stuckAfter = Math.max(stuckFloorMs, stuckFactor * usual);
    for (const lease of leases) {
      if (lease.scope !== undefined && waitingScopes.has(lease.scope)) nested++;
      // A connection in a query, or held to listen, is not stuck however long it is held.
      else if (lease.report !== null || (lease.activity !== 'query' && lease.activity !== 'listening' && at - lease.acquiredMono > stuckAfter)) stuck++;
    }
    if (nested * 2 >= n) return { verdict: 'self-deadlock' };
    if (stuck * 2 >= n) return { verdict: 'leak' };
    const sized = this.#load.sizing(this.name, at, this.capacity).suggestedMax ?? 0;
    // At least every request that wanted a connection at once: the holders, those waiting, and the one that gave up.
    const wanted = n + this.#waiting + (failing === undefined ? 0 : 1);
    return { verdict: 'saturation', suggestedMax: Math.max(sized, wanted, this.capacity === Infinity ? 0 : this.capacity + 1) };
  }

  /** Describes who holds the pool; emits it unless one was emitted within the interval. */
  #exhaustion(reason: ExhaustionReason, at: number, longestWaitMs: number, error?: unknown, failing?: Lease): ExhaustedEvent {
    const capacity = this.capacity === Infinity ? undefined : this.capacity;
    const leases = [...this.ledger];
    // Leases the pool counts that poolwatch never saw: taken before watch() (as under `poolwatch attach`).
    const before = Math.max(0, this.#leasedByPool() - leases.length);
    const event = describeExhaustion(this.name, reason, capacity, this.#waiting, longestWaitMs, leases, this.#suppressed[reason], this.#judge(leases, at, error, failing), before);
    if (at - this.#lastExhausted[reason] < exhaustedIntervalMs) {
      this.#suppressed[reason]++;
      return event;
    }
    this.#lastExhausted[reason] = at;
    this.#suppressed[reason] = 0;
    if (this.host.emitter.wanted('exhausted')) this.host.emitter.emit('exhausted', event);
    if (logLeak.enabled) logLeak('%s', event.message);
    return event;
  }

  end(resource: unknown, destroyed: boolean, method: string, caller: Function): void {
    if (!this.#active) return;
    try {
      const lease = this.ledger.find(resource);
      if (lease === undefined) this.#misuse(resource, method, caller);
      else this.#close(lease, now(), destroyed || resource === this.#destroyingNow);
    } catch (error) {
      this.host.emitter.surface(this, `internal error on ${method}`, error);
    }
  }

  #close(lease: Lease, at: number, destroyed: boolean): void {
    lease.state = closed;
    lease.releasedMono = at;
    this.ledger.remove(lease);
    const heldMs = at - lease.acquiredMono;
    this.#held.add(heldMs);
    this.#load.released(at, heldMs);
    this.#sampler.held(heldMs);
    if (destroyed) this.#destroyed++;
    else this.#released++;
    const { emitter } = this.host;
    // As in handover: what most releases skip is out of line.
    if (
      lease.scope !== undefined ||
      lease.report !== null ||
      (destroyed ? emitter.listened.destroy || channels.destroy.hasSubscribers : emitter.listened.release || channels.release.hasSubscribers) ||
      leaseLogging()
    ) {
      this.#closed(lease, at, heldMs, destroyed);
    }
    // A captured stack holds the frames' functions and async state (the request's closures)
    // alive; kept past the release by the ledger's last lease per connection, it cost an
    // Express + pg service more in GC than the capture itself. It stays where something can
    // still read it: a reported lease, a listener's payload, a later double release's report.
    if (lease.report === null && !this.#tracesRead()) lease.trace = null;
  }

  #tracesRead(): boolean {
    const { listened } = this.host.emitter;
    return (
      listened.acquire ||
      listened.release ||
      listened.destroy ||
      listened.misuse ||
      channels.acquire.hasSubscribers ||
      channels.release.hasSubscribers ||
      channels.destroy.hasSubscribers ||
      channels.misuse.hasSubscribers ||
      leakLogging() ||
      leaseLogging()
    );
  }

  #closed(lease: Lease, at: number, heldMs: number, destroyed: boolean): void {
    lease.scope?.open.delete(lease);
    const { emitter } = this.host;
    if (lease.report !== null && !lease.reclaimed) {
      const report = lease.report;
      this.#sampler.alert();
      if (emitter.wanted('leak-released')) {
        emitter.emit('leak-released', Object.freeze({ pool: this.name, leaseId: lease.leaseId, heldMs, report, lease: leaseView(lease) }));
      }
      if (logLeak.enabled) logLeak('%s: leaked lease #%d came back after %s', this.name, lease.leaseId, formatDuration(heldMs));
    }
    if (destroyed ? emitter.listened.destroy || channels.destroy.hasSubscribers : emitter.listened.release || channels.release.hasSubscribers) {
      emitter.emit(destroyed ? 'destroy' : 'release', leaseView(lease));
    }
    if (leaseLogging()) logLease('%s: %s lease #%d after %s', this.name, destroyed ? 'destroyed' : 'released', lease.leaseId, formatDuration(heldMs));
  }

  #misuse(resource: unknown, method: string, caller: Function): void {
    // Without what the pool shows of its leases, only a connection poolwatch saw given back can be judged (a double release).
    const leasedByPool = this.capabilities.can.misuse ? this.adapter.isLeased?.(this.target, resource) : undefined;
    // Leased before watch() began, or the pool cannot say: not ours to judge.
    if (leasedByPool === true) return;
    const last = this.ledger.last(resource);
    let kind: MisuseKind;
    if (last?.reclaimed === true) {
      // poolwatch's own destroy of it, passing through the pool's wrappers.
      if (resource === this.#reclaimingNow) return;
      kind = 'release-after-reclaim';
    } else if (last !== undefined) kind = 'double-release';
    else if (leasedByPool === false) kind = 'foreign-release';
    else return;
    this.#misused++;
    this.#sampler.alert();
    const callSite = originOf(captureTrace(caller), this.isLibrary).callSite;
    const where = callSite === undefined ? '' : ` at ${callSite}`;
    const message =
      kind === 'release-after-reclaim'
        ? `${method}() of a connection poolwatch took back from lease #${last!.leaseId}${last!.callSite === undefined ? '' : ` (acquired at ${last!.callSite})`} after it sat idle past reclaimAfterMs${where}: absorbed, the pool never saw it`
        : kind === 'double-release'
        ? `${method}() of a connection already given back to pool "${this.name}"${where}; it was lease #${last!.leaseId}${last!.callSite === undefined ? '' : `, acquired at ${last!.callSite}`}`
        : `${method}() of a connection pool "${this.name}" never leased${where}`;
    if (this.host.emitter.wanted('misuse')) {
      this.host.emitter.emit('misuse', Object.freeze({ kind, pool: this.name, method, message, callSite, lease: last === undefined ? undefined : leaseView(last) }));
    }
    if (logLeak.enabled) logLeak('%s: misuse: %s', this.name, message);
  }

  #labels(): Labels | undefined {
    const context = this.#context;
    if (context === undefined) return undefined;
    try {
      const labels: unknown = context();
      if (labels === undefined || labels === null) return undefined;
      if (typeof labels === 'object' && !Array.isArray(labels) && !(labels instanceof Map) && typeof (labels as PromiseLike<unknown>).then !== 'function') return labels as Labels;
      // A promise (an async context function) or a Map has no labels to read: say so once, not per acquire.
      onRejected(labels, (error) => this.host.emitter.surface(context, 'the `context` function rejected', error));
      if (!this.#contextRefused) {
        this.#contextRefused = true;
        const what = labels instanceof Map ? 'a Map' : typeof (labels as PromiseLike<unknown>).then === 'function' ? 'a promise (it must not be async)' : describe(labels);
        this.host.emitter.surface(context, `the \`context\` function returned ${what}, not an object of labels; its labels are left out`, new TypeError('return a plain object such as { requestId }'));
      }
      return undefined;
    } catch (error) {
      this.host.emitter.surface(context, 'the `context` function threw', error);
      return undefined;
    }
  }

  /** Reports leases whose deadline has passed by `at`; returns the next deadline. */
  sweep(at: number): number {
    let { due, next } = this.ledger.sweep(at, this.thresholdMs, this.#siteLimit);
    for (const lease of due) {
      const activity = lease.follow === null ? undefined : lease.activity;
      // A query in flight is work, not a leak: slow, and looked at again when it ends.
      if (activity === 'query') next = Math.min(next, this.#slow(lease, at));
      // Held by design while it listens; looked at again after its next query, or another threshold.
      else if (activity === 'listening') next = Math.min(next, this.#listening(lease, at));
      else this.report(lease, 'threshold', at);
    }
    if (this.reclaimAfterMs !== Infinity && this.ledger.size !== 0) next = Math.min(next, this.#reclaim(at));
    return this.#queued.size === 0 ? next : Math.min(next, this.#checkWaiting(at));
  }

  /** Says once that `lease` is past its threshold in a query; returns when to look at it again. */
  #slow(lease: Lease, at: number): number {
    if (!lease.slow) {
      lease.slow = true;
      const { emitter } = this.host;
      if (emitter.wanted('slow')) emitter.emit('slow', leaseView(lease));
      const limit = formatDuration(this.limitOf(lease));
      this.timeline.mark({ at: toEpoch(at), kind: 'slow', text: `lease #${lease.leaseId} past its threshold (${limit}) in a query${lease.callSite === undefined ? '' : `, from ${lease.callSite}`}` });
      if (logLeak.enabled) logLeak('%s: lease #%d is past its threshold (%s) in a query: slow, not leaked (%s)', this.name, lease.leaseId, limit, lease.lastQuery ?? 'query not shown');
    }
    lease.follow!.waiter = lease;
    // Looked at again when the query ends (wake), or after another threshold.
    const again = at + this.limitOf(lease);
    this.ledger.postpone(lease, again);
    return again;
  }

  /**
   * `lease` is past its threshold on a connection that LISTENs: a job queue's listener, held
   * for the life of the process. Kept out of reports and check() while it listens; once a
   * query ends (an UNLISTEN, a DISCARD ALL) it is looked at again, and idle by then it is a
   * leak at once, as a slow lease whose query ends idle is. Returns when to look again.
   */
  #listening(lease: Lease, at: number): number {
    if (!this.#listeningPast.has(lease)) {
      this.#listeningPast.add(lease);
      if (logLeak.enabled) logLeak('%s: lease #%d is past its threshold listening for notifications: held by design, not leaked', this.name, lease.leaseId);
    }
    lease.follow!.waiter = lease;
    const again = at + this.thresholdMs;
    this.ledger.postpone(lease, again);
    return again;
  }

  /**
   * Takes back leases past `reclaimAfterMs` whose connection is idle or idle in a
   * transaction; one in a query is looked at again when it ends. Returns the next deadline.
   */
  #reclaim(at: number): number {
    const limit = this.reclaimAfterMs;
    const old: Lease[] = [];
    let next = Infinity;
    // Handover order is age order: the first young lease ends the scan.
    for (const lease of this.ledger) {
      if (lease.acquiredMono + limit > at) {
        next = lease.acquiredMono + limit;
        break;
      }
      old.push(lease);
    }
    for (const lease of old) {
      const activity = lease.activity;
      if (activity === undefined || lease.follow === null) continue;
      // Never a query in flight, nor a connection held to listen: looked at again when its next query ends.
      if (activity === 'query' || activity === 'listening') lease.follow.waiter = lease;
      else this.#takeBack(lease, at);
    }
    return next;
  }

  /** Destroys `lease`'s connection through the pool; reports it as `kind` first unless null (already reported). */
  #takeBack(lease: Lease, at: number, kind: LeakKind | null = 'reclaimed'): void {
    const resource = lease.resource;
    // The report first, while the lease still shows what its connection was doing.
    if (kind !== null) this.report(lease, kind, at, lease.report === null);
    lease.reclaimed = true;
    this.#close(lease, at, true);
    this.#reclaimingNow = resource;
    try {
      this.adapter.reclaim!(this.target, resource);
    } catch (error) {
      this.host.emitter.surface(this, `could not take back lease #${lease.leaseId} of pool "${this.name}"`, error);
    } finally {
      this.#reclaimingNow = undefined;
    }
  }

  /**
   * Ends `lease`, a `lease()` handle's, by `giveBack` (the pool's own release or destroy,
   * so through its wrappers), and returns what that returns. Whatever path the pool takes,
   * the lease ends once, as a destroy when `destroy`; unless `giveBack` returns false: it
   * could not, and touched nothing.
   */
  giveBack<R>(lease: Lease, destroy: boolean, giveBack: () => R): R {
    const resource = lease.resource;
    const outer = this.#destroyingNow;
    if (destroy) this.#destroyingNow = resource;
    let result: R;
    try {
      result = giveBack();
    } finally {
      this.#destroyingNow = outer;
    }
    // Given back by a path no wrapper sees (tarn's own destroy of one resource): ended here.
    if ((result as unknown) !== false && lease.state === open && this.#active && this.ledger.find(resource) === lease) this.#close(lease, now(), destroy);
    return result;
  }

  /**
   * A `lease()` handle's release or destroy after its lease ended (a second release, or
   * one after the connection was given back another way, perhaps to a new borrower):
   * refused. The pool and whoever holds the connection now are untouched; it is said as
   * misuse, naming the handle's lease and the one that holds the connection now.
   */
  staleRelease(lease: Lease, method: string, caller: Function): void {
    if (!this.#active) return;
    try {
      this.#misused++;
      this.#sampler.alert();
      const current = lease.resource === undefined ? undefined : this.ledger.find(lease.resource);
      const kind: MisuseKind = lease.reclaimed ? 'release-after-reclaim' : 'stale-release';
      const callSite = originOf(captureTrace(caller), this.isLibrary).callSite;
      const where = callSite === undefined ? '' : ` at ${callSite}`;
      const from = (l: Lease) => `lease #${l.leaseId}${l.callSite === undefined ? '' : ` (acquired at ${l.callSite})`}`;
      const message =
        kind === 'release-after-reclaim'
          ? `${method}() of a lease() handle whose connection poolwatch took back from ${from(lease)} after it sat idle past reclaimAfterMs${where}: refused, the pool never saw it`
          : current === undefined
            ? `${method}() of a lease() handle already given back (${from(lease)})${where}: refused, the pool never saw it`
            : `${method}() of a lease() handle whose connection went to another borrower${where}: it was ${from(lease)} and is now ${from(current)}; refused, neither the pool nor lease #${current.leaseId} was touched`;
      if (this.host.emitter.wanted('misuse')) {
        this.host.emitter.emit('misuse', Object.freeze({ kind, pool: this.name, method, message, callSite, lease: leaseView(lease), current: current === undefined ? undefined : leaseView(current) }));
      }
      if (logLeak.enabled) logLeak('%s: misuse: %s', this.name, message);
    } catch (error) {
      this.host.emitter.surface(this, `internal error on ${method}`, error);
    }
  }

  /**
   * A `lease()` handle was garbage-collected with its lease open: nothing can give it back
   * now. Reported at once (kind `collected`); with `reclaimAfterMs`, taken back at once too
   * (or as soon as a query in flight on it ends).
   */
  collected(lease: Lease): void {
    if (lease.state !== open || !this.#active || this.ledger.find(lease.resource) !== lease) return;
    try {
      const at = now();
      lease.collected = true;
      if (lease.report === null) this.report(lease, 'collected', at);
      if (this.reclaimAfterMs === Infinity) return;
      // A query in flight, or a connection held to listen (whose client the app may still hold): once its next query ends.
      const activity = lease.activity;
      if (activity === 'query' || activity === 'listening') lease.follow!.waiter = lease;
      else this.#takeBack(lease, at, null);
    } catch (error) {
      this.host.emitter.surface(this, 'internal error reporting a collected lease() handle', error);
    }
  }

  // A call site's own threshold, when the options give one; read only as a lease reaches the pool's.
  #siteLimit = (lease: Lease): number | undefined => {
    const rules = this.#siteThresholds;
    if (rules.length === 0) return undefined;
    const site = lease.callSite;
    if (site === undefined) return undefined;
    for (const [prefix, limit] of rules) {
      if (site !== prefix && !site.startsWith(`${prefix}:`)) continue;
      // Asked as the lease reaches the pool's threshold: a shorter limit of its own has passed too, and the pool's applies.
      if (limit > this.thresholdMs) this.#limits.set(lease, limit);
      return limit;
    }
    return undefined;
  };

  /** The limit `lease` is held to: extend()'s, its call site's own, or the pool's threshold. */
  limitOf(lease: Lease): number {
    return this.#limits.get(lease) ?? this.thresholdMs;
  }

  /** Lets `resource`'s lease be held `ms` more, from now, before it is a leak. */
  extend(resource: unknown, ms: number): boolean {
    const lease = this.ledger.find(resource);
    if (lease === undefined || !this.#active) return false;
    const deadline = now() + ms;
    this.ledger.postpone(lease, deadline);
    this.#limits.set(lease, deadline - lease.acquiredMono);
    if (deadline !== Infinity) this.host.schedule(deadline);
    return true;
  }

  /** Reports the leases a scope left open as it ended. */
  static scopeEnded(scope: Scope): void {
    if (scope.open.size === 0) return;
    const at = now();
    for (const lease of [...scope.open]) {
      scope.open.delete(lease);
      if (lease.state === open && lease.report === null && lease.watched.#active) lease.watched.report(lease, 'scope-ended', at);
    }
  }

  /** Keeps `resource`'s lease out of its scope's end: it is meant to outlive it. */
  detach(resource: unknown): boolean {
    const lease = this.ledger.find(resource);
    if (lease === undefined) return false;
    lease.scope?.open.delete(lease);
    lease.scope = undefined;
    return true;
  }

  /** Makes and emits the leak report of an open lease. */
  report(lease: Lease, kind: LeakKind, at: number, count = true): LeakReport {
    const site = lease.callSite;
    const occurrence = (this.#leaksBySite.get(site) ?? 0) + (count ? 1 : 0);
    this.#leaksBySite.set(site, occurrence);
    const report = new LeakReport(lease, kind, at - lease.acquiredMono, occurrence);
    lease.report = report;
    this.timeline.mark({ at: toEpoch(at), kind: kind === 'reclaimed' ? 'reclaimed' : 'leak', text: report.message });
    // A lease reported before and now taken back is one leak, reported twice.
    if (count) {
      this.#leaked++;
      this.#load.leaked(at);
    }
    this.#sampler.alert();
    const { emitter } = this.host;
    if (this.#onLeak !== undefined) {
      try {
        const result: unknown = this.#onLeak(report);
        // An async onLeak's rejection is handled like a throw, not left unhandled.
        if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
          const onLeak = this.#onLeak;
          (result as PromiseLike<unknown>).then(undefined, (error: unknown) => emitter.surface(onLeak, 'the `onLeak` function rejected', error));
        }
      } catch (error) {
        emitter.surface(this.#onLeak, 'the `onLeak` function threw', error);
      }
    }
    if (emitter.wanted('leak')) emitter.emit('leak', report);
    // 1st, 10th, 100th… leak from one line: a leaking loop does not flood the log.
    if (logLeak.enabled && isPowerOfTen(occurrence)) logLeak('%s', occurrence === 1 ? report.message : `${report.message} (leak ${occurrence} from this line)`);
    return report;
  }

  /** Records how the pool stands now on its timeline. */
  sample(at: number): void {
    this.timeline.record(toEpoch(at), this.ledger.size, this.#idle(), this.#waiting);
  }

  /** Who holds the pool now, grouped by call site. */
  holders(): HolderGroup[] {
    return groupHolders([...this.ledger]);
  }

  /** The last minute's load and the size that serves it. */
  sizing(at: number): PoolSizing {
    let leakedOpen = 0;
    // A scan, at sizing() only (a report, a scrape), never on the acquire path.
    for (const lease of this.ledger) if (lease.report !== null) leakedOpen++;
    return this.#load.sizing(this.name, at, this.capacity, leakedOpen);
  }

  stats(): PoolStats {
    const at = now();
    let activity: Record<Activity, number> | undefined;
    // Read at stats() (a scrape), never counted on the acquire path.
    if (this.following) {
      activity = { idle: 0, query: 0, 'idle-in-transaction': 0, listening: 0 };
      for (const lease of this.ledger) {
        const doing = lease.activity;
        if (doing !== undefined) activity[doing]++;
      }
    }
    let oldestHeldMs = 0;
    for (const lease of this.ledger) {
      oldestHeldMs = at - lease.acquiredMono;
      break;
    }
    return {
      open: this.ledger.size,
      waiting: this.#waiting,
      acquired: this.#acquired,
      released: this.#released,
      destroyed: this.#destroyed,
      failed: this.#failed,
      timeouts: this.#timeouts,
      capacity: this.capacity === Infinity ? undefined : this.capacity,
      idle: this.#idle(),
      peakOpen: this.#peakOpen,
      leaked: this.#leaked,
      misuse: this.#misused,
      untracked: this.#untracked,
      held: this.#held.toJSON(),
      waited: this.#waited.toJSON(),
      capabilities: this.capabilities,
      activity,
      oldestHeldMs,
    };
  }

  // How many connections the pool itself counts as leased (not those it is opening); 0 when it cannot say.
  #leasedByPool(): number {
    try {
      const leased = this.adapter.leased?.(this.target);
      return typeof leased === 'number' && leased > 0 ? leased : 0;
    } catch {
      return 0;
    }
  }

  // Asked of the pool only here, never on acquire/release; a pool that cannot say gives undefined.
  #idle(): number | undefined {
    if (!this.capabilities.can.idle) return undefined;
    try {
      const idle = this.adapter.idle?.(this.target);
      return typeof idle === 'number' && idle >= 0 ? idle : undefined;
    } catch {
      return undefined;
    }
  }

  /** Restores the pool's own methods; open leases are forgotten. */
  uninstall(): void {
    if (!this.#active) return;
    this.#active = false;
    this.#uninstall();
    this.ledger.clear();
    this.#queued.clear();
  }
}
