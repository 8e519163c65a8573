/** Count, mean, min and max of a series of durations, in ms. */
export interface SummaryInfo {
  readonly count: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/** Accumulates durations in O(1) time and space. */
export class Summary {
  count = 0;
  total = 0;
  min = Infinity;
  max = 0;

  add(ms: number): void {
    this.count++;
    this.total += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  toJSON(): SummaryInfo {
    const { count } = this;
    const round = (ms: number) => Math.round(ms * 1000) / 1000;
    return {
      count,
      meanMs: count === 0 ? 0 : round(this.total / count),
      minMs: count === 0 ? 0 : round(this.min),
      maxMs: round(this.max),
    };
  }
}
