import type * as DetectorModule from '../detector.js';
import { say } from './log.js';

// Pool classes and factories are swapped for ones that watch what they make. A pool built
// inside an ORM is reached the same way: the ORM requires the pool library, and gets these.

type Exports = Record<string | symbol, unknown>;
type AnyFunction = (...args: unknown[]) => unknown;
type AnyClass = new (...args: unknown[]) => object;

// The library is loaded only when the first pool is made: the preload costs the app's startup little.
let detector: typeof DetectorModule | undefined;
// Which kinds of pool the preload could not watch, said once each.
const refused = new Set<string>();
// While knex builds its own tarn pool: knex is watched as a whole, its pool is not watched again.
let insideKnex = 0;

// While a Sequelize instance builds its pool: the instance is watched as a whole, its pool not again.
let insideSequelize = 0;

/**
 * Watches `pool` with the default detector, unless something already watches it. Never
 * throws: returns whether it is watched; `quiet` leaves a refusal unsaid (the caller has another way).
 */
export function adopt(pool: unknown, library: string, quiet = false): boolean {
  if ((typeof pool !== 'object' && typeof pool !== 'function') || pool === null) return false;
  try {
    // Its settings are the ones register.ts shared: defaultDetector() reads them.
    detector ??= require('../detector.js') as typeof DetectorModule;
    if (detector.detectorOf(pool) !== undefined) return true;
    detector.defaultDetector().watch(pool);
    return true;
  } catch (error) {
    if (quiet || refused.has(library)) return false;
    refused.add(library);
    say(`could not watch a ${library} pool; it works as before, unwatched (${(error as Error)?.message ?? String(error)})`, 'POOLWATCH_WATCH_FAILED');
    return false;
  }
}

/**
 * Sequelize acquires several awaits after the app's call, so its Pool watched alone names the
 * app's line only when the app awaits Sequelize directly (not in `transaction(callback)`, nor
 * for a promise the app passes on). The instance, watched as a whole, takes the stack at
 * `transaction()`. Its pool is made inside its constructor: skipped there, and watched alone
 * only when the instance cannot be (read replication's two pools, sqlite's none).
 */
function watchingSequelize(Base: AnyClass): AnyClass {
  if (ours.has(Base)) return Base;
  let Watching = replacements.get(Base) as AnyClass | undefined;
  if (Watching === undefined) {
    Watching = class extends Base {
      constructor(...args: unknown[]) {
        insideSequelize++;
        try {
          super(...args);
        } finally {
          insideSequelize--;
        }
        if (this instanceof Base && !adopt(this, 'sequelize', true)) {
          const pools = (this as { connectionManager?: { pool?: { read?: unknown; write?: unknown } } }).connectionManager?.pool;
          if (typeof pools?.read === 'object' && typeof pools.write === 'object') {
            adopt(pools.write, 'sequelize-pool');
            adopt(pools.read, 'sequelize-pool');
          } else adopt(pools, 'sequelize-pool');
        }
      }
    };
    Object.defineProperty(Watching, 'name', { value: Base.name, configurable: true });
    // `require('sequelize').Sequelize` and `.default` (what the ES module entry exports) name the class itself.
    for (const key of ['Sequelize', 'default']) {
      if ((Base as unknown as Exports)[key] === Base) Object.defineProperty(Watching, key, { value: Watching, writable: true, enumerable: true, configurable: true });
    }
    replacements.set(Base, Watching);
    ours.add(Watching);
  }
  return Watching;
}

// Each original class or factory gets one replacement, whoever loads it and however.
const replacements = new WeakMap<object, unknown>();
const ours = new WeakSet<object>();

function watchingClass(Base: AnyClass, library: string, skip?: () => boolean): AnyClass {
  if (ours.has(Base)) return Base;
  let Watching = replacements.get(Base) as AnyClass | undefined;
  if (Watching === undefined) {
    Watching = class extends Base {
      constructor(...args: unknown[]) {
        super(...args);
        // A constructor that returned something else (mssql's, for a config it rejects) made no pool.
        if (this instanceof Base && (skip === undefined || !skip())) adopt(this, library);
      }
    };
    // Error messages and logs that name the pool's class see the library's name.
    Object.defineProperty(Watching, 'name', { value: Base.name, configurable: true });
    replacements.set(Base, Watching);
    ours.add(Watching);
  }
  return Watching;
}

function watchingFactory(make: AnyFunction, library: string, after?: (made: unknown) => void): AnyFunction {
  if (ours.has(make)) return make;
  let wrapped = replacements.get(make) as AnyFunction | undefined;
  if (wrapped === undefined) {
    wrapped = function (this: unknown) {
      const made = make.apply(this, arguments as unknown as unknown[]);
      adopt(made, library);
      after?.(made);
      return made;
    };
    // The factory's own properties (knex.Client, postgres.BigInt, …) stay reachable.
    for (const key of Reflect.ownKeys(make)) {
      if (key === 'length' || key === 'name' || key === 'prototype' || key === 'arguments' || key === 'caller') continue;
      Object.defineProperty(wrapped, key, Object.getOwnPropertyDescriptor(make, key)!);
    }
    Object.defineProperty(wrapped, 'name', { value: make.name, configurable: true });
    replacements.set(make, wrapped);
    ours.add(wrapped);
  }
  return wrapped;
}

/**
 * `exports` with `key` set to `value`: in place when the property can be written, else a
 * copy (a bundle's exports are getters that cannot be redefined).
 */
function withExport(exports: Exports, key: string, value: unknown): Exports {
  const own = Object.getOwnPropertyDescriptor(exports, key);
  if (own === undefined) return exports;
  if (own.writable === true || own.set !== undefined) {
    exports[key] = value;
    if (exports[key] === value) return exports;
  }
  if (own.configurable === true) {
    Object.defineProperty(exports, key, { value, writable: true, enumerable: own.enumerable ?? true, configurable: true });
    return exports;
  }
  const copy: Exports = Object.create(Object.getPrototypeOf(exports));
  for (const name of Reflect.ownKeys(exports)) {
    if (name === key) Object.defineProperty(copy, name, { value, writable: true, enumerable: true, configurable: true });
    else Object.defineProperty(copy, name, Object.getOwnPropertyDescriptor(exports, name)!);
  }
  return copy;
}

function replaceFactory(exports: Exports, key: string, library: string): Exports {
  const make = exports[key];
  if (typeof make !== 'function') return exports;
  const result = withExport(exports, key, watchingFactory(make as AnyFunction, library));
  // An ES module's namespace in CommonJS form carries its default export too (mariadb).
  const fallback = result.default as Exports | undefined;
  if (typeof fallback === 'object' && fallback !== null && fallback[key] === make) withExport(fallback, key, result[key]);
  return result;
}

function replaceClass(exports: Exports, key: string, library: string, skip?: () => boolean): Exports {
  const Base = exports[key];
  return typeof Base === 'function' ? withExport(exports, key, watchingClass(Base as AnyClass, library, skip)) : exports;
}

// knex's Client builds its tarn pool in initializePool(): the pool knex owns is watched through knex.
const patchedClients = new WeakSet<object>();
function knexBuildsPools(knexFactory: unknown): void {
  const proto = (knexFactory as { Client?: { prototype?: { initializePool?: AnyFunction } } }).Client?.prototype;
  const initializePool = proto?.initializePool;
  if (proto === undefined || typeof initializePool !== 'function' || patchedClients.has(proto)) return;
  patchedClients.add(proto);
  proto.initializePool = function (this: unknown) {
    insideKnex++;
    try {
      return initializePool.apply(this, arguments as unknown as unknown[]);
    } finally {
      insideKnex--;
    }
  };
}

// mssql's ConnectionPool builds its tarn pool in connect(), inside a promise callback no call
// of ours encloses, so no counter can bracket it as for knex: the stack says whether that
// callback is making the tarn pool now being made. Read only as a tarn pool is made.
const mssqlMakesPool = /[\\/]mssql[\\/]lib[\\/]base[\\/]connection-pool\.js:/;
function insideMssql(): boolean {
  const limit = Error.stackTraceLimit;
  const here: { stack?: unknown } = {};
  try {
    // Ours (the skip, the tarn subclass's constructor), then whoever said `new tarn.Pool`.
    Error.stackTraceLimit = 4;
    Error.captureStackTrace(here, insideMssql);
  } finally {
    Error.stackTraceLimit = limit;
  }
  return mssqlMakesPool.test(String(here.stack));
}

/** What the preload does to one module's exports, given as CommonJS `module.exports`. */
export type Patch = (exports: unknown) => unknown;

const asClass = (library: string, skip?: () => boolean): Patch => (exports) =>
  typeof exports === 'function' ? watchingClass(exports as AnyClass, library, skip) : exports;
const asFactory = (library: string): Patch => (exports) => (typeof exports === 'function' ? watchingFactory(exports as AnyFunction, library) : exports);
const factoryExport = (key: string, library: string): Patch => (exports) =>
  typeof exports === 'object' && exports !== null ? replaceFactory(exports as Exports, key, library) : exports;
const classExport = (key: string, library: string, skip?: () => boolean): Patch => (exports) =>
  typeof exports === 'object' && exports !== null ? replaceClass(exports as Exports, key, library, skip) : exports;

/**
 * The modules the preload changes, by the name `require` and `import` see: a package, or a
 * file inside one where the pool is made out of reach of the package's entry point.
 */
export const patches: Readonly<Record<string, Patch>> = {
  // pg.Pool extends pg-pool's Pool, which pg requires: every pg pool, whoever makes it.
  'pg-pool': asClass('pg'),
  // tarn is knex's and mssql's pool; knex's and mssql's own are watched through them.
  tarn: classExport('Pool', 'tarn', () => insideKnex > 0 || insideMssql()),
  // Sequelize's pool.
  'sequelize-pool': classExport('Pool', 'sequelize-pool', () => insideSequelize > 0),
  // The Sequelize class, which the package's entry points (CommonJS and ES module) re-export.
  'sequelize/lib/sequelize': (exports) => (typeof exports === 'function' ? watchingSequelize(exports as AnyClass) : exports),
  'generic-pool': factoryExport('createPool', 'generic-pool'),
  // mysql2 3.x makes pools in lib/create_pool.js, which both mysql2 and mysql2/promise require;
  // older 3.x made them in the entry point, which mysql2/promise requires.
  mysql2: factoryExport('createPool', 'mysql2'),
  'mysql2/lib/create_pool': asFactory('mysql2'),
  mariadb: factoryExport('createPool', 'mariadb'),
  'mariadb/callback': factoryExport('createPool', 'mariadb'),
  // The knex factory that knex's entry point (and ESM wrapper) re-exports.
  'knex/lib/knex-builder/Knex': (exports) => {
    if (typeof exports !== 'function') return exports;
    knexBuildsPools(exports);
    return watchingFactory(exports as AnyFunction, 'knex');
  },
  postgres: asFactory('postgres'),
  // The base class of every mssql driver's ConnectionPool (tedious, msnodesqlv8), which each requires.
  'mssql/lib/base/connection-pool': asClass('mssql'),
};

/** Applies `patch` to an ES module namespace (as import-in-the-middle hands it over). */
export function patchNamespace(namespace: Exports, patch: Patch): void {
  const original = namespace.default;
  const patched = patch(original);
  if (patched !== original) namespace.default = patched;
  // Named exports bound to what was replaced follow it (e.g. `import { createPool } from 'mysql2'`).
  if ((typeof original === 'object' || typeof original === 'function') && original !== null) {
    for (const key of Object.keys(namespace)) {
      if (key === 'default') continue;
      const value = namespace[key];
      const replacement = typeof value === 'function' || (typeof value === 'object' && value !== null) ? replacements.get(value) : undefined;
      if (replacement !== undefined) namespace[key] = replacement;
    }
  }
}
