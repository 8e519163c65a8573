/** Process warnings a test expects, collected instead of printed. */
import type { Test } from 'tap';

/**
 * Collects the process warnings emitted during `t` instead of letting Node print them:
 * Node's own 'warning' listener writes each one to stderr whatever other listeners do,
 * so it is taken off until teardown. Warnings arrive on the next tick: let them come
 * before the test ends, and assert on all of them (an unexpected one is swallowed here).
 */
export function captureWarnings(t: Test): Error[] {
  const warnings: Error[] = [];
  const printers = process.listeners('warning');
  for (const printer of printers) process.off('warning', printer);
  const collect = (warning: Error) => void warnings.push(warning);
  process.on('warning', collect);
  t.teardown(() => {
    process.off('warning', collect);
    for (const printer of printers) process.on('warning', printer);
  });
  return warnings;
}
