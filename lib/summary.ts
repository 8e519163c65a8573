/** Count, mean, extremes and percentiles of a series of durations, in ms. */
export interface SummaryInfo {
  readonly count: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** Percentiles, from a histogram of about 19% resolution. */
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
}

// Four buckets per power of two of microseconds, from 1 µs to about 35 minutes.
const subBuckets = 4;
const bucketCount = 32 * subBuckets;
const maxMicros = 0x7fffffff;

function bucketOf(ms: number): number {
  const us = ms >= maxMicros / 1000 ? maxMicros : (ms * 1000) | 0;
  if (us < subBuckets) return us < 0 ? 0 : us;
  const msb = 31 - Math.clz32(us);
  return msb * subBuckets + ((us >>> (msb - 2)) & (subBuckets - 1));
}

const lastBucket = bucketOf(Infinity);

// The upper edge of a bucket, in ms: a percentile is reported as that edge.
function bucketTop(index: number): number {
  if (index < subBuckets) return (index + 1) / 1000;
  const msb = Math.floor(index / subBuckets);
  const sub = index % subBuckets;
  return ((subBuckets + sub + 1) * 2 ** (msb - 2)) / 1000;
}

/** Accumulates durations in O(1) time and fixed space, with no allocation per value. */
export class Summary {
  count = 0;
  total = 0;
  min = Infinity;
  max = 0;
  readonly #buckets = new Float64Array(bucketCount);

  /** Forgets every value: for a window's slot being reused. */
  clear(): void {
    this.count = 0;
    this.total = 0;
    this.min = Infinity;
    this.max = 0;
    this.#buckets.fill(0);
  }

  /** Adds every value of `other`, as if each had been added here. */
  absorb(other: Summary): void {
    if (other.count === 0) return;
    this.count += other.count;
    this.total += other.total;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    for (let i = 0; i < bucketCount; i++) this.#buckets[i]! += other.#buckets[i]!;
  }

  add(ms: number): void {
    this.count++;
    this.total += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
    this.#buckets[bucketOf(ms)]!++;
  }

  #percentile(share: number): number {
    const rank = Math.ceil(this.count * share);
    let seen = 0;
    for (let i = 0; i < bucketCount; i++) {
      seen += this.#buckets[i]!;
      // The last bucket also holds everything past its range: only the maximum bounds it.
      if (seen >= rank) return i === lastBucket ? this.max : Math.min(bucketTop(i), this.max);
    }
    return this.max;
  }

  toJSON(): SummaryInfo {
    const { count } = this;
    const round = (ms: number) => Math.round(ms * 1000) / 1000;
    if (count === 0) return { count, meanMs: 0, minMs: 0, maxMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0 };
    return {
      count,
      meanMs: round(this.total / count),
      minMs: round(this.min),
      maxMs: round(this.max),
      p50Ms: round(this.#percentile(0.5)),
      p90Ms: round(this.#percentile(0.9)),
      p99Ms: round(this.#percentile(0.99)),
    };
  }
}
