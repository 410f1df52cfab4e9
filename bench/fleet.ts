/**
 * `node dist/bench/fleet.js`: a simulated fleet of in-process NodeAgents (the SDK's node agent,
 * src/agent/agent.ts) heartbeating against one real nodeplane server, spawned as a child
 * process with a temp data dir. The agents share a few NodeClient channels round-robin (one
 * grpc-js channel per agent would be unrealistic for one process); each channel has its own
 * HTTP/2 connection. Their probe returns a fixed, realistic MachineStatus, so the status never
 * changes and only the report period (5 min, longer than the run) would send it.
 *
 * Every load phase is run twice, side by side, with the agent's two ways of renewing its Lease:
 * "stream" (the default: one long-lived Heartbeat stream per agent, one message per renewal,
 * the server saying when to renew next) and "unary" (`heartbeat: "unary"`: a RenewLease call
 * per renewal, the baseline). Both paths are timed and counted on the client (TimedClient
 * wraps renewLease() and the renew() of every stream heartbeat() opens) and cross-checked
 * against the server's counters: nodeplane_heartbeats_total{code} for the stream,
 * nodeplane_grpc_server_handled_total{method="RenewLease"} for unary; the server's handling
 * time is its nodeplane_grpc_server_handling_seconds histogram, method "Heartbeat" or "RenewLease".
 *
 * Phases, each bounded:
 *   0. idle: the server with no agents for --idle-window seconds: its CPU (the baseline of
 *      "server CPU per renewal above idle").
 *   1. registration: start all --agents agents at once (stream mode; new nodes); time until
 *      every `registered` resolves.
 *   2. steady state at lease --lease (default 40 s: a renewal every 10 s per agent, ~1,000
 *      renewals/s for 10,000 agents), stream: once every agent has renewed once (so every
 *      stream is open: an agent opens it at its first renewal) and --warmup seconds more,
 *      --window seconds: renewals/s
 *      (agents' stats and the server's counter), latency, server CPU and RSS, agent failures
 *      (must be 0), this (client) process's CPU. The agents were started at once, but each
 *      spreads its first renewal uniformly over one interval, so they do not renew in step
 *      (the peak renewals begun in one second shows it); the earlier "starts spread" phase
 *      measured the same smooth load and is gone.
 *   3. the same with the fleet restarted at once in unary mode (re-registration timed).
 *   4. pushed: the fleet restarted at once with lease --hard-lease (4 s: ~10,000 renewals/s
 *      offered), unary first, then stream (the opposite order to the steady state, so that
 *      neither mode always runs first); after --hard-warmup, --hard-window seconds each.
 * Between phases the agents are stopped and the server left to drain what they cancelled
 * (calls and streams). The main table puts the two modes of each load side by side with their
 * stream/unary ratio; each window is also cut into --windows sub-windows (at least one renewal
 * period each), listed with their medians in a detail table. The client process (all agents)
 * shares the machine's CPUs with the server: its CPU and event-loop delay are reported so a
 * reader can tell who is the bottleneck. Prints the tables and writes bench/RESULTS-fleet.md.
 *
 * Flags (or env FLEET_<NAME>, e.g. FLEET_AGENTS=2000):
 *   --quick             a ~1 minute smoke run for CI: 2,000 agents, short windows, writes no
 *                       file unless --out is given (flags given explicitly still win)
 *   --agents N          agents in the fleet (default 10000; quick 2000)
 *   --channels C        NodeClient channels shared round-robin (default 8)
 *   --idle-window S     idle measured seconds (default 20; quick 4)
 *   --lease S           steady-state lease duration, s (default 40)
 *   --window S          steady-state measured seconds, per mode (default 30; quick 8)
 *   --warmup S          seconds after every agent has renewed once before the steady window
 *                       (default 3; quick 1)
 *   --hard-lease S      pushed-phase lease duration, s (default 4)
 *   --hard-window S     pushed-phase measured seconds, per mode (default 15; quick 5)
 *   --hard-warmup S     the same before the pushed window (default 3; quick 1)
 *   --windows K         sub-windows per measured window, listed with medians (default 3)
 *   --register-timeout S  bound on each (re-)registration (default 60; quick 30)
 *   --deadline S        bound on the whole run (default 420; quick 150)
 *   --out FILE          where to write the results (default bench/RESULTS-fleet.md; quick
 *                       none; "" = nowhere)
 *
 * Everything is local (127.0.0.1) and bounded; the server is killed and the data dir removed on
 * exit, error, signal or deadline; on success every agent is stopped and the server stopped
 * with SIGTERM. Exits 1 if a check failed.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { type AgentLogger, type AgentStats, NodeAgent } from "../src/agent/agent.js";
import type { MachineStatus } from "../src/agent/machine.js";
import { emitSummary, type SummaryRow } from "./summary.js";
import { type CallOptions, type HeartbeatStream, NodeClient, type RenewOptions } from "../src/client/client.js";
import type { Lease } from "../src/gen/nodeplane/v1/lease.js";
import type { NodeCondition } from "../src/gen/nodeplane/v1/node.js";
import {
  exitAfter,
  fmtInt,
  fmtMiB,
  fmtMs,
  fmtPct,
  fmtRatio,
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
/** The agent sleeps (lease × 0.25, or what the server asks: the same here) × (1 + U[0, 0.04]) between renewals: 1.02 on average. */
const MEAN_JITTER = 1.02;
const LOOP_RESOLUTION_MS = 10;

/** How the agents renew: the streaming heartbeat (the agent's default) or RenewLease calls. */
type Mode = "stream" | "unary";
/** The server method whose handling time and counts belong to each mode. */
const SERVER_METHOD: Record<Mode, string> = { stream: "Heartbeat", unary: "RenewLease" };

interface Options {
  quick: boolean;
  agents: number;
  channels: number;
  idleWindowS: number;
  leaseS: number;
  windowS: number;
  warmupS: number;
  hardLeaseS: number;
  hardWindowS: number;
  hardWarmupS: number;
  windows: number;
  registerTimeoutS: number;
  deadlineS: number;
  out: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: "boolean" },
      agents: { type: "string" },
      channels: { type: "string" },
      "idle-window": { type: "string" },
      lease: { type: "string" },
      window: { type: "string" },
      warmup: { type: "string" },
      "hard-lease": { type: "string" },
      "hard-window": { type: "string" },
      "hard-warmup": { type: "string" },
      windows: { type: "string" },
      "register-timeout": { type: "string" },
      deadline: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: node dist/bench/fleet.js [--quick] [--agents N] [--channels C] [--idle-window S] [--lease S] [--window S] [--warmup S] " +
        "[--hard-lease S] [--hard-window S] [--hard-warmup S] [--windows K] [--register-timeout S] [--deadline S] [--out FILE]\n",
    );
    process.exit(0);
  }
  const flags: Record<string, string | boolean | undefined> = values;
  const env = (name: string): string | undefined => process.env[`FLEET_${name.toUpperCase().replace(/-/g, "_")}`];
  const raw = (name: string): string | undefined => {
    const v = flags[name];
    return typeof v === "string" ? v : env(name);
  };
  const quick = values.quick === true || ["1", "true"].includes(env("quick") ?? "");
  const num = (name: string, def: number, quickDef: number, min: number, max: number, integer = false): number => {
    const r = raw(name) ?? String(quick ? quickDef : def);
    const v = Number(r);
    if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new Error(`--${name} ${r}: want ${integer ? "an integer" : "a number"} in [${min}, ${max}]`);
    }
    return v;
  };
  return {
    quick,
    agents: num("agents", 10_000, 2_000, 1, 50_000, true),
    channels: num("channels", 8, 8, 1, 64, true),
    idleWindowS: num("idle-window", 20, 4, 1, 300),
    leaseS: num("lease", 40, 40, 1, 3600, true),
    windowS: num("window", 30, 8, 1, 300),
    warmupS: num("warmup", 3, 1, 0, 120),
    hardLeaseS: num("hard-lease", 4, 4, 1, 3600, true),
    hardWindowS: num("hard-window", 15, 5, 1, 300),
    hardWarmupS: num("hard-warmup", 3, 1, 0, 120),
    windows: num("windows", 3, 3, 1, 20, true),
    registerTimeoutS: num("register-timeout", 60, 30, 1, 600),
    deadlineS: num("deadline", 420, 150, 10, 3600),
    out: raw("out") ?? (quick ? "" : DEFAULT_OUT),
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

/** Renewal latency as the agents see it (successful renewals, either path), per window and per phase. */
let windowRenewHist = new Histogram();
let phaseRenewHist = new Histogram();
/** Renewals of every agent of the run, per path: begun, answered OK, failed (cancelled by a stop included). Never reset. */
interface Calls {
  started: number;
  ok: number;
  failed: number;
}
const calls: Record<Mode, Calls> = { stream: { started: 0, ok: 0, failed: 0 }, unary: { started: 0, ok: 0, failed: 0 } };
/** Heartbeat streams the agents opened (one per agent per cycle; more means reconnections). Never reset. */
let streamsOpened = 0;
/** Renewals begun per whole second (performance.now() / 1000), either path, to see bursts. */
const startedPerSecond = new Map<number, number>();

/** Count and time one renewal on path `mode`. */
async function timed<T>(mode: Mode, call: () => Promise<T>): Promise<T> {
  const t = performance.now();
  const sec = Math.floor(t / 1000);
  startedPerSecond.set(sec, (startedPerSecond.get(sec) ?? 0) + 1);
  const c = calls[mode];
  c.started++;
  let res: T;
  try {
    res = await call();
  } catch (err) {
    c.failed++;
    throw err;
  }
  c.ok++;
  const us = (performance.now() - t) * 1000;
  windowRenewHist.record(us);
  phaseRenewHist.record(us);
  return res;
}

/** A NodeClient that counts and times renewals on both paths: RenewLease calls, and renew() on every heartbeat stream. */
class TimedClient extends NodeClient {
  override renewLease(nodeName: string, opts?: RenewOptions): Promise<Lease> {
    return timed("unary", () => super.renewLease(nodeName, opts));
  }

  override heartbeat(opts?: CallOptions): HeartbeatStream {
    const stream = super.heartbeat(opts);
    streamsOpened++;
    return {
      renew: (nodeName, renewal) => timed("stream", () => stream.renew(nodeName, renewal)),
      close: () => stream.close(),
    };
  }
}

/** The most renewals begun in one whole second within [fromMs, toMs] (NaN if none fits); forgets older seconds. */
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

function makeFleet(opts: Options, clients: NodeClient[], leaseS: number, mode: Mode): NodeAgent[] {
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
      heartbeat: mode,
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

/** The server's renewal counts of one path: answered OK, and in all. */
function serverRenewals(s: Samples, mode: Mode, code?: string): number {
  const labels: Record<string, string> = code === undefined ? {} : { code };
  return mode === "stream"
    ? sumOf(s, "nodeplane_heartbeats_total", labels)
    : sumOf(s, "nodeplane_grpc_server_handled_total", { method: "RenewLease", ...labels });
}

/** Client counts around a scrape: the server's OK count must lie between okBefore and startedAfter. */
interface Bracket {
  okBefore: number;
  startedAfter: number;
}

interface Snap {
  at: number;
  calls: Record<Mode, Bracket>;
  /** Renewals begun and not yet settled, both paths, read together right after the scrape. */
  inFlight: number;
  streamsOpened: number;
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
  /** The server's renewal counts per path (OK, and not OK), and both paths together. */
  server: Record<Mode, { ok: number; notOk: number }>;
  serverRenewOk: number;
  serverRenewNotOk: number;
  serverRenewPerSec: number;
  serverRegisterOk: number;
  serverNotOk: number;
  /** Heartbeat streams open on the server at the end (its gauge), and opened by the agents during the window. */
  openStreams: number;
  streamsOpened: number;
  /** % of one core. */
  serverCpu: number | undefined;
  clientCpu: number;
  otherCpu: number | undefined;
  serverRss: number | undefined;
  clientRss: number;
  /** nodeplane's group commits (its /metrics): per second, mean transactions each, and time in them (apply + durable commit, in the store writer thread) as % of the window. */
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
  /** Renewals begun but not answered at the end (right after the scrape). */
  inFlightAtEnd: number;
  /** nodeplane's own renewal handling time (its histogram, Heartbeat and RenewLease together): mean, and the bucket bound holding p99. */
  handlerMeanMs: number;
  handlerP99Ms: number;
  /** nodeplane's event-loop delay over the window (prom-client's, reset at each scrape). */
  serverLoopP99Ms: number;
  serverLoopMaxMs: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

const MODES: Mode[] = ["stream", "unary"];

class Meter {
  /** Snapshots where the server's OK count of a path fell outside what the agents bracket. */
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
    const before = { stream: { ...calls.stream }, unary: { ...calls.unary } };
    const server = await scrapeMetrics(this.server.httpPort!);
    const bracket = (m: Mode): Bracket => ({ okBefore: before[m].ok, startedAfter: calls[m].started });
    const snapCalls = { stream: bracket("stream"), unary: bracket("unary") };
    const inFlight = MODES.reduce((n, m) => n + calls[m].started - calls[m].ok - calls[m].failed, 0);
    for (const m of MODES) {
      const serverOk = serverRenewals(server, m, "OK");
      const b = snapCalls[m];
      if (serverOk < b.okBefore || serverOk > b.startedAfter) {
        this.disagreements.push(
          `the server counted ${serverOk} ${SERVER_METHOD[m]} renewals OK in all; the agents had ${b.okBefore} answered OK before the scrape and ${b.startedAfter} begun after it`,
        );
      }
    }
    return {
      at: performance.now(),
      calls: snapCalls,
      inFlight,
      streamsOpened,
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
    const perPath = (m: Mode): { ok: number; notOk: number } => {
      const ok = serverRenewals(b.server, m, "OK") - serverRenewals(a.server, m, "OK");
      return { ok, notOk: serverRenewals(b.server, m) - serverRenewals(a.server, m) - ok };
    };
    const server = { stream: perPath("stream"), unary: perPath("unary") };
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
    const serverRenewOk = server.stream.ok + server.unary.ok;
    return {
      seconds,
      agents,
      renewalsPerSec: agents.renewals / seconds,
      server,
      serverRenewOk,
      serverRenewNotOk: server.stream.notOk + server.unary.notOk,
      serverRenewPerSec: serverRenewOk / seconds,
      serverRegisterOk: handled(b.server, { method: "Register", code: "OK" }) - handled(a.server, { method: "Register", code: "OK" }),
      // Stream renewals that failed end their stream: count them with the calls that failed.
      serverNotOk: all - allOk + server.stream.notOk,
      openStreams: sumOf(b.server, "nodeplane_heartbeat_streams"),
      streamsOpened: b.streamsOpened - a.streamsOpened,
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
      inFlightAtEnd: b.inFlight,
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

/** Renewal handling time (Heartbeat and RenewLease together) between two scrapes of nodeplane's histogram, ms. */
function handlerTimes(a: Samples, b: Samples): { handlerMeanMs: number; handlerP99Ms: number } {
  const methods = Object.values(SERVER_METHOD);
  const d = (name: string, labels: Record<string, string> = {}): number =>
    methods.reduce((n, method) => n + sumOf(b, name, { method, ...labels }) - sumOf(a, name, { method, ...labels }), 0);
  const count = d("nodeplane_grpc_server_handling_seconds_count");
  const mean = count > 0 ? (d("nodeplane_grpc_server_handling_seconds_sum") / count) * 1000 : Number.NaN;
  let p99 = Number.NaN;
  if (count > 0) {
    const bounds = new Set<string>();
    for (const series of b.keys()) {
      const m = /^nodeplane_grpc_server_handling_seconds_bucket\{.*le="([^"]+)"/.exec(series);
      if (m && methods.some((method) => series.includes(`method="${method}"`))) bounds.add(m[1]!);
    }
    const sorted = [...bounds].map((le) => ({ le, v: le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le) })).sort((x, y) => x.v - y.v);
    for (const { le, v } of sorted) {
      if (d("nodeplane_grpc_server_handling_seconds_bucket", { le }) >= 0.99 * count) {
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
  /** From the first start until the last agent's `registered` resolved. */
  seconds: number;
  perSec: number;
  p50S: number;
  p99S: number;
  /** Over the registration, snapshot to snapshot. */
  span: Window;
}

/** Start every agent at once; time until each has registered (bounded by `timeoutS`). */
async function registerFleet(meter: Meter, agents: NodeAgent[], timeoutS: number): Promise<Registration> {
  phaseRenewHist = new Histogram();
  const before = await meter.snap();
  meter.resetWindow();
  const t0 = performance.now();
  const doneAt: number[] = [];
  const all = agents.map((a) => a.registered.then(() => void doneAt.push(performance.now() - t0)));
  for (const a of agents) a.start();
  await withTimeout(
    Promise.all(all),
    timeoutS * 1000,
    () => `only ${doneAt.length} of ${agents.length} agents registered within ${fmtS(timeoutS)} (agent failures so far: ${totals(agents).failures})`,
  );
  const seconds = Math.max(...doneAt) / 1000;
  const after = await meter.snap();
  const span = meter.diff(before, after, phaseRenewHist);
  const sorted = [...doneAt].sort((a, b) => a - b);
  return {
    agents: agents.length,
    seconds,
    perSec: agents.length / seconds,
    p50S: sorted[Math.floor(0.5 * (sorted.length - 1))]! / 1000,
    p99S: sorted[Math.floor(0.99 * (sorted.length - 1))]! / 1000,
    span,
  };
}

/** Wait (bounded) until every agent has renewed at least once; seconds waited. */
async function firstRenewals(agents: NodeAgent[], timeoutS: number): Promise<number> {
  const t = performance.now();
  const pending = (): number => agents.reduce((n, a) => n + (a.stats.renewals === 0 ? 1 : 0), 0);
  while (pending() > 0) {
    if (performance.now() - t > timeoutS * 1000) throw new Error(`${pending()} of ${agents.length} agents had not renewed within ${fmtS(timeoutS)} of registering`);
    await sleep(100);
  }
  return (performance.now() - t) / 1000;
}

async function stopFleet(agents: NodeAgent[]): Promise<number> {
  const t = performance.now();
  await withTimeout(Promise.all(agents.map((a) => a.stop())), STOP_TIMEOUT_MS, () => `the agents did not all stop within ${STOP_TIMEOUT_MS / 1000} s`);
  return (performance.now() - t) / 1000;
}

/**
 * After a stop, calls the agents cancelled may still be queued in the server and their
 * heartbeat streams still closing: wait (bounded) until no stream is open and the handled-call
 * and stream-renewal counts hold still, so the next phase starts on a quiet server.
 */
async function drain(server: Served, limitMs = 10_000): Promise<number> {
  const t = performance.now();
  let last = -1;
  while (performance.now() - t < limitMs) {
    const s = await scrapeMetrics(server.httpPort!);
    const now = sumOf(s, "nodeplane_grpc_server_handled_total") + sumOf(s, "nodeplane_heartbeats_total");
    if (now === last && sumOf(s, "nodeplane_heartbeat_streams") === 0) break;
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
/** The most renewals begun in one whole second over a phase's sub-windows (a sub-window shorter than 2 s may hold no whole second). */
const peakOf = (l: { phase: Phase }): number => {
  const xs = l.phase.windows.map((w) => w.peakStartsPerSec).filter(Number.isFinite);
  return xs.length ? Math.max(...xs) : Number.NaN;
};
/** "a / b / c (median m)". */
const perWindow = (ws: Window[], f: (w: Window) => number | undefined, fmt: (n: number | undefined) => string): string =>
  `${ws.map((w) => fmt(f(w))).join(" / ")}${ws.length > 1 ? ` (median ${fmt(medianOf(ws, f))})` : ""}`;

type Kind = "steady" | "pushed";

interface LoadPhase {
  kind: Kind;
  mode: Mode;
  what: string;
  leaseS: number;
  windowS: number;
  /** The (re-)registration of the fleet that ran this phase. */
  reg: Registration;
  regWhat: string;
  phase: Phase;
  /** Heartbeat streams the agents opened from their start to the window's end. */
  streamsOpened: number;
}

interface Report {
  opts: Options;
  idle: Phase;
  /** In the order they ran. */
  loads: LoadPhase[];
}

const offeredOf = (opts: Options, leaseS: number): number => opts.agents / (leaseS * 0.25 * MEAN_JITTER);
const modeName = (m: Mode): string => (m === "stream" ? "streaming heartbeat" : "unary RenewLease");

/** Server CPU per renewal above the idle server's, µs (NaN without renewals or CPU figures). */
const serverUsPerRenewal = (w: Window, idleCpu: number): number =>
  w.serverRenewPerSec > 0 && w.serverCpu !== undefined ? ((w.serverCpu - idleCpu) / 100) * (1e6 / w.serverRenewPerSec) : Number.NaN;
/** Client (this process) CPU per renewal, µs: all its work (timers, status computation, the benchmark) divided among the renewals. */
const clientUsPerRenewal = (w: Window): number => (w.renewalsPerSec > 0 ? (w.clientCpu / 100) * (1e6 / w.renewalsPerSec) : Number.NaN);

/** Each load kind's two modes side by side, with the stream/unary ratio where it says something. */
function mainTable(r: Report): string {
  const { opts } = r;
  const idleCpu = r.idle.total.serverCpu ?? Number.NaN;
  const kinds: Array<{ title: string; stream?: LoadPhase; unary?: LoadPhase }> = (["steady", "pushed"] as const).map((kind) => {
    const of = (mode: Mode): LoadPhase | undefined => r.loads.find((l) => l.kind === kind && l.mode === mode);
    const any = of("stream") ?? of("unary");
    return { title: `${kind === "steady" ? "steady state" : "pushed"}, lease ${any?.leaseS ?? "–"} s`, stream: of("stream"), unary: of("unary") };
  });
  interface Row {
    label: string;
    cell: (l: LoadPhase) => string;
    ratio?: (l: LoadPhase) => number;
  }
  const t = (l: LoadPhase): Window => l.phase.total;
  const rowsDef: Row[] = [
    { label: "measured", cell: (l) => `${fmtS(l.windowS)} (${l.phase.windows.length} × ${fmtS(Number((l.windowS / l.phase.windows.length).toFixed(1)))})` },
    { label: "offered", cell: (l) => `~${fmtInt(offeredOf(opts, l.leaseS))} renewals/s` },
    {
      label: "**renewals/s** (agents' stats)",
      cell: (l) => `**${fmtRate(t(l).renewalsPerSec)}**${t(l).inFlightAtEnd >= Math.max(10, opts.agents / 100) ? ` (${fmtInt(t(l).inFlightAtEnd)} in flight at the end)` : ""}`,
      ratio: (l) => t(l).renewalsPerSec,
    },
    {
      label: "server-counted renewals OK/s",
      cell: (l) => {
        const w = t(l);
        const other: Mode = l.mode === "stream" ? "unary" : "stream";
        const extra = w.server[other].ok > 0 ? ` + ${fmtRate(w.server[other].ok / w.seconds)} ${SERVER_METHOD[other]}` : "";
        return `${fmtRate(w.server[l.mode].ok / w.seconds)} ${SERVER_METHOD[l.mode]}${extra}`;
      },
    },
    { label: "peak renewals begun in 1 s", cell: (l) => fmtInt(peakOf(l)) },
    { label: "heartbeat streams opened by the agents since their start / open on the server at the end", cell: (l) => `${fmtInt(l.streamsOpened)} / ${fmtInt(t(l).openStreams)}` },
    { label: "renewal latency seen by agents p50 / p99", cell: (l) => `${fmtMs(t(l).renewP50Ms)} / ${fmtMs(t(l).renewP99Ms)} ms` },
    { label: "server handler mean / p99", cell: (l) => `${fmtMs(t(l).handlerMeanMs)} / ≤ ${fmtMs(t(l).handlerP99Ms)} ms (${SERVER_METHOD[l.mode]})` },
    { label: "agent failures (must be 0)", cell: (l) => fmtInt(t(l).agents.failures) },
    { label: "server CPU", cell: (l) => fmtPct(t(l).serverCpu), ratio: (l) => t(l).serverCpu ?? Number.NaN },
    {
      label: "**server CPU per renewal above idle**",
      cell: (l) => (Number.isFinite(serverUsPerRenewal(t(l), idleCpu)) ? `**${fmtInt(serverUsPerRenewal(t(l), idleCpu))} µs**` : "–"),
      ratio: (l) => serverUsPerRenewal(t(l), idleCpu),
    },
    { label: "server RSS (max)", cell: (l) => fmtMiB(maxOf(l.phase.windows, (w) => w.serverRss)) },
    { label: "server event-loop delay p99 (median of sub-windows)", cell: (l) => `${fmtMs(medianOf(l.phase.windows, (w) => w.serverLoopP99Ms))} ms` },
    { label: "group commits/s (transactions each)", cell: (l) => `${fmtInt(t(l).commitsPerSec)} (${Number.isFinite(t(l).txnsPerCommit) ? t(l).txnsPerCommit.toFixed(1) : "–"})` },
    { label: "client CPU (all agents)", cell: (l) => fmtPct(t(l).clientCpu), ratio: (l) => t(l).clientCpu },
    {
      label: "client CPU per renewal",
      cell: (l) => (Number.isFinite(clientUsPerRenewal(t(l))) ? `${fmtInt(clientUsPerRenewal(t(l)))} µs` : "–"),
      ratio: (l) => clientUsPerRenewal(t(l)),
    },
    { label: "client event-loop delay p99 / max", cell: (l) => `${fmtMs(t(l).loopP99Ms)} / ${fmtMs(t(l).loopMaxMs)} ms` },
    { label: "other load (CPU of processes outside the benchmark)", cell: (l) => fmtPct(t(l).otherCpu) },
  ];
  const head = ["", ...kinds.flatMap((k) => [`${k.title}: **stream**`, "**unary**", "stream / unary"])];
  const rows = [`| ${head.join(" | ")} |`, `|---|${kinds.map(() => "---:|---:|---:|").join("")}`];
  for (const row of rowsDef) {
    const cells = kinds.flatMap((k) => {
      const ratio = row.ratio && k.stream && k.unary ? fmtRatio(row.ratio(k.stream), row.ratio(k.unary)) : "";
      return [k.stream ? row.cell(k.stream) : "–", k.unary ? row.cell(k.unary) : "–", ratio];
    });
    rows.push(`| ${row.label} | ${cells.join(" | ")} |`);
  }
  return rows.join("\n");
}

function registrationTable(r: Report): string {
  const rows = [
    "| registration | agents | all registered after (p50 / p99) | **registrations/s** | server Register OK | renewals meanwhile (server) | agent failures | server CPU | server RSS | client CPU | client event-loop delay p99 / max |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const l of r.loads) {
    const { reg } = l;
    const w = reg.span;
    rows.push(
      `| ${l.regWhat} | ${fmtInt(reg.agents)} at once | ${fmtS(Number(reg.seconds.toFixed(1)))} (${reg.p50S.toFixed(1)} s / ${reg.p99S.toFixed(1)} s) | ` +
        `**${fmtInt(reg.perSec)}** | ${fmtInt(w.serverRegisterOk)} | ${fmtInt(w.serverRenewOk)} | ${fmtInt(w.agents.failures)} | ${fmtPct(w.serverCpu)} | ` +
        `${fmtMiB(w.serverRss)} | ${fmtPct(w.clientCpu)} | ${fmtMs(w.loopP99Ms)} / ${fmtMs(w.loopMaxMs)} ms |`,
    );
  }
  return rows.join("\n");
}

function detailTable(r: Report): string {
  const rows = [
    "| phase | sub-windows | renewals/s (agents) | renewals OK/s (server) | peak renewals begun in 1 s | renewals in flight at sub-window end | server CPU | client CPU | other load | renew p99 ms (agents) | server event-loop delay p99 ms | group commits/s (transactions each) | status sends | re-registrations | streams opened | server non-OK calls | client RSS |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|",
  ];
  const line = (name: string, p: Phase, windowS: number): string =>
    `| ${name} | ${p.windows.length} × ${fmtS(Number((windowS / p.windows.length).toFixed(1)))} | ${perWindow(p.windows, (w) => w.renewalsPerSec, (n) => fmtRate(n ?? Number.NaN))} | ` +
    `${perWindow(p.windows, (w) => w.serverRenewPerSec, (n) => fmtRate(n ?? Number.NaN))} | ${p.windows.map((w) => fmtInt(w.peakStartsPerSec)).join(" / ")} | ` +
    `${p.windows.map((w) => fmtInt(w.inFlightAtEnd)).join(" / ")} | ${perWindow(p.windows, (w) => w.serverCpu, fmtPct)} | ${perWindow(p.windows, (w) => w.clientCpu, fmtPct)} | ` +
    `${perWindow(p.windows, (w) => w.otherCpu, fmtPct)} | ${perWindow(p.windows, (w) => w.renewP99Ms, (n) => fmtMs(n ?? Number.NaN))} | ` +
    `${perWindow(p.windows, (w) => w.serverLoopP99Ms, (n) => fmtMs(n ?? Number.NaN))} | ` +
    `${p.windows.map((w) => `${fmtInt(w.commitsPerSec)} (${Number.isFinite(w.txnsPerCommit) ? w.txnsPerCommit.toFixed(1) : "–"})`).join(" / ")} | ` +
    `${fmtInt(p.total.agents.statusSends)} | ${fmtInt(p.total.agents.registrations)} | ${fmtInt(p.total.streamsOpened)} | ${fmtInt(p.total.serverNotOk)} | ${fmtMiB(maxOf(p.windows, (w) => w.clientRss))} |`;
  rows.push(line("server idle", r.idle, r.opts.idleWindowS));
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
  exitAfter(opts.deadlineS * 1000, "the fleet bench");
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const problems: string[] = [];

  // Registrations of 10,000 take ~5-8 s here, a stop and drain ~2-3 s; the first renewals come up to one interval after registering.
  const regGuessS = 2 + opts.agents / 1500;
  const expectS =
    3 + opts.idleWindowS + 4 * (regGuessS + 3) + 2 * (opts.leaseS / 4 + opts.warmupS + opts.windowS) + 2 * (opts.hardLeaseS / 4 + opts.hardWarmupS + opts.hardWindowS);
  log(
    `fleet${opts.quick ? " (quick)" : ""}: ${opts.agents} agents over ${opts.channels} channels; idle ${opts.idleWindowS} s; ` +
      `steady (lease ${opts.leaseS} s) ${opts.warmupS}+${opts.windowS} s and pushed (lease ${opts.hardLeaseS} s) ${opts.hardWarmupS}+${opts.hardWindowS} s, ` +
      `each for stream and unary; plus 4 registrations: about ${Math.round(expectS)} s (bounded at ${opts.deadlineS} s)`,
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
  let fleetStarted = false;
  const meter = new Meter(server, () => fleet);
  const fmtWindow = (w: Window): string =>
    `${fmtRate(w.renewalsPerSec).padStart(6)} renewals/s (server: Heartbeat ${fmtRate(w.server.stream.ok / w.seconds)}, RenewLease ${fmtRate(w.server.unary.ok / w.seconds)}; ` +
    `peak 1 s ${fmtInt(w.peakStartsPerSec)}, in flight ${w.inFlightAtEnd}, streams ${fmtInt(w.openStreams)})  ` +
    `p50/p99 ${fmtMs(w.renewP50Ms)}/${fmtMs(w.renewP99Ms)} ms (handler ${fmtMs(w.handlerMeanMs)}/≤${fmtMs(w.handlerP99Ms)} ms)  failures ${w.agents.failures}  ` +
    `commits ${fmtInt(w.commitsPerSec)}/s ×${w.txnsPerCommit.toFixed(1)} (${fmtPct(w.commitPct)})  server CPU ${fmtPct(w.serverCpu)}  client CPU ${fmtPct(w.clientCpu)}  other ${fmtPct(w.otherCpu)}  ` +
    `loop p99 server ${fmtMs(w.serverLoopP99Ms)} ms, client ${fmtMs(w.loopP99Ms)} ms  server RSS ${fmtMiB(w.serverRss)}`;
  const loads: LoadPhase[] = [];

  /**
   * One load phase: (re)start the fleet at once in `mode` with lease `leaseS` (timing the
   * registration), warm up, measure, check; the agents keep running until the next phase.
   */
  const runLoad = async (kind: Kind, mode: Mode, leaseS: number, warmupS: number, windowS: number): Promise<void> => {
    if (fleetStarted) {
      log(`fleet: stopping the agents`);
      const stopS = await guard(stopFleet(fleet));
      const drainS = await guard(drain(server));
      log(`  stopped in ${stopS.toFixed(2)} s; server quiet after ${drainS.toFixed(1)} s more`);
    }
    const fresh = !fleetStarted;
    const streamsAtStart = streamsOpened;
    fleet = makeFleet(opts, clients, leaseS, mode);
    fleetStarted = true;
    log(`fleet: ${fresh ? "starting" : "restarting"} ${opts.agents} agents at once, ${modeName(mode)}, lease ${leaseS} s`);
    const reg = await guard(registerFleet(meter, fleet, opts.registerTimeoutS));
    log(
      `  ${fresh ? "registered" : "re-registered"} ${reg.agents} in ${reg.seconds.toFixed(1)} s: ${fmtInt(reg.perSec)}/s (server Register OK ${reg.span.serverRegisterOk}, ` +
        `failures ${reg.span.agents.failures}, server CPU ${fmtPct(reg.span.serverCpu)}, client CPU ${fmtPct(reg.span.clientCpu)})`,
    );
    if (reg.span.serverRegisterOk < opts.agents) problems.push(`registration (${mode}): the server counted ${reg.span.serverRegisterOk} Register OK for ${opts.agents} agents`);
    const regWhat = fresh
      ? `new nodes (${mode} fleet, lease ${leaseS} s)`
      : `re-registration: restarted as ${mode}, lease ${leaseS} s (nodes exist)`;

    // Warm up: until every agent has renewed once (the first renewal comes up to one interval
    // after registering; on the stream it opens the agent's stream), then warmupS more.
    const firstS = await guard(firstRenewals(fleet, (leaseS / 4) * 1.1 + opts.registerTimeoutS));
    log(`  every agent renewed once ${firstS.toFixed(1)} s after the last registration; warming up ${warmupS} s more`);
    await guard(sleep(warmupS * 1000));
    const before = totals(fleet);
    const what = `${kind === "steady" ? "steady state" : "pushed"}, lease ${leaseS} s, ${mode}`;
    log(`fleet: ${what}: ${windowS} s`);
    // Sub-windows of at least one renewal period.
    const count = Math.max(1, Math.min(opts.windows, Math.floor(windowS / (leaseS / 4))));
    const phase = await guard(meter.measure(windowS, count, (w, i) => log(`  [${i}/${count}] ${fmtWindow(w)}`)));
    const after = await guard(meter.snap());
    const streamsOfFleet = after.streamsOpened - streamsAtStart;
    loads.push({ kind, mode, what, leaseS, windowS, reg, regWhat, phase, streamsOpened: streamsOfFleet });
    const t = phase.total;
    const other: Mode = mode === "stream" ? "unary" : "stream";

    // Every phase: no failure, every renewal answered OK, on the path of its mode only.
    const failures = after.agents.failures - before.failures;
    if (failures !== 0) problems.push(`${what}: ${failures} agent failure(s) after registration (must be 0)`);
    if (t.serverRenewNotOk !== 0) problems.push(`${what}: the server answered ${t.serverRenewNotOk} renewal(s) with an error`);
    if (t.server[mode].ok === 0) problems.push(`${what}: the server counted no ${SERVER_METHOD[mode]} renewal`);
    if (t.server[other].ok + t.server[other].notOk !== 0) problems.push(`${what}: the server counted ${t.server[other].ok + t.server[other].notOk} ${SERVER_METHOD[other]} renewal(s) (fallback?)`);
    const wantStreams = mode === "stream" ? opts.agents : 0;
    for (const w of phase.windows) {
      if (w.openStreams !== wantStreams) {
        problems.push(`${what}: the server had ${w.openStreams} heartbeat streams open at a sub-window's end, not ${wantStreams}`);
        break;
      }
    }
    if (streamsOfFleet !== wantStreams) problems.push(`${what}: the agents opened ${streamsOfFleet} heartbeat stream(s) since they started, not ${wantStreams} (one each: none reopened)`);
    if (kind !== "steady") return;
    // Steady state: the whole offered load carried, nothing re-registered, every node Ready.
    const ready = sumOf(after.server, "nodeplane_nodes", { status: "True" });
    if (t.agents.registrations !== 0) problems.push(`${what}: ${t.agents.registrations} re-registration(s)`);
    if (ready !== opts.agents) problems.push(`${what}: the controller counts ${ready} Ready nodes, not ${opts.agents}`);
    if (t.renewalsPerSec < 0.9 * offeredOf(opts, leaseS)) {
      problems.push(`${what}: ${fmtRate(t.renewalsPerSec)} renewals/s, under 90% of the ~${fmtInt(offeredOf(opts, leaseS))}/s offered`);
    }
  };

  // 0. Idle.
  log(`fleet: server idle for ${opts.idleWindowS} s`);
  const idleCount = Math.max(1, Math.min(opts.windows, Math.floor(opts.idleWindowS)));
  const idle = await guard(
    meter.measure(opts.idleWindowS, idleCount, (w, i) =>
      log(`  idle [${i}/${idleCount}] server CPU ${fmtPct(w.serverCpu)}  other ${fmtPct(w.otherCpu)}  server RSS ${fmtMiB(w.serverRss)}`),
    ),
  );

  // 1-3. Registration of new nodes, then the steady state at the default lease: stream, unary.
  await runLoad("steady", "stream", opts.leaseS, opts.warmupS, opts.windowS);
  await runLoad("steady", "unary", opts.leaseS, opts.warmupS, opts.windowS);
  // 4. Pushed, lease 4 s: unary, stream (the other order).
  await runLoad("pushed", "unary", opts.hardLeaseS, opts.hardWarmupS, opts.hardWindowS);
  await runLoad("pushed", "stream", opts.hardLeaseS, opts.hardWarmupS, opts.hardWindowS);

  // Clean end.
  const end = await guard(meter.snap());
  log(`fleet: stopping the agents`);
  const stopS = await guard(stopFleet(fleet));
  log(`  stopped in ${stopS.toFixed(2)} s`);
  for (const c of clients) c.close();
  for (const d of meter.disagreements.slice(0, 5)) problems.push(`renewal counts: ${d}`);
  if (meter.disagreements.length > 5) problems.push(`renewal counts: ${meter.disagreements.length - 5} more disagreement(s)`);
  const npExit = await stopServer(server, "nodeplane");
  if (npExit.code !== 0) problems.push(`nodeplane exited with ${npExit.code ?? npExit.signal} on SIGTERM`);
  if (server.output().trim()) log(`fleet: nodeplane said (warn and above):\n${server.output()}`);

  const report: Report = { opts, idle, loads };
  const table = mainTable(report);
  const regTable = registrationTable(report);
  const command =
    process.env.npm_lifecycle_event === "bench" ? `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}` : `node dist/bench/fleet.js ${argv.join(" ")}`.trim();
  const cpus = os.cpus();
  const machine =
    `${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}, data dir on ${fsTypeOf(dataDir)} (${path.dirname(dataDir)})`;
  const taints = sumOf(end.server, "nodeplane_controller_taints_added_total");
  const notReady = sumOf(end.server, "nodeplane_nodes") - sumOf(end.server, "nodeplane_nodes", { status: "True" });
  const warningLines = [...warnings.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `- ${fmtInt(n)} × ${k}`);
  const idleLine =
    `Server idle, no agents (${fmtS(opts.idleWindowS)}): CPU ${fmtPct(idle.total.serverCpu)} (the baseline of "per renewal above idle"), ` +
    `RSS ${fmtMiB(maxOf(idle.windows, (w) => w.serverRss))}; client CPU ${fmtPct(idle.total.clientCpu)}; other load ${fmtPct(idle.total.otherCpu)}.`;
  const overloaded = loads.filter((l) => l.phase.total.renewalsPerSec < 0.9 * offeredOf(opts, l.leaseS));
  const steadyPeaks = loads
    .filter((l) => l.kind === "steady")
    .map((l) => `${l.mode} ${fmtInt(peakOf(l))} at most in one second for ${fmtRate(l.phase.total.renewalsPerSec)}/s on average`)
    .join(", ");

  const doc = [
    `# Fleet benchmark: ${fmtInt(opts.agents)} node agents against one server, streaming heartbeat vs unary RenewLease`,
    "",
    `- Command: \`${command}\``,
    `- Date: ${new Date(began).toISOString()} (took ${Math.round((Date.now() - began) / 1000)} s)`,
    `- Machine: ${machine}`,
    `- Fleet: ${fmtInt(opts.agents)} NodeAgent instances (src/agent/agent.ts) in one Node process, sharing ${opts.channels} NodeClient channels round-robin ` +
      "(one HTTP/2 connection each), with a fixed probe (a 32-core, 128 GiB Debian node: the status never changes, so no status is sent within the " +
      "5 min report period); default agent timings otherwise (a renewal every lease × 0.25 — on the stream, the interval the server asks for, the same " +
      "here — with 0–4 % jitter, the first one spread uniformly over one interval after registering; status computed every 10 s). " +
      "Server: `nodeplane serve` as a child process, SQLite store in a temp dir, default controllers (node lifecycle), default heartbeat rate cap (10,000/s).",
    "",
    "What is measured: how one nodeplane server carries a fleet's heartbeat as the real SDK agent produces it (closed loop per agent: " +
      "renew, then sleep), in the agent's two modes side by side: **stream** (the default: each agent keeps one Heartbeat stream open and sends " +
      "one message per renewal) and **unary** (`heartbeat: \"unary\"`, the baseline: one RenewLease call per renewal). Each load phase starts the " +
      `fleet at once in one mode (the registration is timed), waits until every agent has renewed once (on the stream, the first renewal opens ` +
      `the agent's stream: the window starts with every stream open), warms up ${fmtS(opts.warmupS)} (pushed: ${fmtS(opts.hardWarmupS)}) more, then measures. ` +
      "Renewals/s come from the agents' own `stats.renewals`; the " +
      "benchmark's NodeClient also counts and times each renewal on both paths (RenewLease calls, and `renew()` on every stream `heartbeat()` opens), " +
      "cross-checked against the server's `nodeplane_heartbeats_total{code=\"OK\"}` (stream) and " +
      "`nodeplane_grpc_server_handled_total{method=\"RenewLease\",code=\"OK\"}` (unary). Latency is a renewal as the agents see it (queueing in either " +
      "event loop included); the server handler time is nodeplane's own `nodeplane_grpc_server_handling_seconds` histogram for method Heartbeat or " +
      "RenewLease (the store's renewal up to its commit; p99 as the bucket bound that holds it). CPU is % of one core from /proc (server: its " +
      `/proc/<pid>/stat; client: this process, all ${fmtInt(opts.agents)} agents and the benchmark's bookkeeping). Client and server share the ` +
      `machine's ${cpus.length} CPUs: read the two CPU columns and event-loop delays together to tell who is the bottleneck; \"other load\" is CPU taken ` +
      "by processes outside the benchmark, a noise indicator on this shared machine. The steady state runs stream first, the pushed phase unary first, " +
      "so that neither mode always comes first. Server RSS is the process's resident size, which carries over from phase to phase (V8 keeps " +
      "its heap's high-water mark), so it is no clean comparison between modes.",
    "",
    "Why one steady state and not two: the agents were all started at once, but each now waits a random part of one interval before its first " +
      "renewal, so the fleet does not renew in step. The earlier version also measured the fleet restarted with its starts spread over two " +
      `renewal periods, to get the smooth load a fleet started at once did not have; it now has it (peak renewals begun in one second: ${steadyPeaks}), ` +
      "so that phase would measure the same thing again and is gone.",
    "",
    idleLine,
    "",
    table,
    "",
    ...(overloaded.length
      ? [
          `Overloaded: ${overloaded.map((l) => `${l.what} carried ${fmtRate(l.phase.total.renewalsPerSec)} of ~${fmtInt(offeredOf(opts, l.leaseS))} renewals/s (sub-windows ${l.phase.windows.map((w) => fmtRate(w.renewalsPerSec)).join(" / ")})`).join("; ")}. ` +
            "An agent waits for its renewal before it sleeps, so once renewals take longer than the interval the fleet piles up in flight " +
            "(in flight at the sub-window ends, below), the store commits a few huge batches per second and the rate falls; a window's average " +
            "then depends on when that began. Read the sub-windows, with their other-load column, before the ratio.",
          "",
        ]
      : []),
    "Registrations (every agent started at once; each restart reuses the nodes, so the server updates them; renewals meanwhile are the " +
      "agents' first renewals, spread over one interval, that fell before the last registration):",
    "",
    regTable,
    "",
    "Where the CPU went:",
    "",
    ...loads.map((l) => `- ${cpuSplit(l, cpus.length)}`),
    "",
    "Per sub-window (status sends, re-registrations, streams opened and server non-OK calls are totals over the window):",
    "",
    detailTable(report),
    "",
    `At the end: the controller counted ${fmtInt(sumOf(end.server, "nodeplane_nodes", { status: "True" }))} Ready nodes and ${fmtInt(notReady)} not Ready; ` +
      `taints it added over the whole run: ${fmtInt(taints)}.`,
    "",
    problems.length === 0
      ? "Checks: all agents registered every time; in every load phase no agent failure, every renewal answered OK, renewals only on the " +
        "mode's own path (no RenewLease in stream mode, no Heartbeat in unary mode), one heartbeat stream open per agent in stream mode (none in " +
        "unary) at every sub-window's end, and one opened per agent since its start (none reopened); in both steady states no re-registration, at least 90% of the offered renewals " +
        `carried and every node Ready; at each of ${meter.snaps} snapshots the server's OK count of each path lay between the agents' renewals on ` +
        "that path answered OK before the scrape and begun after it; nodeplane shut down cleanly on SIGTERM."
      : `Checks FAILED:\n\n${problems.map((p) => `- ${p}`).join("\n")}`,
    "",
    warningLines.length ? `Agent warnings over the whole run:\n\n${warningLines.join("\n")}` : "Agent warnings over the whole run: none.",
    "",
  ].join("\n");

  process.stdout.write(`\n${idleLine}\n\n${table}\n\n${regTable}\n\n${loads.map((l) => cpuSplit(l, cpus.length)).join("\n")}\n`);
  if (problems.length) process.stdout.write(`\nChecks FAILED:\n${problems.map((p) => `- ${p}`).join("\n")}\n`);
  else process.stdout.write(`\nChecks passed (${meter.snaps} snapshots cross-checked).\n`);
  if (warningLines.length) process.stdout.write(`\nAgent warnings:\n${warningLines.join("\n")}\n`);
  if (opts.out) {
    fs.writeFileSync(opts.out, doc);
    log(`fleet: wrote ${path.relative(process.cwd(), opts.out) || opts.out}`);
  }
  log(`fleet: took ${Math.round((Date.now() - began) / 1000)} s`);
  emitSummary({
    bench: "fleet.js",
    details: opts.out ? path.relative(ROOT, opts.out) : undefined,
    tookS: (Date.now() - began) / 1000,
    rows: fleetSummary(report),
    failures: problems,
  });
  if (problems.length) throw new Error(`${problems.length} check(s) failed`);
}

/** The suite's rows: each load kind, stream beside its unary baseline. */
function fleetSummary(r: Report): SummaryRow[] {
  const idleCpu = r.idle.total.serverCpu ?? Number.NaN;
  return (["steady", "pushed"] as const).flatMap((kind) => {
    const s = r.loads.find((l) => l.kind === kind && l.mode === "stream");
    const u = r.loads.find((l) => l.kind === kind && l.mode === "unary");
    if (!s || !u) return [];
    const fig = (l: LoadPhase): string =>
      `${fmtRate(l.phase.total.renewalsPerSec)} renewals/s, p99 ${fmtMs(l.phase.total.renewP99Ms)} ms, ${fmtInt(serverUsPerRenewal(l.phase.total, idleCpu))} µs server CPU each`;
    const ratio = kind === "steady" ? serverUsPerRenewal(s.phase.total, idleCpu) / serverUsPerRenewal(u.phase.total, idleCpu) : s.phase.total.renewalsPerSec / u.phase.total.renewalsPerSec;
    return [
      {
        scenario: `${fmtInt(r.opts.agents)} SDK NodeAgents, ${kind === "steady" ? "steady" : "pushed"} (lease ${s.leaseS} s, ~${fmtInt(offeredOf(r.opts, s.leaseS))} renewals/s offered), streaming heartbeat`,
        result: fig(s),
        baseline: `the same agents on unary RenewLease: ${fig(u)}: **${ratio.toFixed(2)}×** ${kind === "steady" ? "server CPU per renewal" : "renewals/s"}`,
        target: "–",
        verdict: "–",
      },
    ];
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\nfleet bench FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
