import { EventEmitter } from 'node:events';
import { types } from 'node:util';
import { adapterFor, underlyingOf } from '../adapters/index.js';

/**
 * Finds the pools in the target's heap. The CLI asks the inspector for every instance of a
 * few prototypes (`Runtime.queryObjects`) and hands the arrays here:
 * - `EventEmitter.prototype`: pg and pg-pool, generic-pool, mysql2 (core and promise), mariadb,
 *   mssql pools and knex clients are all event emitters, whichever module system or bundle
 *   loaded them;
 * - the `Pool` classes of tarn and sequelize-pool, which are not, from the target's
 *   `require.cache` (CommonJS modules an ES module imported are there too);
 * - `Function.prototype`, only when a knex client or postgres.js is loaded: a knex instance
 *   and a postgres.js `sql` are functions.
 * Objects are looked at through their own and inherited data properties first: no getter of
 * an unrelated object runs, and no proxy is touched.
 */

/** A pool found, with the kind of its adapter. */
export interface FoundPool {
  readonly pool: object;
  readonly kind: string;
}

// The modules whose classes are not event emitters, by the path that ends their file name.
const classModules: readonly { path: RegExp; exported: (exports: any) => unknown }[] = [
  { path: /[\\/]node_modules[\\/]tarn[\\/]dist[\\/]Pool\.js$/, exported: (e) => e?.Pool },
  { path: /[\\/]node_modules[\\/]sequelize-pool[\\/]lib[\\/]Pool\.js$/, exported: (e) => e?.Pool },
];
const postgresModule = /[\\/]node_modules[\\/]postgres[\\/]cjs[\\/]src[\\/]index\.js$/;

// The acquire methods of the supported pools (and knex's client); anything without one is skipped at once.
const acquireMethods = ['connect', 'acquire', 'getConnection', 'acquireConnection'];

/** The data property `key` of `object` or its prototypes; undefined for a getter or a proxy. */
function dataOf(object: object, key: string): unknown {
  for (let o: object | null = object, depth = 0; o !== null && depth < 32; o = Object.getPrototypeOf(o) as object | null, depth++) {
    if (types.isProxy(o)) return undefined;
    const own = Object.getOwnPropertyDescriptor(o, key);
    if (own !== undefined) return 'value' in own ? own.value : undefined;
  }
  return undefined;
}

function ownData(object: object, key: string): unknown {
  const own = Object.getOwnPropertyDescriptor(object, key);
  return own !== undefined && 'value' in own ? own.value : undefined;
}

const isObject = (value: unknown): value is object => (typeof value === 'object' || typeof value === 'function') && value !== null;

// A class's prototype is an instance of its parent's too: not a pool.
function isPrototypeObject(object: object): boolean {
  const ctor = ownData(object, 'constructor');
  return typeof ctor === 'function' && (ctor as { prototype?: unknown }).prototype === object;
}

/** Collects pools from the instances the inspector finds, round by round. */
export class Discovery {
  readonly #queried = new Set<object>();
  readonly #candidates = new Set<object>();
  readonly #knexClients = new Set<object>();
  // Pools a knex client or an mssql ConnectionPool owns: watched through their owner, as the preload does.
  readonly #owned = new Set<object>();

  /** The prototypes whose instances the CLI should ask for next; empty when done. */
  next(): object[] {
    const wanted: object[] = [EventEmitter.prototype];
    for (const [file, module] of Object.entries(require.cache)) {
      for (const { path, exported } of classModules) {
        if (!path.test(file)) continue;
        const Class = exported(module?.exports);
        if (typeof Class === 'function' && isObject(Class.prototype)) wanted.push(Class.prototype as object);
      }
    }
    if (this.#knexClients.size > 0 || Object.keys(require.cache).some((file) => postgresModule.test(file))) wanted.push(Function.prototype);
    const fresh = wanted.filter((proto) => !this.#queried.has(proto));
    for (const proto of fresh) this.#queried.add(proto);
    return fresh;
  }

  /** Takes the instances of one prototype. */
  take(objects: readonly unknown[]): void {
    for (const object of objects) {
      try {
        if (!isObject(object) || types.isProxy(object) || isPrototypeObject(object)) continue;
        if (typeof object === 'function') this.#takeFunction(object);
        else this.#takeObject(object);
      } catch {
        // An object that throws when looked at is not a pool poolwatch knows.
      }
    }
  }

  #takeObject(object: object): void {
    if (!acquireMethods.some((name) => typeof dataOf(object, name) === 'function')) return;
    if (typeof dataOf(object, 'acquireConnection') === 'function' && typeof dataOf(object, 'runner') === 'function') {
      // A knex client; a transaction's is its own object marked `transacting`.
      if (ownData(object, 'transacting') !== true) this.#knexClients.add(object);
      const pool = ownData(object, 'pool');
      if (isObject(pool)) this.#owned.add(pool);
      return;
    }
    this.#candidates.add(object);
  }

  #takeFunction(fn: object): void {
    const context = ownData(fn, 'context');
    if (isObject(context) && !types.isProxy(context) && this.#knexClients.has(ownData(context, 'client') as object)) {
      this.#candidates.add(fn);
      return;
    }
    if (typeof ownData(fn, 'reserve') === 'function' && typeof ownData(fn, 'begin') === 'function') {
      // postgres.js makes one more `sql` of its own for subscribe(), on a replication connection.
      const options = ownData(fn, 'options');
      const connection = isObject(options) && !types.isProxy(options) ? ownData(options, 'connection') : undefined;
      if (isObject(connection) && !types.isProxy(connection) && ownData(connection, 'replication') === 'database') return;
      this.#candidates.add(fn);
    }
  }

  /** The pools found, each once, without those another pool owns. */
  result(): FoundPool[] {
    const found: FoundPool[] = [];
    const knexPools = new Set<unknown>();
    for (const pool of this.#candidates) {
      let kind: string;
      try {
        kind = adapterFor(pool, undefined).kind;
      } catch {
        continue;
      }
      if (kind === 'mssql') {
        const inner = ownData(pool, 'pool');
        if (isObject(inner)) this.#owned.add(inner);
      }
      if (kind === 'knex') {
        // A knex made by withUserParams() shares its original's pool: the original is watched.
        const client = ownData(ownData(pool, 'context') as object, 'client') as object;
        const shared = ownData(client, 'pool');
        if (shared !== undefined && knexPools.has(shared)) continue;
        knexPools.add(shared);
      }
      found.push({ pool, kind });
    }
    // A wrapper (a mysql2 promise pool) whose core pool was found too: the core is watched, which covers both.
    const pools = new Set(found.map(({ pool }) => pool));
    return found.filter(({ pool }) => {
      if (this.#owned.has(pool)) return false;
      const core = underlyingOf(pool);
      return core === undefined || core === pool || !pools.has(core);
    });
  }
}
