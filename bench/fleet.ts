/**
 * `node dist/bench/fleet.js`: a simulated fleet of in-process NodeAgents (the SDK's node agent,
 * src/agent/agent.ts) heartbeating against one real nodeplane server, spawned as a child
 * process with a temp data dir. The agents share a few NodeClient channels round-robin (one
 * grpc-js channel per agent would be unrealistic for one process); each channel has its own
 * HTTP/2 connection. Their probe returns a fixed, realistic MachineStatus, so the status never
 * changes and only the report period (5 min, longer than the run) would send it.
 *
 * Phases, each bounded:
 *   0. idle: the server with no agents, --window seconds split in --windows sub-windows: its CPU.
 *   1. registration: start all --agents agents at once; time until every `registered` resolves.
 *   2. steady state: lease duration --lease (default 40 s: a renewal every 10 s per agent,
 *      ~1,000 renewals/s for 10,000 agents); after --warmup, --window seconds in --windows
 *      sub-windows: renewals/s (agents' stats and the server's RenewLease OK counter), server CPU
 *      and RSS, agent failures (must be 0), this (client) process's CPU.
 *   3. pushed: the fleet is stopped and started again with lease duration --hard-lease (4 s:
 *      ~10,000 renewals/s offered); the re-registration is timed, then after --hard-warmup,
 *      --hard-window seconds in --windows sub-windows.
 * Sub-window figures are reported as medians. The client process (all agents) shares the
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
 *   --windows K         sub-windows per measured phase, medians reported (default 3)
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

interface Options {
  agents: number;
  channels: number;
  leaseS: number;
  windowS: number;
  warmupS: number;
  hardLeaseS: number;
  hardWindowS: number;
  hardWarmupS: number;
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
      windows: { type: "string" },
      "register-timeout": { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: node dist/bench/fleet.js [--agents N] [--channels C] [--lease S] [--window S] [--warmup S] [--hard-lease S] [--hard-window S] [--hard-warmup S] [--windows K] [--register-timeout S] [--out FILE]\n",
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

/** A NodeClient that times RenewLease. */
class TimedClient extends NodeClient {
  override async renewLease(nodeName: string, opts?: RenewOptions): Promise<Lease> {
    const t = performance.now();
    const lease = await super.renewLease(nodeName, opts);
    const us = (performance.now() - t) * 1000;
    windowRenewHist.record(us);
    phaseRenewHist.record(us);
    return lease;
  }
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
  agents: AgentStats;
  server: Samples;
  serverCpuMs: number | undefined;
  machineMs: number | undefined;
  clientCpu: NodeJS.CpuUsage;
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
  renewP50Ms: number;
  renewP99Ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

class Meter {
  private readonly loop = monitorEventLoopDelay({ resolution: 10 });

  constructor(
    private readonly server: Served,
    private readonly agents: () => NodeAgent[],
  ) {
    this.loop.enable();
  }

  async snap(): Promise<Snap> {
    const server = await scrapeMetrics(this.server.httpPort!);
    return {
      at: performance.now(),
      agents: totals(this.agents()),
      server,
      serverCpuMs: procCpuMs(this.server.child.pid),
      machineMs: machineBusyMs(),
      clientCpu: process.cpuUsage(),
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
      clientRss: process.memoryUsage().rss,
      renewP50Ms: hist.quantileUs(0.5) / 1000,
      renewP99Ms: hist.quantileUs(0.99) / 1000,
      loopP99Ms: this.loop.count > 0 ? this.loop.percentile(99) / 1e6 : Number.NaN,
      loopMaxMs: this.loop.count > 0 ? this.loop.max / 1e6 : Number.NaN,
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

interface Phase {
  windows: Window[];
  /** Over the whole span (counts, CPU); loop delay p99 is the median of the windows', max the max. */
  total: Window;
}

interface Registration {
  agents: number;
  seconds: number;
  perSec: number;
  p50S: number;
  p99S: number;
  /** Over the registration, snapshot to snapshot. */
  span: Window;
  /** Snapshot right before the start, for the phase that follows. */
  before: Snap;
}

/** Start every agent at once; time until each has registered (bounded). */
async function registerFleet(meter: Meter, agents: NodeAgent[], timeoutS: number): Promise<Registration> {
  phaseRenewHist = new Histogram();
  const before = await meter.snap();
  meter.resetWindow();
  const t0 = performance.now();
  const doneAt: number[] = [];
  const all = agents.map((a) => {
    a.start();
    return a.registered.then(() => void doneAt.push(performance.now() - t0));
  });
  await withTimeout(
    Promise.all(all),
    timeoutS * 1000,
    () => `only ${doneAt.length} of ${agents.length} agents registered within ${timeoutS} s (agent failures so far: ${totals(agents).failures})`,
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
    before,
  };
}

async function stopFleet(agents: NodeAgent[]): Promise<number> {
  const t = performance.now();
  await withTimeout(Promise.all(agents.map((a) => a.stop())), STOP_TIMEOUT_MS, () => `the agents did not all stop within ${STOP_TIMEOUT_MS / 1000} s`);
  return (performance.now() - t) / 1000;
}

// ---------------------------------------------------------------------------------------
// Reporting

const fmtRate = (n: number): string => (Number.isFinite(n) ? (n >= 100 ? fmtInt(n) : n.toFixed(1)) : "–");
const perWindow = (ws: Window[], f: (w: Window) => string): string => ws.map(f).join(" / ");
const medianOf = (ws: Window[], f: (w: Window) => number | undefined): number => median(ws.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
const maxOf = (ws: Window[], f: (w: Window) => number | undefined): number | undefined => {
  const xs = ws.map(f).filter((x): x is number => x !== undefined);
  return xs.length ? Math.max(...xs) : undefined;
};

interface Report {
  opts: Options;
  idle: Phase;
  reg: Registration;
  steady: Phase;
  stop1S: number;
  rereg: Registration;
  hard: Phase;
  stop2S: number;
}

function mainTable(r: Report): string {
  const { opts } = r;
  const offered = (leaseS: number): number => opts.agents / (leaseS * 0.25 * MEAN_JITTER);
  const idleCpu = medianOf(r.idle.windows, (w) => w.serverCpu);
  const perRenewal = (p: Phase): string => {
    const cpu = medianOf(p.windows, (w) => w.serverCpu);
    const rate = medianOf(p.windows, (w) => w.serverRenewPerSec);
    return rate > 0 ? `${fmtInt(((cpu - idleCpu) / 100) * (1e6 / rate))} µs` : "–";
  };
  const rows = [
    "| phase | window | offered | achieved (agents) | server-counted | agent-seen latency p50 / p99 | agent failures | server CPU | server CPU / call above idle | server RSS | client CPU | client event-loop delay p99 / max |",
    "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    `| server idle, no agents | ${r.opts.windowS} s (${opts.windows} × ${fmtS(opts.windowS / opts.windows)}) | – | – | – | – | – | ${fmtPct(idleCpu)} | – | ${fmtMiB(maxOf(r.idle.windows, (w) => w.serverRss))} | ${fmtPct(medianOf(r.idle.windows, (w) => w.clientCpu))} | – |`,
    regRow(`registration: ${fmtInt(opts.agents)} agents start at once (new nodes)`, r.reg),
    phaseRow(`steady state, lease ${opts.leaseS} s (renewal every ${fmtS(opts.leaseS / 4)})`, opts.windowS, opts.windows, offered(opts.leaseS), r.steady, perRenewal(r.steady)),
    regRow(`re-registration: the fleet restarted with lease ${opts.hardLeaseS} s (nodes exist)`, r.rereg),
    phaseRow(`pushed, lease ${opts.hardLeaseS} s (renewal every ${fmtS(opts.hardLeaseS / 4)})`, opts.hardWindowS, opts.windows, offered(opts.hardLeaseS), r.hard, perRenewal(r.hard)),
  ];
  return rows.join("\n");
}

const fmtS = (s: number): string => `${Number.isInteger(s) ? s : s.toFixed(1)} s`;

function regRow(what: string, g: Registration): string {
  const w = g.span;
  return (
    `| ${what} | all registered in ${g.seconds.toFixed(1)} s (p50 ${g.p50S.toFixed(1)} s, p99 ${g.p99S.toFixed(1)} s) | ${fmtInt(g.agents)} at once | ` +
    `**${fmtInt(g.perSec)} registrations/s** | ${fmtInt(w.serverRegisterOk / g.seconds)} Register OK/s (+${fmtInt(w.serverRenewOk)} first renewals) | ` +
    `renew ${fmtMs(w.renewP50Ms)} / ${fmtMs(w.renewP99Ms)} ms | ${fmtInt(w.agents.failures)} | ${fmtPct(w.serverCpu)} | – | ${fmtMiB(w.serverRss)} | ${fmtPct(w.clientCpu)} | ${fmtMs(w.loopP99Ms)} / ${fmtMs(w.loopMaxMs)} ms |`
  );
}

function phaseRow(what: string, windowS: number, count: number, offered: number, p: Phase, perCall: string): string {
  const ws = p.windows;
  return (
    `| ${what} | ${fmtS(windowS)} (${count} × ${fmtS(windowS / count)}) | ~${fmtInt(offered)} renewals/s | **${fmtRate(medianOf(ws, (w) => w.renewalsPerSec))} renewals/s** | ` +
    `${fmtRate(medianOf(ws, (w) => w.serverRenewPerSec))} RenewLease OK/s | ${fmtMs(medianOf(ws, (w) => w.renewP50Ms))} / ${fmtMs(medianOf(ws, (w) => w.renewP99Ms))} ms | ` +
    `${fmtInt(p.total.agents.failures)} | ${fmtPct(medianOf(ws, (w) => w.serverCpu))} | ${perCall} | ${fmtMiB(maxOf(ws, (w) => w.serverRss))} | ` +
    `${fmtPct(medianOf(ws, (w) => w.clientCpu))} | ${fmtMs(medianOf(ws, (w) => w.loopP99Ms))} / ${fmtMs(p.total.loopMaxMs)} ms |`
  );
}

function detailTable(r: Report): string {
  const rows = [
    "| phase | renewals/s per sub-window (agents) | server RenewLease OK/s per sub-window | server CPU per sub-window | client CPU per sub-window | other load per sub-window | renew p99 ms per sub-window | status sends | re-registrations | server non-OK calls | client RSS |",
    "|---|---|---|---|---|---|---|---:|---:|---:|---:|",
  ];
  const line = (name: string, p: Phase): string =>
    `| ${name} | ${perWindow(p.windows, (w) => fmtRate(w.renewalsPerSec))} | ${perWindow(p.windows, (w) => fmtRate(w.serverRenewPerSec))} | ` +
    `${perWindow(p.windows, (w) => fmtPct(w.serverCpu))} | ${perWindow(p.windows, (w) => fmtPct(w.clientCpu))} | ${perWindow(p.windows, (w) => fmtPct(w.otherCpu))} | ` +
    `${perWindow(p.windows, (w) => fmtMs(w.renewP99Ms))} | ${fmtInt(p.total.agents.statusSends)} | ${fmtInt(p.total.agents.registrations)} | ${fmtInt(p.total.serverNotOk)} | ${fmtMiB(maxOf(p.windows, (w) => w.clientRss))} |`;
  rows.push(line("server idle", r.idle), line("steady state", r.steady), line("pushed", r.hard));
  return rows.join("\n");
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

  const expectS =
    opts.windowS * 2 + opts.warmupS + opts.hardWarmupS + opts.hardWindowS + 2 * Math.min(opts.registerTimeoutS, 10) + 5;
  log(
    `fleet: ${opts.agents} agents over ${opts.channels} channels; idle ${opts.windowS} s, steady (lease ${opts.leaseS} s) ${opts.warmupS}+${opts.windowS} s, ` +
      `pushed (lease ${opts.hardLeaseS} s) ${opts.hardWarmupS}+${opts.hardWindowS} s: about ${Math.round(expectS)} s`,
  );

  const dataDir = trackTempDir(fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-fleet-")));
  const server = await spawnNodeplane(dataDir);
  if (server.httpPort === undefined) throw new Error("nodeplane did not report its HTTP port (needed for /metrics)");
  const address = `127.0.0.1:${server.port}`;
  log(`fleet: nodeplane serving at ${address} (pid ${server.child.pid}, data dir ${dataDir}, ${fsTypeOf(dataDir)})`);
  const serverDied = server.exited.then((e) => {
    throw new Error(`nodeplane exited (${e.code ?? e.signal}) during the run:\n${server.output()}`);
  });
  serverDied.catch(() => {}); // raced below; not unhandled
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, serverDied]);

  // One channel (own HTTP/2 connection: grpc-js would otherwise share one subchannel among
  // identical channels) per client; agents use them round-robin.
  const clients = Array.from(
    { length: opts.channels },
    () => new TimedClient(address, { channelOptions: { "grpc.use_local_subchannel_pool": 1 } }),
  );
  await guard(Promise.all(clients.map((c) => c.waitForReady(10_000))));

  let fleet: NodeAgent[] = [];
  const meter = new Meter(server, () => fleet);
  const fmtWindow = (w: Window): string =>
    `${fmtRate(w.renewalsPerSec).padStart(6)} renewals/s (server ${fmtRate(w.serverRenewPerSec).padStart(6)})  p99 ${fmtMs(w.renewP99Ms).padStart(5)} ms  ` +
    `failures ${w.agents.failures}  server CPU ${fmtPct(w.serverCpu).padStart(4)}  client CPU ${fmtPct(w.clientCpu).padStart(4)}  ` +
    `other ${fmtPct(w.otherCpu).padStart(4)}  loop p99 ${fmtMs(w.loopP99Ms)} ms  server RSS ${fmtMiB(w.serverRss)}`;

  // 0. Idle.
  log(`fleet: server idle for ${opts.windowS} s`);
  const idle = await guard(meter.measure(opts.windowS, opts.windows, (w, i) => log(`  idle [${i}/${opts.windows}] server CPU ${fmtPct(w.serverCpu)}  other ${fmtPct(w.otherCpu)}  server RSS ${fmtMiB(w.serverRss)}`)));

  // 1. Registration.
  fleet = makeFleet(opts, clients, opts.leaseS);
  log(`fleet: starting ${opts.agents} agents (lease ${opts.leaseS} s)`);
  const reg = await guard(registerFleet(meter, fleet, opts.registerTimeoutS));
  log(
    `  registered ${reg.agents} in ${reg.seconds.toFixed(1)} s: ${fmtInt(reg.perSec)}/s (server Register OK ${reg.span.serverRegisterOk}, ` +
      `failures ${reg.span.agents.failures}, server CPU ${fmtPct(reg.span.serverCpu)}, client CPU ${fmtPct(reg.span.clientCpu)})`,
  );
  if (reg.span.serverRegisterOk < opts.agents) problems.push(`registration: the server counted ${reg.span.serverRegisterOk} Register OK for ${opts.agents} agents`);

  // 2. Steady state.
  await guard(sleep(opts.warmupS * 1000));
  log(`fleet: steady state for ${opts.windowS} s`);
  const steady = await guard(meter.measure(opts.windowS, opts.windows, (w, i) => log(`  steady [${i}/${opts.windows}] ${fmtWindow(w)}`)));
  const afterSteady = await guard(meter.snap());
  const steadyFailures = afterSteady.agents.failures - reg.before.agents.failures - reg.span.agents.failures;
  if (steadyFailures !== 0) problems.push(`steady state: ${steadyFailures} agent failure(s) after registration (must be 0)`);
  if (steady.total.agents.registrations !== 0) problems.push(`steady state: ${steady.total.agents.registrations} re-registration(s)`);
  if (steady.total.serverRenewNotOk !== 0) problems.push(`steady state: the server answered ${steady.total.serverRenewNotOk} RenewLease call(s) with an error`);
  const ready = sumOf(afterSteady.server, "nodeplane_nodes", { status: "True" });
  if (ready !== opts.agents) problems.push(`steady state: the controller counts ${ready} Ready nodes, not ${opts.agents}`);
  checkAgreement("steady state", steady, problems);

  // 3. Pushed: the same fleet restarted with a short lease.
  log(`fleet: stopping the agents`);
  const stop1S = await guard(stopFleet(fleet));
  fleet = makeFleet(opts, clients, opts.hardLeaseS);
  log(`fleet: restarting ${opts.agents} agents with lease ${opts.hardLeaseS} s`);
  const rereg = await guard(registerFleet(meter, fleet, opts.registerTimeoutS));
  log(
    `  re-registered ${rereg.agents} in ${rereg.seconds.toFixed(1)} s: ${fmtInt(rereg.perSec)}/s (failures ${rereg.span.agents.failures}, ` +
      `server CPU ${fmtPct(rereg.span.serverCpu)}, client CPU ${fmtPct(rereg.span.clientCpu)})`,
  );
  await guard(sleep(opts.hardWarmupS * 1000));
  log(`fleet: pushed for ${opts.hardWindowS} s`);
  const hard = await guard(meter.measure(opts.hardWindowS, opts.windows, (w, i) => log(`  pushed [${i}/${opts.windows}] ${fmtWindow(w)}`)));
  checkAgreement("pushed", hard, problems);
  const afterHard = await guard(meter.snap());

  // Clean end.
  log(`fleet: stopping the agents`);
  const stop2S = await guard(stopFleet(fleet));
  for (const c of clients) c.close();
  const npExit = await stopServer(server, "nodeplane");
  if (npExit.code !== 0) problems.push(`nodeplane exited with ${npExit.code ?? npExit.signal} on SIGTERM`);
  if (server.output().trim()) log(`fleet: nodeplane said (warn and above):\n${server.output()}`);

  const report: Report = { opts, idle, reg, steady, stop1S, rereg, hard, stop2S };
  const table = mainTable(report);
  const command =
    process.env.npm_lifecycle_event === "bench" ? `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}` : `node dist/bench/fleet.js ${argv.join(" ")}`.trim();
  const cpus = os.cpus();
  const machine =
    `${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}, data dir on ${fsTypeOf(dataDir)} (${path.dirname(dataDir)})`;
  const hardW = hard.windows;
  const hardServer = medianOf(hardW, (w) => w.serverCpu);
  const hardClient = medianOf(hardW, (w) => w.clientCpu);
  const hardOther = medianOf(hardW, (w) => w.otherCpu);
  const taints = sumOf(afterHard.server, "nodeplane_controller_taints_added_total");
  const warningLines = [...warnings.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  - ${fmtInt(n)} × ${k}`);

  const doc = [
    "# Fleet benchmark: 10,000 node agents against one server",
    "",
    `- Command: \`${command}\``,
    `- Date: ${new Date(began).toISOString()} (took ${Math.round((Date.now() - began) / 1000)} s)`,
    `- Machine: ${machine}`,
    `- Fleet: ${fmtInt(opts.agents)} NodeAgent instances (src/agent/agent.ts) in one Node process, sharing ${opts.channels} NodeClient channels round-robin ` +
      `(one HTTP/2 connection each), with a fixed probe (a 32-core, 128 GiB Debian node: the status never changes, so the agents send none within the ` +
      `5 min report period); default agent timings otherwise (renewal every lease × 0.25 with 0–4 % jitter, status computed every 10 s). ` +
      `Server: \`nodeplane serve\` as a child process, SQLite store in a temp dir, default controllers (node lifecycle).`,
    "",
    "What is measured: how one nodeplane server carries a fleet's heartbeat as the real SDK agent produces it (closed loop per agent: " +
      "renew, then sleep a quarter of the lease). Registration: every agent starts at once and registers (each then renews once); " +
      "the rate is agents / time until the last `registered` resolved. Steady state and pushed: renewals/s from the agents' own " +
      "`stats.renewals` and, as a cross-check, the server's `nodeplane_grpc_server_handled_total{method=\"RenewLease\",code=\"OK\"}`; " +
      `each measured span is cut into ${opts.windows} sub-windows and the table shows medians. CPU is % of one core from /proc ` +
      `(server: its /proc/<pid>/stat; client: this process, all ${fmtInt(opts.agents)} agents and the benchmark's own bookkeeping). ` +
      `The client and the server share the machine's ${cpus.length} CPUs, so read the two CPU columns together: ` +
      "a phase whose client CPU nears 100 % (or whose client event-loop delay grows) is bounded by the simulated fleet, not the server. " +
      "Latency is RenewLease as the agents see it (including queueing in the client's own event loop).",
    "",
    table,
    "",
    `Pushed phase: server ${fmtPct(hardServer)} + client ${fmtPct(hardClient)} + other load ${fmtPct(hardOther)} of the ${cpus.length * 100} % the machine has` +
      `; achieved ${fmtRate(medianOf(hardW, (w) => w.renewalsPerSec))} of ~${fmtInt(opts.agents / (opts.hardLeaseS * 0.25 * MEAN_JITTER))} renewals/s offered.`,
    "",
    "Per sub-window (other load is CPU taken by processes outside the benchmark, a noise indicator on this shared machine; " +
      "status sends, re-registrations and server non-OK calls are totals over the measured span):",
    "",
    detailTable(report),
    "",
    `Stopping ${fmtInt(opts.agents)} agents took ${report.stop1S.toFixed(2)} s and ${report.stop2S.toFixed(2)} s. ` +
      `Controller at the end of the steady state: ${fmtInt(ready)} Ready nodes; taints it added over the whole run: ${fmtInt(taints)}.`,
    "",
    problems.length === 0
      ? "Checks: all agents registered; no agent failure and no re-registration in the steady state; the server answered every RenewLease OK there; " +
        "agents' and server's renewal counts agree within 5 % in every sub-window; the controller saw every node Ready; nodeplane shut down cleanly on SIGTERM."
      : `Checks FAILED:\n${problems.map((p) => `- ${p}`).join("\n")}`,
    warningLines.length ? `\nAgent warnings over the whole run:\n${warningLines.join("\n")}` : "\nAgent warnings over the whole run: none.",
    "",
  ].join("\n");

  process.stdout.write(`\n${table}\n`);
  if (problems.length) process.stdout.write(`\nChecks FAILED:\n${problems.map((p) => `- ${p}`).join("\n")}\n`);
  if (warningLines.length) process.stdout.write(`\nAgent warnings:\n${warningLines.join("\n")}\n`);
  if (opts.out) {
    fs.writeFileSync(opts.out, doc);
    log(`fleet: wrote ${path.relative(process.cwd(), opts.out) || opts.out}`);
  }
  if (problems.length) throw new Error(`${problems.length} check(s) failed`);
}

/** Agents' and server's renewal counts per sub-window: they differ only by calls in flight at the edges. */
function checkAgreement(name: string, p: Phase, problems: string[]): void {
  p.windows.forEach((w, i) => {
    const d = Math.abs(w.agents.renewals - w.serverRenewOk);
    if (d > Math.max(50, 0.05 * w.serverRenewOk)) {
      problems.push(`${name} sub-window ${i + 1}: agents counted ${w.agents.renewals} renewals, the server ${w.serverRenewOk} OK`);
    }
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\nfleet bench FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
