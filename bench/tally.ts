/**
 * What load workers count and hand to their benchmark: latencies in a small log-bucketed
 * histogram (about 1% relative precision, 1 µs to hours, bounded memory whatever the call
 * count; merged across workers before percentiles are read) and errors by kind with a few samples.
 */

/** Bucket i holds values in (GROWTH^(i-1), GROWTH^i] microseconds; bucket 0 holds ≤ 1 µs. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);

/** The wire form: [bucket index, count] pairs and the totals. */
export interface HistogramWire {
  data: Array<[number, number]>;
  count: number;
  sumUs: number;
  minUs: number;
  maxUs: number;
}

export class Histogram {
  private readonly buckets = new Map<number, number>();
  count = 0;
  sumUs = 0;
  minUs = Number.POSITIVE_INFINITY;
  maxUs = 0;

  /** One histogram holding all of `wires`. */
  static of(wires: HistogramWire[]): Histogram {
    const h = new Histogram();
    for (const w of wires) h.merge(w);
    return h;
  }

  record(us: number): void {
    const index = us <= 1 ? 0 : Math.ceil(Math.log(us) / LOG_GROWTH);
    this.buckets.set(index, (this.buckets.get(index) ?? 0) + 1);
    this.count++;
    this.sumUs += us;
    if (us < this.minUs) this.minUs = us;
    if (us > this.maxUs) this.maxUs = us;
  }

  merge(other: HistogramWire): void {
    for (const [index, n] of other.data) this.buckets.set(index, (this.buckets.get(index) ?? 0) + n);
    this.count += other.count;
    this.sumUs += other.sumUs;
    this.minUs = Math.min(this.minUs, other.minUs);
    this.maxUs = Math.max(this.maxUs, other.maxUs);
  }

  wire(): HistogramWire {
    return { data: [...this.buckets.entries()], count: this.count, sumUs: this.sumUs, minUs: this.minUs, maxUs: this.maxUs };
  }

  /** The q-quantile (0 < q ≤ 1) in µs: the geometric middle of the bucket that holds it. */
  quantileUs(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (const index of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(index)!;
      if (seen >= rank) return index === 0 ? 1 : Math.min(Math.max(Math.pow(GROWTH, index - 0.5), this.minUs), this.maxUs);
    }
    return this.maxUs;
  }

  /** The q-quantile in ms (NaN when empty). */
  ms(q: number): number {
    return this.quantileUs(q) / 1000;
  }

  meanUs(): number {
    return this.count === 0 ? Number.NaN : this.sumUs / this.count;
  }
}

/** Errors by kind (a gRPC status name, "VERIFY", "STUCK"…), with the first few as samples. */
export class Errors {
  counts: Record<string, number> = {};
  samples: string[] = [];
  total = 0;

  add(kind: string, detail: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    this.total++;
    if (this.samples.length < 5) this.samples.push(`${kind}: ${detail}`);
  }

  /** Every worker's errors together (their wire form is the same fields). */
  static of(all: Array<{ counts: Record<string, number>; samples: string[] }>): Errors {
    const e = new Errors();
    for (const x of all) {
      for (const [k, n] of Object.entries(x.counts)) {
        e.counts[k] = (e.counts[k] ?? 0) + n;
        e.total += n;
      }
      e.samples.push(...x.samples);
    }
    return e;
  }

  /** Throw naming `what` if any error was counted. */
  check(what: string): void {
    if (this.total > 0) throw new Error(`${what}: ${this.total} failed call(s) ${JSON.stringify(this.counts)}\n  ${this.samples.slice(0, 10).join("\n  ")}`);
  }

  /** The wire form. */
  wire(): { counts: Record<string, number>; samples: string[] } {
    return { counts: this.counts, samples: this.samples };
  }
}
