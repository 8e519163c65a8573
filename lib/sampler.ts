import type { StackPolicy } from './options.js';

// What `'auto'` may spend capturing stacks: a share of the time connections are held.
const budgetShare = 0.01;
// Capture time granted up front, so a young process's first leases have stacks.
const startingCreditMs = 5;
// After a leak, how long every new lease is captured, so the next leak from that code has its stack.
const alertMs = 60_000;

/** Decides, per acquire, whether to capture the stack under a stack policy. */
export class Sampler {
  #credit = startingCreditMs;
  #alertUntil = -Infinity;

  constructor(readonly policy: StackPolicy) {}

  /** Whether to capture the stack of an acquire made at monotonic time `at`. */
  wants(at: number): boolean {
    if (this.policy === 'auto') return this.#credit > 0 || at < this.#alertUntil;
    return this.policy === 'always';
  }

  /** A capture took `ms`. */
  spent(ms: number): void {
    this.#credit -= ms;
  }

  /** A connection came back after `ms`: earns a share of it as capture time. */
  held(ms: number): void {
    // Capped so a long quiet spell does not buy an unbounded burst of captures.
    if (this.#credit < startingCreditMs) this.#credit += ms * budgetShare;
  }

  /** A leak or misuse appeared at `at`: capture every lease for a while. */
  alert(at: number): void {
    this.#alertUntil = at + alertMs;
  }
}
