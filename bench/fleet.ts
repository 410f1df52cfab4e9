/**
 * `node dist/bench/fleet.js`: a simulated fleet of in-process NodeAgents (the SDK's node agent,
 * src/agent/agent.ts) heartbeating against one real nodeplane server, spawned as a child
 * process with a temp data dir. The agents share a few NodeClient channels round-robin (one
 * grpc-js channel per agent would be unrealistic for one process); each channel has its own
 * HTTP/2 connection. Their probe returns a fixed, realistic MachineStatus, so the status never
 * changes and only the report period (5 min, longer than the run) would send it.
 *
 * Phases, each bounded:
 *   0. idle: the server with no agents for --window seconds: its CPU.
 *   1. registration: start all --agents agents at once; time until every `registered` resolves.
 *   2. steady state: lease duration --lease (default 40 s: a renewal every 10 s per agent,
 *      ~1,000 renewals/s for 10,000 agents); after --warmup, --window seconds: renewals/s
 *      (agents' stats and the server's RenewLease OK counter), server CPU and RSS, agent failures
 *      (must be 0), this (client) process's CPU. The agents started together stay in step, so
 *      their renewals come in waves; hence
 *   2b. the same steady state with the fleet restarted and its starts spread evenly over two
 *      renewal periods, so that renewals are spread evenly in time (--spread-window seconds;
 *      0 skips it).
 *   3. pushed: the fleet restarted at once with lease duration --hard-lease (4 s: ~10,000
 *      renewals/s offered); the re-registration is timed, then after --hard-warmup,
 *      --hard-window seconds. Failures are reported here, not fatal.
 * Between phases the agents are stopped and the server left to drain what they cancelled.
 * The main table gives each window as a whole (the load comes in waves, so short sub-windows
 * differ a lot); each window is also cut into --windows sub-windows, listed with their medians
 * in a detail table. The client process (all agents) shares the
 * machine's CPUs with the server: its CPU and event-loop delay are reported so a reader can
 * tell who is the bottleneck. Prints a markdown table and writes bench/RESULTS-fleet.md.
 *
 * Flags (or env FLEET_<NAME>, e.g. FLEET_AGENTS=2000):
 *   --agents N          agents in the fleet (default 10000)
 *   --channels C        NodeClient channels shared round-robin (default 8)
 *   --lease S           steady-state lease duration, s (default 40)
 *   --window S          steady-state (and idle) measured seconds (default 30)
 *   --warmup S          seconds after registration before the steady window (default 5)
 *   --hard-lease S      pushed-phase lease duration, s (default 4)
 *   --hard-window S     pushed-phase measured seconds (default 15)
 *   --hard-warmup S     seconds after re-registration before the pushed window (default 3)
 *   --spread-window S   measured seconds of the spread-start steady state (default 20; 0 = skip)
 *   --windows K         sub-windows per measured window, listed with medians (default 3)
 *   --register-timeout S  bound on each (re-)registration (default 60)
 *   --out FILE          where to write the results (default bench/RESULTS-fleet.md; "" = nowhere)
 *
 * Everything is local (127.0.0.1) and bounded; the server is killed and the data dir removed on
 * exit, error or signal; on success every agent is stopped and the server stopped with SIGTERM.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { type AgentLogger, type AgentStats, NodeAgent } from "../src/agent/agent.js";
import type { MachineStatus } from "../src/agent/machine.js";
import { NodeClient, type RenewOptions } from "../src/client/client.js";
import type { Lease } from "../src/gen/nodeplane/v1/lease.js";
import type { NodeCondition } from "../src/gen/nodeplane/v1/node.js";
import {
  fmtInt,
  fmtMiB,
  fmtMs,
  fmtPct,
  fsTypeOf,
  machineBusyMs,
  median,
  NODEPLANE_BIN,
  procCpuMs,
  procRssBytes,
  ROOT,
  threadSchedMs,
  type Samples,
  type Served,
  scrapeMetrics,
  spawnNodeplane,
  stopServer,
  sumOf,
  trackTempDir,
} from "./harness.js";
import { Histogram } from "./histogram.js";

const DEFAULT_OUT = path.join(ROOT, "bench/RESULTS-fleet.md");
const STOP_TIMEOUT_MS = 20_000;
/** The agent sleeps lease × 0.25 × (1 + U[0, 0.04]) between renewals: 1.02 on average. */
const MEAN_JITTER = 1.02;
const LOOP_RESOLUTION_MS = 10;

interface Options {
  agents: number;
  channels: number;
  leaseS: number;
  windowS: number;
  warmupS: number;
  hardLeaseS: number;
  hardWindowS: number;
  hardWarmupS: number;
  spreadWindowS: number;
  windows: number;
  registerTimeoutS: number;
  out: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      agents: { type: "string" },
      channels: { type: "string" },
      lease: { type: "string" },
      window: { type: "string" },
      warmup: { type: "string" },
      "hard-lease": { type: "string" },
      "hard-window": { type: "string" },
      "hard-warmup": { type: "string" },
      "spread-window": { type: "string" },
      windows: { type: "string" },
      "register-timeout": { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: node dist/bench/fleet.js [--agents N] [--channels C] [--lease S] [--window S] [--warmup S] [--hard-lease S] [--hard-window S] [--hard-warmup S] [--spread-window S] [--windows K] [--register-timeout S] [--out FILE]\n",
    );
    process.exit(0);
  }
  const flags: Record<string, string | boolean | undefined> = values;
  const raw = (name: string): string | undefined => {
    const v = flags[name];
    return typeof v === "string" ? v : process.env[`FLEET_${name.toUpperCase().replace(/-/g, "_")}`];
  };
  const num = (name: string, def: number, min: number, max: number, integer = false): number => {
    const r = raw(name) ?? String(def);
    const v = Number(r);
    if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new Error(`--${name} ${r}: want ${integer ? "an integer" : "a number"} in [${min}, ${max}]`);
    }
    return v;
  };
  return {
    agents: num("agents", 10_000, 1, 50_000, true),
    channels: num("channels", 8, 1, 64, true),
    leaseS: num("lease", 40, 1, 3600, true),
    windowS: num("window", 30, 1, 300),
    warmupS: num("warmup", 5, 0, 120),
    hardLeaseS: num("hard-lease", 4, 1, 3600, true),
    hardWindowS: num("hard-window", 15, 1, 300),
    hardWarmupS: num("hard-warmup", 3, 0, 120),
    spreadWindowS: num("spread-window", 20, 0, 300),
    windows: num("windows", 3, 1, 20, true),
    registerTimeoutS: num("register-timeout", 60, 1, 600),
    out: raw("out") ?? DEFAULT_OUT,
  };
}

// ---------------------------------------------------------------------------------------
// The fleet: agents, their machines, their shared channels

const fleetNodeName = (i: number): string => `fleet-node-${String(i).padStart(5, "0")}`;
const ZONES = ["zone-a", "zone-b", "zone-c"];

const hex = (s: string): string => createHash("sha256").update(s).digest("hex");
const uuid = (h: string): string => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;

/** A fixed, realistic machine for agent `i`: what probeMachine would read on a 32-core, 128 GiB node. */
function fixedProbe(i: number, name: string): () => MachineStatus {
  const capacity = { cpu: "32", memory: "131825740Ki", pods: "110", "ephemeral-storage": "488245288Ki" };
  const allocatable = { cpu: "32", memory: "131723340Ki", pods: "110", "ephemeral-storage": "439420759Ki" };
  const addresses = [
    { type: "InternalIP", address: `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}` },
    { type: "Hostname", address: name },
  ];
  const nodeInfo = {
    machineId: hex(`machine ${name}`).slice(0, 32),
    systemUuid: uuid(hex(`uuid ${name}`)),
    bootId: uuid(hex(`boot ${name}`)),
    kernelVersion: "6.1.0-18-amd64",
    osImage: "Debian GNU/Linux 12 (bookworm)",
    containerRuntimeVersion: "containerd://1.7.13",
    agentVersion: "0.1.0",
    operatingSystem: "linux",
    architecture: "amd64",
  };
  const condition = (type: string, status: string, reason: string, message: string): NodeCondition => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: undefined,
    lastTransitionTime: undefined,
  });
  // Fresh conditions each call: the agent stamps heartbeat times into them.
  return () => ({
    capacity,
    allocatable,
    addresses,
    nodeInfo,
    conditions: [
      condition("MemoryPressure", "False", "AgentHasSufficientMemory", "agent has sufficient memory available"),
      condition("DiskPressure", "False", "AgentHasNoDiskPressure", "agent has no disk pressure"),
      condition("PIDPressure", "False", "AgentHasSufficientPID", "agent has sufficient PID available"),
      condition("Ready", "True", "AgentReady", "agent is posting ready status"),
    ],
  });
}

/** Renewal latency as the agents see it (successful calls only), per window and per phase. */
let windowRenewHist = new Histogram();
let phaseRenewHist = new Histogram();
/** RenewLease calls of every agent of the run: begun, and answered OK. Never reset. */
const renewCalls = { started: 0, ok: 0, failed: 0 };
/** RenewLease calls begun per whole second (performance.now() / 1000), to see bursts. */
const startedPerSecond = new Map<number, number>();

/** A NodeClient that counts and times RenewLease. */
class TimedClient extends NodeClient {
  override async renewLease(nodeName: string, opts?: RenewOptions): Promise<Lease> {
    const t = performance.now();
    const sec = Math.floor(t / 1000);
    startedPerSecond.set(sec, (startedPerSecond.get(sec) ?? 0) + 1);
    renewCalls.started++;
    let lease: Lease;
    try {
      lease = await super.renewLease(nodeName, opts);
    } catch (err) {
      renewCalls.failed++; // cancelled by a stop included
      throw err;
    }
    renewCalls.ok++;
    const us = (performance.now() - t) * 1000;
    windowRenewHist.record(us);
    phaseRenewHist.record(us);
    return lease;
  }
}

/** The most RenewLease calls begun in one whole second within [fromMs, toMs] (NaN if none fits); forgets older seconds. */
function peakStartsPerSecond(fromMs: number, toMs: number): number {
  let peak = 0;
  for (const [sec, n] of startedPerSecond) {
    if (sec * 1000 >= fromMs && (sec + 1) * 1000 <= toMs) peak = Math.max(peak, n);
    if ((sec + 1) * 1000 <= fromMs) startedPerSecond.delete(sec);
  }
  return Math.floor(toMs / 1000) - Math.ceil(fromMs / 1000) >= 1 ? peak : Number.NaN;
}

/** What the agents logged at warn level, by message (node names folded), bounded. */
const warnings = new Map<string, number>();
const MAX_WARNING_KINDS = 40;
const fleetLog: AgentLogger = {
  info: () => {},
  warn: (obj, msg) => {
    const err = (obj as { err?: unknown }).err;
    const key = `${msg}${err === undefined ? "" : `: ${String(err)}`}`.replace(/fleet-node-\d+/g, "fleet-node-N");
    const k = warnings.has(key) || warnings.size < MAX_WARNING_KINDS ? key : "(other warnings)";
    warnings.set(k, (warnings.get(k) ?? 0) + 1);
  },
};

function makeFleet(opts: Options, clients: NodeClient[], leaseS: number): NodeAgent[] {
  return Array.from({ length: opts.agents }, (_, i) => {
    const name = fleetNodeName(i);
    return new NodeAgent({
      client: clients[i % clients.length]!,
      nodeName: name,
      probe: fixedProbe(i, name),
      labels: {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/region": "region-1",
        "topology.kubernetes.io/zone": ZONES[i % ZONES.length]!,
        "nodeplane.io/bench": "fleet",
      },
      leaseDurationSeconds: leaseS,
      log: fleetLog,
    });
  });
}

function totals(agents: NodeAgent[]): AgentStats {
  const t: AgentStats = { registrations: 0, renewals: 0, statusSends: 0, failures: 0 };
  for (const a of agents) {
    t.registrations += a.stats.registrations;
    t.renewals += a.stats.renewals;
    t.statusSends += a.stats.statusSends;
    t.failures += a.stats.failures;
  }
  return t;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what())), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

// ---------------------------------------------------------------------------------------
// Measuring: snapshots of both sides, differences between them

interface Snap {
  at: number;
  /** renewCalls.ok read before the scrape and renewCalls.started after it: the server's count must lie between. */
  renewOkBefore: number;
  renewStartedAfter: number;
  renewFailedBefore: number;
  agents: AgentStats;
  server: Samples;
  serverCpuMs: number | undefined;
  machineMs: number | undefined;
  clientCpu: NodeJS.CpuUsage;
  serverMain: { runMs: number; waitMs: number } | undefined;
  clientMain: { runMs: number; waitMs: number } | undefined;
}

interface Window {
  seconds: number;
  /** Agent-side deltas. */
  agents: AgentStats;
  renewalsPerSec: number;
  serverRenewOk: number;
  serverRenewNotOk: number;
  serverRenewPerSec: number;
  serverRegisterOk: number;
  serverNotOk: number;
  /** % of one core. */
  serverCpu: number | undefined;
  clientCpu: number;
  otherCpu: number | undefined;
  serverRss: number | undefined;
  clientRss: number;
  /** nodeplane's group commits (its /metrics): per second, mean transactions each, and time in them (apply + durable commit, on its main thread) as % of the window. */
  commitsPerSec: number;
  txnsPerCommit: number;
  commitPct: number;
  /** Main threads (the event loops), % of the window: on a CPU, and runnable but waiting for one. */
  serverMainRun: number | undefined;
  serverMainWait: number | undefined;
  clientMainRun: number | undefined;
  clientMainWait: number | undefined;
  renewP50Ms: number;
  renewP99Ms: number;
  /** Most renewals begun by the agents in one whole second. */
  peakStartsPerSec: number;
  /** RenewLease calls begun but not answered at the end (after the scrape). */
  inFlightAtEnd: number;
  /** nodeplane's own RenewLease handling time (its /metrics histogram): mean, and the bucket bound holding p99. */
  handlerMeanMs: number;
  handlerP99Ms: number;
  /** nodeplane's event-loop delay over the window (prom-client's, reset at each scrape). */
  serverLoopP99Ms: number;
  serverLoopMaxMs: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

class Meter {
  /** Snapshots where the server's RenewLease OK count fell outside what the agents bracket. */
  readonly disagreements: string[] = [];
  snaps = 0;
  /** Samples every LOOP_RESOLUTION_MS; a sample is the interval it took, so the delay is that minus the resolution. */
  private readonly loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });

  constructor(
    private readonly server: Served,
    private readonly agents: () => NodeAgent[],
  ) {
    this.loop.enable();
  }

  async snap(): Promise<Snap> {
    this.snaps++;
    const renewOkBefore = renewCalls.ok;
    const renewFailedBefore = renewCalls.failed;
    const server = await scrapeMetrics(this.server.httpPort!);
    const renewStartedAfter = renewCalls.started;
    const serverOk = sumOf(server, "nodeplane_grpc_server_handled_total", { method: "RenewLease", code: "OK" });
    if (serverOk < renewOkBefore || serverOk > renewStartedAfter) {
      this.disagreements.push(
        `the server counted ${serverOk} RenewLease OK in all; the agents had ${renewOkBefore} answered OK before the scrape and ${renewStartedAfter} begun after it`,
      );
    }
    return {
      at: performance.now(),
      renewOkBefore,
      renewStartedAfter,
      renewFailedBefore,
      agents: totals(this.agents()),
      server,
      serverCpuMs: procCpuMs(this.server.child.pid),
      machineMs: machineBusyMs(),
      clientCpu: process.cpuUsage(),
      serverMain: threadSchedMs(this.server.child.pid),
      clientMain: threadSchedMs(process.pid),
    };
  }

  /** Start a fresh window for the per-window histograms. */
  resetWindow(): void {
    windowRenewHist = new Histogram();
    this.loop.reset();
  }

  diff(a: Snap, b: Snap, hist: Histogram): Window {
    const seconds = (b.at - a.at) / 1000;
    const pct = (ms: number): number => (100 * ms) / 1000 / seconds;
    const handled = (s: Samples, labels: Record<string, string>): number => sumOf(s, "nodeplane_grpc_server_handled_total", labels);
    const renewOk = handled(b.server, { method: "RenewLease", code: "OK" }) - handled(a.server, { method: "RenewLease", code: "OK" });
    const renewAll = handled(b.server, { method: "RenewLease" }) - handled(a.server, { method: "RenewLease" });
    const allOk = handled(b.server, { code: "OK" }) - handled(a.server, { code: "OK" });
    const all = handled(b.server, {}) - handled(a.server, {});
    const agents: AgentStats = {
      registrations: b.agents.registrations - a.agents.registrations,
      renewals: b.agents.renewals - a.agents.renewals,
      statusSends: b.agents.statusSends - a.agents.statusSends,
      failures: b.agents.failures - a.agents.failures,
    };
    const serverCpu = a.serverCpuMs !== undefined && b.serverCpuMs !== undefined ? pct(b.serverCpuMs - a.serverCpuMs) : undefined;
    const clientCpuMs = (b.clientCpu.user + b.clientCpu.system - a.clientCpu.user - a.clientCpu.system) / 1000;
    const machine = a.machineMs !== undefined && b.machineMs !== undefined ? pct(b.machineMs - a.machineMs) : undefined;
    const clientCpu = pct(clientCpuMs);
    return {
      seconds,
      agents,
      renewalsPerSec: agents.renewals / seconds,
      serverRenewOk: renewOk,
      serverRenewNotOk: renewAll - renewOk,
      serverRenewPerSec: renewOk / seconds,
      serverRegisterOk: handled(b.server, { method: "Register", code: "OK" }) - handled(a.server, { method: "Register", code: "OK" }),
      serverNotOk: all - allOk,
      serverCpu,
      clientCpu,
      otherCpu: machine !== undefined && serverCpu !== undefined ? Math.max(0, machine - serverCpu - clientCpu) : undefined,
      serverRss: procRssBytes(this.server.child.pid),
      ...commits(a.server, b.server, seconds),
      serverMainRun: a.serverMain && b.serverMain ? pct(b.serverMain.runMs - a.serverMain.runMs) : undefined,
      serverMainWait: a.serverMain && b.serverMain ? pct(b.serverMain.waitMs - a.serverMain.waitMs) : undefined,
      clientMainRun: a.clientMain && b.clientMain ? pct(b.clientMain.runMs - a.clientMain.runMs) : undefined,
      clientMainWait: a.clientMain && b.clientMain ? pct(b.clientMain.waitMs - a.clientMain.waitMs) : undefined,
      clientRss: process.memoryUsage().rss,
      renewP50Ms: hist.quantileUs(0.5) / 1000,
      renewP99Ms: hist.quantileUs(0.99) / 1000,
      peakStartsPerSec: peakStartsPerSecond(a.at, b.at),
      inFlightAtEnd: b.renewStartedAfter - b.renewOkBefore - b.renewFailedBefore,
      ...handlerTimes(a.server, b.server),
      serverLoopP99Ms: loopGauge(b.server, "nodejs_eventloop_lag_p99_seconds"),
      serverLoopMaxMs: loopGauge(b.server, "nodejs_eventloop_lag_max_seconds"),
      loopP99Ms: this.loop.count > 0 ? Math.max(0, this.loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS) : Number.NaN,
      loopMaxMs: this.loop.count > 0 ? Math.max(0, this.loop.max / 1e6 - LOOP_RESOLUTION_MS) : Number.NaN,
    };
  }

  /** `count` consecutive sub-windows covering `seconds`; the whole span too. */
  async measure(seconds: number, count: number, log: (w: Window, i: number) => void): Promise<Phase> {
    const subMs = (seconds * 1000) / count;
    phaseRenewHist = new Histogram();
    let prev = await this.snap();
    this.resetWindow();
    const first = prev;
    const t0 = prev.at;
    const windows: Window[] = [];
    let loopMax = 0;
    for (let i = 1; i <= count; i++) {
      await sleep(t0 + i * subMs - performance.now());
      const s = await this.snap();
      const w = this.diff(prev, s, windowRenewHist);
      this.resetWindow();
      windows.push(w);
      loopMax = Math.max(loopMax, w.loopMaxMs);
      log(w, i);
      prev = s;
    }
    const total = this.diff(first, prev, phaseRenewHist);
    total.loopP99Ms = median(windows.map((w) => w.loopP99Ms));
    total.loopMaxMs = loopMax;
    return { windows, total };
  }
}

/** RenewLease handling time between two scrapes of nodeplane's histogram, ms. */
function handlerTimes(a: Samples, b: Samples): { handlerMeanMs: number; handlerP99Ms: number } {
  const d = (name: string): number => sumOf(b, name, { method: "RenewLease" }) - sumOf(a, name, { method: "RenewLease" });
  const count = d("nodeplane_grpc_server_handling_seconds_count");
  const mean = count > 0 ? (d("nodeplane_grpc_server_handling_seconds_sum") / count) * 1000 : Number.NaN;
  let p99 = Number.NaN;
  if (count > 0) {
    const bounds = new Set<string>();
    for (const series of b.keys()) {
      const m = /^nodeplane_grpc_server_handling_seconds_bucket\{.*le="([^"]+)"/.exec(series);
      if (m && series.includes('method="RenewLease"')) bounds.add(m[1]!);
    }
    const sorted = [...bounds].map((le) => ({ le, v: le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le) })).sort((x, y) => x.v - y.v);
    for (const { le, v } of sorted) {
      const below = sumOf(b, "nodeplane_grpc_server_handling_seconds_bucket", { method: "RenewLease", le }) - sumOf(a, "nodeplane_grpc_server_handling_seconds_bucket", { method: "RenewLease", le });
      if (below >= 0.99 * count) {
        p99 = v * 1000;
        break;
      }
    }
  }
  return { handlerMeanMs: mean, handlerP99Ms: p99 };
}

/** Group commits between two scrapes of nodeplane's histograms. */
function commits(a: Samples, b: Samples, seconds: number): { commitsPerSec: number; txnsPerCommit: number; commitPct: number } {
  const d = (name: string): number => sumOf(b, name) - sumOf(a, name);
  const n = d("nodeplane_store_commit_seconds_count");
  return {
    commitsPerSec: n / seconds,
    txnsPerCommit: n > 0 ? d("nodeplane_store_commit_batch_transactions_sum") / n : Number.NaN,
    commitPct: (100 * d("nodeplane_store_commit_seconds_sum")) / seconds,
  };
}

/** prom-client's event-loop delay gauges sample every 10 ms and count the interval: the delay is beyond that. */
function loopGauge(s: Samples, name: string): number {
  const v = s.get(name);
  return v === undefined ? Number.NaN : Math.max(0, v * 1000 - 10);
}

interface Phase {
  windows: Window[];
  /** Over the whole span (counts, CPU); loop delay p99 is the median of the windows', max the max. */
  total: Window;
}

interface Registration {
  agents: number;
  /** Spread of the starts, s (0 = all at once). */
  spreadS: number;
  /** From the first start until the last agent's `registered` resolved. */
  seconds: number;
  perSec: number;
  p50S: number;
  p99S: number;
  /** Over the registration, snapshot to snapshot. */
  span: Window;
}

/**
 * Start every agent (all at once, or evenly over `spreadMs`); time until each has registered
 * (bounded by `timeoutS` beyond the spread).
 */
async function registerFleet(meter: Meter, agents: NodeAgent[], timeoutS: number, spreadMs = 0): Promise<Registration> {
  phaseRenewHist = new Histogram();
  const before = await meter.snap();
  meter.resetWindow();
  const t0 = performance.now();
  const doneAt: number[] = [];
  const all = agents.map((a) => a.registered.then(() => void doneAt.push(performance.now() - t0)));
  let started = 0;
  const startDue = (): void => {
    const due = spreadMs <= 0 ? agents.length : Math.min(agents.length, Math.floor(((performance.now() - t0) / spreadMs) * agents.length) + 1);
    while (started < due) agents[started++]!.start();
  };
  startDue();
  const ticker = setInterval(startDue, 20);
  try {
    await withTimeout(
      Promise.all(all),
      spreadMs + timeoutS * 1000,
      () => `only ${doneAt.length} of ${agents.length} agents registered within ${fmtS(spreadMs / 1000 + timeoutS)} (agent failures so far: ${totals(agents).failures})`,
    );
  } finally {
    clearInterval(ticker);
  }
  const seconds = Math.max(...doneAt) / 1000;
  const after = await meter.snap();
  const span = meter.diff(before, after, phaseRenewHist);
  const sorted = [...doneAt].sort((a, b) => a - b);
  return {
    agents: agents.length,
    spreadS: spreadMs / 1000,
    seconds,
    perSec: agents.length / seconds,
    p50S: sorted[Math.floor(0.5 * (sorted.length - 1))]! / 1000,
    p99S: sorted[Math.floor(0.99 * (sorted.length - 1))]! / 1000,
    span,
  };
}

async function stopFleet(agents: NodeAgent[]): Promise<number> {
  const t = performance.now();
  await withTimeout(Promise.all(agents.map((a) => a.stop())), STOP_TIMEOUT_MS, () => `the agents did not all stop within ${STOP_TIMEOUT_MS / 1000} s`);
  return (performance.now() - t) / 1000;
}

/**
 * After a stop, calls the agents cancelled may still be queued in the server: wait (bounded)
 * until its handled-call count holds still, so the next phase starts on a quiet server.
 */
async function drain(server: Served, limitMs = 10_000): Promise<number> {
  const t = performance.now();
  let last = -1;
  while (performance.now() - t < limitMs) {
    const now = sumOf(await scrapeMetrics(server.httpPort!), "nodeplane_grpc_server_handled_total");
    if (now === last) break;
    last = now;
    await sleep(250);
  }
  return (performance.now() - t) / 1000;
}

// ---------------------------------------------------------------------------------------
// Reporting

const fmtRate = (n: number): string => (Number.isFinite(n) ? (n >= 100 ? fmtInt(n) : n.toFixed(1)) : "–");
const fmtS = (s: number): string => `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
const medianOf = (ws: Window[], f: (w: Window) => number | undefined): number => median(ws.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
const maxOf = (ws: Window[], f: (w: Window) => number | undefined): number | undefined => {
  const xs = ws.map(f).filter((x): x is number => x !== undefined);
  return xs.length ? Math.max(...xs) : undefined;
};
/** "a / b / c (median m)". */
const perWindow = (ws: Window[], f: (w: Window) => number | undefined, fmt: (n: number | undefined) => string): string =>
  `${ws.map((w) => fmt(f(w))).join(" / ")}${ws.length > 1 ? ` (median ${fmt(medianOf(ws, f))})` : ""}`;

interface LoadPhase {
  what: string;
  leaseS: number;
  windowS: number;
  phase: Phase;
}

interface Report {
  opts: Options;
  idle: Phase;
  /** In the order they ran. */
  steps: Array<{ what: string; reg: Registration } | LoadPhase>;
  loads: LoadPhase[];
}

const offeredOf = (opts: Options, leaseS: number): number => opts.agents / (leaseS * 0.25 * MEAN_JITTER);

function mainTable(r: Report): string {
  const { opts } = r;
  const idleCpu = r.idle.total.serverCpu ?? Number.NaN;
  const rows = [
    "| phase | window | offered | achieved (agents) | server-counted | renew latency seen by agents p50 / p99 | server handler mean / p99 | agent failures | server CPU | server CPU per renewal above idle | server RSS | client CPU | client event-loop delay p99 / max |",
    "|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---|",
    `| server idle, no agents | ${fmtS(opts.windowS)} | – | – | – | – | – | – | ${fmtPct(idleCpu)} | – | ` +
      `${fmtMiB(maxOf(r.idle.windows, (w) => w.serverRss))} | ${fmtPct(r.idle.total.clientCpu)} | – |`,
  ];
  for (const step of r.steps) {
    if ("reg" in step) {
      const { what, reg } = step;
      const w = reg.span;
      rows.push(
        `| ${what} | all registered ${fmtS(Number(reg.seconds.toFixed(1)))} after the first start (p50 ${reg.p50S.toFixed(1)} s, p99 ${reg.p99S.toFixed(1)} s) | ` +
          `${reg.spreadS > 0 ? `${fmtInt(reg.agents)} over ${fmtS(reg.spreadS)}` : `${fmtInt(reg.agents)} at once`} | ` +
          `**${fmtInt(reg.perSec)} registrations/s** | ${fmtInt(w.serverRegisterOk / reg.seconds)} Register OK/s (and ${fmtInt(w.serverRenewOk)} first renewals) | ` +
          `${fmtMs(w.renewP50Ms)} / ${fmtMs(w.renewP99Ms)} ms (first renewals) | ${fmtMs(w.handlerMeanMs)} / ≤ ${fmtMs(w.handlerP99Ms)} ms (RenewLease) | ${fmtInt(w.agents.failures)} | ` +
          `${fmtPct(w.serverCpu)} | – | ${fmtMiB(w.serverRss)} | ${fmtPct(w.clientCpu)} | ${fmtMs(w.loopP99Ms)} / ${fmtMs(w.loopMaxMs)} ms |`,
      );
      continue;
    }
    const { what, leaseS, windowS, phase } = step;
    const t = phase.total;
    const perRenewal = t.serverRenewPerSec > 0 && t.serverCpu !== undefined ? `${fmtInt(((t.serverCpu - idleCpu) / 100) * (1e6 / t.serverRenewPerSec))} µs` : "–";
    const inFlight = t.inFlightAtEnd >= Math.max(10, opts.agents / 100) ? ` (${fmtInt(t.inFlightAtEnd)} in flight at the end)` : "";
    rows.push(
      `| ${what} | ${fmtS(windowS)} | ~${fmtInt(offeredOf(opts, leaseS))} renewals/s | **${fmtRate(t.renewalsPerSec)} renewals/s**${inFlight} | ` +
        `${fmtRate(t.serverRenewPerSec)} RenewLease OK/s | ${fmtMs(t.renewP50Ms)} / ${fmtMs(t.renewP99Ms)} ms | ${fmtMs(t.handlerMeanMs)} / ≤ ${fmtMs(t.handlerP99Ms)} ms | ` +
        `${fmtInt(t.agents.failures)} | ${fmtPct(t.serverCpu)} | ${perRenewal} | ${fmtMiB(maxOf(phase.windows, (w) => w.serverRss))} | ` +
        `${fmtPct(t.clientCpu)} | ${fmtMs(t.loopP99Ms)} / ${fmtMs(t.loopMaxMs)} ms |`,
    );
  }
  return rows.join("\n");
}

function detailTable(r: Report): string {
  const rows = [
    "| phase | sub-windows | renewals/s (agents) | RenewLease OK/s (server) | peak renewals begun in 1 s | renewals in flight at sub-window end | server CPU | client CPU | other load | renew p99 ms (agents) | server event-loop delay p99 ms | group commits/s (transactions each) | status sends | re-registrations | server non-OK calls | client RSS |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---:|---:|---:|---:|",
  ];
  const line = (name: string, p: Phase, windowS: number): string =>
    `| ${name} | ${p.windows.length} × ${fmtS(windowS / p.windows.length)} | ${perWindow(p.windows, (w) => w.renewalsPerSec, (n) => fmtRate(n ?? Number.NaN))} | ` +
    `${perWindow(p.windows, (w) => w.serverRenewPerSec, (n) => fmtRate(n ?? Number.NaN))} | ${p.windows.map((w) => fmtInt(w.peakStartsPerSec)).join(" / ")} | ` +
    `${p.windows.map((w) => fmtInt(w.inFlightAtEnd)).join(" / ")} | ${perWindow(p.windows, (w) => w.serverCpu, fmtPct)} | ${perWindow(p.windows, (w) => w.clientCpu, fmtPct)} | ` +
    `${perWindow(p.windows, (w) => w.otherCpu, fmtPct)} | ${perWindow(p.windows, (w) => w.renewP99Ms, (n) => fmtMs(n ?? Number.NaN))} | ` +
    `${perWindow(p.windows, (w) => w.serverLoopP99Ms, (n) => fmtMs(n ?? Number.NaN))} | ` +
    `${p.windows.map((w) => `${fmtInt(w.commitsPerSec)} (${Number.isFinite(w.txnsPerCommit) ? w.txnsPerCommit.toFixed(1) : "–"})`).join(" / ")} | ` +
    `${fmtInt(p.total.agents.statusSends)} | ${fmtInt(p.total.agents.registrations)} | ${fmtInt(p.total.serverNotOk)} | ${fmtMiB(maxOf(p.windows, (w) => w.clientRss))} |`;
  rows.push(line("server idle", r.idle, r.opts.windowS));
  for (const l of r.loads) rows.push(line(l.what, l.phase, l.windowS));
  return rows.join("\n");
}

/** Where the machine's CPU went in a phase, and how the two event loops fared: who is the bottleneck. */
function cpuSplit(l: LoadPhase, cpus: number): string {
  const t = l.phase.total;
  const idleOf = (run: number | undefined, wait: number | undefined): string =>
    run === undefined || wait === undefined ? "–" : fmtPct(Math.max(0, 100 - run - wait));
  return (
    `${l.what}: server ${fmtPct(t.serverCpu)} + client ${fmtPct(t.clientCpu)} + other load ${fmtPct(t.otherCpu)} of ${cpus * 100}%. ` +
    `Server main thread: on a CPU ${fmtPct(t.serverMainRun)}, waiting for a CPU ${fmtPct(t.serverMainWait)}, neither (idle or blocked in I/O) ${idleOf(t.serverMainRun, t.serverMainWait)}; ` +
    `event loop delay p99 ${fmtMs(medianOf(l.phase.windows, (w) => w.serverLoopP99Ms))} ms; ${fmtInt(t.commitsPerSec)} group commits/s of ` +
    `${t.txnsPerCommit.toFixed(1)} transactions on average, ${fmtPct(t.commitPct)} of the time inside them. ` +
    `Client main thread: on a CPU ${fmtPct(t.clientMainRun)}, waiting ${fmtPct(t.clientMainWait)}, neither ${idleOf(t.clientMainRun, t.clientMainWait)}; ` +
    `event loop delay p99 ${fmtMs(t.loopP99Ms)} ms (medians of sub-windows).`
  );
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opts = parseOptions(argv);
  if (!fs.existsSync(NODEPLANE_BIN)) throw new Error(`${NODEPLANE_BIN} is missing`);
  if (!fs.existsSync(path.join(ROOT, "dist/src/server/server.js"))) throw new Error("dist/ is missing: run `npm run build` first");
  const began = Date.now();
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const problems: string[] = [];
  const steadyPeriodS = opts.leaseS / 4;

  const expectS =
    opts.windowS * 2 + opts.warmupS + (opts.spreadWindowS > 0 ? 2 * steadyPeriodS + opts.warmupS + opts.spreadWindowS + 5 : 0) +
    opts.hardWarmupS + opts.hardWindowS + 25;
  log(
    `fleet: ${opts.agents} agents over ${opts.channels} channels; idle ${opts.windowS} s, steady (lease ${opts.leaseS} s) ${opts.warmupS}+${opts.windowS} s` +
      (opts.spreadWindowS > 0 ? `, steady with spread starts ${fmtS(2 * steadyPeriodS)}+${opts.warmupS}+${opts.spreadWindowS} s` : "") +
      `, pushed (lease ${opts.hardLeaseS} s) ${opts.hardWarmupS}+${opts.hardWindowS} s, plus registrations: about ${Math.round(expectS)} s`,
  );

  const dataDir = trackTempDir(fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-fleet-")));
  const server = await spawnNodeplane(dataDir);
  if (server.httpPort === undefined) throw new Error("nodeplane did not report its HTTP port (needed for /metrics)");
  const address = `127.0.0.1:${server.port}`;
  log(`fleet: nodeplane serving at ${address} (pid ${server.child.pid}, data dir ${dataDir}, ${fsTypeOf(dataDir)})`);
  const serverDied = server.exited.then((e) => {
    const why = e.code === 0 ? " (a clean exit: it was sent SIGTERM or SIGINT by something outside this benchmark)" : "";
    throw new Error(`nodeplane exited (${e.code ?? e.signal}) during the run${why}:\n${server.output()}`);
  });
  serverDied.catch(() => {}); // raced below; not unhandled
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, serverDied]);

  // One channel per client, each with its own HTTP/2 connection (grpc-js would otherwise share
  // one subchannel among channels to the same address); agents use them round-robin.
  const clients = Array.from({ length: opts.channels }, () => new TimedClient(address, { channelOptions: { "grpc.use_local_subchannel_pool": 1 } }));
  await guard(Promise.all(clients.map((c) => c.waitForReady(10_000))));

  let fleet: NodeAgent[] = [];
  const meter = new Meter(server, () => fleet);
  const fmtWindow = (w: Window): string =>
    `${fmtRate(w.renewalsPerSec).padStart(6)} renewals/s (server ${fmtRate(w.serverRenewPerSec).padStart(6)}, peak 1 s ${fmtInt(w.peakStartsPerSec)}, in flight ${w.inFlightAtEnd})  ` +
    `p50/p99 ${fmtMs(w.renewP50Ms)}/${fmtMs(w.renewP99Ms)} ms (handler ${fmtMs(w.handlerMeanMs)}/≤${fmtMs(w.handlerP99Ms)} ms)  failures ${w.agents.failures}  ` +
    `commits ${fmtInt(w.commitsPerSec)}/s ×${w.txnsPerCommit.toFixed(1)} (${fmtPct(w.commitPct)})  server CPU ${fmtPct(w.serverCpu)}  client CPU ${fmtPct(w.clientCpu)}  other ${fmtPct(w.otherCpu)}  loop p99 server ${fmtMs(w.serverLoopP99Ms)} ms, client ${fmtMs(w.loopP99Ms)} ms  ` +
    `server RSS ${fmtMiB(w.serverRss)}`;
  const logReg = (what: string, reg: Registration): void =>
    log(
      `  ${what} ${reg.agents} in ${reg.seconds.toFixed(1)} s: ${fmtInt(reg.perSec)}/s (server Register OK ${reg.span.serverRegisterOk}, ` +
        `failures ${reg.span.agents.failures}, server CPU ${fmtPct(reg.span.serverCpu)}, client CPU ${fmtPct(reg.span.clientCpu)})`,
    );
  const steps: Report["steps"] = [];
  const loads: LoadPhase[] = [];

  /** Load phase: warm up, measure, check; the agents keep running. */
  const measureLoad = async (what: string, leaseS: number, warmupS: number, windowS: number, strict: boolean): Promise<void> => {
    const before = totals(fleet);
    await guard(sleep(warmupS * 1000));
    log(`fleet: ${what}: ${windowS} s`);
    // Sub-windows of at least one renewal period.
    const count = Math.max(1, Math.min(opts.windows, Math.floor(windowS / (leaseS / 4))));
    const phase = await guard(meter.measure(windowS, count, (w, i) => log(`  [${i}/${count}] ${fmtWindow(w)}`)));
    loads.push({ what, leaseS, windowS, phase });
    steps.push({ what, leaseS, windowS, phase });
    const after = await guard(meter.snap());
    const failures = after.agents.failures - before.failures;
    const ready = sumOf(after.server, "nodeplane_nodes", { status: "True" });
    if (!strict) return;
    if (failures !== 0) problems.push(`${what}: ${failures} agent failure(s) after registration (must be 0)`);
    if (phase.total.agents.registrations !== 0) problems.push(`${what}: ${phase.total.agents.registrations} re-registration(s)`);
    if (phase.total.serverRenewNotOk !== 0) problems.push(`${what}: the server answered ${phase.total.serverRenewNotOk} RenewLease call(s) with an error`);
    if (ready !== opts.agents) problems.push(`${what}: the controller counts ${ready} Ready nodes, not ${opts.agents}`);
  };
  const restart = async (leaseS: number): Promise<void> => {
    log(`fleet: stopping the agents`);
    const stopS = await guard(stopFleet(fleet));
    const drainS = await guard(drain(server));
    log(`  stopped in ${stopS.toFixed(2)} s; server quiet after ${drainS.toFixed(1)} s more`);
    fleet = makeFleet(opts, clients, leaseS);
  };

  // 0. Idle.
  log(`fleet: server idle for ${opts.windowS} s`);
  const idle = await guard(
    meter.measure(opts.windowS, opts.windows, (w, i) => log(`  idle [${i}/${opts.windows}] server CPU ${fmtPct(w.serverCpu)}  other ${fmtPct(w.otherCpu)}  server RSS ${fmtMiB(w.serverRss)}`)),
  );

  // 1. Registration, every agent at once.
  fleet = makeFleet(opts, clients, opts.leaseS);
  log(`fleet: starting ${opts.agents} agents at once (lease ${opts.leaseS} s)`);
  const reg = await guard(registerFleet(meter, fleet, opts.registerTimeoutS));
  logReg("registered", reg);
  steps.push({ what: `registration: ${fmtInt(opts.agents)} agents start at once (new nodes)`, reg });
  if (reg.span.serverRegisterOk < opts.agents) problems.push(`registration: the server counted ${reg.span.serverRegisterOk} Register OK for ${opts.agents} agents`);

  // 2. Steady state, the fleet as it started (in step).
  await measureLoad(`steady state, lease ${opts.leaseS} s, agents started at once`, opts.leaseS, opts.warmupS, opts.windowS, true);

  // 2b. Steady state, starts spread over two renewal periods (as nodes that booted at different
  // times; over one period the registrations and first renewals together would outrun the server
  // and bunch up again).
  if (opts.spreadWindowS > 0) {
    await restart(opts.leaseS);
    log(`fleet: starting ${opts.agents} agents spread over ${fmtS(2 * steadyPeriodS)} (lease ${opts.leaseS} s)`);
    const spreadReg = await guard(registerFleet(meter, fleet, opts.registerTimeoutS, 2 * steadyPeriodS * 1000));
    logReg("registered", spreadReg);
    await measureLoad(`steady state, lease ${opts.leaseS} s, starts spread over ${fmtS(2 * steadyPeriodS)}`, opts.leaseS, opts.warmupS, opts.spreadWindowS, true);
  }

  // 3. Pushed: the fleet restarted at once with a short lease.
  await restart(opts.hardLeaseS);
  log(`fleet: restarting ${opts.agents} agents at once with lease ${opts.hardLeaseS} s`);
  const rereg = await guard(registerFleet(meter, fleet, opts.registerTimeoutS));
  logReg("re-registered", rereg);
  steps.push({ what: `re-registration: the fleet restarted at once with lease ${opts.hardLeaseS} s (nodes exist)`, reg: rereg });
  await measureLoad(`pushed, lease ${opts.hardLeaseS} s`, opts.hardLeaseS, opts.hardWarmupS, opts.hardWindowS, false);

  // Clean end.
  const end = await guard(meter.snap());
  log(`fleet: stopping the agents`);
  const stopS = await guard(stopFleet(fleet));
  log(`  stopped in ${stopS.toFixed(2)} s`);
  for (const c of clients) c.close();
  for (const d of meter.disagreements.slice(0, 5)) problems.push(`renewal counts: ${d}`);
  const npExit = await stopServer(server, "nodeplane");
  if (npExit.code !== 0) problems.push(`nodeplane exited with ${npExit.code ?? npExit.signal} on SIGTERM`);
  if (server.output().trim()) log(`fleet: nodeplane said (warn and above):\n${server.output()}`);

  const report: Report = { opts, idle, steps, loads };
  const table = mainTable(report);
  const command =
    process.env.npm_lifecycle_event === "bench" ? `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}` : `node dist/bench/fleet.js ${argv.join(" ")}`.trim();
  const cpus = os.cpus();
  const machine =
    `${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}, data dir on ${fsTypeOf(dataDir)} (${path.dirname(dataDir)})`;
  const taints = sumOf(end.server, "nodeplane_controller_taints_added_total");
  const notReady = sumOf(end.server, "nodeplane_nodes") - sumOf(end.server, "nodeplane_nodes", { status: "True" });
  const warningLines = [...warnings.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `- ${fmtInt(n)} × ${k}`);

  const doc = [
    `# Fleet benchmark: ${fmtInt(opts.agents)} node agents against one server`,
    "",
    `- Command: \`${command}\``,
    `- Date: ${new Date(began).toISOString()} (took ${Math.round((Date.now() - began) / 1000)} s)`,
    `- Machine: ${machine}`,
    `- Fleet: ${fmtInt(opts.agents)} NodeAgent instances (src/agent/agent.ts) in one Node process, sharing ${opts.channels} NodeClient channels round-robin ` +
      "(one HTTP/2 connection each), with a fixed probe (a 32-core, 128 GiB Debian node: the status never changes, so no status is sent within the " +
      "5 min report period); default agent timings otherwise (a renewal every lease × 0.25 with 0–4 % jitter, status computed every 10 s). " +
      "Server: `nodeplane serve` as a child process, SQLite store in a temp dir, default controllers (node lifecycle).",
    "",
    "What is measured: how one nodeplane server carries a fleet's heartbeat as the real SDK agent produces it (closed loop per agent: " +
      "renew, then sleep a quarter of the lease). Registration: every agent starts at once and registers (each then renews once at once); " +
      "the rate is agents / time until the last `registered` resolved. Load phases: renewals/s from the agents' own `stats.renewals`, and the " +
      "server's `nodeplane_grpc_server_handled_total{method=\"RenewLease\",code=\"OK\"}` as a cross-check, over the whole window (the per-sub-window " +
      "figures and their medians are below). The fleet is measured twice at the default lease: as it runs after starting all at once (the " +
      "agents stay in step: their renewals arrive in waves), and restarted with the starts spread evenly over two renewal periods (the smooth " +
      "load of nodes that booted at different times). CPU is % of one core from /proc (server: its /proc/<pid>/stat; client: this process, " +
      `all ${fmtInt(opts.agents)} agents and the benchmark's bookkeeping). Client and server share the machine's ${cpus.length} CPUs: read the two ` +
      "CPU columns and event-loop delays together to tell who is the bottleneck. Latency is RenewLease as the agents see it (queueing in " +
      "either event loop included); the server handler time is nodeplane's own histogram (p99 as the bucket bound that holds it).",
    "",
    table,
    "",
    "Where the CPU went:",
    "",
    ...loads.map((l) => `- ${cpuSplit(l, cpus.length)}`),
    "",
    "Per sub-window (other load is CPU taken by processes outside the benchmark, a noise indicator on this shared machine; " +
      "status sends, re-registrations and server non-OK calls are totals over the window):",
    "",
    detailTable(report),
    "",
    `At the end: the controller counted ${fmtInt(sumOf(end.server, "nodeplane_nodes", { status: "True" }))} Ready nodes and ${fmtInt(notReady)} not Ready; ` +
      `taints it added over the whole run: ${fmtInt(taints)}.`,
    "",
    problems.length === 0
      ? "Checks: all agents registered every time; in both steady states no agent failure, no re-registration, every RenewLease answered OK " +
        `and every node Ready; at each of ${meter.snaps} snapshots the server's RenewLease OK total lay between the agents' calls answered OK ` +
        "before the scrape and begun after it; nodeplane shut down cleanly on SIGTERM."
      : `Checks FAILED:\n\n${problems.map((p) => `- ${p}`).join("\n")}`,
    "",
    warningLines.length ? `Agent warnings over the whole run:\n\n${warningLines.join("\n")}` : "Agent warnings over the whole run: none.",
    "",
  ].join("\n");

  process.stdout.write(`\n${table}\n\n${loads.map((l) => cpuSplit(l, cpus.length)).join("\n")}\n`);
  if (problems.length) process.stdout.write(`\nChecks FAILED:\n${problems.map((p) => `- ${p}`).join("\n")}\n`);
  if (warningLines.length) process.stdout.write(`\nAgent warnings:\n${warningLines.join("\n")}\n`);
  if (opts.out) {
    fs.writeFileSync(opts.out, doc);
    log(`fleet: wrote ${path.relative(process.cwd(), opts.out) || opts.out}`);
  }
  if (problems.length) throw new Error(`${problems.length} check(s) failed`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\nfleet bench FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
