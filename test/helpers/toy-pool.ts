/**
 * A small callback pool shaped like mysql's: `getConnection(cb)`, `conn.release()`.
 * Like pg-pool and mysql, it hands a released connection straight to the next waiter,
 * inside release(): the waiter's callback runs in the releaser's async context unless bound.
 */
export class ToyConnection {
  constructor(
    readonly pool: ToyPool,
    readonly id: number,
  ) {}

  release(): void {
    this.pool.giveBack(this, false);
  }

  destroy(): void {
    this.pool.giveBack(this, true);
  }
}

type Callback = (error: Error | null, conn?: ToyConnection) => void;

export class ToyPool {
  #free: ToyConnection[] = [];
  #leased = new Set<ToyConnection>();
  #waiting: Callback[] = [];
  #created = 0;

  constructor(
    readonly max: number,
    readonly failWith?: Error,
  ) {}

  getConnection(callback: Callback): void {
    if (this.failWith !== undefined) {
      const error = this.failWith;
      process.nextTick(() => callback(error));
      return;
    }
    const conn = this.#free.pop() ?? (this.#created < this.max ? new ToyConnection(this, ++this.#created) : undefined);
    if (conn === undefined) {
      this.#waiting.push(callback);
      return;
    }
    this.#leased.add(conn);
    process.nextTick(() => callback(null, conn));
  }

  giveBack(conn: ToyConnection, destroy: boolean): void {
    if (!this.#leased.has(conn)) throw new Error('Connection already released');
    this.#leased.delete(conn);
    if (destroy) this.#created--;
    const waiter = this.#waiting.shift();
    if (waiter === undefined) {
      if (!destroy) this.#free.push(conn);
      return;
    }
    const next = destroy ? new ToyConnection(this, ++this.#created) : conn;
    this.#leased.add(next);
    waiter(null, next);
  }
}
