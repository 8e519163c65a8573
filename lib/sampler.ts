import type { StackPolicy } from './options.js';

// Under `'auto'` every acquire records its call site with a short capture; full-depth
// stacks (and the parsing that teaches a pool how deep its call sites sit) are the extra
// this budget pays for. Half a percent of the time connections are held, and the same
// share of the process's time, because the clock sees only the capture itself: what the
// captured frames cost the garbage collector later comes on top.
const budgetShare = 0.005;
// Capture time granted up front (and the most either budget saves up), so a young
// process's first leases have full stacks, while a burst after a quiet spell spends at
// most this much at full rate.
const startingCreditMs = 1;

/**
 * The process's time budget for full captures, shared by every pool. The hold-time
 * budget alone is not enough: ten connections held at once earn ten times the credit of
 * one, and a busy pool would then spend far more than its share capturing.
 */
const processBudget = { credit: startingCreditMs, lastAt: Number.NaN };

function processCredit(at: number): number {
  const elapsed = at - processBudget.lastAt;
  processBudget.lastAt = at;
  // NaN on the first call, negative when a test's fake clock is set back: nothing earned.
  if (elapsed > 0) processBudget.credit = Math.min(startingCreditMs, processBudget.credit + elapsed * budgetShare);
  return processBudget.credit;
}

/** Decides, per acquire, whether to capture the full stack under a stack policy. */
export class Sampler {
  #credit = startingCreditMs;

  constructor(readonly policy: StackPolicy) {}

  /** Whether to capture the full stack of an acquire made at monotonic time `at`. */
  wants(at: number): boolean {
    if (this.policy === 'auto') return this.#credit > 0 && processCredit(at) > 0;
    return this.policy === 'always';
  }

  /** A full capture (and what was learnt from it) took `ms`. */
  spent(ms: number): void {
    this.#credit -= ms;
    processBudget.credit -= ms;
  }

  /** A connection came back after `ms`: earns a share of it as capture time. */
  held(ms: number): void {
    if (this.#credit < startingCreditMs) this.#credit += ms * budgetShare;
  }

  /**
   * A leak or misuse appeared: the next leases get full stacks, up to the starting
   * credit's worth. Pool pressure never calls this: a full pool must not pay for stacks
   * exactly when it is busiest, and its holders have their call sites anyway.
   */
  alert(): void {
    if (this.policy !== 'auto') return;
    this.#credit = Math.max(this.#credit, startingCreditMs);
    processBudget.credit = Math.max(processBudget.credit, startingCreditMs);
  }
}
