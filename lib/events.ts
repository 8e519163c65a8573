import { ListenerError, PoolwatchTypeError, codes, describe } from './errors.js';
import { channels, publish, type ChannelEvent } from './channels.js';
import { onRejected } from './rejections.js';
import { escapeLine } from './escape.js';

import type { LeaseInfo } from './lease.js';
import type { LeakReport } from './report.js';
import type { ExhaustedEvent } from './exhaustion.js';
import { warn } from './warn.js';

/**
 * What went wrong in a `misuse` event: a release the pool refuses, or an acquire that has
 * to wait while its own request holds a connection of the same pool (`nested-acquire`), or
 * a release of a connection `reclaimAfterMs` took back (`release-after-reclaim`, absorbed),
 * or a `lease()` handle released again or after its connection went to another borrower
 * (`stale-release`, refused).
 */
export type MisuseKind = 'double-release' | 'foreign-release' | 'nested-acquire' | 'release-after-reclaim' | 'stale-release';

/** A call that misuses the pool: poolwatch says what and where. */
export interface MisuseEvent {
  readonly kind: MisuseKind;
  readonly pool: string;
  /** The method the app called, e.g. `release`, `destroy` or (for `nested-acquire`) `acquire`. */
  readonly method: string;
  readonly message: string;
  /** Where the app made the bad call. */
  readonly callSite: string | undefined;
  /** The lease the connection last belonged to (for `nested-acquire`: the one the request holds), with where it was acquired, when known. */
  readonly lease: LeaseInfo | undefined;
  /** For `stale-release`: the lease that holds the connection now, when another borrower has it. */
  readonly current?: LeaseInfo | undefined;
}

/** A lease reported as a leak came back. */
export interface LeakReleasedEvent {
  readonly pool: string;
  readonly leaseId: number;
  /** The whole time it was held. */
  readonly heldMs: number;
  readonly report: LeakReport;
  readonly lease: LeaseInfo;
}

/** Every event a detector emits, with its listener arguments. */
export interface DetectorEvents {
  acquire: [lease: LeaseInfo];
  release: [lease: LeaseInfo];
  destroy: [lease: LeaseInfo];
  leak: [report: LeakReport];
  'leak-released': [event: LeakReleasedEvent];
  misuse: [event: MisuseEvent];
  /** A request has waited for a good share of the pool's acquire timeout, or the pool gave up on one: who holds the pool. */
  exhausted: [event: ExhaustedEvent];
  /** A lease past its threshold with a query in flight: slow, not leaked. Once per lease; it is a leak if it is idle later while still held. */
  slow: [lease: LeaseInfo];
  /** A listener, a `context` function or a subscriber of a poolwatch diagnostics channel threw or rejected; poolwatch went on. */
  error: [error: Error];
}

export type EventName = keyof DetectorEvents;
type Listener<E extends EventName> = (...args: DetectorEvents[E]) => void;
type AnyListener = (payload: never) => unknown;

interface Once {
  (payload: never): unknown;
  listener: AnyListener;
}

const eventNames: ReadonlySet<string> = new Set<EventName>(['acquire', 'release', 'destroy', 'leak', 'leak-released', 'misuse', 'exhausted', 'slow', 'error']);

// A mistyped event name would otherwise register a listener that never runs.
function checkListener(event: unknown, listener: unknown): void {
  if (typeof event !== 'string' || !eventNames.has(event)) {
    throw new PoolwatchTypeError(codes.invalidOption, `Unknown event ${describe(event)}. Expected one of: ${[...eventNames].join(', ')}.`);
  }
  if (typeof listener !== 'function') {
    throw new PoolwatchTypeError(codes.invalidOption, `Expected the listener of '${event}' to be a function, got ${describe(listener)}.`);
  }
}

// What user code threw may be anything, even an object whose `message` getter throws; and
// its message is one line of a warning: escaped, so it cannot forge lines of its own.
function messageOf(error: unknown): string {
  try {
    const message: unknown = (error as Error)?.message;
    return escapeLine(typeof message === 'string' ? message : String(error));
  } catch {
    return '(an error whose message cannot be read)';
  }
}

/**
 * Typed events. Listeners run in try/catch: one that throws never reaches the pool; its
 * error goes to `error` listeners, or once to a process warning.
 */
export class Emitter {
  // Arrays are replaced, never mutated, so an emit in progress is unaffected by on/off.
  #listeners = new Map<EventName, readonly AnyListener[]>();
  /**
   * Whether each event has a listener. The acquire/release path reads these fields by
   * name (with the channel's `hasSubscribers`) instead of calling `wanted()`: ~15 ns a cycle.
   */
  readonly listened: { readonly [E in EventName]: boolean } = {
    acquire: false,
    release: false,
    destroy: false,
    leak: false,
    'leak-released': false,
    misuse: false,
    exhausted: false,
    slow: false,
    error: false,
  };
  #warned = new WeakSet<object>();

  on<E extends EventName>(event: E, listener: Listener<E>): this {
    checkListener(event, listener);
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener as AnyListener]);
    (this.listened as Record<EventName, boolean>)[event] = true;
    return this;
  }

  once<E extends EventName>(event: E, listener: Listener<E>): this {
    checkListener(event, listener);
    // Returns what the listener returns: a rejection of an async one is handled like any other's.
    const once = ((payload: never) => {
      this.off(event, listener);
      return (listener as AnyListener)(payload);
    }) as Once;
    once.listener = listener as AnyListener;
    return this.on(event, once as unknown as Listener<E>);
  }

  off<E extends EventName>(event: E, listener: Listener<E>): this {
    const list = this.#listeners.get(event);
    if (list === undefined) return this;
    const index = list.findIndex((fn) => fn === listener || (fn as Partial<Once>).listener === listener);
    if (index === -1) return this;
    const next = list.filter((_, i) => i !== index);
    if (next.length === 0) {
      this.#listeners.delete(event);
      (this.listened as Record<EventName, boolean>)[event] = false;
    } else this.#listeners.set(event, next);
    return this;
  }

  /** Whether emitting `event` would reach anyone: a listener or a channel subscriber. */
  wanted(event: ChannelEvent): boolean {
    return this.listened[event] || channels[event].hasSubscribers;
  }

  emit<E extends ChannelEvent>(event: E, payload: DetectorEvents[E][0]): void {
    const list = this.#listeners.get(event);
    if (list !== undefined) {
      for (const listener of list) {
        try {
          const result: unknown = listener(payload as never);
          if (result !== undefined) onRejected(result, (error) => this.surface(listener, `a '${event}' listener rejected`, error));
        } catch (error) {
          this.surface(listener, `a '${event}' listener threw`, error);
        }
      }
    }
    const ch = channels[event];
    if (ch.hasSubscribers) publish(ch, payload, this);
  }

  /** Reports an error from user code without letting it reach the pool. */
  surface(source: object, what: string, error: unknown): void {
    const wrapped = new ListenerError(`poolwatch: ${what}: ${messageOf(error)}`, error);
    const handlers = this.#listeners.get('error');
    if (handlers !== undefined) {
      for (const handler of handlers) {
        try {
          const result: unknown = handler(wrapped as never);
          if (result !== undefined) onRejected(result, (inner) => this.#warn(handler, new ListenerError(`poolwatch: an 'error' listener rejected: ${messageOf(inner)}`, inner)));
        } catch (inner) {
          this.#warn(handler, new ListenerError(`poolwatch: an 'error' listener threw: ${messageOf(inner)}`, inner));
        }
      }
      return;
    }
    this.#warn(source, wrapped);
  }

  // A failing listener warns once, not once per acquire.
  #warn(source: object, error: ListenerError): void {
    if (this.#warned.has(source)) return;
    this.#warned.add(source);
    warn(error);
  }
}
