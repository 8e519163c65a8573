import { PoolwatchTypeError, codes, describe } from '../errors.js';
import { acquireWrapper, callAcquire, followCallback, followPromise, patchConnection, patchEnd, patchMethod } from './patch.js';
import type { Adapter, Tracker } from './types.js';

/** A method given by name, or as the function itself (`pool.checkout`). */
export type MethodRef = string | Function;

/** A method of each connection rather than of the pool, e.g. `{ connection: 'release' }`. */
export interface ConnectionMethod {
  connection: string;
}

/**
 * How to watch a pool poolwatch does not recognise. `acquire` may return a promise,
 * return the connection, or take a callback `(err, connection)` as its last argument.
 */
export interface AdapterSpec {
  /** The pool method that hands out a connection. */
  acquire: MethodRef;
  /** The pool method that takes a connection back (connection as first argument), or the connection's own method. */
  release: MethodRef | ConnectionMethod;
  /** The method that discards a connection, when the pool has one. */
  destroy?: MethodRef | ConnectionMethod;
  /** Pool name when `watch()` gives none. Default `'pool'`. */
  name?: string;
  /** npm packages whose frames are not the app's, e.g. `['my-pool']`. */
  libraries?: readonly string[];
}

const specKeys = ['acquire', 'release', 'destroy', 'name', 'libraries'];

function invalid(message: string): PoolwatchTypeError {
  return new PoolwatchTypeError(codes.invalidOption, message);
}

function methodName(pool: object, ref: unknown, option: string): string {
  if (typeof ref === 'string') {
    if (typeof (pool as Record<string, unknown>)[ref] !== 'function') {
      throw invalid(`\`${option}\` names \`${ref}\`, but the pool has no method \`${ref}\`.`);
    }
    return ref;
  }
  if (typeof ref === 'function') {
    for (let o: object | null = pool; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
      const key = Object.getOwnPropertyNames(o).find((k) => (pool as Record<string, unknown>)[k] === ref);
      if (key !== undefined) return key;
    }
    throw invalid(`\`${option}\` is ${describe(ref)}, which is not a method of the pool; give the method or its name.`);
  }
  throw invalid(`Expected \`${option}\` to be a method name or the pool's method, got ${describe(ref)}.`);
}

type EndRef = { on: 'pool'; key: string } | { on: 'connection'; key: string };

function endRef(pool: object, ref: unknown, option: string): EndRef {
  if (typeof ref === 'object' && ref !== null && !Array.isArray(ref)) {
    const key = (ref as Partial<ConnectionMethod>).connection;
    if (typeof key !== 'string' || key === '' || Object.keys(ref).length !== 1) {
      throw invalid(`Expected \`${option}\` to be a method name, the pool's method, or { connection: 'methodName' }, got ${describe(ref)}.`);
    }
    return { on: 'connection', key };
  }
  return { on: 'pool', key: methodName(pool, ref, option) };
}

/** Builds an adapter from the `adapter` option; throws a TypeError naming what is wrong. */
export function customAdapter(pool: object, spec: unknown): Adapter {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw invalid(`Expected \`adapter\` to be an object such as { acquire: 'acquire', release: 'release' }, got ${describe(spec)}.`);
  }
  const unknown = Object.keys(spec).find((key) => !specKeys.includes(key));
  if (unknown !== undefined) throw invalid(`Unknown option \`adapter.${unknown}\`. Expected one of: ${specKeys.join(', ')}.`);
  const { acquire, release, destroy, name = 'pool', libraries = [] } = spec as Record<string, unknown>;
  if (acquire === undefined) throw invalid('`adapter.acquire` is required: the pool method that hands out a connection.');
  if (release === undefined) throw invalid('`adapter.release` is required: the method that takes a connection back.');
  if (typeof name !== 'string' || name === '') throw invalid(`Expected \`adapter.name\` to be a non-empty string, got ${describe(name)}.`);
  if (!Array.isArray(libraries) || !libraries.every((lib) => typeof lib === 'string')) {
    throw invalid(`Expected \`adapter.libraries\` to be an array of package names, got ${describe(libraries)}.`);
  }
  const acquireKey = methodName(pool, acquire, 'adapter.acquire');
  // Read before watch() wraps it: a wrapper declares no parameters.
  const takesCallback = ((pool as Record<string, Function>)[acquireKey]!).length > 0;
  const ends: Array<[EndRef, boolean]> = [[endRef(pool, release, 'adapter.release'), false]];
  if (destroy !== undefined) ends.push([endRef(pool, destroy, 'adapter.destroy'), true]);

  const give = (pool: object, ref: EndRef, connection: unknown): unknown => {
    const holder = (ref.on === 'pool' ? pool : connection) as Record<string, (...args: unknown[]) => unknown>;
    return ref.on === 'pool' ? holder[ref.key]!(connection) : holder[ref.key]!();
  };
  const [releaseRef] = ends[0]!;
  const destroyRef = ends[1]?.[0];

  return {
    kind: 'custom adapter',
    // lease() takes what the acquire method gives: a promise of the connection, the connection
    // itself, or (when the method declares parameters) a callback's `(error, connection)`.
    lease: {
      acquire(pool) {
        const method = (pool as Record<string, (...args: unknown[]) => unknown>)[acquireKey]!;
        return new Promise((resolve, reject) => {
          const made = takesCallback ? method.call(pool, (error: unknown, connection: unknown) => (error == null ? resolve(connection) : reject(error))) : method.call(pool);
          if (typeof (made as PromiseLike<unknown> | null)?.then === 'function') (made as PromiseLike<unknown>).then(resolve, reject);
          else if (made != null) resolve(made);
          else if (!takesCallback) {
            reject(new PoolwatchTypeError(codes.invalidOption, `lease() cannot take a connection from this pool: its \`adapter.acquire\` method (${acquireKey}) returned ${describe(made)}; lease() needs one that returns the connection, a promise of it, or takes a callback.`));
          }
        });
      },
      release: (pool, connection) => give(pool, releaseRef, connection),
      ...(destroyRef === undefined ? {} : { destroy: (pool: object, connection: unknown) => give(pool, destroyRef, connection) }),
    },
    defaultName: name,
    acquireMethod: acquireKey,
    libraries,
    install(target, tracker) {
      const connectionEnds = ends.filter(([ref]) => ref.on === 'connection');
      // Connections outlive an unwatch; their wrappers then just call through.
      const patched = new WeakSet<object>();
      let active = true;
      const handover = (lease: Parameters<Tracker['handover']>[0], connection: unknown) => {
        tracker.handover(lease, connection);
        if (connectionEnds.length === 0 || typeof connection !== 'object' || connection === null) return;
        if (patched.has(connection)) return;
        const wrapped = patchConnection(tracker, lease, () => {
          for (const [{ key }, destroyed] of connectionEnds) {
            if (typeof (connection as Record<string, unknown>)[key] !== 'function') continue;
            patchMethod<(...args: unknown[]) => unknown>(connection, key, (original) =>
              function end(this: object) {
                if (active) tracker.end(this, destroyed, key, end);
                return original.apply(this, arguments as unknown as unknown[]);
              },
            );
          }
        });
        if (wrapped) patched.add(connection);
      };

      const restores = [
        patchMethod<(...args: unknown[]) => unknown>(target, acquireKey, (original) =>
          acquireWrapper(tracker, (self: object, given, trace, acquire) => {
            const lease = tracker.begin(acquire, undefined, trace);
            const last = given.length - 1;
            const callback: unknown = given[last];
            let args: ArrayLike<unknown> = given;
            if (typeof callback === 'function') {
              const copy = Array.prototype.slice.call(given);
              copy[last] = followCallback(tracker, lease, callback, true, (connection) => handover(lease, connection));
              args = copy;
            }
            const result = callAcquire<unknown>(tracker, lease, original, self, args as unknown[]);
            if (args !== given) return result;
            if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
              return followPromise(tracker, lease, result as PromiseLike<unknown>, (connection) => handover(lease, connection));
            }
            if (result != null) handover(lease, result);
            else tracker.fail(lease);
            return result;
          }),
        ),
        ...ends
          .filter(([ref]) => ref.on === 'pool')
          .map(([{ key }, destroyed]) => patchEnd(tracker, target, key, destroyed)),
      ];
      return () => {
        active = false;
        for (const restore of restores) restore();
      };
    },
  };
}
