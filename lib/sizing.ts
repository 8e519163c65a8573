import { Summary } from './summary.js';

/** What `detector.sizing()` says of one pool: its load over the last minute, and the size that serves it. */
export interface PoolSizing {
  readonly pool: string;
  /** How far back the figures reach: a minute, or since `watch()` when that is sooner. */
  readonly windowMs: number;
  /** The pool's maximum size, when it says. */
  readonly capacity: number | undefined;
  readonly acquiresPerSecond: number;
  /** Hold time of the leases that ended in the window (holding only, not waiting). */
  readonly meanHeldMs: number;
  readonly p99HeldMs: number;
  readonly peakOpen: number;
  /** The most requests queued for a connection at once. */
  readonly peakWaiting: number;
  /** Little's law: acquires per second × mean held seconds, the connections the load keeps busy on average. */
  readonly neededConnections: number;
  /**
   * Connections that cover the p99 of that demand (acquires per second × p99 held seconds),
   * with 25% headroom; undefined with no load to size, and for a pool that leaked in the
   * window or holds a leaked lease: no size serves a leak (`reason` says so).
   */
  readonly suggestedMax: number | undefined;
  /** One sentence: why `suggestedMax`, or why none. */
  readonly reason: string;
}

export const sizingWindowMs = 60_000;
// The window moves in slots: a figure leaves it a slot at a time, never all at once.
const slotMs = 10_000;
const slotCount = sizingWindowMs / slotMs;
const headroom = 1.25;

class Slot {
  start = -Infinity;
  acquires = 0;
  peakOpen = 0;
  peakWaiting = 0;
  leaks = 0;
  readonly held = new Summary();

  reset(start: number): void {
    this.start = start;
    this.acquires = 0;
    this.leaks = 0;
    this.peakOpen = 0;
    this.peakWaiting = 0;
    this.held.clear();
  }
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * A pool's load over the last minute, in six slots of 10 s reused in turn: O(1) per
 * acquire and release, with no allocation once every slot has been used.
 */
export class LoadWindow {
  readonly #slots = Array.from({ length: slotCount }, () => new Slot());
  #current: Slot;
  #currentEnd = -Infinity;

  constructor(readonly since: number) {
    this.#current = this.#slots[0]!;
  }

  #at(at: number): Slot {
    if (at >= this.#currentEnd) {
      const start = Math.floor(at / slotMs) * slotMs;
      const slot = this.#slots[Math.floor(start / slotMs) % slotCount]!;
      if (slot.start !== start) slot.reset(start);
      this.#current = slot;
      this.#currentEnd = start + slotMs;
    }
    return this.#current;
  }

  // Counted when the app asks, not when the pool hands over: a saturated pool hands over
  // only as fast as connections come back, which is not the load it was asked to serve.
  requested(at: number): void {
    this.#at(at).acquires++;
  }

  acquired(at: number, open: number): void {
    const slot = this.#at(at);
    if (open > slot.peakOpen) slot.peakOpen = open;
  }

  queued(at: number, waiting: number): void {
    const slot = this.#at(at);
    if (waiting > slot.peakWaiting) slot.peakWaiting = waiting;
  }

  released(at: number, heldMs: number): void {
    this.#at(at).held.add(heldMs);
  }

  // A lease reported as leaked: the window's sizing then says the leak, not a size.
  leaked(at: number): void {
    this.#at(at).leaks++;
  }

  /** The window's figures; `leakedOpen`: leases reported as leaked and still held now. */
  sizing(pool: string, at: number, capacity: number, leakedOpen = 0): PoolSizing {
    const held = new Summary();
    let acquires = 0;
    let peakOpen = 0;
    let peakWaiting = 0;
    let leaks = 0;
    // Where the counted slots begin; with none counted, the whole window was quiet.
    let from = at - sizingWindowMs;
    let counted = false;
    for (const slot of this.#slots) {
      // Slots that ended a window ago or more, or that the clock has not reached, are out.
      if (slot.start <= at - sizingWindowMs || slot.start > at) continue;
      acquires += slot.acquires;
      peakOpen = Math.max(peakOpen, slot.peakOpen);
      peakWaiting = Math.max(peakWaiting, slot.peakWaiting);
      leaks += slot.leaks;
      held.absorb(slot.held);
      from = counted ? Math.min(from, slot.start) : slot.start;
      counted = true;
    }
    const windowMs = Math.max(0, at - Math.max(from, this.since, at - sizingWindowMs));
    const { meanMs: meanHeldMs, p99Ms: p99HeldMs } = held.toJSON();
    const perSecond = windowMs > 0 ? (acquires * 1000) / windowMs : 0;
    const neededConnections = (perSecond * meanHeldMs) / 1000;
    const demand = (perSecond * p99HeldMs) / 1000;
    const max = capacity === Infinity ? undefined : capacity;
    const seconds = Math.round(windowMs / 1000);
    let suggestedMax: number | undefined;
    let reason: string;
    if (leaks > 0 || leakedOpen > 0) {
      // A leaked connection is held whatever the size: a bigger pool only runs dry later, and
      // the demand seen is the requests that got through, not the load. No size is suggested.
      const said = leaks > 0 ? `${leaks === 1 ? '1 lease' : `${leaks} leases`} leaked in the last ${seconds} s (${leakedOpen} still held)` : `${leakedOpen === 1 ? '1 leaked lease is' : `${leakedOpen} leaked leases are`} still held`;
      reason = `${said}: a leak holds connections whatever the pool's size, so no max is suggested; fix the acquiring lines the leak reports name`;
    } else if (acquires === 0 || held.count === 0) {
      reason = `no lease was ${acquires === 0 ? 'taken' : 'given back'} in the last ${seconds} s: there is no load to size the pool by`;
    } else {
      suggestedMax = Math.max(1, Math.ceil(demand * headroom));
      const shown = round(demand, 1);
      if (max === undefined) reason = `p99 demand ${shown}: ${suggestedMax} connections cover it with 25% headroom`;
      else if (demand > max) reason = `p99 demand ${shown} > max ${max}: requests wait for connections the pool does not have; ${suggestedMax} covers it with 25% headroom`;
      else if (suggestedMax > max) reason = `p99 demand ${shown} is within max ${max}, but with no headroom: ${suggestedMax} leaves 25%`;
      else reason = `p99 demand ${shown} ≤ max ${max}: ${suggestedMax} would do, with 25% headroom`;
    }
    return {
      pool,
      windowMs: round(windowMs, 0),
      capacity: max,
      acquiresPerSecond: round(perSecond, 3),
      meanHeldMs,
      p99HeldMs,
      peakOpen,
      peakWaiting,
      neededConnections: round(neededConnections, 3),
      suggestedMax,
      reason,
    };
  }
}
