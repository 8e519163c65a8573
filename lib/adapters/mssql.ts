import type { Lease } from '../lease.js';
import { captureTrace, type Trace } from '../stack.js';
import { callAcquire, followCallback, followPromise, patchEnd, patchMethod } from './patch.js';
import {
  defaultMax,
  idleOf,
  mssqlBaseOf,
  mssqlConnectedShapes,
  mssqlHolds,
  mssqlInternals,
  type MssqlBase,
  type MssqlClass,
  type MssqlPoolInternals,
} from './internals/mssql.js';
import { tarnDestroy } from './internals/tarn.js';
import type { BuiltinAdapter, Tracker } from './types.js';

type AcquireCallback = (error: unknown, connection?: unknown, config?: unknown) => void;

/** The part of an mssql `ConnectionPool` poolwatch touches or recognises it by: its documented API. */
interface ConnectionPool {
  /** `requester` is the Request, Transaction or PreparedStatement asking (mssql only uses it for diagnostics ids). */
  acquire(requester?: unknown, callback?: AcquireCallback): PromiseLike<unknown> | ConnectionPool;
  release(connection: unknown): ConnectionPool;
  connect(callback?: Function): unknown;
  close(callback?: Function): unknown;
  request(): object;
  transaction(): object;
  batch(...args: unknown[]): unknown;
}

/** A Transaction, Request or PreparedStatement: it acquires from its `parent`. */
interface Requester {
  readonly parent?: unknown;
}

const positive = (value: unknown): number | undefined => (typeof value === 'number' && value > 0 ? value : undefined);

/**
 * The methods after which mssql acquires for their object, one setImmediate or more later,
 * with no app frame left on the stack: the app's line is captured in them. A lease names
 * the method (`by begin()`, `by query()`).
 */
const asks = {
  Transaction: ['begin'],
  Request: ['query', 'execute', 'batch', 'bulk'],
  PreparedStatement: ['prepare'],
} as const satisfies { readonly [K in keyof MssqlBase]: readonly string[] };

const kinds = Object.keys(asks) as ReadonlyArray<keyof MssqlBase>;

/** Where the app asked a requester for work, and what it called: for the acquire mssql makes for it later. */
class Asked {
  constructor(
    readonly trace: Trace | null,
    readonly via: string,
  ) {}
}

/** One watched pool's requesters: what each was last asked, until the acquire made for it. */
class Requesters {
  readonly #asked = new WeakMap<object, Asked>();
  readonly #tracker: Tracker;

  constructor(tracker: Tracker) {
    this.#tracker = tracker;
  }

  /** The app called `via` on `requester`; `caller` is the wrapper, left out of the stack with what it calls. */
  ask(requester: object, via: string, caller: Function): void {
    this.#asked.set(requester, new Asked(this.#tracker.capture(caller), via));
  }

  /** What `requester` was asked, once: a later acquire with no new call is not named after an old one. */
  take(requester: unknown): Asked | undefined {
    if (typeof requester !== 'object' || requester === null) return undefined;
    const asked = this.#asked.get(requester);
    if (asked !== undefined) this.#asked.delete(requester);
    return asked;
  }
}

// Every watched ConnectionPool, for the patched methods to tell whether a requester's
// parent is one: a Transaction's or PreparedStatement's own requests (parent: the
// transaction or statement) acquire nothing from the pool and are passed straight through.
const watchedPools = new WeakMap<object, Requesters>();

/**
 * A prototype method that notes the app's line when its object acquires from a watched
 * pool, then is the original, unchanged: for any other object it only calls through.
 */
function asking(original: Function, via: string): Function {
  const ask = function (this: Requester | undefined) {
    const requesters = watchedPools.get(this?.parent as object);
    if (requesters !== undefined) requesters.ask(this!, via, ask);
    return original.apply(this, arguments);
  };
  return ask;
}

/** One mssql copy's patched prototypes, shared by the watched pools it made. */
interface Hooked {
  pools: number;
  readonly restores: ReadonlyArray<() => void>;
}

// By the copy's base Request class; a copy's prototypes are patched with its first watched pool, restored with its last.
const hooked = new Map<MssqlClass, Hooked>();

/**
 * Patches the base prototypes of `base`'s copy of mssql, or counts one more pool on them;
 * returns what counts it off (and restores them with the last), or undefined when a
 * prototype refuses the patch (then nothing is left patched).
 */
function hookPrototypes(base: MssqlBase): (() => void) | undefined {
  let copy = hooked.get(base.Request);
  if (copy === undefined) {
    const restores: Array<() => void> = [];
    try {
      for (const kind of kinds) {
        const proto = base[kind].prototype as Record<string, unknown>;
        for (const key of asks[kind]) {
          if (typeof proto[key] === 'function') restores.push(patchMethod<Function>(proto, key, (original) => asking(original, key)));
        }
      }
    } catch {
      for (let i = restores.length - 1; i >= 0; i--) restores[i]!();
      return undefined;
    }
    copy = { pools: 0, restores };
    hooked.set(base.Request, copy);
  }
  const counted = copy;
  counted.pools++;
  return () => {
    if (--counted.pools !== 0) return;
    hooked.delete(base.Request);
    for (const restore of counted.restores) restore();
  };
}

/**
 * An own method for a Request or Transaction a watched pool's factory made, when mssql's
 * prototypes are out of reach: notes the app's line, then calls the prototype's method.
 * Once the pool is unwatched, it only calls through.
 */
function owning(key: string): Function {
  const ask = function (this: Requester) {
    const requesters = watchedPools.get(this.parent as object);
    if (requesters !== undefined) requesters.ask(this, key, ask);
    return (Object.getPrototypeOf(this) as Record<string, Function>)[key]!.apply(this, arguments);
  };
  Object.defineProperty(ask, 'name', { value: key });
  return ask;
}

const ownMethods = {
  Transaction: asks.Transaction.map((key) => [key, owning(key)] as const),
  Request: asks.Request.map((key) => [key, owning(key)] as const),
};

function withOwn(made: unknown, methods: ReadonlyArray<readonly [string, Function]>): void {
  if (typeof made !== 'object' || made === null) return;
  try {
    for (const [key, method] of methods) {
      if (typeof (made as Record<string, unknown>)[key] === 'function') Object.defineProperty(made, key, { value: method, writable: true, configurable: true });
    }
  } catch {
    // An object that refuses own methods: its calls are not named, and it works as mssql made it.
  }
}

/** Wraps the pool's own `request()` and `transaction()`: each object made gets the own methods above. */
function hookFactories(target: object): Array<() => void> {
  return (['request', 'transaction'] as const).map((factory) => {
    const methods = factory === 'request' ? ownMethods.Request : ownMethods.Transaction;
    return patchMethod<() => object>(target, factory, (original) =>
      function make(this: unknown) {
        const made = original.apply(this, arguments as unknown as []);
        withOwn(made, methods);
        return made;
      },
    );
  });
}

/**
 * mssql's `ConnectionPool` (tedious or msnodesqlv8 driver): `acquire(requester)` → promise,
 * or `acquire(requester, cb)` with `(err, connection, config)`; `release(connection)`.
 * Requests, transactions and prepared statements acquire through these same methods of
 * their pool (a transaction's requests share the transaction's one lease), so wrapping
 * the ConnectionPool, not the tarn pool it makes in `connect()` and drops in `close()`,
 * covers them all, before or after `connect()` and across a reconnect. mssql has no
 * per-connection destroy: a connection that fails tarn's validation is discarded at a
 * later acquire, after its release.
 *
 * A Request, Transaction or PreparedStatement acquires one setImmediate or more after the
 * app's `query()`, `begin()` or `prepare()`, with no app frame on the stack. So the app's
 * line is captured in those calls, kept by the object, and handed to the acquire mssql
 * makes for it (its `requester`). Those calls are the base prototypes' own, shared by
 * every object however made (`pool.request()`, `new sql.Request(pool)`, `pool.query()`):
 * they are patched once per mssql copy while one of its pools is watched, and note
 * nothing for an object whose `parent` is not a watched pool. A bundled app, whose mssql
 * is not in require's cache, keeps its prototypes: then only objects made by the pool's
 * own `request()` and `transaction()` are named, through own methods.
 */
export const mssql: BuiltinAdapter = {
  kind: 'mssql',
  defaultName: 'mssql',
  acquireMethod: 'acquire',
  libraries: ['mssql', 'tarn', 'tedious'],
  internals: mssqlInternals,

  // `request`, `transaction` and `batch` beside acquire/release/connect/close: no other
  // supported pool has them all (a tarn pool has none of the three, a knex instance is a
  // function, an mssql Transaction or PreparedStatement has no connect, close or batch).
  matches(pool) {
    if (typeof pool !== 'object') return false;
    const p = pool as Partial<ConnectionPool>;
    return (
      typeof p.acquire === 'function' &&
      typeof p.release === 'function' &&
      typeof p.connect === 'function' &&
      typeof p.close === 'function' &&
      typeof p.request === 'function' &&
      typeof p.transaction === 'function' &&
      typeof p.batch === 'function'
    );
  },

  lease: {
    acquire: (pool) => (pool as ConnectionPool).acquire() as PromiseLike<unknown>,
    release: (pool, connection) => (pool as ConnectionPool).release(connection),
    // mssql cannot discard one connection on request: its tarn pool does, as for one that fails validation.
    destroy: (pool, connection) => tarnDestroy((pool as MssqlPoolInternals).pool ?? undefined, connection),
  },

  install(target, tracker: Tracker) {
    const requesters = new Requesters(tracker);
    // The tarn pool exists once a connection has been handed over: its shape is checked then, once.
    let probed = false;
    const handover = (lease: Lease, connection: unknown) => {
      tracker.handover(lease, connection);
      if (probed) return;
      probed = true;
      tracker.probeConnection(mssqlConnectedShapes as never, target);
    };
    const restores = [
      patchMethod<ConnectionPool['acquire']>(target, 'acquire', (original) =>
        function acquire(this: ConnectionPool, requester?: unknown, callback?: AcquireCallback) {
          // A requester's line was noted where the app asked it; anyone else's is on the stack now.
          const asked = requesters.take(requester);
          let lease: Lease;
          if (asked !== undefined) lease = tracker.begin(acquire, asked.via, asked.trace);
          else {
            const depth = tracker.captureDepth(acquire);
            lease = tracker.begin(acquire, undefined, depth === 0 ? undefined : captureTrace(acquire, depth));
          }
          if (typeof callback === 'function') {
            // Called back from a reaction of mssql's own promise, registered in the caller's
            // async context: no binding needed. Requests and transactions acquire this way.
            const follow = followCallback(tracker, lease, callback, false, (connection) => handover(lease, connection));
            return callAcquire<ConnectionPool>(tracker, lease, original, this, [requester, follow]);
          }
          const promise = callAcquire<PromiseLike<unknown>>(tracker, lease, original, this, arguments);
          return followPromise(tracker, lease, promise, (connection) => handover(lease, connection));
        } as ConnectionPool['acquire'],
      ),
      // mssql's release() returns the pool whatever tarn said: poolwatch's own records name a double release.
      patchEnd(tracker, target, 'release', false),
    ];
    // Last: nothing after it may fail, or the count it adds would outlive this install.
    const base = mssqlBaseOf(target);
    const unhook = base === undefined ? undefined : hookPrototypes(base);
    if (unhook === undefined) restores.push(...hookFactories(target));
    else restores.push(unhook);
    watchedPools.set(target, requesters);
    return () => {
      watchedPools.delete(target);
      for (const restore of restores) restore();
    };
  },

  capacity: (pool) => positive((pool as MssqlPoolInternals).config?.pool?.max) ?? defaultMax,
  // Unset, tarn's own default (30 s) applies, past the 5 s poolwatch judges waits against anyway.
  acquireTimeoutMs: (pool) => positive((pool as MssqlPoolInternals).config?.pool?.acquireTimeoutMillis),
  idle: (pool) => idleOf(pool as MssqlPoolInternals),
  // tarn's TimeoutError: acquireTimeoutMillis ran out (mssql 12.7 prefixes its message
  // "Failed to acquire a connection from the pool: ").
  isExhaustion: (error) => (error as Error | null)?.constructor?.name === 'TimeoutError',

  isLeased(pool, resource) {
    return mssqlHolds(pool as MssqlPoolInternals, resource);
  },
};
