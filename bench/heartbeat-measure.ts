/**
 * One measurement of bench/run.ts: a generator's run against one target, with the window's CPU
 * (the target, the generator, other load) and the servers' own counters read at the window's
 * edges and around the run. The counters must show no failed call in the window, and agree with
 * what the generator counted (exactly for grpc-js workers; at least for h2load, which counts gRPC
 * errors as success).
 */
import { scrapeEtcd } from "./etcd.js";
import { type Samples, scrapeMetrics, sumOf } from "./harness.js";
import type { Drive, Scenario, Target } from "./heartbeat-load.js";
import { cpuBetween, type CpuReading, type Pids, readCpu } from "./proc.js";

interface Counters {
  ok: number;
  notOk: number;
  /** Store revision (nodeplane) or MVCC revision (etcd): one per committed write. */
  revision: number;
  handlingSum?: number;
  handlingCount?: number;
  /** Cumulative latency histogram: upper bound (s) → count. */
  buckets?: Array<[number, number]>;
  /** nodeplane's group commits: how many, transactions in them, seconds spent applying + committing (fsync included). */
  commits?: number;
  commitTxns?: number;
  commitSeconds?: number;
}

export interface Measurement {
  scenario: Scenario;
  target: Target;
  inFlight: number;
  repeat: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  calls: number;
  latency: "client" | "probe";
  /** nodeplane's Heartbeat handling histogram over the window, interpolated. */
  serverP50Ms: number | undefined;
  serverP99Ms: number | undefined;
  /** OK calls/s by the server's own counter over the window. */
  serverPerSec: number | undefined;
  serverCpu: number | undefined;
  clientCpu: number | undefined;
  otherCpu: number | undefined;
  handlerMeanMs: number | undefined;
  /** Revisions (committed writes) per OK call over the window. */
  writesPerCall: number | undefined;
  /** nodeplane: group commits per second, transactions per commit, share of the window spent inside commits. */
  commitsPerSec?: number;
  txnsPerCommit?: number;
  commitShare?: number;
  /** h2load unary: ms until every connection had had an answer (the window starts no earlier). */
  admittedMs?: number;
}

export interface TargetServer {
  pid: number | undefined;
  /** The server's counters (nodeplane: its /metrics port; etcd: its client URL); none for the trivial server. */
  metrics?: { httpPort: number } | { etcdUrl: string };
}

function bucketsOf(samples: Samples, method: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [series, value] of samples) {
    if (!series.startsWith("nodeplane_grpc_server_handling_seconds_bucket{") || !series.includes(`method="${method}"`)) continue;
    const le = /le="([^"]+)"/.exec(series)?.[1];
    if (le !== undefined) out.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), value]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

async function countersOf(server: TargetServer, scenario: Scenario): Promise<Counters | undefined> {
  const m = server.metrics;
  if (!m) return undefined;
  if ("etcdUrl" in m) return scrapeEtcd(m.etcdUrl);
  const s = await scrapeMetrics(m.httpPort);
  const method = scenario === "renew" ? "RenewLease" : "Heartbeat";
  const [metric, labels] = scenario === "renew" ? ["nodeplane_grpc_server_handled_total", { method }] : ["nodeplane_heartbeats_total", {}];
  const ok = sumOf(s, metric, { ...labels, code: "OK" });
  return {
    ok,
    notOk: sumOf(s, metric, labels) - ok,
    revision: sumOf(s, "nodeplane_store_revision"),
    handlingSum: sumOf(s, "nodeplane_grpc_server_handling_seconds_sum", { method }),
    handlingCount: sumOf(s, "nodeplane_grpc_server_handling_seconds_count", { method }),
    buckets: scenario === "heartbeat" ? bucketsOf(s, method) : undefined,
    commits: sumOf(s, "nodeplane_store_commit_seconds_count"),
    commitTxns: sumOf(s, "nodeplane_store_commit_batch_transactions_sum"),
    commitSeconds: sumOf(s, "nodeplane_store_commit_seconds_sum"),
  };
}

/** histogram_quantile over the difference of two cumulative bucket lists (linear within a bucket), ms. */
function bucketQuantileMs(before: Array<[number, number]>, after: Array<[number, number]>, q: number): number {
  const delta = after.map(([le, n]) => [le, n - (before.find((b) => b[0] === le)?.[1] ?? 0)] as const);
  const total = delta.at(-1)?.[1] ?? 0;
  if (total <= 0) return Number.NaN;
  const rank = q * total;
  let [prevLe, prevN] = [0, 0];
  for (const [le, n] of delta) {
    if (n >= rank) return (Number.isFinite(le) ? prevLe + ((le - prevLe) * (rank - prevN)) / Math.max(1, n - prevN) : prevLe) * 1000;
    [prevLe, prevN] = [le, n];
  }
  return prevLe * 1000;
}

/** The server-side figures of a window from its counters at the edges (and around the whole run), checked against the generator's counts. */
function serverSide(
  what: string,
  elapsedMs: number,
  [cOpen, cClose, before, after]: Counters[],
  { exactOk, atLeastOk }: { exactOk?: number; atLeastOk?: number },
): Partial<Measurement> {
  if (!cOpen || !cClose || !before || !after) throw new Error(`${what}: could not read the server's counters`);
  const okW = cClose.ok - cOpen.ok;
  const badW = cClose.notOk - cOpen.notOk;
  if (badW !== 0) throw new Error(`${what}: the server counted ${badW} failed call(s) inside the measured window (the generator may count them as success)`);
  if (okW <= 0) throw new Error(`${what}: the server counted no OK call inside the window`);
  const okAll = after.ok - before.ok;
  if (exactOk !== undefined && (okAll !== exactOk || after.notOk !== before.notOk)) {
    throw new Error(`${what}: the server counted ${okAll} OK and ${after.notOk - before.notOk} failed calls; the generator got ${exactOk} OK`);
  }
  if (atLeastOk !== undefined && okAll < atLeastOk) throw new Error(`${what}: h2load counted ${atLeastOk} answers but the server only ${okAll} OK: some were gRPC errors`);
  const d = (f: (c: Counters) => number | undefined): number => (f(cClose) ?? 0) - (f(cOpen) ?? 0);
  const handled = d((c) => c.handlingCount);
  const commits = d((c) => c.commits);
  return {
    serverPerSec: okW / (elapsedMs / 1000),
    writesPerCall: d((c) => c.revision) / okW,
    handlerMeanMs: handled > 0 ? (d((c) => c.handlingSum) / handled) * 1000 : undefined,
    ...(commits > 0
      ? { commitsPerSec: commits / (elapsedMs / 1000), txnsPerCommit: d((c) => c.commitTxns) / commits, commitShare: (100 * d((c) => c.commitSeconds) * 1000) / elapsedMs }
      : {}),
    ...(cOpen.buckets && cClose.buckets
      ? { serverP50Ms: bucketQuantileMs(cOpen.buckets, cClose.buckets, 0.5), serverP99Ms: bucketQuantileMs(cOpen.buckets, cClose.buckets, 0.99) }
      : {}),
  };
}

export async function measure(
  servers: Partial<Record<Target, TargetServer>>,
  scenario: Scenario,
  target: Target,
  inFlight: number,
  repeat: number,
  drive: Drive,
): Promise<Measurement> {
  const server = servers[target]!;
  const counters = (): Promise<Counters | undefined> => countersOf(server, scenario);
  const before = await counters();
  // Ours: every server, this process and the generator's processes; the rest is other load.
  const pidsWith = (gen: number[]): Pids => {
    const pids: Pids = { bench: process.pid };
    for (const [t, s] of Object.entries(servers)) pids[t] = s.pid;
    gen.forEach((pid, i) => (pids[`gen${i}`] = pid));
    return pids;
  };
  let opened: { cpu: CpuReading; counters: Promise<Counters | undefined> } | undefined;
  let closed: typeof opened;
  const snap = (gen: number[]): typeof opened => ({ cpu: readCpu(pidsWith(gen)), counters: counters().catch(() => undefined) });
  const outcome = await drive({ open: (gen) => (opened = snap(gen)), close: (gen) => (closed = snap(gen)) });
  if (!opened || !closed) throw new Error(`${target} at ${inFlight}: the measured window never opened or closed`);
  const [cOpen, cClose, after] = [await opened.counters, await closed.counters, await counters()];
  const what = `${target} ${scenario === "renew" ? (target === "etcd" ? "Put" : "RenewLease") : "Heartbeat"} at ${inFlight} in flight`;
  const cpu = cpuBetween(opened.cpu, closed.cpu);
  const side = server.metrics ? serverSide(what, cpu.elapsedMs, [cOpen, cClose, before, after] as Counters[], outcome) : {};
  if (outcome.windowOk === 0 && !outcome.rateFromServer) throw new Error(`${what}: no call completed in the measured window`);
  const h = outcome.hist;
  const fromHist = (f: () => number): number => (h.count > 0 ? f() : Number.NaN);
  return {
    scenario,
    target,
    inFlight,
    repeat,
    callsPerSec: outcome.rateFromServer ? side.serverPerSec! : outcome.windowOk / (outcome.windowMs / 1000),
    p50Ms: fromHist(() => h.ms(0.5)),
    p99Ms: fromHist(() => h.ms(0.99)),
    meanMs: fromHist(() => h.meanUs() / 1000),
    maxMs: fromHist(() => h.maxUs / 1000),
    calls: outcome.rateFromServer && side.serverPerSec !== undefined ? Math.round((side.serverPerSec * cpu.elapsedMs) / 1000) : outcome.windowOk,
    latency: outcome.latency,
    serverP50Ms: undefined,
    serverP99Ms: undefined,
    serverPerSec: undefined,
    handlerMeanMs: undefined,
    writesPerCall: undefined,
    ...side,
    serverCpu: cpu.pct[target],
    clientCpu: outcome.clientCpuMs === undefined ? undefined : (100 * outcome.clientCpuMs) / cpu.elapsedMs,
    otherCpu: cpu.otherPct,
    admittedMs: outcome.admittedMs,
  };
}
