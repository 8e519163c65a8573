import { open, type Lease } from './lease.js';

function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

/**
 * The open leases of one pool, in the order the pool handed them over. With one
 * threshold per pool that is also deadline order, so adding, removing and finding the
 * next deadline are all O(1), whatever the number of open leases.
 */
export class Ledger {
  #head: Lease | null = null;
  #tail: Lease | null = null;
  /** The oldest lease not yet past the pool's threshold: everything before it was. */
  #due: Lease | null = null;
  // Leases whose deadline is not the pool's threshold (extended, or a call site's own): few, scanned at each sweep.
  readonly #late = new Set<Lease>();
  #size = 0;
  // Each object resource maps to its open lease, or after release to its last one (to name a
  // double release): one WeakMap read and write per cycle, nothing to delete. Primitive
  // resources, which a WeakMap cannot hold, use a Map of open leases.
  #byObject = new WeakMap<object, Lease>();
  #byValue = new Map<unknown, Lease>();

  get size(): number {
    return this.#size;
  }

  /** The open lease of `resource`, if any. */
  find(resource: unknown): Lease | undefined {
    const lease = isObject(resource) ? this.#byObject.get(resource) : this.#byValue.get(resource);
    return lease !== undefined && lease.state === open ? lease : undefined;
  }

  /** The last closed lease of `resource`, while the resource is alive. */
  last(resource: unknown): Lease | undefined {
    const lease = isObject(resource) ? this.#byObject.get(resource) : undefined;
    return lease !== undefined && lease.state !== open ? lease : undefined;
  }

  /**
   * Adds a lease just handed over; returns the lease its resource still had open, if any
   * (it came back by a path poolwatch did not see), for the caller to close.
   */
  add(lease: Lease): Lease | undefined {
    lease.prev = this.#tail;
    lease.next = null;
    if (this.#tail === null) this.#head = lease;
    else this.#tail.next = lease;
    this.#tail = lease;
    if (this.#due === null) this.#due = lease;
    this.#size++;
    const resource = lease.resource;
    let previous: Lease | undefined;
    if (isObject(resource)) {
      previous = this.#byObject.get(resource);
      this.#byObject.set(resource, lease);
    } else {
      previous = this.#byValue.get(resource);
      this.#byValue.set(resource, lease);
    }
    return previous !== undefined && previous.state === open ? previous : undefined;
  }

  remove(lease: Lease): void {
    const { prev, next } = lease;
    if (prev === null) this.#head = next;
    else prev.next = next;
    if (next === null) this.#tail = prev;
    else next.prev = prev;
    if (this.#due === lease) this.#due = next;
    lease.prev = lease.next = null;
    this.#size--;
    if (this.#late.size !== 0) this.#late.delete(lease);
    // A newer lease of the same value may already own the entry (see add).
    if (!isObject(lease.resource) && this.#byValue.get(lease.resource) === lease) this.#byValue.delete(lease.resource);
  }

  /** Gives `lease` its own deadline (monotonic ms), in place of the pool's threshold. */
  postpone(lease: Lease, deadline: number): void {
    lease.deadline = deadline;
    this.#late.add(lease);
  }

  /**
   * Leases not yet reported whose deadline has passed by `at`, oldest first, and the next
   * deadline after them. `thresholdMs` orders the list; `ownLimit` may give a lease that
   * reaches it a longer limit of its own (from its call site), which postpones it.
   */
  sweep(at: number, thresholdMs: number, ownLimit: (lease: Lease) => number | undefined): { due: Lease[]; next: number } {
    const due: Lease[] = [];
    for (let lease = this.#due; lease !== null && lease.acquiredMono + thresholdMs <= at; lease = lease.next) {
      this.#due = lease.next;
      if (lease.report !== null || this.#late.has(lease)) continue;
      const limit = ownLimit(lease);
      if (limit !== undefined && lease.acquiredMono + limit > at) this.postpone(lease, lease.acquiredMono + limit);
      else due.push(lease);
    }
    let next = this.#due === null ? Infinity : this.#due.acquiredMono + thresholdMs;
    for (const lease of this.#late) {
      if (lease.report !== null) this.#late.delete(lease);
      else if (lease.deadline <= at) {
        this.#late.delete(lease);
        due.push(lease);
      } else if (lease.deadline < next) next = lease.deadline;
    }
    return { due, next };
  }

  /** Open leases, oldest first. */
  *[Symbol.iterator](): IterableIterator<Lease> {
    for (let lease = this.#head; lease !== null; lease = lease.next) yield lease;
  }

  clear(): void {
    this.#head = this.#tail = this.#due = null;
    this.#size = 0;
    this.#late.clear();
    this.#byObject = new WeakMap();
    this.#byValue.clear();
  }
}
