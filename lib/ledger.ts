import type { Lease } from './lease.js';

/**
 * The open leases of one pool, in the order the pool handed them over. With one
 * threshold per pool that is also deadline order, so adding, removing and finding the
 * next deadline are all O(1), whatever the number of open leases.
 */
export class Ledger {
  #head: Lease | null = null;
  #tail: Lease | null = null;
  /** The oldest lease not yet reported past its threshold: everything before it was. */
  #due: Lease | null = null;
  #size = 0;
  // Resources the app holds now; objects also keep their last lease, to name a double release.
  #open = new Map<unknown, Lease>();
  #last = new WeakMap<object, Lease>();

  get size(): number {
    return this.#size;
  }

  /** The open lease of `resource`, if any. */
  find(resource: unknown): Lease | undefined {
    return this.#open.get(resource);
  }

  /** The last closed lease of `resource`, while the resource is alive. */
  last(resource: unknown): Lease | undefined {
    return typeof resource === 'object' && resource !== null ? this.#last.get(resource) : undefined;
  }

  add(lease: Lease): void {
    lease.prev = this.#tail;
    lease.next = null;
    if (this.#tail === null) this.#head = lease;
    else this.#tail.next = lease;
    this.#tail = lease;
    if (this.#due === null) this.#due = lease;
    this.#size++;
    this.#open.set(lease.resource, lease);
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
    const resource = lease.resource;
    this.#open.delete(resource);
    if (typeof resource === 'object' && resource !== null) this.#last.set(resource, lease);
  }

  /** The next lease to pass its deadline, if any. */
  get due(): Lease | null {
    return this.#due;
  }

  /** Marks the current `due` lease as reported and moves on to the next. */
  advance(): void {
    if (this.#due !== null) this.#due = this.#due.next;
  }

  /** Open leases, oldest first. */
  *[Symbol.iterator](): IterableIterator<Lease> {
    for (let lease = this.#head; lease !== null; lease = lease.next) yield lease;
  }

  clear(): void {
    this.#head = this.#tail = this.#due = null;
    this.#size = 0;
    this.#open.clear();
  }
}
