/**
 * `npm run bench`: RenewLease (the node heartbeat) calls/s and p50/p99 latency under
 * concurrent closed-loop clients, against the real nodeplane server and, in the same run, a
 * trivial grpc-js server (bench/trivial-server.ts) that answers the same RPC with a constant
 * response: the grpc-js ceiling on this machine. Figures are read as ratios to that baseline.
 *
 * Steps: start `nodeplane serve` (child process, temp data dir), register --nodes nodes through
 * the SDK, start the trivial server, spawn --workers load workers (bench/load-worker.ts), then
 * for each repeat and each in-flight level measure both targets, alternating which goes
 * first. Every error fails the run; nodeplane's own counters (/metrics) must agree with what
 * the workers saw. Prints a markdown table and writes it to bench/RESULTS.md.
 *
 * Flags (or env BENCH_<NAME>, e.g. BENCH_DURATION=5):
 *   --duration S     measured seconds per measurement (default 3)
 *   --warmup S       warm-up seconds before each measurement (default 1)
 *   --nodes N        nodes registered and renewed round-robin (default 2000)
 *   --workers K      load worker processes (default: one per CPU, at least 2)
 *   --levels A,B,C   total calls in flight (default 16,64,256)
 *   --repeats R      measurements per (target, level); medians are reported (default 3)
 *   --cpu-prof       profile both servers (node --cpu-prof) and summarise; RESULTS.md is not written
 *   --out FILE       where to write the results (default bench/RESULTS.md; "" = nowhere)
 *
 * Everything is bounded (durations, per-call deadlines, watchdogs) and local (127.0.0.1);
 * child processes are killed and the data dir removed on exit, error or signal.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { NodeClient } from "../src/client/index.js";
import { RenewLeaseResponse } from "../src/gen/nodeplane/v1/service.js";
import { Histogram } from "./histogram.js";
import { summarizeProfile } from "./profile-summary.js";
import { benchNodeName, type FromWorker, type RunCommand, type RunResult, type ToWorker } from "./protocol.js";

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, "../..");
const NODEPLANE_BIN = path.join(ROOT, "bin/nodeplane.js");
const WORKER_JS = path.join(HERE, "load-worker.js");
const TRIVIAL_JS = path.join(HERE, "trivial-server.js");
const DEFAULT_OUT = path.join(ROOT, "bench/RESULTS.md");
const CALL_DEADLINE_MS = 10_000;

type Target = "nodeplane" | "trivial";

interface Options {
  durationS: number;
  warmupS: number;
  nodes: number;
  workers: number;
  levels: number[];
  repeats: number;
  cpuProf: boolean;
  out: string;
}

// ---------------------------------------------------------------------------------------
// Flags

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      duration: { type: "string" },
      warmup: { type: "string" },
      nodes: { type: "string" },
      workers: { type: "string" },
      levels: { type: "string" },
      repeats: { type: "string" },
      "cpu-prof": { type: "boolean" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: npm run bench -- [--duration S] [--warmup S] [--nodes N] [--workers K] [--levels 16,64,256] [--repeats R] [--cpu-prof] [--out FILE]\n",
    );
    process.exit(0);
  }
  const pick = (name: string, flag: string | undefined, def: string): string => flag ?? process.env[`BENCH_${name.toUpperCase()}`] ?? def;
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
  const levels = pick("levels", values.levels, "16,64,256")
    .split(",")
    .map((s) => Number(s.trim()));
  if (levels.length === 0 || levels.some((l) => !Number.isInteger(l) || l < 1 || l > 4096)) {
    throw new Error(`--levels ${values.levels ?? ""}: want comma-separated integers in [1, 4096]`);
  }
  const opts: Options = {
    durationS: num("duration", values.duration, 3, 0.5, 120),
    warmupS: num("warmup", values.warmup, 1, 0, 60),
    nodes: int("nodes", values.nodes, 2000, 1, 100_000),
    workers: int("workers", values.workers, Math.min(8, Math.max(2, os.cpus().length)), 1, 32),
    levels,
    repeats: int("repeats", values.repeats, 3, 1, 20),
    cpuProf: values["cpu-prof"] ?? process.env.BENCH_CPU_PROF === "1",
    out: pick("out", values.out, DEFAULT_OUT),
  };
  for (const l of levels) {
    if (Math.ceil(l / opts.workers) > Math.floor(opts.nodes / opts.workers)) {
      throw new Error(`--nodes ${opts.nodes} is too few for ${l} calls in flight over ${opts.workers} workers: two calls would renew one node at once`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------
// Children: tracked, killed on any exit

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

process.on("exit", () => {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(sig, () => {
    process.stderr.write(`\nbench: ${sig}: stopping\n`);
    process.exit(130);
  });
}

interface Served {
  child: ChildProcess;
  port: number;
  httpPort: number | undefined;
  /** Output beyond the serving line (stdout and stderr). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawn `node ARGS`, wait (bounded) for the line matching `serving` (groups: grpc port, http port). */
async function spawnServing(name: string, args: string[], serving: RegExp): Promise<Served> {
  const child = track(
    spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } }),
  );
  let out = "";
  let seenServing = false;
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const ports = await new Promise<{ port: number; httpPort: number | undefined }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start serving within 20 s:\n${out}`)), 20_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = seenServing ? null : serving.exec(line);
      if (m) {
        seenServing = true;
        clearTimeout(timer);
        resolve({ port: Number(m[1]), httpPort: m[2] && m[2] !== "-" ? Number(m[2]) : undefined });
      } else out += `${line}\n`;
    });
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${e.code ?? e.signal}) before serving:\n${out}`));
    });
  });
  return { child, port: ports.port, httpPort: ports.httpPort, output: () => out, exited };
}

/** SIGTERM, wait (bounded) for the exit, SIGKILL if it does not come. */
async function stopServer(s: Served, name: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return s.exited;
  s.child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      process.stderr.write(`bench: ${name} did not stop within 15 s of SIGTERM: killing it\n`);
      s.child.kill("SIGKILL");
      resolve();
    }, 15_000);
  });
  await Promise.race([s.exited, killed]);
  clearTimeout(timer);
  return s.exited;
}

// ---------------------------------------------------------------------------------------
// Workers

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

async function startWorkers(opts: Options, targets: Record<Target, string>): Promise<Worker[]> {
  const workers: Worker[] = [];
  for (let i = 0; i < opts.workers; i++) {
    const child = track(spawn(process.execPath, [WORKER_JS], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "json" }));
    workers.push(new Worker(i, child));
  }
  await Promise.all(
    workers.map((w) => {
      const ready = w.next((m): m is Extract<FromWorker, { type: "ready" }> => m.type === "ready", 20_000, "ready message");
      w.send({ type: "init", index: w.index, workers: opts.workers, nodeCount: opts.nodes, targets });
      return ready;
    }),
  );
  return workers;
}

// ---------------------------------------------------------------------------------------
// Server-side views: /metrics of nodeplane, /proc CPU time of any child

interface ServerCounters {
  renewOk: number;
  renewNotOk: number;
  handlingSum: number;
  handlingCount: number;
  revision: number;
}

async function scrape(httpPort: number): Promise<ServerCounters> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  const c: ServerCounters = { renewOk: 0, renewNotOk: 0, handlingSum: 0, handlingCount: 0, revision: Number.NaN };
  for (const line of (await res.text()).split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    const series = line.slice(0, line.lastIndexOf(" "));
    const renew = series.includes('method="RenewLease"');
    if (series.startsWith("nodeplane_grpc_server_handled_total{") && renew) {
      if (series.includes('code="OK"')) c.renewOk += value;
      else c.renewNotOk += value;
    } else if (series.startsWith("nodeplane_grpc_server_handling_seconds_sum{") && renew) c.handlingSum += value;
    else if (series.startsWith("nodeplane_grpc_server_handling_seconds_count{") && renew) c.handlingCount += value;
    else if (series === "nodeplane_store_revision") c.revision = value;
  }
  return c;
}

const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system) of a process so far, ms; undefined where /proc is not there. */
function procCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Busy CPU time of the whole machine so far (all CPUs, /proc/stat), ms; undefined without /proc. */
function machineBusyMs(): number | undefined {
  try {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number); // user nice system idle iowait irq softirq steal …
    const busy = v.slice(0, 8).reduce((a, b) => a + b, 0) - v[3]! - v[4]!;
    return (busy * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// One measurement

interface Measurement {
  target: Target;
  inFlight: number;
  repeat: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  calls: number;
  /** Server CPU over the window, % of one core. */
  serverCpu: number | undefined;
  /** All workers' CPU over the window, % of one core. */
  clientCpu: number;
  /** CPU used by everything else on the machine over the window (other people's jobs), % of one core. */
  otherCpu: number | undefined;
  /** nodeplane only: mean time inside the handler (metrics), ms. */
  handlerMeanMs: number | undefined;
  /** nodeplane only: store revisions added per OK renewal (1 = one commit each). */
  revisionsPerRenewal: number | undefined;
}

let seq = 0;
const epochNow = (): number => performance.timeOrigin + performance.now();

async function measure(
  opts: Options,
  workers: Worker[],
  target: Target,
  server: Served,
  inFlight: number,
  repeat: number,
  /** Our other processes (workers, the other server, this one): not "other load". */
  otherPids: Array<number | undefined>,
): Promise<Measurement> {
  const before = server.httpPort !== undefined ? await scrape(server.httpPort) : undefined;
  const warmupMs = opts.warmupS * 1000;
  const durationMs = opts.durationS * 1000;
  const startAt = epochNow() + 200;
  const s = ++seq;

  // The server's CPU over the measured window, read from /proc by timers (this process idles meanwhile).
  // The machine's too, to tell how much other jobs took.
  const ours = (): number | undefined => {
    let sum = 0;
    for (const pid of [server.child.pid, ...otherPids]) {
      const ms = procCpuMs(pid);
      if (ms === undefined) return undefined;
      sum += ms;
    }
    return sum;
  };
  let cpuAtStart: number | undefined;
  let machineAtStart: number | undefined;
  let oursAtStart: number | undefined;
  let serverCpu: number | undefined;
  let machineCpu: number | undefined;
  let oursCpu: number | undefined;
  let cpuStartedAt = 0;
  const t1 = setTimeout(() => {
    cpuAtStart = procCpuMs(server.child.pid);
    machineAtStart = machineBusyMs();
    oursAtStart = ours();
    cpuStartedAt = epochNow();
  }, startAt + warmupMs - epochNow());
  let t2: NodeJS.Timeout | undefined;
  // Awaited after the results: on a busy machine they can arrive before this timer fires.
  const windowClosed = new Promise<void>((resolve) => {
    t2 = setTimeout(() => {
      const now = procCpuMs(server.child.pid);
      const machine = machineBusyMs();
      const o = ours();
      const elapsed = epochNow() - cpuStartedAt;
      if (now !== undefined && cpuAtStart !== undefined) serverCpu = (100 * (now - cpuAtStart)) / elapsed;
      if (machine !== undefined && machineAtStart !== undefined) machineCpu = (100 * (machine - machineAtStart)) / elapsed;
      if (o !== undefined && oursAtStart !== undefined) oursCpu = (100 * (o - oursAtStart)) / elapsed;
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
          target,
          inFlight: Math.floor(inFlight / workers.length) + (i < inFlight % workers.length ? 1 : 0),
          startAt,
          warmupMs,
          durationMs,
          deadlineMs: CALL_DEADLINE_MS,
          verify: target === "nodeplane" ? "name" : "lease",
          // Far above what one worker can do (~3k calls/s), so only a runaway loop hits it.
          maxCalls: Math.ceil(((warmupMs + durationMs) / 1000) * 100_000),
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
  if (errorCount > 0) {
    throw new Error(
      `${target} at ${inFlight} in flight: ${errorCount} failed call(s) ${JSON.stringify(errors)}\n  ${samples.slice(0, 10).join("\n  ")}` +
        (server.child.exitCode !== null || server.child.signalCode !== null
          ? `\n${target} has exited (${server.child.exitCode ?? server.child.signalCode})`
          : "") +
        (server.output() ? `\n${target} said:\n${server.output()}` : ""),
    );
  }

  const hist = new Histogram();
  for (const r of results) hist.merge(r.hist);
  const windowMs = results.reduce((a, r) => a + r.windowMs, 0) / results.length;
  const windowOk = results.reduce((a, r) => a + r.windowOk, 0);
  const ok = results.reduce((a, r) => a + r.ok, 0);
  if (windowOk === 0) throw new Error(`${target} at ${inFlight} in flight: no call completed in the measured window`);

  let handlerMeanMs: number | undefined;
  let revisionsPerRenewal: number | undefined;
  if (before && server.httpPort !== undefined) {
    const after = await scrape(server.httpPort);
    const okDelta = after.renewOk - before.renewOk;
    const notOkDelta = after.renewNotOk - before.renewNotOk;
    if (notOkDelta !== 0 || okDelta !== ok) {
      throw new Error(
        `${target} at ${inFlight} in flight: the server counted ${okDelta} OK and ${notOkDelta} failed RenewLease calls; the workers got ${ok} OK`,
      );
    }
    const countDelta = after.handlingCount - before.handlingCount;
    handlerMeanMs = countDelta > 0 ? ((after.handlingSum - before.handlingSum) / countDelta) * 1000 : undefined;
    revisionsPerRenewal = okDelta > 0 ? (after.revision - before.revision) / okDelta : undefined;
  }

  return {
    target,
    inFlight,
    repeat,
    callsPerSec: windowOk / (windowMs / 1000),
    p50Ms: hist.quantileUs(0.5) / 1000,
    p99Ms: hist.quantileUs(0.99) / 1000,
    meanMs: hist.meanUs() / 1000,
    maxMs: hist.maxUs / 1000,
    calls: windowOk,
    serverCpu,
    clientCpu: (100 * results.reduce((a, r) => a + r.cpuUs, 0)) / 1000 / windowMs,
    otherCpu: machineCpu !== undefined && oursCpu !== undefined ? Math.max(0, machineCpu - oursCpu) : undefined,
    handlerMeanMs,
    revisionsPerRenewal,
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
        const name = benchNodeName(next++);
        const { lease } = await client.register({
          metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "nodeplane.io/bench": "true" } },
          status: {
            capacity: { cpu: "4", memory: "16Gi", pods: "110" },
            allocatable: { cpu: "3800m", memory: "15Gi", pods: "110" },
            addresses: [
              { type: "InternalIP", address: `10.0.${Math.floor(next / 250)}.${(next % 250) + 1}` },
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

/** A real RenewLeaseResponse from nodeplane, encoded: what the trivial server will answer. */
async function sampleResponse(address: string): Promise<Buffer> {
  const client = new NodeClient(address);
  try {
    const lease = await client.renewLease(benchNodeName(0));
    return Buffer.from(RenewLeaseResponse.encode({ lease }).finish());
  } finally {
    client.close();
  }
}

/** Leases of a spread of nodes must all have been renewed since `since` (the server's own view). */
async function checkRenewed(address: string, nodes: number, since: Date): Promise<number> {
  const client = new NodeClient(address);
  try {
    const step = Math.max(1, Math.floor(nodes / 20));
    let checked = 0;
    for (let i = 0; i < nodes; i += step) {
      const lease = await client.getLease(benchNodeName(i));
      const renewed = lease.spec?.renewTime;
      if (!renewed || renewed < since) {
        throw new Error(`lease of ${benchNodeName(i)} was last renewed ${renewed?.toISOString() ?? "never"}, before the load started`);
      }
      checked++;
    }
    return checked;
  } finally {
    client.close();
  }
}

const FS_TYPES: Record<number, string> = {
  0xef53: "ext4",
  0x01021994: "tmpfs",
  0x794c7630: "overlayfs",
  0x58465342: "xfs",
  0x9123683e: "btrfs",
  0x2fc12fc1: "zfs",
};

function fsTypeOf(dir: string): string {
  try {
    const t = fs.statfsSync(dir).type;
    return FS_TYPES[t] ?? `0x${t.toString(16)}`;
  } catch {
    return "unknown";
  }
}

// ---------------------------------------------------------------------------------------
// Reporting

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmtInt = (n: number): string => Math.round(n).toLocaleString("en-US");
const fmtMs = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const fmtPct = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? "–" : `${Math.round(n)}%`);

interface Row {
  target: Target;
  inFlight: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  all: Measurement[];
}

function summarize(ms: Measurement[], levels: number[]): Row[] {
  const rows: Row[] = [];
  for (const inFlight of levels) {
    for (const target of ["nodeplane", "trivial"] as const) {
      const all = ms.filter((m) => m.target === target && m.inFlight === inFlight);
      rows.push({
        target,
        inFlight,
        callsPerSec: median(all.map((m) => m.callsPerSec)),
        p50Ms: median(all.map((m) => m.p50Ms)),
        p99Ms: median(all.map((m) => m.p99Ms)),
        all,
      });
    }
  }
  return rows;
}

/** Median over repeats of nodeplane/trivial within each repeat (the two ran back to back, so drift cancels). */
function pairedRatio(np: Row, base: Row, f: (m: Measurement) => number): number {
  return median(pairedRatios(np, base, f));
}

function pairedRatios(np: Row, base: Row, f: (m: Measurement) => number): number[] {
  return np.all.flatMap((m) => {
    const b = base.all.find((x) => x.repeat === m.repeat);
    return b ? [f(m) / f(b)] : [];
  });
}

function mainTable(rows: Row[]): string {
  const out = [
    "| scenario | in-flight | calls/s | p50 ms | p99 ms | nodeplane/trivial |",
    "|---|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const base = rows.find((b) => b.target === "trivial" && b.inFlight === r.inFlight)!;
    const ratio =
      r.target === "trivial"
        ? "1 (baseline)"
        : `${pairedRatio(r, base, (m) => m.callsPerSec).toFixed(2)}× calls/s, ${pairedRatio(r, base, (m) => m.p50Ms).toFixed(1)}× p50, ` +
          `${pairedRatio(r, base, (m) => m.p99Ms).toFixed(1)}× p99`;
    const name = r.target === "nodeplane" ? "nodeplane RenewLease" : "trivial grpc-js RenewLease";
    out.push(`| ${name} | ${r.inFlight} | ${fmtInt(r.callsPerSec)} | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${ratio} |`);
  }
  return out.join("\n");
}

function detailTable(rows: Row[]): string {
  const out = [
    "| scenario | in-flight | calls/s per repeat | calls/s ratio per repeat | p99 ms per repeat | mean ms | max ms | server CPU | server CPU µs/call | clients CPU | other load CPU per repeat | handler mean ms | revisions/renewal |",
    "|---|---:|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
  ];
  for (const r of rows) {
    const serverCpu = r.all.map((m) => m.serverCpu).filter((x): x is number => x !== undefined);
    const perCall = r.all.flatMap((m) => (m.serverCpu === undefined ? [] : [(m.serverCpu / 100) * (1e6 / m.callsPerSec)]));
    const handler = r.all.map((m) => m.handlerMeanMs).filter((x): x is number => x !== undefined);
    const revs = r.all.map((m) => m.revisionsPerRenewal).filter((x): x is number => x !== undefined);
    out.push(
      [
        "",
        r.target,
        r.inFlight,
        r.all.map((m) => fmtInt(m.callsPerSec)).join(" / "),
        r.target === "trivial"
          ? "–"
          : pairedRatios(r, rows.find((b) => b.target === "trivial" && b.inFlight === r.inFlight)!, (m) => m.callsPerSec)
              .map((x) => x.toFixed(2))
              .join(" / "),
        r.all.map((m) => fmtMs(m.p99Ms)).join(" / "),
        fmtMs(median(r.all.map((m) => m.meanMs))),
        fmtMs(Math.max(...r.all.map((m) => m.maxMs))),
        fmtPct(serverCpu.length ? median(serverCpu) : undefined),
        perCall.length ? fmtInt(median(perCall)) : "–",
        fmtPct(median(r.all.map((m) => m.clientCpu))),
        r.all.map((m) => fmtPct(m.otherCpu)).join(" / "),
        handler.length ? fmtMs(median(handler)) : "–",
        revs.length ? median(revs).toFixed(2) : "–",
        "",
      ].join(" | ").trim(),
    );
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opts = parseOptions(argv);
  for (const f of [NODEPLANE_BIN, WORKER_JS, TRIVIAL_JS]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first (npm run bench does)`);
  }
  const began = Date.now();
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-bench-"));
  tempDirs.push(dataDir);
  const profDir = opts.cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-bench-prof-")) : undefined;
  const profFlags = (name: string): string[] => (profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []);

  const loadMs = opts.levels.length * 2 * opts.repeats * (opts.warmupS + opts.durationS + 0.4) * 1000;
  log(
    `bench: ${opts.nodes} nodes, ${opts.workers} workers, in-flight ${opts.levels.join("/")}, ${opts.repeats}× ` +
      `(${opts.warmupS} s warm-up + ${opts.durationS} s) per target and level: about ${Math.round(loadMs / 1000)} s of load`,
  );

  const nodeplane = await spawnServing(
    "nodeplane",
    [...profFlags("nodeplane"), NODEPLANE_BIN, "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"],
    /^nodeplane serving grpc=[^:]+:(\d+) http=(\d+|-)/,
  );
  if (nodeplane.httpPort === undefined) throw new Error("nodeplane did not report its HTTP port (needed for /metrics)");
  const npAddress = `127.0.0.1:${nodeplane.port}`;
  log(`bench: nodeplane serving at ${npAddress} (data dir ${dataDir}, ${fsTypeOf(dataDir)})`);

  let t = Date.now();
  await registerNodes(npAddress, opts.nodes);
  log(`bench: registered ${opts.nodes} nodes in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  const response = await sampleResponse(npAddress);
  const trivial = await spawnServing("trivial server", [...profFlags("trivial"), TRIVIAL_JS, response.toString("base64")], /^trivial serving grpc=[^:]+:(\d+)/);
  const trivialAddress = `127.0.0.1:${trivial.port}`;
  log(`bench: trivial server at ${trivialAddress}, answering a ${response.length}-byte RenewLeaseResponse`);

  const workers = await startWorkers(opts, { nodeplane: npAddress, trivial: trivialAddress });
  const servers: Record<Target, Served> = { nodeplane, trivial };
  const loadStarted = new Date();

  const measurements: Measurement[] = [];
  for (let r = 0; r < opts.repeats; r++) {
    for (let l = 0; l < opts.levels.length; l++) {
      const order: Target[] = (r + l) % 2 === 0 ? ["nodeplane", "trivial"] : ["trivial", "nodeplane"];
      for (const target of order) {
        const others = [...workers.map((w) => w.child.pid), servers[target === "nodeplane" ? "trivial" : "nodeplane"].child.pid, process.pid];
        const m = await measure(opts, workers, target, servers[target], opts.levels[l]!, r, others);
        measurements.push(m);
        log(
          `  [${r + 1}/${opts.repeats}] ${target.padEnd(9)} in-flight ${String(m.inFlight).padStart(4)}: ` +
            `${fmtInt(m.callsPerSec).padStart(6)} calls/s  p50 ${fmtMs(m.p50Ms).padStart(5)} ms  p99 ${fmtMs(m.p99Ms).padStart(5)} ms  ` +
            `server CPU ${fmtPct(m.serverCpu).padStart(4)}  clients CPU ${fmtPct(m.clientCpu).padStart(4)}  other load ${fmtPct(m.otherCpu).padStart(4)}` +
            (m.handlerMeanMs !== undefined ? `  handler mean ${fmtMs(m.handlerMeanMs)} ms` : ""),
        );
      }
    }
  }

  // The server's own view at the end: leases really renewed, clean shutdown.
  const checked = await checkRenewed(npAddress, opts.nodes, loadStarted);
  for (const w of workers) w.send({ type: "exit" });
  const npExit = await stopServer(nodeplane, "nodeplane");
  const trExit = await stopServer(trivial, "trivial server");
  if (npExit.code !== 0) throw new Error(`nodeplane exited with ${npExit.code ?? npExit.signal} on SIGTERM:\n${nodeplane.output()}`);
  if (trExit.code !== 0) throw new Error(`the trivial server exited with ${trExit.code ?? trExit.signal}:\n${trivial.output()}`);
  if (nodeplane.output().trim()) log(`bench: nodeplane said (warn and above):\n${nodeplane.output()}`);

  const rows = summarize(measurements, opts.levels);
  const totalCalls = measurements.reduce((a, m) => a + m.calls, 0);
  const command = process.env.npm_lifecycle_event === "bench" ? `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}` : `node dist/bench/run.js ${argv.join(" ")}`.trim();
  const cpus = os.cpus();
  const machine =
    `${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}, data dir on ${fsTypeOf(dataDir)} (${path.dirname(dataDir)})`;

  const table = mainTable(rows);
  const doc = [
    "# RenewLease benchmark",
    "",
    `- Command: \`${command}\``,
    `- Date: ${new Date(began).toISOString()} (took ${Math.round((Date.now() - began) / 1000)} s)`,
    `- Machine: ${machine}`,
    `- Load: ${opts.workers} grpc-js worker processes (bench/load-worker.ts), closed loop, total in-flight split evenly among them; ` +
      `each call renews the next of ${opts.nodes} registered nodes round-robin; ${opts.warmupS} s warm-up then ${opts.durationS} s measured; ` +
      `${opts.repeats} repeat(s) per target and level, alternating which target goes first; calls/s and latencies are medians of the repeats, ` +
      "and each ratio is the median of the per-repeat ratios (nodeplane over the trivial server measured right beside it).",
    "",
    "What is measured: RenewLease, the node heartbeat, end to end as a client sees it. In nodeplane each call reads the node's " +
      "Lease and commits the renewed Lease (compare-and-swap on its revision) as a durable SQLite transaction (WAL, synchronous=FULL); concurrent renewals are batched " +
      "into one commit (group commit), and the answer goes out only after that commit. The baseline is a bare grpc-js server " +
      "(bench/trivial-server.ts) serving the same NodeService definition, answering a constant pre-built RenewLeaseResponse of the " +
      `same size (${response.length} bytes): the grpc-js ceiling on this machine. Clients and servers share the same ${cpus.length} CPUs, so ` +
      "the baseline is bounded by client CPU as much as by the server's.",
    "",
    table,
    "",
    "Details (server CPU is % of one core over the measured window, from /proc; clients CPU is all workers together; other load is " +
      "CPU taken by processes outside the benchmark during the window (other jobs on this shared machine), a noise indicator; " +
      "server CPU µs/call is the server's CPU time divided by the calls it answered; handler mean is " +
      "nodeplane's own RenewLease handling time from its /metrics histogram; revisions/renewal is the store revision delta per OK renewal):",
    "",
    detailTable(rows),
    "",
    `Checks: ${fmtInt(totalCalls)} measured calls, every call of the run answered OK (any error fails the run); nodeplane's ` +
      `RenewLease OK counter matched the workers' OK count in every measurement; ${checked} sampled leases were renewed during the run; ` +
      "nodeplane shut down cleanly on SIGTERM.",
    "",
  ].join("\n");

  process.stdout.write(`\n${table}\n`);
  if (profDir) {
    for (const name of ["nodeplane", "trivial"]) {
      const file = path.join(profDir, `${name}.cpuprofile`);
      if (fs.existsSync(file)) process.stdout.write(`\n${summarizeProfile(file)}\n`);
      else log(`bench: no profile at ${file}`);
    }
    log(`bench: profiles kept in ${profDir}; RESULTS.md not written (profiling slows the servers)`);
  } else if (opts.out) {
    fs.writeFileSync(opts.out, doc);
    log(`bench: wrote ${path.relative(process.cwd(), opts.out) || opts.out}`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\nbench FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
