/**
 * What bench/fleet.ts measures, and how: every renewal the agents make is counted and timed on
 * the client (TimedClient wraps renewLease() and the renew() of every stream heartbeat() opens),
 * and snapshots of both sides — the agents' stats and these counts, the server's /metrics, CPU
 * of server, client and machine, both main threads' scheduling — are differenced into windows.
 * At every snapshot the server's OK count of each path must lie between the renewals the agents
 * had answered OK before the scrape and those begun after it.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { AgentStats, NodeAgent } from "../src/agent/agent.js";
import { type CallOptions, type HeartbeatStream, NodeClient, type NodeClientOptions, type RenewOptions } from "../src/client/client.js";
import type { Lease } from "../src/gen/nodeplane/v1/lease.js";
import { grew, type Samples, scrapeMetrics, type Served, sleep, sumOf } from "./harness.js";
import { cpuBetween, type CpuReading, readCpu, threadSchedMs } from "./proc.js";
import { median } from "./report.js";
import { Histogram } from "./tally.js";

/** How the agents renew: the streaming heartbeat (the agent's default) or RenewLease calls. */
export type Mode = "stream" | "unary";
export const MODES: Mode[] = ["stream", "unary"];
/** The server method whose handling time and counts belong to each mode. */
export const SERVER_METHOD: Record<Mode, string> = { stream: "Heartbeat", unary: "RenewLease" };
const LOOP_RESOLUTION_MS = 10;

/** Every renewal of the run, on the client: per path begun, answered OK, failed (a stop's cancels included); never reset. */
export class Renewals {
  readonly calls: Record<Mode, { started: number; ok: number; failed: number }> = { stream: { started: 0, ok: 0, failed: 0 }, unary: { started: 0, ok: 0, failed: 0 } };
  /** Heartbeat streams the agents opened (one per agent per cycle; more means reconnections). */
  streamsOpened = 0;
  /** Renewal latency, per window and per phase (reset by the Meter). */
  window = new Histogram();
  phase = new Histogram();
  /** Renewals begun per whole second (performance.now() / 1000), either path, to see bursts. */
  private readonly perSecond = new Map<number, number>();

  async timed<T>(mode: Mode, call: () => Promise<T>): Promise<T> {
    const t = performance.now();
    const sec = Math.floor(t / 1000);
    this.perSecond.set(sec, (this.perSecond.get(sec) ?? 0) + 1);
    const c = this.calls[mode];
    c.started++;
    const res = await call().catch((err: unknown) => {
      c.failed++;
      throw err;
    });
    c.ok++;
    const us = (performance.now() - t) * 1000;
    this.window.record(us);
    this.phase.record(us);
    return res;
  }

  /** The most renewals begun in one whole second within [fromMs, toMs] (NaN if none fits); forgets older seconds. */
  peakPerSecond(fromMs: number, toMs: number): number {
    let peak = 0;
    for (const [sec, n] of this.perSecond) {
      if (sec * 1000 >= fromMs && (sec + 1) * 1000 <= toMs) peak = Math.max(peak, n);
      if ((sec + 1) * 1000 <= fromMs) this.perSecond.delete(sec);
    }
    return Math.floor(toMs / 1000) - Math.ceil(fromMs / 1000) >= 1 ? peak : Number.NaN;
  }
}

/** A NodeClient that counts and times renewals on both paths. */
export class TimedClient extends NodeClient {
  constructor(
    address: string,
    opts: NodeClientOptions,
    private readonly renewals: Renewals,
  ) {
    super(address, opts);
  }

  override renewLease(nodeName: string, opts?: RenewOptions): Promise<Lease> {
    return this.renewals.timed("unary", () => super.renewLease(nodeName, opts));
  }

  override heartbeat(opts?: CallOptions): HeartbeatStream {
    const stream = super.heartbeat(opts);
    this.renewals.streamsOpened++;
    return { renew: (nodeName, renewal) => this.renewals.timed("stream", () => stream.renew(nodeName, renewal)), close: () => stream.close() };
  }
}

export function totals(agents: NodeAgent[]): AgentStats {
  const t: AgentStats = { registrations: 0, renewals: 0, statusSends: 0, failures: 0 };
  for (const a of agents) for (const k of Object.keys(t) as Array<keyof AgentStats>) t[k] += a.stats[k];
  return t;
}

/** The server's renewal counts of one path (answered OK with `code` "OK", else all). */
function serverRenewals(s: Samples, mode: Mode, code?: string): number {
  const labels: Record<string, string> = code === undefined ? {} : { code };
  return mode === "stream" ? sumOf(s, "nodeplane_heartbeats_total", labels) : sumOf(s, "nodeplane_grpc_server_handled_total", { method: "RenewLease", ...labels });
}

interface Snap {
  at: number;
  /** Renewals begun and not yet settled, both paths, read right after the scrape. */
  inFlight: number;
  streamsOpened: number;
  agents: AgentStats;
  server: Samples;
  cpu: CpuReading;
  serverMain: { runMs: number; waitMs: number } | undefined;
  clientMain: { runMs: number; waitMs: number } | undefined;
}

export interface Window {
  seconds: number;
  /** Agent-side deltas. */
  agents: AgentStats;
  renewalsPerSec: number;
  /** The server's renewal counts per path (OK, not OK), both paths together, and its other counts. */
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
  clientRss: number | undefined;
  /** nodeplane's group commits: per second, mean transactions each, time in them (its store writer thread) as % of the window. */
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
  /** nodeplane's renewal handling time (Heartbeat and RenewLease together): mean, and the bucket bound holding p99. */
  handlerMeanMs: number;
  handlerP99Ms: number;
  /** nodeplane's event-loop delay over the window (prom-client's, reset at each scrape), and this process's. */
  serverLoopP99Ms: number;
  serverLoopMaxMs: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

export interface Phase {
  windows: Window[];
  /** Over the whole span (counts, CPU); loop delay p99 is the median of the windows', max the max. */
  total: Window;
}

/** Renewal handling time (Heartbeat and RenewLease together) between two scrapes of nodeplane's histogram, ms. */
function handlerTimes(a: Samples, b: Samples): { handlerMeanMs: number; handlerP99Ms: number } {
  const methods = Object.values(SERVER_METHOD);
  const d = (name: string, labels: Record<string, string> = {}): number => methods.reduce((n, method) => n + grew(a, b, name, { method, ...labels }), 0);
  const count = d("nodeplane_grpc_server_handling_seconds_count");
  if (count === 0) return { handlerMeanMs: Number.NaN, handlerP99Ms: Number.NaN };
  const bounds = new Set<string>();
  for (const series of b.keys()) {
    const m = /^nodeplane_grpc_server_handling_seconds_bucket\{.*le="([^"]+)"/.exec(series);
    if (m && methods.some((method) => series.includes(`method="${method}"`))) bounds.add(m[1]!);
  }
  const sorted = [...bounds].map((le) => ({ le, v: le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le) })).sort((x, y) => x.v - y.v);
  const p99 = sorted.find(({ le }) => d("nodeplane_grpc_server_handling_seconds_bucket", { le }) >= 0.99 * count);
  return { handlerMeanMs: (d("nodeplane_grpc_server_handling_seconds_sum") / count) * 1000, handlerP99Ms: p99 ? p99.v * 1000 : Number.NaN };
}

/** prom-client's event-loop delay gauges sample every 10 ms and count the interval: the delay is beyond that. */
function loopGauge(s: Samples, name: string): number {
  const v = s.get(name);
  return v === undefined ? Number.NaN : Math.max(0, v * 1000 - 10);
}

export class Meter {
  /** Snapshots where the server's OK count of a path fell outside what the agents bracket. */
  readonly disagreements: string[] = [];
  snaps = 0;
  readonly renewals = new Renewals();
  /** Samples every LOOP_RESOLUTION_MS; a sample is the interval it took, so the delay is that minus the resolution. */
  private readonly loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });

  constructor(
    private readonly server: Served & { httpPort: number },
    private readonly agents: () => NodeAgent[],
  ) {
    this.loop.enable();
  }

  async snap(): Promise<Snap> {
    this.snaps++;
    const calls = this.renewals.calls;
    const okBefore = { stream: calls.stream.ok, unary: calls.unary.ok };
    const server = await scrapeMetrics(this.server.httpPort);
    for (const m of MODES) {
      const serverOk = serverRenewals(server, m, "OK");
      if (serverOk < okBefore[m] || serverOk > calls[m].started) {
        this.disagreements.push(
          `the server counted ${serverOk} ${SERVER_METHOD[m]} renewals OK in all; the agents had ${okBefore[m]} answered OK before the scrape and ${calls[m].started} begun after it`,
        );
      }
    }
    return {
      at: performance.now(),
      inFlight: MODES.reduce((n, m) => n + calls[m].started - calls[m].ok - calls[m].failed, 0),
      streamsOpened: this.renewals.streamsOpened,
      agents: totals(this.agents()),
      server,
      cpu: readCpu({ server: this.server.child.pid, client: process.pid }),
      serverMain: threadSchedMs(this.server.child.pid),
      clientMain: threadSchedMs(process.pid),
    };
  }

  /** Start a fresh window for the per-window histograms. */
  resetWindow(): void {
    this.renewals.window = new Histogram();
    this.loop.reset();
  }

  diff(a: Snap, b: Snap, hist: Histogram): Window {
    const seconds = (b.at - a.at) / 1000;
    const pct = (x: number | undefined, y: number | undefined): number | undefined => (x === undefined || y === undefined ? undefined : (100 * (y - x)) / 1000 / seconds);
    const perPath = (m: Mode): { ok: number; notOk: number } => {
      const ok = serverRenewals(b.server, m, "OK") - serverRenewals(a.server, m, "OK");
      return { ok, notOk: serverRenewals(b.server, m) - serverRenewals(a.server, m) - ok };
    };
    const server = { stream: perPath("stream"), unary: perPath("unary") };
    const allOk = grew(a.server, b.server, "nodeplane_grpc_server_handled_total", { code: "OK" });
    const all = grew(a.server, b.server, "nodeplane_grpc_server_handled_total");
    const agents = { ...b.agents };
    for (const k of Object.keys(agents) as Array<keyof AgentStats>) agents[k] -= a.agents[k];
    const cpu = cpuBetween(a.cpu, b.cpu);
    const commits = grew(a.server, b.server, "nodeplane_store_commit_seconds_count");
    const serverRenewOk = server.stream.ok + server.unary.ok;
    return {
      seconds,
      agents,
      renewalsPerSec: agents.renewals / seconds,
      server,
      serverRenewOk,
      serverRenewNotOk: server.stream.notOk + server.unary.notOk,
      serverRenewPerSec: serverRenewOk / seconds,
      serverRegisterOk: grew(a.server, b.server, "nodeplane_grpc_server_handled_total", { method: "Register", code: "OK" }),
      // Stream renewals that failed end their stream: count them with the calls that failed.
      serverNotOk: all - allOk + server.stream.notOk,
      openStreams: sumOf(b.server, "nodeplane_heartbeat_streams"),
      streamsOpened: b.streamsOpened - a.streamsOpened,
      serverCpu: cpu.pct.server,
      clientCpu: cpu.pct.client ?? Number.NaN,
      otherCpu: cpu.otherPct,
      serverRss: cpu.rss.server,
      clientRss: cpu.rss.client,
      commitsPerSec: commits / seconds,
      txnsPerCommit: commits > 0 ? grew(a.server, b.server, "nodeplane_store_commit_batch_transactions_sum") / commits : Number.NaN,
      commitPct: (100 * grew(a.server, b.server, "nodeplane_store_commit_seconds_sum")) / seconds,
      serverMainRun: pct(a.serverMain?.runMs, b.serverMain?.runMs),
      serverMainWait: pct(a.serverMain?.waitMs, b.serverMain?.waitMs),
      clientMainRun: pct(a.clientMain?.runMs, b.clientMain?.runMs),
      clientMainWait: pct(a.clientMain?.waitMs, b.clientMain?.waitMs),
      renewP50Ms: hist.ms(0.5),
      renewP99Ms: hist.ms(0.99),
      peakStartsPerSec: this.renewals.peakPerSecond(a.at, b.at),
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
    this.renewals.phase = new Histogram();
    let prev = await this.snap();
    this.resetWindow();
    const first = prev;
    const windows: Window[] = [];
    for (let i = 1; i <= count; i++) {
      await sleep(first.at + i * subMs - performance.now());
      const s = await this.snap();
      windows.push(this.diff(prev, s, this.renewals.window));
      this.resetWindow();
      log(windows.at(-1)!, i);
      prev = s;
    }
    const total = this.diff(first, prev, this.renewals.phase);
    total.loopP99Ms = median(windows.map((w) => w.loopP99Ms));
    total.loopMaxMs = Math.max(0, ...windows.map((w) => w.loopMaxMs));
    return { windows, total };
  }

  /**
   * After a stop, calls the agents cancelled may still be queued in the server and their
   * heartbeat streams still closing: wait (bounded) until no stream is open and the handled-call
   * and stream-renewal counts hold still, so the next phase starts on a quiet server.
   */
  async drain(limitMs = 10_000): Promise<number> {
    const t = performance.now();
    for (let last = -1; performance.now() - t < limitMs; await sleep(250)) {
      const s = await scrapeMetrics(this.server.httpPort);
      const now = sumOf(s, "nodeplane_grpc_server_handled_total") + sumOf(s, "nodeplane_heartbeats_total");
      if (now === last && sumOf(s, "nodeplane_heartbeat_streams") === 0) break;
      last = now;
    }
    return (performance.now() - t) / 1000;
  }
}

/** `p`, or a rejection with `what()` after `ms`. */
export function bounded<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms)))]).finally(() => clearTimeout(timer));
}

export interface Registration {
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
export async function registerFleet(meter: Meter, agents: NodeAgent[], timeoutS: number): Promise<Registration> {
  meter.renewals.phase = new Histogram();
  const before = await meter.snap();
  meter.resetWindow();
  const t0 = performance.now();
  const doneAt: number[] = [];
  const all = Promise.all(agents.map((a) => a.registered.then(() => void doneAt.push(performance.now() - t0))));
  for (const a of agents) a.start();
  const why = (): string => `only ${doneAt.length} of ${agents.length} agents registered within ${timeoutS} s (agent failures so far: ${totals(agents).failures})`;
  await bounded(all, timeoutS * 1000, why);
  const span = meter.diff(before, await meter.snap(), meter.renewals.phase);
  const sorted = [...doneAt].sort((a, b) => a - b);
  const seconds = sorted.at(-1)! / 1000;
  return {
    agents: agents.length,
    seconds,
    perSec: agents.length / seconds,
    p50S: sorted[Math.floor(0.5 * (sorted.length - 1))]! / 1000,
    p99S: sorted[Math.floor(0.99 * (sorted.length - 1))]! / 1000,
    span,
  };
}
