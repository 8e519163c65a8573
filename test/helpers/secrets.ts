/** What the no-secrets tests read: every debug line and every event poolwatch emits. */
import createDebug from 'debug';
import type { Test } from 'tap';
import type { Detector } from '../../lib/index.js';

/** Turns on `DEBUG=poolwatch*` for this test and collects its lines; restored at teardown. */
export function captureDebug(t: Test): string[] {
  const lines: string[] = [];
  const previous = createDebug.disable();
  const log = createDebug.log;
  createDebug.enable('poolwatch*');
  createDebug.log = (...args: unknown[]) => lines.push(args.map(String).join(' '));
  t.teardown(() => {
    createDebug.log = log;
    createDebug.disable();
    if (previous) createDebug.enable(previous);
  });
  return lines;
}

/** Collects the payload of every event the detector emits. */
export function recordEvents(detector: Detector): unknown[] {
  const seen: unknown[] = [];
  for (const event of ['acquire', 'release', 'destroy', 'leak', 'leak-released', 'misuse'] as const) {
    detector.on(event, (payload: unknown) => seen.push(payload));
  }
  return seen;
}
