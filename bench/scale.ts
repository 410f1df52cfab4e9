/**
 * `node dist/bench/scale.js`: registration throughput, memory and restart time at scale (issue 7,
 * scenarios 3 and 5), then the steady heartbeat of the whole fleet (bench/steady-heartbeat.ts),
 * against a real `nodeplane serve` (child process, temp data dir). The phases are main()'s; each
 * stands beside a baseline measured in the same run: register workers (bench/register-worker.ts)
 * against the trivial server's Register (bench/trivial-server.ts), the empty server's memory and
 * start, the same fleet against the trivial server's Heartbeat. Results, with what each figure
 * means, go to bench/RESULTS-scale.md. Flags (or env SCALE_<NAME>): --help.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { NodeClient } from "../src/client/client.js";
import { scaleNodeName } from "../test/support/realistic-node.js";
import { Flags } from "./flags.js";
import {
  benchScript,
  epochNow,
  exitAfter,
  handled,
  QUIET_CONTROLLER,
  runMain,
  type Samples,
  scrapeMetrics,
  type Served,
  sleep,
  spawnNodeplane,
  spawnTrivial,
  stopChecked,
  stopServer,
  sumOf,
  tempDir,
} from "./harness.js";
import { stopAll, Worker, workers as spawnWorkers } from "./ipc.js";
import { cpuBetween, type CpuSpan, fsTypeOf, type Pids, procBytes, readCpu, waitForQuiet } from "./proc.js";
import type { RegisterApi } from "./register-worker.js";
import { fmtInt, fmtMiB, fmtMs, fmtPct } from "./report.js";
import { report } from "./scale-report.js";
import { runSteadyHeartbeat, type SteadyOutcome } from "./steady-heartbeat.js";
import { Histogram } from "./tally.js";

const log = (s: string): void => void process.stderr.write(`${s}\n`);

function options() {
  const f = new Flags("scale.js", "SCALE");
  const q = f.quick;
  const steadyIntervalS = f.num("steady-interval", 10, 1, 600, "renewal interval of the steady heartbeat, s");
  const o = {
    nodes: f.num("nodes", q ? 10_000 : 100_000, 1, 999_999, "nodes registered"),
    workers: f.num("workers", 3, 1, 16, "register worker processes"),
    lanes: f.num("lanes", 32, 1, 1024, "calls in flight per worker"),
    baselineWindowS: f.num("baseline-window", q ? 3 : 5, 0, 60, "seconds against the trivial server (0 = no baseline)", false),
    settleS: f.num("settle", q ? 2 : 5, 0, 60, "idle seconds before reading RSS", false),
    registerTimeoutS: f.num("register-timeout", q ? 60 : 170, 5, 1800, "bound on the registration, s", false),
    deadlineS: f.num("deadline", q ? 150 : 600, 10, 3600, "bound on the whole run, s"),
    steadyIntervalS,
    steadyWarmupS: f.num("steady-warmup", q ? 2 : steadyIntervalS, 0, 3600, "its least seconds after the ramp interval before the window, which also waits for every node's first answer (default one interval)", false),
    steadyWindowS: f.num("steady-window", q ? 8 : 60, 0, 3600, "its measured seconds (0 = skip it)"),
    steadyWorkers: f.num("steady-workers", 2, 1, 16, "its load worker processes"),
    steadyConnections: f.num("steady-connections", 0, 0, 1000, "its HTTP/2 connections per worker (0 = enough for at most 5,000 streams each)"),
    quiet: f.quiet(),
    cpuProf: f.bool("cpu-prof", "profile both nodeplane servers (node --cpu-prof), print summaries; no results file"),
    out: f.out("scale"),
    keepData: f.str("keep-data", undefined, "register into DIR (absent or empty) and keep it, to profile restarts on it by hand"),
  };
  f.done();
  return o;
}

export type Options = ReturnType<typeof options>;
type RegisterWorker = Worker<RegisterApi, number>;

export interface RegisterRun {
  done: number;
  elapsedMs: number;
  perSec: number;
  hist: Histogram;
  /** CPU over the run: server, workers, other load, pressure. */
  cpu: CpuSpan;
  workersPct: number | undefined;
  /** nodes/s in each tenth of the run (by nodes registered). */
  tenths: number[];
}

/** The benchmark's own processes: the server, this one, its live workers. */
function ours(serverPid: number | undefined, ws: RegisterWorker[]): Pids {
  const pids: Pids = { server: serverPid, bench: process.pid };
  ws.forEach((w, i) => w.alive && (pids[`worker${i}`] = w.pid));
  return pids;
}

/** Register [0, nodes) split among the workers (or until `stopAt`), logging progress. */
async function registerWith(
  ws: RegisterWorker[],
  { nodes, lanes, stopAt, timeoutMs }: { nodes: number; lanes: number; stopAt: number; timeoutMs: number },
  serverPid: number | undefined,
  what: string,
): Promise<RegisterRun> {
  const per = Math.ceil(nodes / ws.length);
  const progress = ws.map(() => 0);
  const t0 = epochNow();
  const timeline: Array<{ t: number; done: number }> = [{ t: t0, done: 0 }];
  const offs = ws.map((w, i) => w.onNote((done) => (progress[i] = done)));
  const cpu0 = readCpu(ours(serverPid, ws));
  let lastLog = t0;
  const ticker = setInterval(() => {
    const done = progress.reduce((a, b) => a + b, 0);
    const now = epochNow();
    timeline.push({ t: now, done });
    if (now - lastLog >= 10_000) {
      lastLog = now;
      log(`scale: ${what}: ${fmtInt(done)} registered in ${((now - t0) / 1000).toFixed(0)} s, server RSS ${fmtMiB(procBytes(serverPid))}`);
    }
  }, 500);
  let hists;
  try {
    hists = await Promise.all(ws.map((w, i) => w.call("run", timeoutMs, { from: Math.min(nodes, i * per), to: Math.min(nodes, (i + 1) * per), lanes, stopAt })));
  } finally {
    clearInterval(ticker);
    for (const off of offs) off();
  }
  const cpu = cpuBetween(cpu0, readCpu(ours(serverPid, ws)));
  const elapsedMs = epochNow() - t0;
  const hist = Histogram.of(hists);
  const done = hist.count;
  timeline.push({ t: t0 + elapsedMs, done });
  // nodes/s per tenth of the nodes: time between the samples where the count crossed k/10.
  const crossing = (count: number): number => {
    for (let i = 1; i < timeline.length; i++) {
      const a = timeline[i - 1]!;
      const b = timeline[i]!;
      if (b.done >= count) return b.done === a.done ? b.t : a.t + ((count - a.done) / (b.done - a.done)) * (b.t - a.t);
    }
    return timeline.at(-1)!.t;
  };
  const tenths = stopAt
    ? []
    : Array.from({ length: 10 }, (_, k) => {
        const [from, to] = [crossing((done * k) / 10), crossing((done * (k + 1)) / 10)];
        return to > from ? done / 10 / ((to - from) / 1000) : Number.NaN;
      });
  const workersPct = ws.map((_, i) => cpu.pct[`worker${i}`]).reduce<number | undefined>((a, x) => (a === undefined || x === undefined ? undefined : a + x), 0);
  return { done, elapsedMs, perSec: done / (elapsedMs / 1000), hist, cpu, workersPct, tenths };
}

/** Poll `ok` every 20 ms until it holds; ms from `t0`, NaN if not within `timeoutMs` of it (or once `stop()` said so). */
async function pollUntil(ok: () => Promise<boolean>, t0: number, timeoutMs: number, stopped: () => boolean = () => false): Promise<number> {
  while (!stopped() && performance.now() - t0 < timeoutMs) {
    if (await ok()) return performance.now() - t0;
    await sleep(20);
  }
  return Number.NaN;
}

export interface Timed {
  served: Served & { httpPort: number };
  servingMs: number;
  firstListMs: number;
  readyMs: number;
  /** Other load and CPU pressure while it started. */
  cpu: CpuSpan;
}

/**
 * Start nodeplane on `dataDir` and time it from spawn: to its serving line; with a known `port`
 * (a restart) also to the first ListNodes answered (polled from spawn) and to /readyz 200.
 */
async function startTimed(dataDir: string, port: number, profile: { dir: string; name: string } | undefined, timeoutMs: number): Promise<Timed> {
  const before = readCpu({ bench: process.pid });
  const t0 = performance.now();
  let stop = false;
  const fastReconnect = { "grpc.initial_reconnect_backoff_ms": 10, "grpc.max_reconnect_backoff_ms": 20, "grpc.use_local_subchannel_pool": 1 };
  const client = port ? new NodeClient(`127.0.0.1:${port}`, { channelOptions: fastReconnect }) : undefined;
  const firstList = client
    ? pollUntil(() => client.listNodes({ limit: 500 }, { timeoutMs: 2000 }).then(() => true, () => false), t0, timeoutMs, () => stop).finally(() => client.close())
    : Promise.resolve(Number.NaN);
  const served = await spawnNodeplane({ dataDir, port, args: QUIET_CONTROLLER, profile, timeoutMs }).catch((err: unknown) => {
    stop = true;
    throw err;
  });
  const servingMs = performance.now() - t0;
  const timed = { served, servingMs, firstListMs: Number.NaN, readyMs: Number.NaN };
  if (!client) return { ...timed, cpu: cpuBetween(before, readCpu({ bench: process.pid, server: served.child.pid })) };
  timed.firstListMs = await firstList;
  if (!Number.isFinite(timed.firstListMs)) throw new Error(`nodeplane answered no ListNodes within ${timeoutMs} ms of its start`);
  // Serving comes before ready (the watch cache loads in the background).
  const ready = (): Promise<boolean> => fetch(`http://127.0.0.1:${served.httpPort}/readyz`).then(async (res) => (await res.arrayBuffer(), res.status === 200), () => false);
  timed.readyMs = await pollUntil(ready, t0, timeoutMs);
  if (!Number.isFinite(timed.readyMs)) throw new Error(`nodeplane was not ready (/readyz) within ${timeoutMs} ms of its start`);
  return { ...timed, cpu: cpuBetween(before, readCpu({ bench: process.pid, server: served.child.pid })) };
}

/** A spread of the registered nodes must read back whole; how many were read. */
async function checkSample(address: string, nodes: number): Promise<number> {
  const client = new NodeClient(address);
  try {
    let checked = 0;
    for (let i = 0; i < nodes; i += Math.max(1, Math.floor(nodes / 50))) {
      const n = await client.getNode(scaleNodeName(i), { timeoutMs: 10_000 });
      if (Object.keys(n.metadata?.labels ?? {}).length !== 20 || n.status?.addresses.length !== 4) throw new Error(`${scaleNodeName(i)} read back without its 20 labels and 4 addresses`);
      checked++;
    }
    const last = await client.getNode(scaleNodeName(nodes - 1), { timeoutMs: 10_000 });
    if (last.metadata?.name !== scaleNodeName(nodes - 1)) throw new Error("the last node did not read back");
    return checked + 1;
  } finally {
    client.close();
  }
}

/** A server idle for `settleS`: its RSS, peak RSS and V8 heap used. */
export interface Memory {
  rss?: number;
  peak?: number;
  heap: number;
  samples: Samples;
}

async function idleMemory(s: Served & { httpPort: number }, settleS: number): Promise<Memory> {
  await sleep(settleS * 1000);
  const samples = await scrapeMetrics(s.httpPort);
  return { rss: procBytes(s.child.pid), peak: procBytes(s.child.pid, "VmHWM"), heap: sumOf(samples, "nodejs_heap_size_used_bytes"), samples };
}

const dirBytes = (dir: string): number =>
  fs.readdirSync(dir, { withFileTypes: true }).reduce((sum, e) => sum + (e.isDirectory() ? dirBytes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size), 0);

/** A data dir the run keeps: created if absent, refused unless empty (registering twice would fail). */
function keptDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  if (fs.readdirSync(dir).length > 0) throw new Error(`--keep-data ${dir}: not empty`);
  return dir;
}

/** The run's workers and servers, and what each phase does with them. */
class Scale {
  readonly failures: string[] = [];
  readonly dataDir: string;
  readonly profDir: string | undefined;
  private readonly ws: RegisterWorker[];

  constructor(readonly o: Options) {
    this.dataDir = o.keepData ? keptDir(o.keepData) : tempDir("nodeplane-scale-");
    this.profDir = o.cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-scale-prof-")) : undefined;
    this.ws = spawnWorkers<RegisterApi, number>(o.workers, "register worker", benchScript("register-worker.js"));
  }

  private quiet(serverPid: number | undefined): Promise<void> {
    return waitForQuiet(ours(serverPid, this.ws), this.o.quiet, log);
  }

  private async connect(s: Served): Promise<void> {
    await Promise.all(this.ws.map((w) => w.call("connect", 20_000, `127.0.0.1:${s.port}`)));
    await this.quiet(s.child.pid);
  }

  private profile(name: string): { dir: string; name: string } | undefined {
    return this.profDir ? { dir: this.profDir, name } : undefined;
  }

  /** 1. The workers for --baseline-window s against the trivial server's Register (names far above the real ones: nothing is stored). */
  async baseline(): Promise<RegisterRun | undefined> {
    const { o } = this;
    if (o.baselineWindowS === 0) return undefined;
    const trivial = await spawnTrivial();
    await this.connect(trivial);
    const window = { nodes: 1_000_000, lanes: o.lanes, stopAt: epochNow() + o.baselineWindowS * 1000, timeoutMs: o.baselineWindowS * 1000 + 40_000 };
    const b = await registerWith(this.ws, window, trivial.child.pid, "baseline");
    await stopServer(trivial, "trivial server");
    log(
      `scale: baseline (trivial grpc-js Register): ${fmtInt(b.perSec)} calls/s, server CPU ${fmtPct(b.cpu.pct.server)}, ` +
        `workers CPU ${fmtPct(b.workersPct)}, other load ${fmtPct(b.cpu.otherPct)}`,
    );
    return b;
  }

  /** 2, 3. nodeplane empty (its start and memory), every node registered, its memory with them; then the server is stopped (timed). */
  async fill() {
    const { o, failures } = this;
    const first = await startTimed(this.dataDir, 0, this.profile("nodeplane-fill"), 20_000);
    const server = first.served;
    log(`scale: nodeplane at 127.0.0.1:${server.port} (data dir ${this.dataDir}, ${fsTypeOf(this.dataDir)})`);
    const empty = await idleMemory(server, o.settleS);
    await this.connect(server);
    const before = await scrapeMetrics(server.httpPort);
    const reg = await registerWith(this.ws, { nodes: o.nodes, lanes: o.lanes, stopAt: 0, timeoutMs: o.registerTimeoutS * 1000 }, server.child.pid, "register");
    const counted = handled(before, await scrapeMetrics(server.httpPort), "Register");
    if (reg.done !== o.nodes) failures.push(`registered ${reg.done} of ${o.nodes} nodes`);
    if (counted.ok !== reg.done || counted.notOk !== 0) {
      failures.push(`the server counted ${counted.ok} OK and ${counted.notOk} failed Register calls; the workers got ${reg.done} OK`);
    }
    log(
      `scale: registered ${fmtInt(reg.done)} nodes in ${(reg.elapsedMs / 1000).toFixed(1)} s: ${fmtInt(reg.perSec)} nodes/s, ` +
        `p50/p99 ${fmtMs(reg.hist.ms(0.5))}/${fmtMs(reg.hist.ms(0.99))} ms, server CPU ${fmtPct(reg.cpu.pct.server)}, workers CPU ${fmtPct(reg.workersPct)}, ` +
        `other load ${fmtPct(reg.cpu.otherPct)}, CPU pressure ${fmtPct(reg.cpu.pressurePct)}`,
    );
    await stopAll(this.ws);
    const full = await idleMemory(server, o.settleS);
    log(`scale: idle with ${fmtInt(o.nodes)} nodes: RSS ${fmtMiB(full.rss)} (peak ${fmtMiB(full.peak)}), V8 heap used ${fmtMiB(full.heap)}`);
    await this.quiet(server.child.pid);
    const t = performance.now();
    await stopChecked(server, "nodeplane", failures);
    return { first, empty, reg, full, shutdownMs: performance.now() - t, dbBytes: dirBytes(this.dataDir) };
  }

  /** 4. A new server on the same data dir and port, timed; a sample of nodes read back; its memory idle. */
  async restart(port: number) {
    const second = await startTimed(this.dataDir, port, this.profile("nodeplane-restart"), 60_000);
    log(
      `scale: restarted: serving line after ${fmtMs(second.servingMs)} ms, first ListNodes answered after ${fmtMs(second.firstListMs)} ms, ` +
        `ready after ${fmtMs(second.readyMs)} ms, other load meanwhile ${fmtPct(second.cpu.otherPct)}, CPU pressure ${fmtPct(second.cpu.pressurePct)}`,
    );
    const t = performance.now();
    const sampled = await checkSample(`127.0.0.1:${port}`, this.o.nodes);
    const sampleMs = performance.now() - t;
    const after = await idleMemory(second.served, this.o.settleS);
    log(`scale: restarted, idle: RSS ${fmtMiB(after.rss)} (peak ${fmtMiB(after.peak)}), V8 heap used ${fmtMiB(after.heap)}`);
    return { second, sampled, sampleMs, after };
  }

  /** 5. The steady heartbeat against the trivial server's Heartbeat (the baseline), then against nodeplane. */
  async steady(server: Served & { httpPort: number }): Promise<{ steady?: SteadyOutcome; steadyBaseline?: SteadyOutcome }> {
    const { o, failures } = this;
    if (o.steadyWindowS === 0) return {};
    const fleet = {
      nodes: o.nodes,
      intervalS: o.steadyIntervalS,
      windowS: o.steadyWindowS,
      warmupS: o.steadyWarmupS,
      workers: o.steadyWorkers,
      connections: o.steadyConnections || undefined,
      log,
    };
    const trivial = await spawnTrivial();
    await this.quiet(trivial.child.pid);
    log("scale: steady heartbeat against the trivial grpc-js server (baseline)");
    const steadyBaseline = await runSteadyHeartbeat({ ...fleet, port: trivial.port, httpPort: undefined, serverPid: trivial.child.pid });
    await stopServer(trivial, "trivial server");
    failures.push(...steadyBaseline.failures.map((f) => `steady heartbeat baseline: ${f}`));
    await this.quiet(server.child.pid);
    log("scale: steady heartbeat against nodeplane");
    const steady = await runSteadyHeartbeat({ ...fleet, port: server.port, httpPort: server.httpPort, serverPid: server.child.pid });
    failures.push(...steady.failures.map((f) => `steady heartbeat: ${f}`));
    return { steady, steadyBaseline };
  }
}

async function main(): Promise<void> {
  const o = options();
  exitAfter(o.deadlineS * 1000, "scale");
  const began = Date.now();
  const run = new Scale(o);
  const baseline = await run.baseline();
  const filled = await run.fill();
  const restarted = await run.restart(filled.first.served.port);
  const steady = await run.steady(restarted.second.served);
  await stopChecked(restarted.second.served, "nodeplane (restarted)", run.failures);
  report(o, { began, dataDir: run.dataDir, profDir: run.profDir, failures: run.failures, baseline, ...filled, ...restarted, ...steady });
}

runMain("scale", main);
