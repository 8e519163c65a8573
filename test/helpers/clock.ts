import sinon from 'sinon';
import type { Test } from 'tap';

/**
 * Installs sinon fake timers for one test, restored at its teardown. Only timers and
 * clocks are faked: promises and I/O run as usual.
 */
export function fakeClock(t: Test): sinon.SinonFakeTimers {
  const clock = sinon.useFakeTimers({
    now: Date.UTC(2026, 0, 1),
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
  });
  t.teardown(() => clock.restore());
  return clock;
}
