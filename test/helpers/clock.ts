import sinon from 'sinon';
import type { Test } from 'tap';

/**
 * Installs sinon fake timers for one test, restored at its teardown. Only timers and
 * clocks are faked: promises and I/O run as usual. A real timer set before (a driver's
 * connect timeout, a detector's sweep) and cleared meanwhile is really cleared, not left
 * to fire later with a warning on stderr.
 */
export function fakeClock(t: Test): sinon.SinonFakeTimers {
  const clock = sinon.useFakeTimers({
    now: Date.UTC(2026, 0, 1),
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
    shouldClearNativeTimers: true,
  });
  t.teardown(() => clock.restore());
  return clock;
}
