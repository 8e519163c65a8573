import * as detectorModule from '../detector.js';
import type { Detector } from '../detector.js';
import { adapterFor } from '../adapters/index.js';
import type { FoundPool } from './discover.js';
import { groupHolders } from '../exhaustion.js';
import type { HeldBefore, PoolHolders } from './holders.js';
import { heldNow, stillHeld, waitingNow, whyNoAge, type HeldEntry } from './pool-records.js';

/**
 * Who holds what in the target, as an attach reports it: the pools the attach watches (with
 * the leases from before it), the pools the app's own poolwatch watches (any copy of it),
 * and, for `status`, the pools nothing watches.
 */

/** A pool the attach watches. */
export interface AttachedPool {
  readonly name: string;
  readonly kind: string;
  /** Its leases from before the attach, as the pool recorded them then. */
  readonly before: readonly HeldEntry[];
}

type DetectorModule = typeof detectorModule;

/** Every copy of poolwatch loaded in the target: the app's own, and this one. */
function copies(): DetectorModule[] {
  const found = new Set<DetectorModule>([detectorModule]);
  for (const module of Object.values(require.cache)) {
    const exports = module?.exports as Partial<DetectorModule> | undefined;
    if (typeof exports?.watchingDetectors === 'function' && typeof exports.detectorOf === 'function' && typeof exports.configureDefaultDetector === 'function') {
      found.add(exports as DetectorModule);
    }
  }
  return [...found];
}

/** Whether a detector other than `ours`, of any copy of poolwatch, watches `pool`. */
export function appWatches(pool: object, ours: Detector): boolean {
  return copies().some((copy) => {
    const owner = copy.detectorOf(pool);
    return owner !== undefined && owner !== ours;
  });
}

/** The pool's maximum size, when it says. */
export function capacityOf(pool: object): number | undefined {
  try {
    const capacity = adapterFor(pool, undefined).capacity?.(pool);
    return typeof capacity === 'number' ? capacity : undefined;
  } catch {
    return undefined;
  }
}

export function heldBefore(kind: string, entries: readonly HeldEntry[], at: number): HeldBefore {
  const heldMs = entries.flatMap((entry) => (entry.since === undefined ? [] : [Math.max(0, Math.round(at - entry.since))])).sort((a, b) => b - a);
  return { count: entries.length, heldMs, noAge: heldMs.length < entries.length ? whyNoAge(kind) : undefined };
}

/** The attach's pools: poolwatch's leases by call site, and those from before the attach still held. */
export function attachedHolders(detector: Detector, pools: ReadonlyMap<object, AttachedPool>, at: number): PoolHolders[] {
  const snapshot = detector.snapshot();
  return [...pools].map(([pool, attached]) => {
    const view = snapshot.pools[attached.name];
    const leases = view?.leases ?? [];
    const leased = heldNow(attached.kind, pool)?.length;
    const same = stillHeld(attached.kind, pool, attached.before);
    const known = heldBefore(
      attached.kind,
      attached.before.filter((_, i) => same[i] === true),
      at,
    );
    // A pool that cannot tell one lease from the next (mysql2, mariadb): at most what it holds beyond the leases poolwatch knows.
    const unsure = same.filter((s) => s === undefined).length;
    const extra = Math.min(unsure, leased === undefined ? 0 : Math.max(0, leased - leases.length - known.count));
    return {
      pool: attached.name,
      kind: attached.kind,
      watchedBy: 'attach',
      capacity: view?.stats.capacity,
      leased: leased ?? view?.stats.open,
      waiting: waitingNow(attached.kind, pool) ?? view?.stats.waiting,
      groups: groupHolders(leases),
      before: { count: known.count + extra, heldMs: known.heldMs, noAge: extra > 0 ? whyNoAge(attached.kind) : known.noAge },
    };
  });
}

/** The pools the app's own detectors watch, by their names there. */
export function appHolders(ours: Detector): PoolHolders[] {
  const out: PoolHolders[] = [];
  const seen = new Set<Detector>([ours]);
  for (const copy of copies()) {
    for (const detector of copy.watchingDetectors()) {
      if (seen.has(detector)) continue;
      seen.add(detector);
      try {
        for (const [pool, view] of Object.entries(detector.snapshot().pools)) {
          out.push({
            pool,
            kind: view.stats.capabilities?.library ?? 'pool',
            watchedBy: 'app',
            capacity: view.stats.capacity,
            leased: view.stats.open,
            waiting: view.stats.waiting,
            groups: groupHolders(view.leases),
            before: { count: 0, heldMs: [], noAge: undefined },
          });
        }
      } catch {
        // Another version's detector that does not answer as this one expects: left out.
      }
    }
  }
  return out;
}

/** Pools nothing watches (`status`): what the pool itself says it has leased. */
export function unwatchedHolders(pools: ReadonlyArray<FoundPool & { readonly name: string }>, at: number): PoolHolders[] {
  return pools.map(({ pool, kind, name }) => {
    const entries = heldNow(kind, pool);
    return {
      pool: name,
      kind,
      watchedBy: 'none',
      capacity: capacityOf(pool),
      leased: entries?.length,
      waiting: waitingNow(kind, pool),
      groups: [],
      before: entries === undefined ? { count: 0, heldMs: [], noAge: whyNoAge(kind) } : heldBefore(kind, entries, at),
    };
  });
}
