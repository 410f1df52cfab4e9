/**
 * A small log-bucketed latency histogram (about 1% relative precision, 1 µs to hours) that
 * load workers fill and send to the orchestrator as JSON, where the histograms of all
 * workers are merged before percentiles are read. Bounded memory whatever the call count.
 */

/** Bucket i holds values in (GROWTH^(i-1), GROWTH^i] microseconds; bucket 0 holds ≤ 1 µs. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);

/** [bucket index, count] pairs, the wire form. */
export type HistogramData = Array<[number, number]>;

export class Histogram {
  private readonly buckets = new Map<number, number>();
  count = 0;
  sumUs = 0;
  minUs = Number.POSITIVE_INFINITY;
  maxUs = 0;

  record(us: number): void {
    const index = us <= 1 ? 0 : Math.ceil(Math.log(us) / LOG_GROWTH);
    this.buckets.set(index, (this.buckets.get(index) ?? 0) + 1);
    this.count++;
    this.sumUs += us;
    if (us < this.minUs) this.minUs = us;
    if (us > this.maxUs) this.maxUs = us;
  }

  merge(other: { data: HistogramData; count: number; sumUs: number; minUs: number; maxUs: number }): void {
    for (const [index, n] of other.data) this.buckets.set(index, (this.buckets.get(index) ?? 0) + n);
    this.count += other.count;
    this.sumUs += other.sumUs;
    this.minUs = Math.min(this.minUs, other.minUs);
    this.maxUs = Math.max(this.maxUs, other.maxUs);
  }

  data(): HistogramData {
    return [...this.buckets.entries()];
  }

  /** The q-quantile (0 < q ≤ 1) in µs: the geometric middle of the bucket that holds it. */
  quantileUs(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (const index of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(index)!;
      if (seen >= rank) {
        if (index === 0) return 1;
        const mid = Math.pow(GROWTH, index - 0.5);
        return Math.min(Math.max(mid, this.minUs), this.maxUs);
      }
    }
    return this.maxUs;
  }

  meanUs(): number {
    return this.count === 0 ? Number.NaN : this.sumUs / this.count;
  }
}
