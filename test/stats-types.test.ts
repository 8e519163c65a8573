/**
 * stats() is keyed by pool name: `stats().main` and `stats()['main']` are a pool's figures,
 * and a position (`stats()[0]`, as if it were a list like sizing()) is a type error where
 * it is used. Checked by the compiler (npm test runs tsc on the tests first): a wrong type
 * fails the build, not a run.
 */
import t from 'tap';
import { createDetector, type PoolStats } from '../lib/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(check: Equal<A, B>): Equal<A, B> => check;

const detector = createDetector();
type Stats = ReturnType<typeof detector.stats>;

// By name, as before.
same<Stats['main'], PoolStats>(true);
same<ReturnType<typeof Object.values<Stats[string]>>, PoolStats[]>(true);
function byName(stats: Stats, name: string): number | undefined {
  const values: PoolStats[] = Object.values(stats);
  const entries: [string, PoolStats][] = Object.entries(stats);
  return (stats.main?.open ?? 0) + (stats['main']?.open ?? 0) + (stats[name]?.open ?? 0) + values.length + entries.length;
}

// By position: nothing there.
same<Stats[0], never>(true);
function byPosition(stats: Stats): unknown {
  // @ts-expect-error stats() is keyed by pool name, not by position
  return stats[0]!.open;
}

t.test('stats() is keyed by pool name; a position is a type error (checked at compile time)', async (t) => {
  t.type(byName, 'function');
  t.type(byPosition, 'function');
  t.same(detector.stats(), {});
  detector.close();
});
