import type { Verdict } from './exhaustion.js';

/** What a chart marks on a pool's timeline. */
export type MarkKind = 'leak' | 'timeout' | 'reclaimed' | 'slow';

/** One sample of a pool: epoch ms, and how many connections were leased, idle (when the pool says) and waited for. */
export interface Sample {
  readonly at: number;
  readonly leased: number;
  readonly idle: number | undefined;
  readonly waiting: number;
}

/** Something that happened to a pool, at epoch ms `at`. */
export interface Mark {
  readonly at: number;
  readonly kind: MarkKind;
  readonly text: string;
  readonly verdict?: Verdict;
}

/** Seconds between samples, and how many are kept: the last hour. */
export const sampleIntervalMs = 1_000;
const sampleCapacity = 3_600;
const markCapacity = 500;

/**
 * A pool's last hour, for the HTML report: one sample a second in fixed typed arrays used
 * in turn (no allocation per sample), and the last marks.
 */
export class Timeline {
  readonly #at = new Float64Array(sampleCapacity);
  readonly #leased = new Int32Array(sampleCapacity);
  // -1: the pool did not say.
  readonly #idle = new Int32Array(sampleCapacity);
  readonly #waiting = new Int32Array(sampleCapacity);
  #next = 0;
  #count = 0;
  readonly #marks: Mark[] = [];

  record(at: number, leased: number, idle: number | undefined, waiting: number): void {
    const i = this.#next;
    this.#at[i] = at;
    this.#leased[i] = leased;
    this.#idle[i] = idle ?? -1;
    this.#waiting[i] = waiting;
    this.#next = (i + 1) % sampleCapacity;
    if (this.#count < sampleCapacity) this.#count++;
  }

  mark(mark: Mark): void {
    if (this.#marks.length === markCapacity) this.#marks.shift();
    this.#marks.push(mark);
  }

  /** The samples kept, oldest first. */
  samples(): Sample[] {
    const out: Sample[] = [];
    const start = (this.#next - this.#count + sampleCapacity) % sampleCapacity;
    for (let k = 0; k < this.#count; k++) {
      const i = (start + k) % sampleCapacity;
      const idle = this.#idle[i]!;
      out.push({ at: this.#at[i]!, leased: this.#leased[i]!, idle: idle < 0 ? undefined : idle, waiting: this.#waiting[i]! });
    }
    return out;
  }

  marks(): Mark[] {
    return [...this.#marks];
  }
}
