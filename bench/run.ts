/**
 * Part of `npm run bench` (bench/suite.ts), or on its own: what one node heartbeat costs nodeplane, beside its baselines
 * measured in the same run by the same generator at the same concurrency. Writes bench/RESULTS-heartbeat.md
 * and prints the same tables.
 *
 *  1. RenewLease (unary) at rising concurrency against
 *       - nodeplane (a renewal answered from memory, made durable by the next Lease checkpoint;
 *         on SQLite, or with --store etcd on the run's etcd),
 *       - a trivial grpc-js server answering a constant RenewLeaseResponse (bench/trivial-server.ts:
 *         the ceiling of grpc-js, our stack, on this machine),
 *       - etcd 3.4 answering a Put of a Lease-sized value to the node's Lease key (what Kubernetes
 *         pays per renewal; bench/etcd.ts starts it on loopback in a temp dir).
 *  2. The streaming heartbeat (rpc Heartbeat, bidi) as fast as it goes: renewals/s from
 *     nodeplane's own counter, beside etcd's Put/s measured right next to it; with --hb-hot every
 *     stream renews one node (one hot Lease).
 *
 * Generator: h2load (Debian nghttp2-client) when installed, else grpc-js worker processes
 * (bench/load-worker.ts). With h2load, "in-flight L" is L h2load processes, each one connection
 * with one call in flight renewing its own node (h2load sends one pre-framed body per process, and
 * two calls renewing one node at once would queue behind each other in nodeplane), i.e. L agents;
 * the Heartbeat runs --hb-conns processes, each one connection with --hb-streams streams whose body
 * is many framed HeartbeatRequests, one per node of that process's own node range. h2load counts
 * gRPC errors as success: every measurement is checked against the servers' own counters
 * (nodeplane /metrics, etcd /metrics), which must show no failed call in the window, and h2load's
 * response bytes must show a message in every answer.
 *
 * Flags (or env BENCH_<NAME>, e.g. BENCH_DURATION=5):
 *   --quick          ~1 minute smoke run (levels 64,256, 1 repeat, 0.5 s warm-up + 2 s windows, 1024 nodes)
 *   --duration S     measured seconds per measurement (default 2.5)
 *   --warmup S       warm-up seconds before each measurement (default 1)
 *   --nodes N        nodes registered (default 2048)
 *   --levels A,B,C   calls in flight for RenewLease (default 16,64,256)
 *   --repeats R      measurements per (target, level); medians are reported (default 3)
 *   --hb-conns C     Heartbeat: connections (h2load processes or share of workers) (default 16)
 *   --hb-streams S   Heartbeat: streams per connection (default 4)
 *   --generator G    auto | h2load | grpc-js (default auto: h2load when installed)
 *   --workers K      grpc-js load worker processes (default: one per CPU, 2 to 8)
 *   --scenarios L    renew,heartbeat (default both)
 *   --no-etcd        skip the etcd baseline
 *   --store S        sqlite | etcd: where nodeplane keeps its data (etcd: the run's etcd, beside the Put baseline)
 *   --hb-hot         Heartbeat: every stream renews one node's Lease (needs h2load)
 *   --cpu-prof       profile nodeplane and the trivial server (node --cpu-prof) and summarise; no results file is written
 *   --out FILE       where to write the results (default bench/RESULTS-heartbeat.md, with --quick nowhere; "" = nowhere)
 *
 * Everything is bounded (durations, per-call deadlines, watchdogs, a whole-run limit) and local
 * (127.0.0.1); child processes (servers, etcd, h2load, workers) are killed and temp dirs removed
 * on exit, error or signal (bench/harness.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { NodeClient } from "../src/client/index.js";
import { Lease } from "../src/gen/nodeplane/v1/lease.js";
import { HeartbeatRequest, HeartbeatResponse, NodeServiceService, RenewLeaseRequest, RenewLeaseResponse } from "../src/gen/nodeplane/v1/service.js";
import { type Etcd, ETCD_PACKAGE, type EtcdBinary, findEtcd, scrapeEtcd, startEtcd } from "./etcd.js";
import { findH2load, grpcCall, grpcFrame, H2LOAD_PACKAGE, type H2loadBinary, runH2load } from "./h2load.js";
import {
  fmtInt,
  fmtMs,
  fmtPct,
  fsTypeOf,
  machineBusyMs,
  median,
  NODEPLANE_BIN,
  procCpuMs,
  ROOT,
  type Samples,
  scrapeMetrics,
  spawnServing,
  stopServer,
  sumOf,
  track,
  trackTempDir,
} from "./harness.js";
import { Histogram } from "./histogram.js";
import { summarizeProfile } from "./profile-summary.js";
import { emitSummary, type SummaryRow, verdict } from "./summary.js";
import {
  benchNodeName,
  encodePutRequest,
  ETCD_PUT_PATH,
  etcdLeaseKey,
  type FromWorker,
  type RunCommand,
  type RunResult,
  type TargetSpec,
  type ToWorker,
} from "./protocol.js";

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const WORKER_JS = path.join(HERE, "load-worker.js");
const TRIVIAL_JS = path.join(HERE, "trivial-server.js");
const CALL_DEADLINE_MS = 10_000;
const RENEW_PATH = NodeServiceService.renewLease.path;
const HEARTBEAT_PATH = NodeServiceService.heartbeat.path;

type Target = "nodeplane" | "trivial" | "etcd";
type Scenario = "renew" | "heartbeat";
type Generator = "h2load" | "grpc-js";

interface Options {
  quick: boolean;
  durationS: number;
  warmupS: number;
  nodes: number;
  workers: number;
  levels: number[];
  repeats: number;
  hbConns: number;
  hbStreams: number;
  generator: "auto" | Generator;
  etcd: boolean;
  scenarios: Set<Scenario>;
  cpuProf: boolean;
  /** Where nodeplane keeps its data: SQLite in a temp dir, or the run's etcd (the one the Put baseline uses, under nodeplane's own key prefix). */
  store: "sqlite" | "etcd";
  /** Heartbeat: every stream renews one node's Lease (one hot Lease), instead of each its own nodes. */
  hot: boolean;
  out: string;
}

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const epochNow = (): number => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------
// Flags

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: "boolean" },
      duration: { type: "string" },
      warmup: { type: "string" },
      nodes: { type: "string" },
      workers: { type: "string" },
      levels: { type: "string" },
      repeats: { type: "string" },
      "hb-conns": { type: "string" },
      "hb-streams": { type: "string" },
      generator: { type: "string" },
      scenarios: { type: "string" },
      "no-etcd": { type: "boolean" },
      "cpu-prof": { type: "boolean" },
      store: { type: "string" },
      "hb-hot": { type: "boolean" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: npm run bench -- [--quick] [--duration S] [--warmup S] [--nodes N] [--levels 16,64,256] [--repeats R] [--hb-conns C] [--hb-streams S]\n" +
        "                        [--generator auto|h2load|grpc-js] [--workers K] [--scenarios renew,heartbeat] [--no-etcd] [--cpu-prof]\n" +
        "                        [--store sqlite|etcd] [--hb-hot] [--out FILE]\n",
    );
    process.exit(0);
  }
  const quick = values.quick ?? process.env.BENCH_QUICK === "1";
  const pick = (name: string, flag: string | undefined, def: string): string =>
    flag ?? process.env[`BENCH_${name.toUpperCase().replace(/-/g, "_")}`] ?? def;
  const num = (name: string, flag: string | undefined, def: number, min: number, max: number): number => {
    const raw = pick(name, flag, String(def));
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name} ${raw}: want a number in [${min}, ${max}]`);
    return v;
  };
  const int = (name: string, flag: string | undefined, def: number, min: number, max: number): number => {
    const v = num(name, flag, def, min, max);
    if (!Number.isInteger(v)) throw new Error(`--${name} ${v}: want an integer`);
    return v;
  };
  const levels = pick("levels", values.levels, quick ? "64,256" : "16,64,256")
    .split(",")
    .map((s) => Number(s.trim()));
  if (levels.length === 0 || levels.some((l) => !Number.isInteger(l) || l < 1 || l > 1024)) {
    throw new Error(`--levels ${values.levels ?? ""}: want comma-separated integers in [1, 1024]`);
  }
  const generator = pick("generator", values.generator, "auto");
  if (generator !== "auto" && generator !== "h2load" && generator !== "grpc-js") throw new Error(`--generator ${generator}: want auto, h2load or grpc-js`);
  const scenarios = new Set<Scenario>();
  for (const s of pick("scenarios", values.scenarios, "renew,heartbeat").split(",")) {
    const t = s.trim();
    if (t !== "renew" && t !== "heartbeat") throw new Error(`--scenarios: unknown scenario ${t} (want renew, heartbeat)`);
    scenarios.add(t);
  }
  const store = pick("store", values.store, "sqlite");
  if (store !== "sqlite" && store !== "etcd") throw new Error(`--store ${store}: want sqlite or etcd`);
  const hot = values["hb-hot"] ?? process.env.BENCH_HB_HOT === "1";
  const opts: Options = {
    quick,
    durationS: num("duration", values.duration, quick ? 2 : 2.5, 0.5, 120),
    warmupS: num("warmup", values.warmup, quick ? 0.5 : 1, 0, 60),
    nodes: int("nodes", values.nodes, quick ? 1024 : 2048, 2, 100_000),
    workers: int("workers", values.workers, Math.min(8, Math.max(2, os.cpus().length)), 1, 32),
    levels,
    repeats: int("repeats", values.repeats, quick ? 1 : 3, 1, 20),
    hbConns: int("hb-conns", values["hb-conns"], 16, 1, 256),
    hbStreams: int("hb-streams", values["hb-streams"], 4, 1, 1024),
    generator,
    etcd: !(values["no-etcd"] ?? process.env.BENCH_NO_ETCD === "1"),
    scenarios,
    cpuProf: values["cpu-prof"] ?? process.env.BENCH_CPU_PROF === "1",
    store,
    hot,
    // A quick run is a smoke test: it prints its tables but leaves bench/RESULTS-heartbeat*.md (the full run's) alone unless --out says where.
    out: pick("out", values.out, quick ? "" : path.join(ROOT, `bench/RESULTS-heartbeat${store === "etcd" ? "-etcd" : ""}${hot ? "-hot" : ""}.md`)),
  };
  if (store === "etcd" && !opts.etcd) throw new Error("--store etcd needs etcd: drop --no-etcd");
  // Never two calls renewing one node at once (they would queue behind each other in nodeplane).
  for (const l of levels) {
    if (l > opts.nodes) throw new Error(`--nodes ${opts.nodes} is too few for ${l} calls in flight: two calls would renew one node at once`);
    if (Math.ceil(l / opts.workers) > Math.floor(opts.nodes / opts.workers)) {
      throw new Error(`--nodes ${opts.nodes} is too few for ${l} calls in flight over ${opts.workers} workers: two calls would renew one node at once`);
    }
  }
  const streams = opts.hbConns * opts.hbStreams;
  if (Math.floor((opts.nodes - 1) / opts.hbConns) < 1 || Math.ceil(streams / opts.workers) > Math.floor((opts.nodes - 1) / opts.workers)) {
    throw new Error(`--nodes ${opts.nodes} is too few for ${streams} Heartbeat streams (${opts.hbConns} × ${opts.hbStreams})`);
  }
  return opts;
}

// ---------------------------------------------------------------------------------------
// grpc-js workers (the generator without h2load)

class Worker {
  private readonly waiters = new Set<(msg: FromWorker | Error) => void>();
  private exitedWith: string | undefined;

  constructor(
    readonly index: number,
    readonly child: ChildProcess,
  ) {
    child.on("message", (raw: unknown) => {
      const msg = raw as FromWorker;
      for (const w of [...this.waiters]) w(msg);
    });
    child.once("exit", (code, signal) => {
      this.exitedWith = `worker ${index} exited (${code ?? signal})`;
      for (const w of [...this.waiters]) w(new Error(this.exitedWith));
    });
  }

  send(cmd: ToWorker): void {
    if (this.exitedWith) throw new Error(this.exitedWith);
    this.child.send(cmd);
  }

  /** The next message that `accept` takes; fails on a fatal message, the worker's exit or the timeout. */
  next<T extends FromWorker>(accept: (msg: FromWorker) => msg is T, timeoutMs: number, what: string): Promise<T> {
    if (this.exitedWith) return Promise.reject(new Error(this.exitedWith));
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter = (msg: FromWorker | Error): void => {
        if (msg instanceof Error) {
          done();
          reject(msg);
        } else if (msg.type === "fatal") {
          done();
          reject(new Error(`worker ${this.index} failed: ${msg.message}`));
        } else if (accept(msg)) {
          done();
          resolve(msg);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`worker ${this.index}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }
}

async function startWorkers(opts: Options, targets: Record<string, TargetSpec>, etcdValue: Buffer): Promise<Worker[]> {
  const workers: Worker[] = [];
  for (let i = 0; i < opts.workers; i++) {
    const child = track(spawn(process.execPath, [WORKER_JS], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "json" }));
    workers.push(new Worker(i, child));
  }
  await Promise.all(
    workers.map((w) => {
      const ready = w.next((m): m is Extract<FromWorker, { type: "ready" }> => m.type === "ready", 20_000, "ready message");
      w.send({ type: "init", index: w.index, workers: opts.workers, nodeCount: opts.nodes, targets, etcdValueBase64: etcdValue.toString("base64") });
      return ready;
    }),
  );
  return workers;
}

// ---------------------------------------------------------------------------------------
// Servers' own counters

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

function bucketsOf(samples: Samples, name: string, method: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [series, value] of samples) {
    if (!series.startsWith(`${name}{`) || !series.includes(`method="${method}"`)) continue;
    const le = /le="([^"]+)"/.exec(series)?.[1];
    if (le !== undefined) out.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), value]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

async function nodeplaneCounters(httpPort: number, scenario: Scenario): Promise<Counters> {
  const s = await scrapeMetrics(httpPort);
  const revision = sumOf(s, "nodeplane_store_revision");
  const store = {
    commits: sumOf(s, "nodeplane_store_commit_seconds_count"),
    commitTxns: sumOf(s, "nodeplane_store_commit_batch_transactions_sum"),
    commitSeconds: sumOf(s, "nodeplane_store_commit_seconds_sum"),
  };
  if (scenario === "renew") {
    const ok = sumOf(s, "nodeplane_grpc_server_handled_total", { method: "RenewLease", code: "OK" });
    return {
      ...store,
      ok,
      notOk: sumOf(s, "nodeplane_grpc_server_handled_total", { method: "RenewLease" }) - ok,
      revision,
      handlingSum: sumOf(s, "nodeplane_grpc_server_handling_seconds_sum", { method: "RenewLease" }),
      handlingCount: sumOf(s, "nodeplane_grpc_server_handling_seconds_count", { method: "RenewLease" }),
    };
  }
  const ok = sumOf(s, "nodeplane_heartbeats_total", { code: "OK" });
  return {
    ...store,
    ok,
    notOk: sumOf(s, "nodeplane_heartbeats_total") - ok,
    revision,
    handlingSum: sumOf(s, "nodeplane_grpc_server_handling_seconds_sum", { method: "Heartbeat" }),
    handlingCount: sumOf(s, "nodeplane_grpc_server_handling_seconds_count", { method: "Heartbeat" }),
    buckets: bucketsOf(s, "nodeplane_grpc_server_handling_seconds_bucket", "Heartbeat"),
  };
}

/** histogram_quantile over the difference of two cumulative bucket lists (linear within a bucket), ms. */
function bucketQuantileMs(before: Array<[number, number]>, after: Array<[number, number]>, q: number): number {
  const delta = after.map(([le, n]) => [le, n - (before.find((b) => b[0] === le)?.[1] ?? 0)] as const);
  const total = delta.at(-1)?.[1] ?? 0;
  if (total <= 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevN = 0;
  for (const [le, n] of delta) {
    if (n >= rank) {
      if (!Number.isFinite(le)) return prevLe * 1000;
      return (prevLe + ((le - prevLe) * (rank - prevN)) / Math.max(1, n - prevN)) * 1000;
    }
    prevLe = le;
    prevN = n;
  }
  return prevLe * 1000;
}

// ---------------------------------------------------------------------------------------
// One measurement: a generator run, the window's CPU and the servers' counters around it

interface WindowHooks {
  open(pids: number[]): void;
  close(pids: number[]): void;
}

interface LoadOutcome {
  /** Calls (or renewals) the generator saw complete OK inside the window. */
  windowOk: number;
  windowMs: number;
  hist: Histogram | undefined;
  /** Where the latency comes from. */
  latency: "client" | "probe";
  clientCpuMs: number | undefined;
  /** Every OK call of the run as the generator saw it, when it waits for every call (grpc-js): the server must agree exactly. */
  exactOk?: number;
  /** OK answers h2load counted over the whole run: the server must have at least that many. */
  atLeastOk?: number;
  /** Throughput to report is the server's count in the window (h2load heartbeat: h2load sees whole streams only). */
  rateFromServer?: boolean;
  /** h2load unary: ms from the last process start until every connection had had an answer. */
  admittedMs?: number;
}

interface Measurement {
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
  /** nodeplane: group commits per second, transactions per commit, share of the window spent inside commits (main thread). */
  commitsPerSec?: number;
  txnsPerCommit?: number;
  commitShare?: number;
  /** h2load unary: ms until every connection had had an answer (the window starts no earlier). */
  admittedMs?: number;
}

interface Snapshot {
  at: number;
  serverCpuMs: number | undefined;
  machineMs: number | undefined;
  oursMs: number | undefined;
  counters: Promise<Counters | undefined>;
}

interface Ctx {
  servers: Partial<Record<Target, { pid: number | undefined; counters?: (s: Scenario) => Promise<Counters> }>>;
}

async function measure(
  ctx: Ctx,
  scenario: Scenario,
  target: Target,
  inFlight: number,
  repeat: number,
  drive: (hooks: WindowHooks) => Promise<LoadOutcome>,
): Promise<Measurement> {
  const server = ctx.servers[target]!;
  const counters = server.counters ? (): Promise<Counters> => server.counters!(scenario) : undefined;
  const before = counters ? await counters() : undefined;
  const ourPids = (pids: number[]): Array<number | undefined> => [
    ...Object.values(ctx.servers).map((s) => s.pid),
    process.pid,
    ...pids,
  ];
  const sumCpu = (pids: Array<number | undefined>): number | undefined => {
    let sum = 0;
    for (const pid of pids) {
      const ms = procCpuMs(pid);
      if (ms === undefined) return undefined;
      sum += ms;
    }
    return sum;
  };
  const snap = (pids: number[]): Snapshot => ({
    at: epochNow(),
    serverCpuMs: procCpuMs(server.pid),
    machineMs: machineBusyMs(),
    oursMs: sumCpu(ourPids(pids)),
    counters: counters ? counters().catch(() => undefined) : Promise.resolve(undefined),
  });
  let opened: Snapshot | undefined;
  let closed: Snapshot | undefined;
  const outcome = await drive({
    open: (pids) => (opened = snap(pids)),
    close: (pids) => (closed = snap(pids)),
  });
  if (!opened || !closed) throw new Error(`${target} at ${inFlight}: the measured window never opened or closed`);
  const [cOpen, cClose] = [await opened.counters, await closed.counters];
  const after = counters ? await counters() : undefined;
  const what = `${target} ${scenario === "renew" ? (target === "etcd" ? "Put" : "RenewLease") : "Heartbeat"} at ${inFlight} in flight`;
  const elapsedMs = closed.at - opened.at;

  let serverPerSec: number | undefined;
  let writesPerCall: number | undefined;
  let handlerMeanMs: number | undefined;
  let serverP50Ms: number | undefined;
  let serverP99Ms: number | undefined;
  let commitsPerSec: number | undefined;
  let txnsPerCommit: number | undefined;
  let commitShare: number | undefined;
  if (counters) {
    if (!cOpen || !cClose || !before || !after) throw new Error(`${what}: could not read the server's counters`);
    const okW = cClose.ok - cOpen.ok;
    const badW = cClose.notOk - cOpen.notOk;
    if (badW !== 0) throw new Error(`${what}: the server counted ${badW} failed call(s) inside the measured window (the generator may count them as success)`);
    if (okW <= 0) throw new Error(`${what}: the server counted no OK call inside the window`);
    serverPerSec = okW / (elapsedMs / 1000);
    writesPerCall = (cClose.revision - cOpen.revision) / okW;
    const okAll = after.ok - before.ok;
    if (outcome.exactOk !== undefined && (okAll !== outcome.exactOk || after.notOk !== before.notOk)) {
      throw new Error(`${what}: the server counted ${okAll} OK and ${after.notOk - before.notOk} failed calls; the generator got ${outcome.exactOk} OK`);
    }
    if (outcome.atLeastOk !== undefined && okAll < outcome.atLeastOk) {
      throw new Error(`${what}: h2load counted ${outcome.atLeastOk} answers but the server only ${okAll} OK: some were gRPC errors`);
    }
    if (cClose.handlingCount !== undefined && cOpen.handlingCount !== undefined && cClose.handlingSum !== undefined && cOpen.handlingSum !== undefined) {
      const n = cClose.handlingCount - cOpen.handlingCount;
      if (n > 0) handlerMeanMs = ((cClose.handlingSum - cOpen.handlingSum) / n) * 1000;
    }
    if (cOpen.commits !== undefined && cClose.commits !== undefined && cClose.commits > cOpen.commits) {
      const n = cClose.commits - cOpen.commits;
      commitsPerSec = n / (elapsedMs / 1000);
      txnsPerCommit = ((cClose.commitTxns ?? 0) - (cOpen.commitTxns ?? 0)) / n;
      commitShare = (100 * ((cClose.commitSeconds ?? 0) - (cOpen.commitSeconds ?? 0)) * 1000) / elapsedMs;
    }
    if (cOpen.buckets && cClose.buckets) {
      serverP50Ms = bucketQuantileMs(cOpen.buckets, cClose.buckets, 0.5);
      serverP99Ms = bucketQuantileMs(cOpen.buckets, cClose.buckets, 0.99);
    }
  }
  if (outcome.windowOk === 0 && !outcome.rateFromServer) throw new Error(`${what}: no call completed in the measured window`);

  const pct = (a: number | undefined, b: number | undefined): number | undefined =>
    a === undefined || b === undefined ? undefined : (100 * (b - a)) / elapsedMs;
  const machineCpu = pct(opened.machineMs, closed.machineMs);
  const oursCpu = pct(opened.oursMs, closed.oursMs);
  const hist = outcome.hist;
  return {
    scenario,
    target,
    inFlight,
    repeat,
    callsPerSec: outcome.rateFromServer ? serverPerSec! : outcome.windowOk / (outcome.windowMs / 1000),
    p50Ms: hist && hist.count > 0 ? hist.quantileUs(0.5) / 1000 : Number.NaN,
    p99Ms: hist && hist.count > 0 ? hist.quantileUs(0.99) / 1000 : Number.NaN,
    meanMs: hist && hist.count > 0 ? hist.meanUs() / 1000 : Number.NaN,
    maxMs: hist && hist.count > 0 ? hist.maxUs / 1000 : Number.NaN,
    calls: outcome.rateFromServer && serverPerSec !== undefined ? Math.round((serverPerSec * elapsedMs) / 1000) : outcome.windowOk,
    latency: outcome.latency,
    serverP50Ms,
    serverP99Ms,
    serverPerSec,
    serverCpu: pct(opened.serverCpuMs, closed.serverCpuMs),
    clientCpu: outcome.clientCpuMs === undefined ? undefined : (100 * outcome.clientCpuMs) / elapsedMs,
    otherCpu: machineCpu !== undefined && oursCpu !== undefined ? Math.max(0, machineCpu - oursCpu) : undefined,
    handlerMeanMs,
    writesPerCall,
    commitsPerSec,
    txnsPerCommit,
    commitShare,
    admittedMs: outcome.admittedMs,
  };
}

// ---------------------------------------------------------------------------------------
// Generators

/** grpc-js workers: unary calls or heartbeat streams, split evenly among the workers. */
function workersDrive(opts: Options, workers: Worker[], label: string, mode: "unary" | "heartbeat", inFlight: number, verify: RunCommand["verify"]) {
  let seq = 0;
  return async (hooks: WindowHooks): Promise<LoadOutcome> => {
    const warmupMs = opts.warmupS * 1000;
    const durationMs = opts.durationS * 1000;
    const startAt = epochNow() + 200;
    const s = ++seq + Math.floor(Math.random() * 1e9);
    const pids = workers.flatMap((w) => (w.child.pid === undefined ? [] : [w.child.pid]));
    const t1 = setTimeout(() => hooks.open(pids), startAt + warmupMs - epochNow());
    let t2: NodeJS.Timeout | undefined;
    const windowClosed = new Promise<void>((resolve) => {
      t2 = setTimeout(() => {
        hooks.close(pids);
        resolve();
      }, startAt + warmupMs + durationMs - epochNow());
    });
    let results: RunResult[];
    try {
      results = await Promise.all(
        workers.map((w, i) => {
          const cmd: RunCommand = {
            type: "run",
            seq: s,
            target: label,
            mode,
            inFlight: Math.floor(inFlight / workers.length) + (i < inFlight % workers.length ? 1 : 0),
            startAt,
            warmupMs,
            durationMs,
            deadlineMs: CALL_DEADLINE_MS,
            verify,
            maxCalls: Math.ceil(((warmupMs + durationMs) / 1000) * 200_000),
          };
          const result = w.next((m): m is RunResult => m.type === "result" && m.seq === s, warmupMs + durationMs + CALL_DEADLINE_MS + 15_000, "result");
          w.send(cmd);
          return result;
        }),
      );
      await windowClosed;
    } finally {
      clearTimeout(t1);
      clearTimeout(t2);
    }
    const errors: Record<string, number> = {};
    const samples: string[] = [];
    for (const r of results) {
      for (const [k, n] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + n;
      samples.push(...r.errorSamples.map((e) => `worker ${r.index}: ${e}`));
    }
    const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
    if (errorCount > 0) throw new Error(`${label} (${mode}) at ${inFlight}: ${errorCount} failed call(s) ${JSON.stringify(errors)}\n  ${samples.slice(0, 10).join("\n  ")}`);
    const hist = new Histogram();
    for (const r of results) hist.merge(r.hist);
    return {
      windowOk: results.reduce((a, r) => a + r.windowOk, 0),
      windowMs: results.reduce((a, r) => a + r.windowMs, 0) / results.length,
      hist,
      latency: "client",
      clientCpuMs: results.reduce((a, r) => a + r.cpuUs, 0) / 1000,
      exactOk: results.reduce((a, r) => a + r.ok, 0),
    };
  };
}

interface Bodies {
  dir: string;
  renew(i: number): string;
  put(i: number): string;
  heartbeat(p: number): string;
  /** Nodes in each heartbeat body. */
  framesPerBody: number;
}

/** Pre-framed request bodies for h2load: one RenewLease and one etcd Put per node, one Heartbeat body per connection. */
function writeBodies(opts: Options, dir: string, etcdValue: Buffer): Bodies {
  const renew = (i: number): string => path.join(dir, `renew-${i}`);
  const put = (i: number): string => path.join(dir, `put-${i}`);
  const heartbeat = (p: number): string => path.join(dir, `hb-${p}`);
  for (let i = 0; i < opts.nodes; i++) {
    const name = benchNodeName(i);
    fs.writeFileSync(renew(i), grpcFrame(RenewLeaseRequest.encode({ nodeName: name, holderIdentity: "", leaseDurationSeconds: 0 }).finish()));
    fs.writeFileSync(put(i), grpcFrame(encodePutRequest(etcdLeaseKey(name), etcdValue)));
  }
  // The last node is kept for the latency probe.
  const framesPerBody = Math.floor((opts.nodes - 1) / opts.hbConns);
  for (let p = 0; p < opts.hbConns; p++) {
    const frames: Buffer[] = [];
    for (let j = 0; j < framesPerBody; j++) {
      const node = opts.hot ? 0 : p * framesPerBody + j;
      frames.push(grpcFrame(HeartbeatRequest.encode({ nodeName: benchNodeName(node), holderIdentity: "", leaseDurationSeconds: 0 }).finish()));
    }
    fs.writeFileSync(heartbeat(p), Buffer.concat(frames));
  }
  return { dir, renew, put, heartbeat, framesPerBody };
}

/** h2load, unary: `inFlight` processes, each one connection with one call in flight on its own node (nodes from `offset`). */
/** Bytes of one answer's gRPC frame: at least `min`; exactly `min` when `exact` (a constant answer). */
interface AnswerSize {
  min: number;
  exact: boolean;
}

function h2loadUnaryDrive(opts: Options, bin: H2loadBinary, bodies: Bodies, workDir: string, url: string, kind: "renew" | "put", inFlight: number, offset: number, answer: AnswerSize) {
  return async (hooks: WindowHooks): Promise<LoadOutcome> => {
    const jobs = Array.from({ length: inFlight }, (_, k) => {
      const node = (offset + k) % opts.nodes;
      return { bodyFile: kind === "renew" ? bodies.renew(node) : bodies.put(node), clients: 1, streams: 1 };
    });
    const r = await runH2load(bin, { url, jobs, warmupMs: opts.warmupS * 1000, durationMs: opts.durationS * 1000, workDir, perRequestLog: true }, hooks);
    if (r.windowBadStatus > 0) throw new Error(`${url}: ${r.windowBadStatus} answers in the window had an HTTP status other than 200`);
    if (r.non2xx > 0) throw new Error(`${url}: h2load saw ${r.non2xx} non-2xx answers`);
    // A gRPC error is a trailers-only answer: no message, no DATA bytes.
    if (r.dataBytes < r.succeeded * answer.min) {
      throw new Error(`${url}: ${r.succeeded} answers carried ${r.dataBytes} bytes, less than ${answer.min} each: some were gRPC errors without a message`);
    }
    // A constant answer: every one accounted for (calls cut when h2load stopped may add a partial few).
    if (answer.exact && r.dataBytes > (r.succeeded + inFlight) * answer.min) {
      throw new Error(`${url}: ${r.succeeded} answers carried ${r.dataBytes} bytes, more than ${answer.min} each`);
    }
    return {
      windowOk: r.windowOk,
      windowMs: r.windowMs,
      hist: r.hist,
      latency: "client",
      clientCpuMs: r.clientCpuMs,
      atLeastOk: r.succeeded,
      admittedMs: r.allServedAfterMs,
    };
  };
}

/**
 * One agent's view while h2load floods the Heartbeat: a grpc-js stream in this process renewing
 * its own node, one renewal in flight, recording latencies while `recording`.
 */
class HeartbeatProbe {
  readonly hist = new Histogram();
  recording = false;
  private stopped = false;
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private readonly done: Promise<void>;
  private error: string | undefined;

  constructor(address: string, node: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
    const id = (b: Buffer): Buffer => b;
    this.call = this.client.makeBidiStreamRequest<Buffer, Buffer>(HEARTBEAT_PATH, id, id, new grpc.Metadata(), { deadline: Date.now() + 120_000 });
    const req = Buffer.from(HeartbeatRequest.encode({ nodeName: node, holderIdentity: "", leaseDurationSeconds: 0 }).finish());
    let sentAt = performance.now();
    this.call.on("data", (res: Buffer) => {
      const t = performance.now();
      if (HeartbeatResponse.decode(res).lease?.metadata?.name !== node) this.error = `the probe renewed ${node} but got another lease`;
      if (this.recording) this.hist.record((t - sentAt) * 1000);
      if (this.stopped) return;
      sentAt = performance.now();
      this.call.write(req);
    });
    this.done = new Promise<void>((resolve) => {
      this.call.on("status", (s: grpc.StatusObject) => {
        if (s.code !== grpc.status.OK && !this.stopped) this.error = `probe stream ended: ${grpc.status[s.code]} ${s.details}`;
        resolve();
      });
    });
    this.call.on("error", () => undefined);
    this.call.write(req);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.recording = false;
    this.call.end();
    const timer = setTimeout(() => this.call.cancel(), 5000);
    await this.done;
    clearTimeout(timer);
    this.client.close();
    if (this.error) throw new Error(this.error);
  }
}

/** h2load, Heartbeat: --hb-conns processes, each one connection with --hb-streams streams, bodies of many framed requests. */
function h2loadHeartbeatDrive(opts: Options, bin: H2loadBinary, bodies: Bodies, workDir: string, address: string) {
  return async (hooks: WindowHooks): Promise<LoadOutcome> => {
    const probe = new HeartbeatProbe(address, benchNodeName(opts.nodes - 1));
    let r;
    try {
      const jobs = Array.from({ length: opts.hbConns }, (_, p) => ({ bodyFile: bodies.heartbeat(p), clients: 1, streams: opts.hbStreams }));
      r = await runH2load(
        bin,
        { url: `http://${address}${HEARTBEAT_PATH}`, jobs, warmupMs: opts.warmupS * 1000, durationMs: opts.durationS * 1000, workDir, perRequestLog: false },
        {
          open: (pids) => {
            probe.recording = true;
            hooks.open(pids);
          },
          close: (pids) => {
            probe.recording = false;
            hooks.close(pids);
          },
        },
      );
    } finally {
      await probe.stop();
    }
    if (r.non2xx > 0) throw new Error(`Heartbeat: h2load saw ${r.non2xx} non-2xx answers`);
    if (r.dataBytes === 0) throw new Error("Heartbeat: h2load received no response data");
    return { windowOk: 0, windowMs: r.windowMs, hist: probe.hist, latency: "probe", clientCpuMs: r.clientCpuMs, rateFromServer: true };
  };
}

// ---------------------------------------------------------------------------------------
// Setup steps

async function registerNodes(address: string, count: number): Promise<void> {
  const client = new NodeClient(address, { timeoutMs: 30_000 });
  try {
    await client.waitForReady(10_000);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const name = benchNodeName(i);
        const { lease } = await client.register({
          metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "nodeplane.io/bench": "true" } },
          status: {
            capacity: { cpu: "4", memory: "16Gi", pods: "110" },
            allocatable: { cpu: "3800m", memory: "15Gi", pods: "110" },
            addresses: [
              { type: "InternalIP", address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}` },
              { type: "Hostname", address: name },
            ],
            conditions: [{ type: "Ready", status: "True", reason: "AgentReady", message: "agent is posting ready status" }],
            nodeInfo: { kernelVersion: "6.1.0", osImage: "Debian GNU/Linux 12", operatingSystem: "linux", architecture: "amd64", agentVersion: "0.1.0" },
          },
        });
        if (lease?.metadata?.name !== name) throw new Error(`registering ${name} answered no lease of its own`);
      }
    };
    await Promise.all(Array.from({ length: 32 }, lane));
  } finally {
    client.close();
  }
}

/** A real Lease from nodeplane: what the trivial server answers and what etcd stores per Put. */
async function sampleLease(address: string): Promise<Lease> {
  const client = new NodeClient(address);
  try {
    return await client.renewLease(benchNodeName(0));
  } finally {
    client.close();
  }
}

/** Leases of a spread of the nodes the run renewed must all have been renewed since `since` (the server's own view). */
async function checkRenewed(address: string, renewed: number[], since: Date): Promise<number> {
  const client = new NodeClient(address);
  try {
    const step = Math.max(1, Math.floor(renewed.length / 20));
    let checked = 0;
    for (let k = 0; k < renewed.length; k += step) {
      const name = benchNodeName(renewed[k]!);
      const lease = await client.getLease(name);
      const at = lease.spec?.renewTime;
      if (!at || at < since) throw new Error(`lease of ${name} was last renewed ${at?.toISOString() ?? "never"}, before the load started`);
      checked++;
    }
    return checked;
  } finally {
    client.close();
  }
}

/** Each pre-framed body answered OK once, by hand (node:http2, trailers read): h2load would not tell. */
async function probeBodies(bodies: Bodies, np: string, trivial: string, etcd: Etcd | undefined, framesPerBody: number): Promise<Record<Target, AnswerSize>> {
  const check = async (what: string, origin: string, p: string, file: string, expect: number): Promise<Buffer[]> => {
    const r = await grpcCall(origin, p, fs.readFileSync(file));
    if (r.grpcStatus !== "0") throw new Error(`${what}: grpc-status ${r.grpcStatus ?? "(none)"} ${r.grpcMessage ?? ""}`);
    if (r.messages.length !== expect) throw new Error(`${what}: ${r.messages.length} messages, want ${expect}`);
    return r.messages;
  };
  const [lease] = await check("RenewLease body on nodeplane", `http://${np}`, RENEW_PATH, bodies.renew(0), 1);
  if (RenewLeaseResponse.decode(lease!).lease?.metadata?.name !== benchNodeName(0)) throw new Error("RenewLease body: wrong lease in the answer");
  const [constant] = await check("RenewLease body on the trivial server", `http://${trivial}`, RENEW_PATH, bodies.renew(0), 1);
  await check("Heartbeat body on nodeplane", `http://${np}`, HEARTBEAT_PATH, bodies.heartbeat(0), framesPerBody);
  let put: Buffer | undefined;
  if (etcd) {
    [put] = await check("Put body on etcd", etcd.clientUrl, ETCD_PUT_PATH, bodies.put(0), 1);
    if (!put || put.length === 0) throw new Error("Put body on etcd: empty PutResponse");
  }
  // What one answer's frame weighs: the trivial server's is constant; nodeplane's Lease varies by a
  // few bytes (revision digits, timestamp nanos); etcd's PutResponse only grows (its revision).
  return {
    trivial: { min: 5 + constant!.length, exact: true },
    nodeplane: { min: 5 + Math.max(1, lease!.length - 10), exact: false },
    etcd: { min: 5 + Math.max(1, (put?.length ?? 1) - 2), exact: false },
  };
}

// ---------------------------------------------------------------------------------------
// Reporting

interface Row {
  scenario: Scenario;
  target: Target;
  inFlight: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  all: Measurement[];
}

function summarize(ms: Measurement[]): Row[] {
  const rows: Row[] = [];
  const keys = new Map<string, Measurement[]>();
  for (const m of ms) {
    const k = `${m.scenario}|${m.target}|${m.inFlight}`;
    keys.set(k, [...(keys.get(k) ?? []), m]);
  }
  for (const all of keys.values()) {
    const m0 = all[0]!;
    rows.push({
      scenario: m0.scenario,
      target: m0.target,
      inFlight: m0.inFlight,
      callsPerSec: median(all.map((m) => m.callsPerSec)),
      p50Ms: median(all.map((m) => m.p50Ms)),
      p99Ms: median(all.map((m) => m.p99Ms)),
      all,
    });
  }
  return rows;
}

/** Per repeat, a's value over b's (measured back to back, so drift cancels). */
function pairedRatios(a: Row, b: Row, f: (m: Measurement) => number): number[] {
  return a.all.flatMap((m) => {
    const x = b.all.find((y) => y.repeat === m.repeat);
    return x ? [f(m) / f(x)] : [];
  });
}
const pairedRatio = (a: Row, b: Row, f: (m: Measurement) => number): number => median(pairedRatios(a, b, f));
const fmtX = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–");

interface Names {
  etcd: string;
}

function rowName(r: Row, n: Names): string {
  if (r.scenario === "heartbeat" && r.target === "nodeplane") return "nodeplane Heartbeat (stream)";
  if (r.target === "nodeplane") return "nodeplane RenewLease";
  if (r.target === "trivial") return "trivial grpc-js RenewLease";
  return `etcd ${n.etcd} Put (Lease-sized value)`;
}

function renewTable(rows: Row[], n: Names): string {
  const withEtcd = rows.some((r) => r.target === "etcd");
  const out = [
    `| target | in-flight | calls/s | p50 ms | p99 ms | nodeplane/trivial |${withEtcd ? " nodeplane/etcd |" : ""}`,
    `|---|---:|---:|---:|---:|---|${withEtcd ? "---|" : ""}`,
  ];
  for (const r of rows.filter((x) => x.scenario === "renew")) {
    const base = (t: Target): Row | undefined => rows.find((b) => b.scenario === "renew" && b.target === t && b.inFlight === r.inFlight);
    const ratio = (t: Target): string => {
      const b = base(t);
      if (r.target === t) return "1 (baseline)";
      if (r.target !== "nodeplane" || !b) return "";
      return `${fmtX(pairedRatio(r, b, (m) => m.callsPerSec))} calls/s, ${fmtX(pairedRatio(r, b, (m) => m.p99Ms))} p99`;
    };
    out.push(`| ${rowName(r, n)} | ${r.inFlight} | ${fmtInt(r.callsPerSec)} | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${ratio("trivial")} |${withEtcd ? ` ${ratio("etcd")} |` : ""}`);
  }
  return out.join("\n");
}

function heartbeatTable(rows: Row[], n: Names, opts: Options, generator: Generator, etcdBest: Row | undefined): string {
  const out = [
    "| target | concurrency | renewals/s | p50 ms | p99 ms | server p50 / p99 ms | heartbeat/etcd beside | heartbeat/etcd best in run |",
    "|---|---|---:|---:|---:|---|---|---|",
  ];
  const hb = rows.find((r) => r.scenario === "heartbeat" && r.target === "nodeplane");
  const beside = rows.find((r) => r.scenario === "heartbeat" && r.target === "etcd");
  for (const r of [hb, beside]) {
    if (!r) continue;
    const streams =
      r.target === "nodeplane"
        ? generator === "h2load"
          ? `${r.inFlight} streams (${opts.hbConns} conns × ${opts.hbStreams})`
          : `${r.inFlight} streams (${opts.workers} workers)`
        : `${r.inFlight} calls in flight`;
    const server =
      r.target === "nodeplane" ? `${fmtMs(median(r.all.map((m) => m.serverP50Ms ?? Number.NaN)))} / ${fmtMs(median(r.all.map((m) => m.serverP99Ms ?? Number.NaN)))}` : "–";
    const vsBeside = r.target === "nodeplane" && beside ? fmtX(pairedRatio(r, beside, (m) => m.callsPerSec)) : r.target === "etcd" ? "1 (baseline)" : "–";
    const vsBest = r.target === "nodeplane" && etcdBest ? `${fmtX(r.callsPerSec / etcdBest.callsPerSec)} (etcd ${fmtInt(etcdBest.callsPerSec)}/s at ${etcdBest.inFlight}${etcdBest.scenario === "renew" ? "" : ", beside"})` : "";
    const probe = r.all[0]?.latency === "probe" ? " (probe)" : "";
    out.push(`| ${rowName(r, n)} | ${streams} | ${fmtInt(r.callsPerSec)} | ${fmtMs(r.p50Ms)}${probe} | ${fmtMs(r.p99Ms)}${probe} | ${server} | ${vsBeside} | ${vsBest} |`);
  }
  return out.join("\n");
}

function detailTable(rows: Row[], n: Names): string {
  const out = [
    "| scenario | target | in-flight | calls/s per repeat | server-counted calls/s per repeat | p99 ms per repeat | mean ms | max ms | server CPU | server CPU µs/call | generator CPU | other load CPU per repeat | handler mean ms | writes/call | group commits/s | txns/commit | time in commits | all connections answered after ms |",
    "|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const defined = (xs: Array<number | undefined>): number[] => xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
    const serverCpu = defined(r.all.map((m) => m.serverCpu));
    const perCall = r.all.flatMap((m) => (m.serverCpu === undefined ? [] : [(m.serverCpu / 100) * (1e6 / m.callsPerSec)]));
    const handler = defined(r.all.map((m) => m.handlerMeanMs));
    const writes = defined(r.all.map((m) => m.writesPerCall));
    const client = defined(r.all.map((m) => m.clientCpu));
    const commits = defined(r.all.map((m) => m.commitsPerSec));
    const txns = defined(r.all.map((m) => m.txnsPerCommit));
    const share = defined(r.all.map((m) => m.commitShare));
    out.push(
      [
        "",
        r.scenario === "renew" ? "1 unary" : "2 heartbeat",
        rowName(r, n),
        r.inFlight,
        r.all.map((m) => fmtInt(m.callsPerSec)).join(" / "),
        r.all.map((m) => (m.serverPerSec === undefined ? "–" : fmtInt(m.serverPerSec))).join(" / "),
        r.all.map((m) => fmtMs(m.p99Ms)).join(" / "),
        fmtMs(median(r.all.map((m) => m.meanMs))),
        fmtMs(Math.max(...r.all.map((m) => (Number.isFinite(m.maxMs) ? m.maxMs : 0)))),
        fmtPct(serverCpu.length ? median(serverCpu) : undefined),
        perCall.length ? fmtInt(median(perCall)) : "–",
        fmtPct(client.length ? median(client) : undefined),
        r.all.map((m) => fmtPct(m.otherCpu)).join(" / "),
        handler.length ? fmtMs(median(handler)) : "–",
        writes.length ? median(writes).toFixed(2) : "–",
        commits.length ? fmtInt(median(commits)) : "–",
        txns.length ? median(txns).toFixed(1) : "–",
        share.length ? fmtPct(median(share)) : "–",
        r.all.some((m) => m.admittedMs !== undefined) ? r.all.map((m) => (m.admittedMs === undefined ? "–" : fmtInt(m.admittedMs))).join(" / ") : "–",
        "",
      ]
        .join(" | ")
        .trim(),
    );
  }
  return out.join("\n");
}

interface Verdict {
  line: string;
  met: boolean | undefined;
}

/** The suite's summary rows (bench/summary.ts): the best unary level and the heartbeat, each beside its baseline. */
/** The streaming heartbeat's target against etcd's Put/s, by variant: issue 17 (2 ×, and 10 × for one hot Lease on SQLite), issue 14 (0.8 × with nodeplane on etcd). */
/** Store writes (revisions) per renewal over a row's windows, median; undefined when not counted. */
function writesPerRenewal(r: Row): number | undefined {
  const w = r.all.map((m) => m.writesPerCall).filter((x): x is number => x !== undefined);
  return w.length ? median(w) : undefined;
}

function heartbeatGoal(opts: Options): { times: number; what: string } {
  const where = opts.store === "etcd" ? ", nodeplane on etcd (--store etcd, the same etcd)" : "";
  if (opts.hot) return { times: opts.store === "etcd" ? 0.8 : 10, what: `one hot Lease: every stream renews one node${where}` };
  return { times: opts.store === "etcd" ? 0.8 : 2, what: `each stream its own nodes${where}` };
}

function summaryRows(rows: Row[], n: Names, opts: Options): SummaryRow[] {
  const out: SummaryRow[] = [];
  const np = rows.filter((r) => r.scenario === "renew" && r.target === "nodeplane");
  if (np.length > 0) {
    const best = np.reduce((a, b) => (b.callsPerSec > a.callsPerSec ? b : a));
    const tr = rows.find((r) => r.scenario === "renew" && r.target === "trivial" && r.inFlight === best.inFlight);
    const et = rows.find((r) => r.scenario === "renew" && r.target === "etcd" && r.inFlight === best.inFlight);
    const ratio = tr ? pairedRatio(best, tr, (m) => m.callsPerSec) : Number.NaN;
    out.push({
      scenario: `RenewLease (unary), at nodeplane's best concurrency (${best.inFlight} in flight)`,
      result: `${fmtInt(best.callsPerSec)} calls/s, p50 ${fmtMs(best.p50Ms)} / p99 ${fmtMs(best.p99Ms)} ms`,
      baseline:
        (tr ? `trivial grpc-js ${fmtInt(tr.callsPerSec)} calls/s: **${fmtX(ratio)}**` : "–") +
        (et ? `; ${rowName(et, n)} ${fmtInt(et.callsPerSec)}/s: ${fmtX(pairedRatio(best, et, (m) => m.callsPerSec))}` : ""),
      target: "≥ 0.8 × trivial; p99 ≤ 50 ms",
      verdict: verdict(tr ? ratio >= 0.8 && best.p99Ms <= 50 : undefined),
    });
  }
  const hb = rows.find((r) => r.scenario === "heartbeat" && r.target === "nodeplane");
  if (hb) {
    const etcdRows = rows.filter((r) => r.target === "etcd");
    const best = etcdRows.length ? etcdRows.reduce((a, b) => (b.callsPerSec > a.callsPerSec ? b : a)) : undefined;
    const ratio = best ? hb.callsPerSec / best.callsPerSec : Number.NaN;
    const goal = heartbeatGoal(opts);
    out.push({
      scenario: `Streaming Heartbeat as fast as it goes (${hb.inFlight} streams; ${goal.what})`,
      result:
        `${fmtInt(hb.callsPerSec)} renewals/s answered, ${writesPerRenewal(hb)?.toFixed(4) ?? "–"} store writes per renewal, ` +
        `probe p50 ${fmtMs(hb.p50Ms)} / p99 ${fmtMs(hb.p99Ms)} ms`,
      baseline: best ? `${rowName(best, n)}, its best (${best.inFlight} in flight): ${fmtInt(best.callsPerSec)}/s: **${fmtX(ratio)}**` : "– (no etcd in this run)",
      target: `≥ ${goal.times} × etcd Put/s`,
      verdict: verdict(best ? ratio >= goal.times : undefined),
    });
  }
  return out;
}

function verdicts(rows: Row[], n: Names, opts: Options): Verdict[] {
  const out: Verdict[] = [];
  const np = rows.filter((r) => r.scenario === "renew" && r.target === "nodeplane");
  if (np.length > 0) {
    const best = np.reduce((a, b) => (b.callsPerSec > a.callsPerSec ? b : a));
    const tr = rows.find((r) => r.scenario === "renew" && r.target === "trivial" && r.inFlight === best.inFlight);
    const trBest = rows.filter((r) => r.scenario === "renew" && r.target === "trivial").reduce<Row | undefined>((a, b) => (!a || b.callsPerSec > a.callsPerSec ? b : a), undefined);
    if (tr) {
      const ratio = pairedRatio(best, tr, (m) => m.callsPerSec);
      const perLevel = np
        .map((r) => {
          const t = rows.find((x) => x.scenario === "renew" && x.target === "trivial" && x.inFlight === r.inFlight);
          return t ? `${fmtX(pairedRatio(r, t, (m) => m.callsPerSec))} at ${r.inFlight}` : "";
        })
        .filter(Boolean)
        .join(", ");
      out.push({
        met: ratio >= 0.8,
        line:
          `RenewLease ≥ 0.8 × trivial grpc-js (same generator, concurrency, run), at nodeplane's best concurrency (${best.inFlight} in flight): ` +
          `**${fmtX(ratio)}** (${fmtInt(best.callsPerSec)} vs ${fmtInt(tr.callsPerSec)} calls/s) — **${ratio >= 0.8 ? "MET" : "MISSED"}**. ` +
          `Per level: ${perLevel}` +
          (trBest ? `; best over best: ${fmtX(best.callsPerSec / trBest.callsPerSec)} (trivial's best ${fmtInt(trBest.callsPerSec)} at ${trBest.inFlight}).` : "."),
      });
    }
    out.push({
      met: best.p99Ms <= 50,
      line: `RenewLease p99 ≤ 50 ms at the concurrency of best throughput (${best.inFlight} in flight): **${fmtMs(best.p99Ms)} ms** — **${best.p99Ms <= 50 ? "MET" : "MISSED"}**.`,
    });
    const et = rows.find((r) => r.scenario === "renew" && r.target === "etcd" && r.inFlight === best.inFlight);
    if (et) out.push({ met: undefined, line: `For reference, nodeplane RenewLease / ${rowName(et, n)} at ${best.inFlight} in flight: ${fmtX(pairedRatio(best, et, (m) => m.callsPerSec))}.` });
  }
  const hb = rows.find((r) => r.scenario === "heartbeat" && r.target === "nodeplane");
  const etcdRows = rows.filter((r) => r.target === "etcd");
  if (hb) {
    const goal = heartbeatGoal(opts);
    if (etcdRows.length === 0) out.push({ met: undefined, line: `Streaming heartbeat (${goal.what}) ≥ ${goal.times} × etcd Put/s: not judged (no etcd in this run).` });
    else {
      const best = etcdRows.reduce((a, b) => (b.callsPerSec > a.callsPerSec ? b : a));
      const ratio = hb.callsPerSec / best.callsPerSec;
      out.push({
        met: ratio >= goal.times,
        line:
          `Streaming heartbeat (${goal.what}) renewals/s ≥ ${goal.times} × etcd's Put/s (same run): **${fmtInt(hb.callsPerSec)}/s vs etcd's best ${fmtInt(best.callsPerSec)}/s ` +
          `(${best.inFlight} in flight) = ${fmtX(ratio)}** — **${ratio >= goal.times ? "MET" : "MISSED"}**` +
          (writesPerRenewal(hb) === undefined ? "." : `; ${writesPerRenewal(hb)!.toFixed(4)} store writes per renewal.`),
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opts = parseOptions(argv);
  for (const f of [NODEPLANE_BIN, WORKER_JS, TRIVIAL_JS]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first (npm run bench does)`);
  }
  const began = Date.now();
  const notes: string[] = [];

  // What is installed decides the generator and the baselines; say so, never crash on it.
  let h2load: H2loadBinary | undefined;
  let generator: Generator = "grpc-js";
  if (opts.generator !== "grpc-js") {
    const found = findH2load();
    if ("missing" in found) {
      const msg = `h2load not found: ${found.missing}. Install it with \`apt-get install -y ${H2LOAD_PACKAGE}\`; using grpc-js worker processes as the generator instead.`;
      if (opts.generator === "h2load") throw new Error(msg);
      log(`bench: ${msg}`);
      notes.push(msg);
    } else {
      h2load = found;
      generator = "h2load";
    }
  }
  let etcdBin: EtcdBinary | undefined;
  if (opts.etcd) {
    const found = findEtcd();
    if ("missing" in found) {
      const msg = `etcd not found: ${found.missing}. Install it with \`apt-get install -y ${ETCD_PACKAGE}\`; the etcd baseline is skipped.`;
      log(`bench: ${msg}`);
      notes.push(msg);
    } else etcdBin = found;
  } else notes.push("The etcd baseline was skipped (--no-etcd).");

  const streams = opts.hbConns * opts.hbStreams;
  const perMeasureS = opts.warmupS + opts.durationS + (generator === "h2load" ? 1.2 : 0.6);
  const targetsCount = 2 + (etcdBin ? 1 : 0);
  const plannedS =
    (opts.scenarios.has("renew") ? opts.levels.length * targetsCount * opts.repeats * perMeasureS : 0) +
    (opts.scenarios.has("heartbeat") ? opts.repeats * (etcdBin ? 2 : 1) * perMeasureS : 0);
  log(
    `bench: ${opts.quick ? "QUICK, " : ""}${opts.nodes} nodes, generator ${generator}${h2load ? ` (h2load ${h2load.version})` : ` (${opts.workers} workers)`}, ` +
      `etcd ${etcdBin ? etcdBin.version : "skipped"}, RenewLease in-flight ${opts.levels.join("/")}, Heartbeat ${streams} streams, ` +
      `${opts.repeats}× (${opts.warmupS} s warm-up + ${opts.durationS} s): about ${Math.round(plannedS)} s of load`,
  );
  // The whole run is bounded: setup, load and teardown.
  const limitS = Math.round(plannedS * 2 + 180);
  setTimeout(() => {
    process.stderr.write(`\nbench: the run did not finish within ${limitS} s: stopping\n`);
    process.exit(1);
  }, limitS * 1000).unref();

  const tmp = trackTempDir(fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-bench-")));
  const dataDir = path.join(tmp, "data");
  fs.mkdirSync(dataDir);
  const profDir = opts.cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-bench-prof-")) : undefined;
  const profFlags = (name: string): string[] => (profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []);

  // etcd first: with --store etcd nodeplane keeps its data there too (under its own key prefix, apart from the Put baseline's keys).
  let etcd: Etcd | undefined;
  if (etcdBin) {
    try {
      etcd = await startEtcd(etcdBin);
      log(`bench: etcd ${etcd.version} at ${etcd.clientUrl} (data dir ${etcd.dataDir}, ${fsTypeOf(etcd.dataDir)})`);
    } catch (err) {
      const msg = `etcd ${etcdBin.version} could not be started (${err instanceof Error ? err.message.split("\n")[0] : String(err)}); the etcd baseline is skipped.`;
      if (opts.store === "etcd") throw new Error(msg);
      log(`bench: ${msg}`);
      notes.push(msg);
    }
  }
  if (opts.store === "etcd" && !etcd) throw new Error("--store etcd: etcd is not installed (apt-get install -y etcd-server)");
  if (opts.hot && generator !== "h2load") throw new Error("--hb-hot needs h2load as the generator (apt-get install -y nghttp2-client)");
  const etcdUrl = etcd?.clientUrl;
  const storeFlags = opts.store === "etcd" ? ["--store", "etcd", "--etcd-endpoints", etcdUrl!] : [];

  const nodeplane = await spawnServing(
    "nodeplane",
    [...profFlags("nodeplane"), NODEPLANE_BIN, "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dataDir, ...storeFlags, "--log-level", "warn"],
    /^nodeplane serving grpc=[^:]+:(\d+) http=(\d+|-)/,
  );
  if (nodeplane.httpPort === undefined) throw new Error("nodeplane did not report its HTTP port (needed for /metrics)");
  const npHttp = nodeplane.httpPort;
  const npAddress = `127.0.0.1:${nodeplane.port}`;
  log(`bench: nodeplane serving at ${npAddress} (${opts.store === "etcd" ? `store: etcd at ${etcdUrl!}` : `data dir ${dataDir}, ${fsTypeOf(dataDir)}`})`);

  const t = Date.now();
  await registerNodes(npAddress, opts.nodes);
  log(`bench: registered ${opts.nodes} nodes in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  const lease = await sampleLease(npAddress);
  const leaseBytes = Buffer.from(Lease.encode(lease).finish());
  const response = Buffer.from(RenewLeaseResponse.encode({ lease }).finish());
  const trivial = await spawnServing("trivial server", [...profFlags("trivial"), TRIVIAL_JS, response.toString("base64")], /^trivial serving grpc=[^:]+:(\d+)/);
  const trivialAddress = `127.0.0.1:${trivial.port}`;
  log(`bench: trivial server at ${trivialAddress}, answering a ${response.length}-byte RenewLeaseResponse`);


  const ctx: Ctx = {
    servers: {
      nodeplane: { pid: nodeplane.child.pid, counters: (s) => nodeplaneCounters(npHttp, s) },
      trivial: { pid: trivial.child.pid },
      ...(etcd && etcdUrl
        ? {
            etcd: {
              pid: etcd.child.pid,
              counters: async (): Promise<Counters> => {
                const c = await scrapeEtcd(etcdUrl);
                return { ok: c.putOk, notOk: c.putNotOk, revision: c.revision };
              },
            },
          }
        : {}),
    },
  };

  // Generators
  let workers: Worker[] = [];
  let bodies: Bodies | undefined;
  let answers: Record<Target, AnswerSize> = { nodeplane: { min: 6, exact: false }, trivial: { min: 6, exact: false }, etcd: { min: 6, exact: false } };
  const h2Work = path.join(tmp, "h2load");
  if (generator === "h2load") {
    const dir = path.join(tmp, "bodies");
    fs.mkdirSync(dir);
    bodies = writeBodies(opts, dir, leaseBytes);
    answers = await probeBodies(bodies, npAddress, trivialAddress, etcd, bodies.framesPerBody);
    log(`bench: ${opts.nodes} RenewLease and Put bodies, ${opts.hbConns} Heartbeat bodies of ${bodies.framesPerBody} requests each; each answered OK when sent by hand`);
  } else {
    const targets: Record<string, TargetSpec> = { nodeplane: { address: npAddress, kind: "renew" }, trivial: { address: trivialAddress, kind: "renew" } };
    if (etcd) targets.etcd = { address: `127.0.0.1:${etcd.port}`, kind: "etcd-put" };
    workers = await startWorkers(opts, targets, leaseBytes);
  }
  const loadStarted = new Date();
  const renewed = new Set<number>();

  const available: Target[] = ["nodeplane", "trivial", ...(etcd ? (["etcd"] as const) : [])];
  const urlOf = (target: Target): string =>
    target === "etcd" ? `${etcdUrl!}${ETCD_PUT_PATH}` : `http://${target === "nodeplane" ? npAddress : trivialAddress}${RENEW_PATH}`;
  let offset = 0;
  const unaryDrive = (target: Target, inFlight: number): ((hooks: WindowHooks) => Promise<LoadOutcome>) => {
    if (generator === "h2load") {
      const from = offset;
      offset = (offset + inFlight) % opts.nodes;
      if (target === "nodeplane") for (let k = 0; k < inFlight; k++) renewed.add((from + k) % opts.nodes);
      return h2loadUnaryDrive(opts, h2load!, bodies!, h2Work, urlOf(target), target === "etcd" ? "put" : "renew", inFlight, from, answers[target]);
    }
    if (target === "nodeplane") for (let k = 0; k < opts.nodes; k++) renewed.add(k);
    return workersDrive(opts, workers, target, "unary", inFlight, target === "nodeplane" ? "name" : target === "trivial" ? "lease" : "etcd");
  };
  const report = (m: Measurement): void =>
    log(
      `  [${m.repeat + 1}/${opts.repeats}] ${m.scenario === "renew" ? "unary    " : "heartbeat"} ${m.target.padEnd(9)} ${String(m.inFlight).padStart(4)}: ` +
        `${fmtInt(m.callsPerSec).padStart(7)}/s  p50 ${fmtMs(m.p50Ms).padStart(5)} ms  p99 ${fmtMs(m.p99Ms).padStart(5)} ms  ` +
        `server ${m.serverPerSec === undefined ? "–" : fmtInt(m.serverPerSec)}/s CPU ${fmtPct(m.serverCpu).padStart(4)}  generator CPU ${fmtPct(m.clientCpu).padStart(4)}  other load ${fmtPct(m.otherCpu).padStart(4)}`,
    );

  const measurements: Measurement[] = [];
  if (opts.scenarios.has("renew")) {
    log("bench: 1. RenewLease (unary) at rising concurrency");
    for (let r = 0; r < opts.repeats; r++) {
      for (let l = 0; l < opts.levels.length; l++) {
        const order = available.map((_, k) => available[(k + r + l) % available.length]!);
        for (const target of order) {
          const inFlight = opts.levels[l]!;
          const m = await measure(ctx, "renew", target, inFlight, r, unaryDrive(target, inFlight));
          measurements.push(m);
          report(m);
        }
      }
    }
  }
  if (opts.scenarios.has("heartbeat")) {
    // etcd beside the heartbeat at the concurrency where it did best in part 1 (else 64).
    const etcdPart1 = summarize(measurements).filter((x) => x.target === "etcd");
    const etcdLevel = etcdPart1.length ? etcdPart1.reduce((a, b) => (b.callsPerSec > a.callsPerSec ? b : a)).inFlight : Math.min(64, opts.nodes);
    log(`bench: 2. streaming Heartbeat as fast as it goes (${streams} streams)${etcd ? `, beside etcd Put at ${etcdLevel} in flight` : ""}`);
    if (opts.hot) renewed.add(0);
    else if (generator === "h2load") for (let k = 0; k < opts.hbConns * bodies!.framesPerBody; k++) renewed.add(k);
    else for (let k = 0; k < opts.nodes; k++) renewed.add(k);
    for (let r = 0; r < opts.repeats; r++) {
      const order: Target[] = etcd ? (r % 2 === 0 ? ["nodeplane", "etcd"] : ["etcd", "nodeplane"]) : ["nodeplane"];
      for (const target of order) {
        const m =
          target === "nodeplane"
            ? await measure(
                ctx,
                "heartbeat",
                "nodeplane",
                streams,
                r,
                generator === "h2load" ? h2loadHeartbeatDrive(opts, h2load!, bodies!, h2Work, npAddress) : workersDrive(opts, workers, "nodeplane", "heartbeat", streams, "name"),
              )
            : await measure(ctx, "heartbeat", "etcd", etcdLevel, r, unaryDrive("etcd", etcdLevel));
        measurements.push(m);
        report(m);
      }
    }
  }

  // The servers' own view at the end: leases really renewed, clean shutdown.
  const checked = await checkRenewed(npAddress, [...renewed].sort((a, b) => a - b), loadStarted);
  for (const w of workers) w.send({ type: "exit" });
  const npExit = await stopServer(nodeplane, "nodeplane");
  const trExit = await stopServer(trivial, "trivial server");
  if (etcd) await etcd.stop();
  if (npExit.code !== 0) throw new Error(`nodeplane exited with ${npExit.code ?? npExit.signal} on SIGTERM:\n${nodeplane.output()}`);
  if (trExit.code !== 0) throw new Error(`the trivial server exited with ${trExit.code ?? trExit.signal}:\n${trivial.output()}`);
  if (nodeplane.output().trim()) log(`bench: nodeplane said (warn and above):\n${nodeplane.output()}`);

  const rows = summarize(measurements);
  const names: Names = { etcd: etcd?.version ?? "" };
  const etcdRows = rows.filter((r) => r.target === "etcd");
  const etcdBest = etcdRows.length ? etcdRows.reduce((a, b) => (b.callsPerSec > a.callsPerSec ? b : a)) : undefined;
  const totalCalls = measurements.reduce((a, m) => a + m.calls, 0);
  const command =
    process.env.npm_lifecycle_event === "bench" ? `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}` : `node dist/bench/run.js ${argv.join(" ")}`.trim();
  const cpus = os.cpus();
  const machine =
    `${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}, data dirs on ${fsTypeOf(dataDir)} (${path.dirname(tmp)})`;
  const generatorLine =
    generator === "h2load"
      ? `h2load ${h2load!.version} (Debian ${H2LOAD_PACKAGE}), pre-framed gRPC bodies. RenewLease and etcd Put: "in-flight L" is L h2load processes, ` +
        "each one HTTP/2 connection with one call in flight (closed loop), each on its own node (its own Lease key in etcd) — L agents; " +
        `h2load sends one body per process, and two calls renewing one node at once would queue behind each other in nodeplane. Latencies are h2load's per-request times. ` +
        `Heartbeat: ${opts.hbConns} h2load processes, each one connection with ${opts.hbStreams} concurrent Heartbeat streams whose body is ${bodies!.framesPerBody} framed ` +
        "HeartbeatRequests for that process's own nodes (the streams of one process walk the same nodes, staggered; with --hb-hot all for one node); the server answers each in order. " +
        "h2load sees whole streams only, so the rate is nodeplane's own `nodeplane_heartbeats_total{code=\"OK\"}` over the window (the probe's few renewals included), and p50/p99 are those of a probe agent " +
        "(one more stream on its own node, one renewal in flight, in the orchestrating process) during the window; server p50/p99 are nodeplane's Heartbeat handling histogram (renewal start to answer written, interpolated in its buckets)."
      : `${opts.workers} grpc-js worker processes (bench/load-worker.ts), one channel each, closed loop, total in-flight split evenly; each unary call renews the next of the worker's nodes ` +
        `(for etcd: Puts that node's Lease key); Heartbeat: ${streams} streams over the workers, each renewing its own node, one renewal in flight per stream; latencies per call or renewal as the workers saw them.`;

  const noisy = measurements.filter((m) => (m.otherCpu ?? 0) > 25);
  if (noisy.length > 0) {
    const worst = Math.max(...noisy.map((m) => m.otherCpu ?? 0));
    notes.push(
      `Other jobs on this machine took more than 25% of a core during ${noisy.length} of ${measurements.length} windows (up to ${fmtPct(worst)}; column "other load"): ` +
        "those figures are low and noisy; read the ratios of neighbouring measurements, and rerun on a quiet machine for absolute numbers.",
    );
  }
  const verdictLines = verdicts(rows, names, opts);
  const renew = opts.scenarios.has("renew") ? renewTable(rows, names) : "";
  const heartbeat = opts.scenarios.has("heartbeat") ? heartbeatTable(rows, names, opts, generator, etcdBest) : "";
  const targetsText = verdictLines.map((v) => `- ${v.line}`).join("\n");
  const doc = [
    "# Heartbeat benchmark: RenewLease and the streaming Heartbeat beside grpc-js and etcd",
    "",
    `- Command: \`${command}\`${opts.quick ? " (quick smoke run: fewer levels, one repeat, short windows)" : ""}`,
    `- Date: ${new Date(began).toISOString()} (took ${Math.round((Date.now() - began) / 1000)} s)`,
    `- Machine: ${machine}`,
    `- Generator: ${generatorLine}`,
    `- Baselines: a trivial grpc-js server (bench/trivial-server.ts) serving the same NodeService definition, answering a constant ${response.length}-byte RenewLeaseResponse: the ceiling of grpc-js, our stack, on this machine. ` +
      (etcd
        ? `etcd ${etcd.version} (\`${etcdBin!.path}\`, Debian ${ETCD_PACKAGE}), one member on loopback, data dir in a temp dir on the same disk, default settings (fsync on every commit), ` +
          `answering \`etcdserverpb.KV/Put\` of the node's Lease key (/registry/leases/kube-node-lease/NAME) with a ${leaseBytes.length}-byte value (a real Lease as nodeplane stores it): what Kubernetes pays per renewal, at least.`
        : "etcd: not in this run."),
    `- Windows: ${opts.warmupS} s warm-up then ${opts.durationS} s measured; ${opts.repeats} repeat(s) per target and level, rotating which target goes first; figures are medians of the repeats, ` +
      "each ratio the median of per-repeat ratios (targets measured back to back). Clients and servers share the machine's CPUs.",
    ...notes.map((n) => `- Note: ${n}`),
    "",
    "What is measured: a node heartbeat end to end. In nodeplane a renewal of a Lease the server knows is applied in memory and answered at once; every " +
      "--lease-checkpoint-interval (1 s) one checkpoint writes each Lease renewed since the last one, once (a compare-and-swap txn per 128 Leases), and renewals wait for " +
      "their checkpoint while one lags (README, Lease renewals). Writes/call is the store's revisions per renewal: far below 1. " +
      `Store: ${opts.store === "etcd" ? `etcd (nodeplane --store etcd on the run's etcd ${etcd?.version ?? ""}, the one the Put baseline writes to)` : "SQLite (WAL, synchronous=FULL) in a temp dir"}. ` +
      (opts.hot ? "Heartbeat: every stream renews the same node (one hot Lease)." : ""),
    "",
    ...(renew ? ["## 1. RenewLease (unary) at rising concurrency", "", renew, ""] : []),
    ...(heartbeat ? ["## 2. Streaming heartbeat, as fast as it goes", "", heartbeat, ""] : []),
    "## Targets (issues 7, 14 and 17)",
    "",
    targetsText,
    "",
    "A missed target is explained by a profile: `node dist/bench/run.js --cpu-prof --scenarios heartbeat` (or `renew`) profiles nodeplane and the trivial server and prints where their CPU goes.",
    "",
    "## Details",
    "",
    "Server CPU is % of one core over the window (/proc); generator CPU is all h2load processes or workers together; other load is CPU taken by processes outside the benchmark " +
      "(other jobs on this shared machine), a noise indicator; server-counted calls/s is the server's own OK counter over the window (nodeplane /metrics, etcd's grpc_server_handled_total); " +
      "handler mean is nodeplane's handling-time histogram; writes/call is the store revision (nodeplane) or MVCC revision (etcd) delta per OK call: 1.00 = one committed write each; " +
      "group commits/s, txns/commit and time in commits come from nodeplane's store metrics (time in commits = share of the window the store's writer thread spent applying and committing batches, fsync included; the main thread serves gRPC meanwhile); " +
      "all connections answered after: from the last h2load process start until every one of them had had its first answer — the window (calls/s, latencies) starts no earlier, " +
      "so a slow admission of new connections (a reconnect storm) is shown here rather than mixed into the steady state.",
    "",
    detailTable(rows, names),
    "",
    `Checks: ${fmtInt(totalCalls)} measured calls/renewals; in every window the servers counted no failed call; ` +
      (generator === "h2load"
        ? "every request body was sent once by hand first and answered grpc-status 0; h2load's answers all carried a gRPC message (response bytes); nodeplane and etcd counted at least as many OK calls as h2load did; "
        : "every worker call answered OK and nodeplane's (and etcd's) OK counters matched the workers' exactly; ") +
      `${checked} sampled leases (of the ${renewed.size} nodes renewed) were renewed during the run; nodeplane shut down cleanly on SIGTERM.`,
    "",
  ].join("\n");

  process.stdout.write(`\n${renew ? `${renew}\n\n` : ""}${heartbeat ? `${heartbeat}\n\n` : ""}${targetsText}\n`);
  if (profDir) {
    for (const name of ["nodeplane", "trivial"]) {
      const file = path.join(profDir, `${name}.cpuprofile`);
      if (fs.existsSync(file)) process.stdout.write(`\n${summarizeProfile(file)}\n`);
      else log(`bench: no profile at ${file}`);
    }
    log(`bench: profiles kept in ${profDir}; results file not written (profiling slows the servers)`);
  } else if (opts.out) {
    fs.writeFileSync(opts.out, doc);
    log(`bench: wrote ${path.relative(process.cwd(), opts.out) || opts.out} (took ${Math.round((Date.now() - began) / 1000)} s)`);
  }
  emitSummary({
    bench: "run.js",
    details: opts.out && !profDir ? path.relative(ROOT, opts.out) : undefined,
    tookS: (Date.now() - began) / 1000,
    rows: summaryRows(rows, names, opts),
    failures: [],
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\nbench FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
