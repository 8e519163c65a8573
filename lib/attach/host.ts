import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { channelNames } from '../channels.js';
import * as detectorModule from '../detector.js';
import type { Detector } from '../detector.js';
import { adapterFor } from '../adapters/index.js';
import { defaults } from '../options.js';
import { write } from '../preload/log.js';
import { Discovery, type FoundPool } from './discover.js';
import { appHolders, appWatches, attachedHolders, capacityOf, heldBefore, unwatchedHolders, type AttachedPool } from './census.js';
import type { HeldBefore, PoolHolders } from './holders.js';
import { heldNow } from './pool-records.js';
import { jsonFields, reportedEvents, textFormatter, type ReportedEvent } from '../log-format.js';

/**
 * What `poolwatch attach` keeps in the target, under one global symbol: the detector that
 * watches the pools it found, and the CLI sessions that read its reports. A second attach
 * (concurrent, or after `--keep`) finds it and joins it: each pool is watched once, and each
 * session gets each report once. Whichever copy of poolwatch made it, later copies use it.
 */

/** Bumped when the methods below change in a way an older CLI would not understand. */
export const protocol = 1;
const hostKey = Symbol.for('poolwatch.attach');

// A CLI pings every few seconds; one silent this long is gone (killed without detaching).
const sessionExpiryMs = 15_000;

export interface BeginOptions {
  /** The leak threshold of a new watch. */
  readonly thresholdMs?: number | undefined;
  readonly json: boolean;
  /** Whether the watch stays when the last session ends; undefined leaves it as it is (`status`). */
  readonly keep: boolean | undefined;
  /** Whether this CLI opened the inspector (then the last session out closes it). */
  readonly openedInspector: boolean;
}

export interface BeginResult {
  /** Whether an attach was already there (a concurrent one, or a `--keep`), whose watch this one joins. */
  readonly reused: boolean;
  readonly thresholdMs: number;
  readonly sessions: number;
  readonly pid: number;
  readonly node: string;
}

/** A pool as the attach found it. */
export interface FoundSummary {
  readonly pool: string;
  readonly kind: string;
  readonly capacity: number | undefined;
  readonly watchedBy: PoolHolders['watchedBy'];
  /** Already watched by an earlier attach that this one joined. */
  readonly joined: boolean;
  readonly before: HeldBefore;
  /** Why it could not be watched. */
  readonly problem: string | undefined;
}

export interface EndResult {
  /** The inspector was opened by an attach and no session is left: close it now. */
  readonly closeInspector: boolean;
  /** The watch stays (`--keep`); its reports go to the target's stderr. */
  readonly kept: boolean;
  /** Pools unwatched now. */
  readonly unwatched: number;
  /** Sessions still attached (another CLI's). */
  readonly sessionsLeft: number;
}

interface Session {
  readonly format: ((event: ReportedEvent, message: unknown) => string | undefined) | undefined;
  lastSeen: number;
  discovery: Discovery;
  /** For `status`: the pools found that nothing watches, with the names this session gave them. */
  unwatched: Array<FoundPool & { readonly name: string }>;
}

const message = (error: unknown) => (error as Error)?.message ?? String(error);

export class AttachHost {
  readonly protocol = protocol;
  readonly detector: Detector;
  readonly thresholdMs: number;
  readonly #pools = new Map<object, AttachedPool>();
  readonly #sessions = new Map<string, Session>();
  readonly #listeners = new Map<ReportedEvent, (message: unknown) => void>();
  #keep = false;
  #openedInspector = false;
  #keptLog: Array<() => void> = [];
  #timer: ReturnType<typeof setInterval> | undefined = undefined;

  private constructor(thresholdMs: number | undefined) {
    this.detector = detectorModule.createDetector(thresholdMs === undefined ? {} : { leakThresholdMs: thresholdMs });
    this.thresholdMs = thresholdMs ?? defaults.leakThresholdMs;
    for (const event of reportedEvents) this.#listeners.set(event, (payload) => this.#send(event, payload));
  }

  /** The host in this process, if an attach made one. */
  static current(): AttachHost | undefined {
    return (globalThis as { [hostKey]?: AttachHost })[hostKey];
  }

  /** Joins the host in this process, or makes it. */
  static begin(name: string, options: BeginOptions): BeginResult {
    const existing = AttachHost.current();
    if (existing !== undefined && existing.protocol !== protocol) {
      throw new Error(`an attach by another version of poolwatch (protocol ${String(existing.protocol)}) is in place; use that version's CLI`);
    }
    const host = existing ?? new AttachHost(options.thresholdMs);
    (globalThis as { [hostKey]?: AttachHost })[hostKey] = host;
    return host.join(name, options, existing !== undefined);
  }

  /** Adds session `name`; called on the host in place, which another copy of poolwatch may have made. */
  join(name: string, options: BeginOptions, reused: boolean): BeginResult {
    if (this.#sessions.size === 0) {
      // The first session after a `--keep` decides again whether the watch stays.
      if (options.keep !== undefined) this.#keep = options.keep;
      for (const [event, listener] of this.#listeners) subscribe(channelNames[event], listener);
      this.#timer = setInterval(() => this.#expire(), 2_000);
      this.#timer.unref();
    } else this.#keep ||= options.keep === true;
    this.#openedInspector ||= options.openedInspector;
    this.#sessions.set(name, { format: options.json ? undefined : textFormatter(), lastSeen: Date.now(), discovery: new Discovery(), unwatched: [] });
    return { reused, thresholdMs: this.thresholdMs, sessions: this.#sessions.size, pid: process.pid, node: process.version };
  }

  #session(name: string): Session {
    const session = this.#sessions.get(name);
    if (session === undefined) throw new Error(`no attach session "${name}" in this process (it expired)`);
    session.lastSeen = Date.now();
    return session;
  }

  /** How many CLIs are attached now. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** A CLI is still there. */
  ping(name: string): boolean {
    const session = this.#sessions.get(name);
    if (session !== undefined) session.lastSeen = Date.now();
    return session !== undefined;
  }

  /** The prototypes whose instances the CLI should query next. */
  toQuery(name: string): object[] {
    return this.#session(name).discovery.next();
  }

  /** Takes the instances the CLI found. */
  found(name: string, objects: unknown[]): number {
    this.#session(name).discovery.take(objects);
    return objects.length;
  }

  /** Watches every pool found (unless `watch` is false: `status`), except those a detector already watches. */
  adopt(name: string, watch: boolean): FoundSummary[] {
    const session = this.#session(name);
    const found = session.discovery.result();
    session.discovery = new Discovery();
    const at = Date.now();
    const out: FoundSummary[] = [];
    const none: HeldBefore = { count: 0, heldMs: [], noAge: undefined };
    for (const { pool, kind } of found) {
      const capacity = capacityOf(pool);
      const mine = this.#pools.get(pool);
      if (mine !== undefined) {
        out.push({ pool: mine.name, kind, capacity, watchedBy: 'attach', joined: true, before: none, problem: undefined });
        continue;
      }
      if (appWatches(pool, this.detector)) {
        out.push({ pool: kind, kind, capacity, watchedBy: 'app', joined: false, before: none, problem: undefined });
        continue;
      }
      const entries = heldNow(kind, pool) ?? [];
      const poolName = this.#freeName(pool, kind, session);
      if (!watch) {
        session.unwatched.push({ pool, kind, name: poolName });
        out.push({ pool: poolName, kind, capacity, watchedBy: 'none', joined: false, before: heldBefore(kind, entries, at), problem: undefined });
        continue;
      }
      try {
        this.detector.watch(pool, { name: poolName });
      } catch (error) {
        out.push({ pool: poolName, kind, capacity, watchedBy: 'none', joined: false, before: heldBefore(kind, entries, at), problem: message(error) });
        continue;
      }
      this.#pools.set(pool, { name: poolName, kind, before: entries });
      out.push({ pool: poolName, kind, capacity, watchedBy: 'attach', joined: false, before: heldBefore(kind, entries, at), problem: undefined });
    }
    return out;
  }

  // Named as the preload names pools: after the library, `pg`, `pg#2`, …
  #freeName(pool: object, kind: string, session: Session): string {
    let base: string;
    try {
      base = adapterFor(pool, undefined).defaultName;
    } catch {
      base = kind;
    }
    const taken = new Set([...[...this.#pools.values()].map((watched) => watched.name), ...session.unwatched.map((found) => found.name)]);
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}#${n}`;
    return name;
  }

  /** Who holds each pool's connections now: the attach's pools, the app's own watched pools, and (for status) the others. */
  holders(name: string): PoolHolders[] {
    const session = this.#session(name);
    const at = Date.now();
    return [...attachedHolders(this.detector, this.#pools, at), ...appHolders(this.detector), ...unwatchedHolders(session.unwatched, at)];
  }

  /** Ends a session. The last one out removes the watch, unless one asked to keep it. */
  end(name: string): EndResult {
    const left = { closeInspector: false, kept: this.#keep, unwatched: 0, sessionsLeft: this.#sessions.size };
    if (!this.#sessions.delete(name)) return left;
    delete (globalThis as Record<string, unknown>)[name];
    if (this.#sessions.size > 0) return { ...left, sessionsLeft: this.#sessions.size };
    for (const [event, listener] of this.#listeners) unsubscribe(channelNames[event], listener);
    clearInterval(this.#timer);
    this.#timer = undefined;
    const closeInspector = this.#openedInspector;
    this.#openedInspector = false;
    if (this.#keep) {
      this.#logToStderr();
      return { closeInspector, kept: true, unwatched: 0, sessionsLeft: 0 };
    }
    for (const stop of this.#keptLog) stop();
    this.#keptLog = [];
    const unwatched = this.#pools.size;
    this.detector.close();
    this.#pools.clear();
    delete (globalThis as { [hostKey]?: AttachHost })[hostKey];
    return { closeInspector, kept: false, unwatched, sessionsLeft: 0 };
  }

  /** Closes the inspector port, after the reply to this call has gone out. */
  static closeInspector(): void {
    setImmediate(() => {
      try {
        (require('node:inspector') as typeof import('node:inspector')).close();
      } catch {
        // Closed already.
      }
    });
  }

  // A kept watch reports on the target's stderr, as the preload's text log would.
  #logToStderr(): void {
    if (this.#keptLog.length > 0) return;
    const format = textFormatter();
    for (const event of reportedEvents) {
      const listener = (payload: unknown) => {
        const text = format(event, payload);
        if (text !== undefined) write(text);
      };
      this.detector.on(event, listener);
      this.#keptLog.push(() => this.detector.off(event, listener));
    }
  }

  #send(event: ReportedEvent, payload: unknown): void {
    for (const [name, session] of this.#sessions) {
      try {
        const binding = (globalThis as Record<string, unknown>)[name];
        if (typeof binding !== 'function') continue;
        if (session.format === undefined) {
          (binding as (text: string) => void)(JSON.stringify({ event, json: { poolwatch: event, time: new Date().toISOString(), ...jsonFields(payload) } }));
          continue;
        }
        const text = session.format(event, payload);
        if (text !== undefined) (binding as (text: string) => void)(JSON.stringify({ event, text }));
      } catch {
        // A payload that cannot be sent is skipped, never thrown into the pool.
      }
    }
  }

  // Sessions whose CLI went away without detaching (killed): the last one out cleans up.
  #expire(): void {
    const now = Date.now();
    for (const [name, session] of this.#sessions) {
      if (now - session.lastSeen < sessionExpiryMs) continue;
      if (this.end(name).closeInspector) AttachHost.closeInspector();
    }
  }
}
