/**
 * The metrics every call touches, kept as plain numbers between scrapes.
 *
 * prom-client's `inc(labels)` and `observe(labels, v)` check and hash the label object on every
 * call (a histogram's observe also builds a closure): ~1.5 µs and ~3 µs, together about 4 % of
 * a RenewLease's CPU at 64 calls in flight, where the server's one thread is the limit, and a
 * counter's inc for every Heartbeat renewal and every Watch event sent. Here a call adds one to
 * a number found by its label values; prom-client's counter takes the sums when it is read
 * (its `collect()`, run on every scrape and `get()`), and the call latency histogram answers its
 * own values in prom-client's format. What a scrape shows is the same as before.
 */
import { Counter, type CounterConfiguration, Histogram, type LabelValues, type MetricObjectWithValues, type MetricType, type MetricValueWithName, type Registry } from "prom-client";

/** One label set's count since the counter was last read. */
interface Tally<L extends string> {
  readonly labels: LabelValues<L>;
  n: number;
}

/**
 * A prom-client counter whose increments are counted in `add` (by one or two label values, in
 * the order of `labelNames`) and added to the counter when it is read.
 */
export class TalliedCounter<L extends string> extends Counter<L> {
  /** By the first label value, then the second ("" when there is one label). */
  private readonly tallies = new Map<string, Map<string, Tally<L>>>();
  private readonly names: readonly [L] | readonly [L, L];

  constructor(config: CounterConfiguration<L> & { labelNames: readonly [L] | readonly [L, L] }) {
    super({
      ...config,
      collect(this: Counter<L>) {
        // `this` is the counter (prom-client calls collect on it).
        (this as TalliedCounter<L>).flush();
      },
    });
    this.names = config.labelNames;
  }

  /** prom-client's reset, and the counts not yet read with it. */
  override reset(): void {
    // prom-client's constructor calls reset() before this class's fields exist.
    this.tallies?.clear();
    super.reset();
  }

  override remove(): never {
    throw new TypeError("a tallied counter's series are not removed one by one");
  }

  /** Count one for the label values `a` (and `b`), in the order of labelNames. */
  add(a: string, b = ""): void {
    let byB = this.tallies.get(a);
    if (!byB) this.tallies.set(a, (byB = new Map()));
    const t = byB.get(b);
    if (t) t.n++;
    else byB.set(b, { labels: this.labelsOf(a, b), n: 1 });
  }

  private labelsOf(a: string, b: string): LabelValues<L> {
    const labels: Partial<Record<L, string>> = {};
    const [first, second] = this.names;
    if (first !== undefined) labels[first] = a;
    if (second !== undefined) labels[second] = b;
    return labels as LabelValues<L>;
  }

  private flush(): void {
    for (const byB of this.tallies.values()) {
      for (const t of byB.values()) {
        if (t.n === 0) continue;
        this.inc(t.labels, t.n);
        t.n = 0;
      }
    }
  }
}

/** One method's latencies: a count per bucket (the last one past every bound), their sum and count. */
interface Buckets {
  readonly counts: number[];
  sum: number;
  count: number;
}

type Values = MetricObjectWithValues<MetricValueWithName<"method" | "le">>;

/**
 * prom-client's d.ts types a metric's `type` as a numeric enum; its registry writes the value
 * into `# TYPE` lines, and its own histograms hold the string.
 */
const HISTOGRAM = "histogram" as unknown as MetricType;

/**
 * The unary call latency histogram, by method: `record` counts an observation in plain numbers;
 * reads (a scrape, `get()`) answer prom-client's histogram values from them (`_bucket` with
 * cumulative counts and `le`, `_sum`, `_count`). prom-client's own `observe` is refused: its
 * values would not be read.
 */
export class CallLatency extends Histogram<"method"> {
  private readonly bounds: readonly number[];
  private byMethod = new Map<string, Buckets>();
  private readonly metricName: string;
  private readonly metricHelp: string;

  constructor(config: { name: string; help: string; buckets: number[]; registers: Registry[] }) {
    super({ ...config, labelNames: ["method"] });
    this.bounds = [...config.buckets].sort((x, y) => x - y);
    this.metricName = config.name;
    this.metricHelp = config.help;
    // prom-client's constructor sets observe on the instance.
    this.observe = (): never => {
      throw new TypeError(`${this.metricName}: record(method, seconds), not observe()`);
    };
  }

  /** One call of `method` that took `seconds`. */
  record(method: string, seconds: number): void {
    let b = this.byMethod.get(method);
    if (!b) this.byMethod.set(method, (b = { counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 }));
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    b.counts[i]!++;
    b.sum += seconds;
    b.count++;
  }

  override reset(): void {
    this.byMethod = new Map();
  }

  override zero(): never {
    throw new TypeError(`${this.metricName}: record(method, seconds) makes a method's series`);
  }

  override remove(): never {
    throw new TypeError(`${this.metricName}: series are not removed one by one`);
  }

  override labels(): never {
    throw new TypeError(`${this.metricName}: record(method, seconds), not labels()`);
  }

  override get(): Promise<Values> {
    return Promise.resolve(this.values());
  }

  /** What prom-client's registry reads for the text format: the same values as get(). */
  getForPromString(): Promise<Values> {
    return Promise.resolve(this.values());
  }

  private values(): Values {
    const name = this.metricName;
    const values: Values["values"] = [];
    for (const [method, b] of this.byMethod) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += b.counts[i]!;
        values.push({ metricName: `${name}_bucket`, labels: { le, method }, value: cumulative });
      });
      values.push({ metricName: `${name}_bucket`, labels: { le: "+Inf", method }, value: b.count });
      values.push({ metricName: `${name}_sum`, labels: { method }, value: b.sum });
      values.push({ metricName: `${name}_count`, labels: { method }, value: b.count });
    }
    return { name, help: this.metricHelp, type: HISTOGRAM, values, aggregator: "sum", collect: () => {} };
  }
}
