/**
 * The tables and verdicts of bench/run.ts: measurements grouped by (scenario, target, level)
 * with medians over the repeats; ratios between targets as the median of per-repeat ratios
 * (measured back to back, so drift cancels); the unary target of issue 7 and the Heartbeat's by
 * variant (issues 17 and 14: heartbeatGoal) judged.
 */
import type { Measurement } from "./heartbeat-measure.js";
import type { Scenario, Target } from "./heartbeat-load.js";
import { fmtInt, fmtMs, fmtPct, median, type SummaryRow, verdict } from "./report.js";

export interface Row {
  scenario: Scenario;
  target: Target;
  inFlight: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  all: Measurement[];
}

export function summarize(ms: Measurement[]): Row[] {
  const groups = new Map<string, Measurement[]>();
  for (const m of ms) groups.set(`${m.scenario}|${m.target}|${m.inFlight}`, [...(groups.get(`${m.scenario}|${m.target}|${m.inFlight}`) ?? []), m]);
  return [...groups.values()].map((all) => ({
    scenario: all[0]!.scenario,
    target: all[0]!.target,
    inFlight: all[0]!.inFlight,
    callsPerSec: median(all.map((m) => m.callsPerSec)),
    p50Ms: median(all.map((m) => m.p50Ms)),
    p99Ms: median(all.map((m) => m.p99Ms)),
    all,
  }));
}

/** Median over the repeats of a's value over b's. */
const pairedRatio = (a: Row, b: Row, f: (m: Measurement) => number): number =>
  median(a.all.flatMap((m) => b.all.filter((y) => y.repeat === m.repeat).map((x) => f(m) / f(x))));
const fmtX = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–");
const fastest = (rows: Row[]): Row | undefined => rows.reduce<Row | undefined>((a, b) => (!a || b.callsPerSec > a.callsPerSec ? b : a), undefined);

/** What the Heartbeat ran against: nodeplane's store, and whether every stream renewed one node's Lease. */
export interface Variant {
  store: "sqlite" | "etcd";
  hot: boolean;
}

/**
 * The Heartbeat's target against etcd's Put/s, by variant: issue 17 wants 2 ×, and 10 × for one
 * hot Lease, on SQLite; issue 14 wants 0.8 × with nodeplane on etcd, beside raw Put on that same etcd.
 */
export function heartbeatGoal(v: Variant): { times: number; what: string } {
  const where = v.store === "etcd" ? "; nodeplane on --store etcd, the Put baseline's etcd" : "";
  if (v.hot) return { times: v.store === "etcd" ? 0.8 : 10, what: `one hot Lease: every stream renews one node${where}` };
  return { times: v.store === "etcd" ? 0.8 : 2, what: `each stream its own nodes${where}` };
}

/** Store writes (revisions) per renewal or call over a row's windows, median; undefined when not counted. */
function writesPerCall(r: Row): number | undefined {
  const w = r.all.map((m) => m.writesPerCall).filter((x): x is number => x !== undefined && Number.isFinite(x));
  return w.length ? median(w) : undefined;
}
/** Two significant digits below 0.01: a hot Lease costs one write in tens of thousands of renewals. */
const fmtWrites = (x: number | undefined): string => (x === undefined ? "–" : x === 0 || x >= 0.01 ? x.toFixed(2) : x.toPrecision(2));

export class Report {
  constructor(
    readonly rows: Row[],
    private readonly etcdVersion: string,
    private readonly variant: Variant,
  ) {}

  private find(scenario: Scenario, target: Target, inFlight?: number): Row | undefined {
    return this.rows.find((r) => r.scenario === scenario && r.target === target && (inFlight === undefined || r.inFlight === inFlight));
  }

  name(r: Row): string {
    if (r.scenario === "heartbeat" && r.target === "nodeplane") return "nodeplane Heartbeat (stream)";
    if (r.target === "nodeplane") return "nodeplane RenewLease";
    if (r.target === "trivial") return "trivial grpc-js RenewLease";
    return `etcd ${this.etcdVersion} Put (Lease-sized value)`;
  }

  /** nodeplane's best unary level, the trivial server and etcd at it; the heartbeat; etcd's best Put/s of the run. */
  private judged() {
    const best = fastest(this.rows.filter((r) => r.scenario === "renew" && r.target === "nodeplane"));
    return {
      best,
      tr: best && this.find("renew", "trivial", best.inFlight),
      et: best && this.find("renew", "etcd", best.inFlight),
      hb: this.find("heartbeat", "nodeplane"),
      etcdBest: fastest(this.rows.filter((r) => r.target === "etcd")),
    };
  }

  renewTable(): string {
    const withEtcd = this.rows.some((r) => r.target === "etcd");
    const out = [
      `| target | in-flight | calls/s | p50 ms | p99 ms | nodeplane/trivial |${withEtcd ? " nodeplane/etcd |" : ""}`,
      `|---|---:|---:|---:|---:|---|${withEtcd ? "---|" : ""}`,
    ];
    for (const r of this.rows.filter((x) => x.scenario === "renew")) {
      const ratio = (t: Target): string => {
        const b = this.find("renew", t, r.inFlight);
        if (r.target === t) return "1 (baseline)";
        if (r.target !== "nodeplane" || !b) return "";
        return `${fmtX(pairedRatio(r, b, (m) => m.callsPerSec))} calls/s, ${fmtX(pairedRatio(r, b, (m) => m.p99Ms))} p99`;
      };
      out.push(`| ${this.name(r)} | ${r.inFlight} | ${fmtInt(r.callsPerSec)} | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${ratio("trivial")} |${withEtcd ? ` ${ratio("etcd")} |` : ""}`);
    }
    return out.join("\n");
  }

  heartbeatTable(concurrency: string): string {
    const out = [
      "| target | concurrency | renewals/s | store writes per renewal | p50 ms | p99 ms | server p50 / p99 ms | heartbeat/etcd beside | heartbeat/etcd best in run |",
      "|---|---|---:|---:|---:|---:|---|---|---|",
    ];
    const { hb, etcdBest } = this.judged();
    const beside = this.find("heartbeat", "etcd");
    for (const r of [hb, beside]) {
      if (!r) continue;
      const np = r.target === "nodeplane";
      const server = np ? `${fmtMs(median(r.all.map((m) => m.serverP50Ms ?? Number.NaN)))} / ${fmtMs(median(r.all.map((m) => m.serverP99Ms ?? Number.NaN)))}` : "–";
      const vsBeside = np && beside ? fmtX(pairedRatio(r, beside, (m) => m.callsPerSec)) : np ? "–" : "1 (baseline)";
      const vsBest = np && etcdBest ? `${fmtX(r.callsPerSec / etcdBest.callsPerSec)} (etcd ${fmtInt(etcdBest.callsPerSec)}/s at ${etcdBest.inFlight}${etcdBest.scenario === "renew" ? "" : ", beside"})` : "";
      const probe = r.all[0]?.latency === "probe" ? " (probe)" : "";
      out.push(
        `| ${this.name(r)} | ${np ? concurrency : `${r.inFlight} calls in flight`} | ${fmtInt(r.callsPerSec)} | ${fmtWrites(writesPerCall(r))} | ${fmtMs(r.p50Ms)}${probe} | ${fmtMs(r.p99Ms)}${probe} | ${server} | ${vsBeside} | ${vsBest} |`,
      );
    }
    return out.join("\n");
  }

  detailTable(): string {
    const out = [
      "| scenario | target | in-flight | calls/s per repeat | server-counted calls/s per repeat | p99 ms per repeat | mean ms | max ms | server CPU | server CPU µs/call | generator CPU | other load CPU per repeat | handler mean ms | writes/call | group commits/s | txns/commit | time in commits | all connections answered after ms |",
      "|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ];
    for (const r of this.rows) {
      const med = (f: (m: Measurement) => number | undefined): number | undefined => {
        const xs = r.all.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
        return xs.length ? median(xs) : undefined;
      };
      const fixed = (x: number | undefined, digits: number): string => (x === undefined ? "–" : x.toFixed(digits));
      const each = (f: (m: Measurement) => string): string => r.all.map(f).join(" / ");
      const perCall = med((m) => (m.serverCpu === undefined ? undefined : (m.serverCpu / 100) * (1e6 / m.callsPerSec)));
      const cells = [
        r.scenario === "renew" ? "1 unary" : "2 heartbeat",
        this.name(r),
        r.inFlight,
        each((m) => fmtInt(m.callsPerSec)),
        each((m) => (m.serverPerSec === undefined ? "–" : fmtInt(m.serverPerSec))),
        each((m) => fmtMs(m.p99Ms)),
        fmtMs(median(r.all.map((m) => m.meanMs))),
        fmtMs(Math.max(...r.all.map((m) => (Number.isFinite(m.maxMs) ? m.maxMs : 0)))),
        fmtPct(med((m) => m.serverCpu)),
        perCall === undefined ? "–" : fmtInt(perCall),
        fmtPct(med((m) => m.clientCpu)),
        each((m) => fmtPct(m.otherCpu)),
        med((m) => m.handlerMeanMs) === undefined ? "–" : fmtMs(med((m) => m.handlerMeanMs)!),
        fmtWrites(med((m) => m.writesPerCall)),
        med((m) => m.commitsPerSec) === undefined ? "–" : fmtInt(med((m) => m.commitsPerSec)!),
        fixed(med((m) => m.txnsPerCommit), 1),
        fmtPct(med((m) => m.commitShare)),
        r.all.some((m) => m.admittedMs !== undefined) ? each((m) => (m.admittedMs === undefined ? "–" : fmtInt(m.admittedMs))) : "–",
      ];
      out.push(`| ${cells.join(" | ")} |`);
    }
    return out.join("\n");
  }

  /** The suite's rows (bench/suite.ts): the best unary level and the heartbeat, each beside its baseline. */
  summaryRows(): SummaryRow[] {
    const { best, tr, et, hb, etcdBest } = this.judged();
    const out: SummaryRow[] = [];
    if (best) {
      const ratio = tr ? pairedRatio(best, tr, (m) => m.callsPerSec) : Number.NaN;
      out.push({
        scenario: `RenewLease (unary), at nodeplane's best concurrency (${best.inFlight} in flight)`,
        result: `${fmtInt(best.callsPerSec)} calls/s, p50 ${fmtMs(best.p50Ms)} / p99 ${fmtMs(best.p99Ms)} ms`,
        baseline:
          (tr ? `trivial grpc-js ${fmtInt(tr.callsPerSec)} calls/s: **${fmtX(ratio)}**` : "–") +
          (et ? `; ${this.name(et)} ${fmtInt(et.callsPerSec)}/s: ${fmtX(pairedRatio(best, et, (m) => m.callsPerSec))}` : ""),
        target: "≥ 0.8 × trivial; p99 ≤ 50 ms",
        verdict: verdict(tr ? ratio >= 0.8 && best.p99Ms <= 50 : undefined),
      });
    }
    if (hb) {
      const ratio = etcdBest ? hb.callsPerSec / etcdBest.callsPerSec : Number.NaN;
      const goal = heartbeatGoal(this.variant);
      const same = this.variant.store === "etcd" ? " on the same etcd" : "";
      out.push({
        scenario: `Streaming Heartbeat as fast as it goes (${hb.inFlight} streams; ${goal.what})`,
        result: `${fmtInt(hb.callsPerSec)} renewals/s answered, ${fmtWrites(writesPerCall(hb))} store writes per renewal, probe p50 ${fmtMs(hb.p50Ms)} / p99 ${fmtMs(hb.p99Ms)} ms`,
        baseline: etcdBest
          ? `${this.name(etcdBest)}${same}, its best (${etcdBest.inFlight} in flight): ${fmtInt(etcdBest.callsPerSec)}/s: **${fmtX(ratio)}**`
          : "– (no etcd in this run)",
        target: `≥ ${goal.times} × ${same ? "raw " : ""}etcd Put/s`,
        verdict: verdict(etcdBest ? ratio >= goal.times : undefined),
      });
    }
    return out;
  }
}
