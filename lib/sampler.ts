import type { StackPolicy } from './options.js';

// What `'auto'` may spend capturing stacks: a share of the time connections are held, and
// the same share of the process's time. Half a percent, because the clock sees only the
// capture itself: what the captured frames cost the garbage collector later comes on top
// (on the pg benchmark a capture timed at ~3 µs costs ~2-3 times that in throughput).
const budgetShare = 0.005;
// Capture time granted up front (and the most either budget saves up), so a young
// process's first leases have stacks, while a burst after a quiet spell spends at most
// this much at full rate (~300 captures).
const startingCreditMs = 1;
// After a leak, how long every new lease is captured, so the next leak from that code has its stack.
const alertMs = 60_000;

/**
 * The process's time budget for captures, shared by every pool. The hold-time budget
 * alone is not enough: ten connections held at once earn ten times the credit of one,
 * and a busy pool would then spend far more than 1% of the time capturing.
 */
const processBudget = { credit: startingCreditMs, lastAt: Number.NaN };

function processCredit(at: number): number {
  const elapsed = at - processBudget.lastAt;
  processBudget.lastAt = at;
  // NaN on the first call, negative when a test's fake clock is set back: nothing earned.
  if (elapsed > 0) processBudget.credit = Math.min(startingCreditMs, processBudget.credit + elapsed * budgetShare);
  return processBudget.credit;
}

/** Decides, per acquire, whether to capture the stack under a stack policy. */
export class Sampler {
  #credit = startingCreditMs;
  #alertUntil = -Infinity;

  constructor(readonly policy: StackPolicy) {}

  /** Whether to capture the stack of an acquire made at monotonic time `at`. */
  wants(at: number): boolean {
    if (this.policy === 'auto') return at < this.#alertUntil || (this.#credit > 0 && processCredit(at) > 0);
    return this.policy === 'always';
  }

  /** A capture made at `at` took `ms`. */
  spent(at: number, ms: number): void {
    // Captures during an alert are what the alert is for: they do not silence sampling after it.
    if (at < this.#alertUntil) return;
    this.#credit -= ms;
    processBudget.credit -= ms;
  }

  /** A connection came back after `ms`: earns a share of it as capture time. */
  held(ms: number): void {
    if (this.#credit < startingCreditMs) this.#credit += ms * budgetShare;
  }

  /** A leak or misuse appeared at `at`: capture every lease for a while. */
  alert(at: number): void {
    this.#alertUntil = at + alertMs;
  }
}
