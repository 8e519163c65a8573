import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { warn } from '../../warn.js';

/**
 * What poolwatch can see of a pool beyond its leases (which it always tracks):
 * - `misuse`: double releases and releases of connections the pool never leased;
 * - `capacity`, `idle`, `acquireTimeout`: the pool's size, its idle count, how long it lets an acquire wait;
 * - `exhaustion`: its own "no connection in time" error is recognised and names the holders;
 * - `destroys`: connections it discards (destroyed, or killed by the server) end their leases;
 * - `handover`: the handover is seen inside the pool, not at the app's promise (exact wait, no extra promise);
 * - `activity`: what a held connection is doing (idle, in a query, idle in a transaction) and its last statement;
 * - `reclaim`: one leased connection can be destroyed through the pool: by `reclaimAfterMs`
 *   (where `activity` is seen too) and by a `lease()` handle's `destroy()`.
 */
export type Capability = 'misuse' | 'capacity' | 'idle' | 'acquireTimeout' | 'exhaustion' | 'destroys' | 'handover' | 'activity' | 'reclaim';

export const capabilityNames: readonly Capability[] = ['misuse', 'capacity', 'idle', 'acquireTimeout', 'exhaustion', 'destroys', 'handover', 'activity', 'reclaim'];

/** One private field or undocumented behaviour an adapter relies on, and how to check it is there. */
export interface Shape<P = never> {
  /** As a developer would look for it in the library's source, e.g. `pool._freeConnections`. */
  readonly name: string;
  /** What is lost without it. */
  readonly serves: readonly Capability[];
  /** Whether `pool` has it now. Checked once, at `watch()` (or at the first connection, for a connection's shape). */
  readonly present: (pool: P) => boolean;
  /**
   * For a connection's shape the driver sets only once the connection is ready (pg's
   * `readyForQuery`, which a new client gets just after the pool hands it over): whether it
   * can show it yet. Until then it is judged a moment later, never on an earlier snapshot.
   */
  readonly ready?: (target: P) => boolean;
}

/**
 * Everything an adapter knows of its library beyond its documented API: one declaration
 * per library, with the versions it was checked against, so an upstream release that
 * renames a field is found by the probe and the version matrix, not by a silent miscount.
 */
export interface Internals<P = never> {
  /** npm package whose version is reported, e.g. `pg-pool`. */
  readonly library: string;
  /** The version range these shapes were checked against, e.g. `>=3.1.0 <4`. */
  readonly checked: string;
  /** What the adapter offers when every shape is present. */
  readonly offers: readonly Capability[];
  readonly shapes: readonly Shape<P>[];
  /** Objects the library made, beside the pool, that tell which copy of it made the pool (knex's client, mysql2's core pool). */
  readonly related?: (pool: P) => readonly unknown[];
}

/** One capability lost to a missing shape. */
export interface Lost {
  readonly capability: Capability;
  readonly shape: string;
  /**
   * What lacks the shape, when it is not the pool's library itself: the connection class the
   * pool was given (e.g. `the Client class FakeClient`, `pg's native Client (pg-native)`).
   */
  readonly lackedBy?: string;
}

/** What poolwatch can see of one watched pool: in `stats()` as `capabilities`. */
export interface CapabilityManifest {
  /** The library recognised, e.g. `pg-pool`; `custom` for the `adapter` option. */
  readonly library: string;
  /** Its version as installed, when it can be found. */
  readonly version: string | undefined;
  /** The versions its internals were checked against. */
  readonly checked: string | undefined;
  /** Each capability: whether poolwatch has it for this pool. */
  readonly can: { readonly [C in Capability]: boolean };
  /** Capabilities the adapter offers but lost to a missing shape. Empty when none. */
  readonly degraded: readonly Lost[];
}

const versions = new Map<string, string | undefined>();

// The constructors along `value`'s prototype chain, and its own constructor when it is one.
function constructorsOf(value: unknown, into: Set<unknown>): void {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return;
  for (let o: object | null = value; o !== null && o !== Object.prototype && o !== Function.prototype; o = Object.getPrototypeOf(o)) {
    const ctor = Object.getOwnPropertyDescriptor(o, 'constructor')?.value as unknown;
    if (typeof ctor === 'function') into.add(ctor);
  }
}

// Whether a loaded module of the package exports one of `classes`, itself or as a property.
function exportsOneOf(exported: unknown, classes: Set<unknown>): boolean {
  if (classes.has(exported)) return true;
  if ((typeof exported !== 'object' && typeof exported !== 'function') || exported === null) return false;
  for (const key of Object.keys(exported)) {
    try {
      if (classes.has((exported as Record<string, unknown>)[key])) return true;
    } catch {
      // A getter that throws exports nothing we look for.
    }
  }
  return false;
}

/**
 * The installed version of `library`, as the copy `pool` (or `related` objects, such as
 * knex's client) was made by: an app may load two copies (its own and an ORM's). Read from
 * CommonJS's module cache, which ES imports of these CommonJS libraries fill too; failing
 * that, the copy resolved from the current directory. Each package.json is read once.
 */
export function installedVersion(library: string, pool?: unknown, ...related: unknown[]): string | undefined {
  const marker = markerOf(library);
  const require = createRequire(join(process.cwd(), 'noop.js'));
  const byRoot = loadedCopies(require, marker);
  let root: string | undefined;
  if (byRoot.size === 1) root = byRoot.keys().next().value;
  else if (byRoot.size > 1) {
    const classes = new Set<unknown>();
    for (const value of [pool, ...related]) constructorsOf(value, classes);
    root = copyExporting(require, byRoot, classes);
  }
  // None loaded yet, or two and neither exports the pool's class (mariadb 3.5's bundle
  // exports none): the app's own copy, as resolved from the current directory.
  if (root === undefined && byRoot.size !== 1) {
    try {
      // Not `${library}/package.json`: a package's exports may not list it (mariadb's do not).
      const main = require.resolve(library);
      const at = main.lastIndexOf(marker);
      if (at === -1) return undefined;
      root = main.slice(0, at + marker.length - 1);
    } catch {
      return undefined;
    }
  }
  return root === undefined ? undefined : versionAt(root);
}

function markerOf(library: string): string {
  return `${sep}node_modules${sep}${library.split('/').join(sep)}${sep}`;
}

// The loaded files of `library` (as `marker` names its folder), by the copy they belong to.
function loadedCopies(require: NodeJS.Require, marker: string): Map<string, string[]> {
  const byRoot = new Map<string, string[]>();
  for (const file of Object.keys(require.cache)) {
    const at = file.lastIndexOf(marker);
    if (at === -1) continue;
    const root = file.slice(0, at + marker.length - 1);
    const files = byRoot.get(root);
    if (files === undefined) byRoot.set(root, [file]);
    else files.push(file);
  }
  return byRoot;
}

// The copy one of whose loaded modules exports one of `classes`.
function copyExporting(require: NodeJS.Require, byRoot: Map<string, string[]>, classes: Set<unknown>): string | undefined {
  for (const [candidate, files] of byRoot) {
    if (files.some((file) => exportsOneOf(require.cache[file]?.exports, classes))) return candidate;
  }
  return undefined;
}

/**
 * Names the class of `value` (a connection) for a warning: `<library> <version>'s <noun>`
 * when a loaded copy of `library` exports it, else `the <noun> class <name>` (and the
 * library's class it extends, when it extends one). Rare: only when a shape is missing.
 */
export function nameClass(value: unknown, library: string, noun: string): string {
  const own = (typeof value === 'object' || typeof value === 'function') && value !== null ? (Object.getPrototypeOf(value) as { constructor?: unknown } | null)?.constructor : undefined;
  const name = typeof own === 'function' && own.name !== '' ? own.name : undefined;
  const require = createRequire(join(process.cwd(), 'noop.js'));
  const byRoot = loadedCopies(require, markerOf(library));
  const theirs = (classes: Set<unknown>) => {
    const root = copyExporting(require, byRoot, classes);
    return root === undefined ? undefined : `${library} ${versionAt(root) ?? '(unknown version)'}'s ${noun}`;
  };
  const exact = typeof own === 'function' ? theirs(new Set([own])) : undefined;
  if (exact !== undefined) return exact;
  const ancestors = new Set<unknown>();
  constructorsOf(value, ancestors);
  if (typeof own === 'function') ancestors.delete(own);
  const base = ancestors.size === 0 ? undefined : theirs(ancestors);
  const what = name === undefined ? `an unnamed ${noun} class` : `the ${noun} class ${name}`;
  return base === undefined ? what : `${what} (extending ${base})`;
}

function versionAt(root: string): string | undefined {
  if (versions.has(root)) return versions.get(root);
  let version: string | undefined;
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const v = (parsed as { version?: unknown } | null)?.version;
    version = typeof v === 'string' ? v : undefined;
  } catch {
    version = undefined;
  }
  versions.set(root, version);
  return version;
}

function check<P>(shape: Shape<P>, pool: P): boolean {
  try {
    return shape.present(pool) === true;
  } catch {
    return false;
  }
}

/** Checks `shapes` on `target`; what is missing takes its capabilities away from `can`. */
export function probeShapes<P>(shapes: readonly Shape<P>[], target: P, can: Record<Capability, boolean>): Lost[] {
  const lost: Lost[] = [];
  for (const shape of shapes) {
    if (check(shape, target)) continue;
    for (const capability of shape.serves) {
      if (!can[capability]) continue;
      can[capability] = false;
      lost.push({ capability, shape: shape.name });
    }
  }
  return lost;
}

/** The manifest of a pool watched through `internals`. */
export function probe<P>(internals: Internals<P>, pool: P): CapabilityManifest {
  const can = Object.fromEntries(capabilityNames.map((name) => [name, internals.offers.includes(name)])) as Record<Capability, boolean>;
  const degraded = probeShapes(internals.shapes, pool, can);
  const related = (internals.related?.(pool) ?? []) as unknown[];
  return manifest(internals.library, installedVersion(internals.library, pool, ...related), internals.checked, can, degraded);
}

export function manifest(library: string, version: string | undefined, checked: string | undefined, can: Record<Capability, boolean>, degraded: readonly Lost[]): CapabilityManifest {
  return Object.freeze({ library, version, checked, can: Object.freeze({ ...can }), degraded: Object.freeze(degraded.map((lost) => Object.freeze({ ...lost }))) });
}

/** What each capability's loss means for the user, for the warning. */
const consequences: Record<Capability, string> = {
  misuse: 'releases of connections the pool never leased are not reported (double releases still are)',
  capacity: "the pool's size is unknown (exhaustion reports give no 'of N')",
  idle: "stats() cannot say how many connections are idle",
  acquireTimeout: "waits are judged against 5 s instead of the pool's own timeout",
  exhaustion: "the pool's timeout errors do not name the holders",
  destroys: 'a connection the pool discards (destroyed, or killed by the server) keeps its lease open until the threshold reports it',
  handover: "the handover is seen at the app's promise (one more promise per acquire; waits include a microtask)",
  activity: 'what a held connection is doing is not shown, so a slow query cannot be told from a leak',
  reclaim: "reclaimAfterMs cannot take its connections back, and a lease() handle's destroy() gives its connection back instead of discarding it",
};

const warned = new Set<string>();

/**
 * Warns once per library, version, culprit and lost capability (code `POOLWATCH_DEGRADED`):
 * the library (or the connection class it was given, `lackedBy`) is not the shape this
 * adapter was checked against, and poolwatch tracks what it still can rather than miscount.
 */
export function warnDegraded(pool: string, m: CapabilityManifest, lost: readonly Lost[] = m.degraded): void {
  const key = (l: Lost) => `${m.library}@${m.version}:${l.lackedBy ?? ''}:${l.capability}`;
  const fresh = lost.filter((l) => !warned.has(key(l)));
  if (fresh.length === 0) return;
  for (const l of fresh) warned.add(key(l));
  const version = m.version === undefined ? 'an unknown version' : m.version;
  const checked = m.checked === undefined ? '' : `, checked against ${m.checked}`;
  const by = new Map<string | undefined, Lost[]>();
  for (const l of fresh) by.set(l.lackedBy, [...(by.get(l.lackedBy) ?? []), l]);
  for (const [lackedBy, some] of by) {
    const what = some.map((l) => `${l.capability} (no ${l.shape}: ${consequences[l.capability]})`).join('; ');
    // The pool's library is not at fault when the connections it was given are.
    const who = lackedBy === undefined ? `is ${m.library} ${version}${checked}, which lacks` : `(${m.library} ${version}) makes its connections with ${lackedBy}, which lacks`;
    warn(`poolwatch: pool "${pool}" ${who} what poolwatch reads for: ${what}. Leases are still tracked.`, 'POOLWATCH_DEGRADED');
  }
}
