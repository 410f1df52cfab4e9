/**
 * `node dist/bench/scale.js`: registration throughput, memory and restart time at scale
 * (issue 7, scenarios 3 and 5), against a real `nodeplane serve` (child process, temp data dir).
 *
 *   1. baseline: --workers register worker processes (bench/register-worker.ts, the SDK's
 *      NodeClient.register, --lanes calls in flight each) against a bare grpc-js server that
 *      answers Register with the node it got and a constant Lease, storing nothing
 *      (bench/trivial-register-server.ts): the grpc-js + codec ceiling of this machine for a
 *      Register of this size, for --baseline-window seconds.
 *   2. register: the same workers register --nodes realistic nodes (test/support/realistic-node.ts: 20
 *      labels, 4 addresses, full capacity/allocatable, 5 conditions, node info) with nodeplane:
 *      nodes/s overall and per tenth of the run (does it slow down as the store grows?),
 *      Register latency, server CPU. The server's Register counter must agree.
 *   3. memory: after --settle seconds idle, the server's RSS (and peak RSS, V8 heap used) with
 *      every node registered, beside the same server empty (measured before step 2).
 *   4. restart: SIGTERM (time to exit), start a new server on the same data dir and port; time
 *      from spawn to its "nodeplane serving" line, to the first ListNodes answered (polled
 *      from spawn every 20 ms) and to ready (/readyz 200: watch cache loaded, controllers
 *      synced; polled every 20 ms from the serving line); then a sample of nodes read back,
 *      and its RSS after --settle s.
 *   5. steady heartbeat (bench/steady-heartbeat.ts) against the restarted server: every node
 *      holds its own Heartbeat stream and renews every --steady-interval s at a phase of its
 *      own (100,000 nodes at 10 s: 10,000 durable renewals/s), --steady-window s measured after
 *      one interval of ramp and 2 s of warm-up: renewals/s committed, latency p50/p99, server
 *      CPU and RSS with every stream open.
 * Each result is printed against its target (register ≥ 2,000 nodes/s; RSS ≤ 1 GiB; restart
 * ≤ 5 s; steady heartbeat p99 ≤ 100 ms on < 1 core) in a markdown table, also written to
 * bench/RESULTS-scale.md.
 *
 * The lifecycle controller runs (it reads the watch cache's nodes and holds each Lease's renew
 * time, which is part of the memory measured) with grace periods longer than the run, so it
 * adds no writes of its own.
 *
 * Flags (or env SCALE_<NAME>):
 *   --quick               ~1 minute smoke run: 10,000 nodes, short windows; writes no file unless --out
 *   --nodes N             nodes registered (default 100000; quick 10000)
 *   --workers K           register worker processes (default 3)
 *   --lanes L             calls in flight per worker (default 32)
 *   --baseline-window S   seconds against the trivial server (default 5; quick 3)
 *   --settle S            idle seconds before reading RSS (default 5; quick 2)
 *   --register-timeout S  bound on step 2 (default 170; quick 60)
 *   --steady-interval S   renewal interval of the steady heartbeat (default 10)
 *   --steady-window S     its measured seconds (default 60; quick 8; 0 = skip step 5)
 *   --steady-workers K    its load worker processes (default 2)
 *   --deadline S          bound on the whole run (default 400; quick 150)
 *   --quiet-wait S        before each measurement, wait up to S s while other processes take more than
 *                         --max-other % of a core (default 15; quick 5): this machine is shared
 *   --max-other P         see --quiet-wait (default 50)
 *   --cpu-prof            profile both nodeplane servers (node --cpu-prof), print summaries; no file written
 *   --out FILE            default bench/RESULTS-scale.md (quick: none); "" = nowhere
 *   --keep-data DIR       register into DIR (absent or empty) and keep it after the run, to profile
 *                         restarts on it by hand (`node --cpu-prof bin/nodeplane.js serve --data-dir DIR`)
 *
 * Local (127.0.0.1) and bounded; servers and workers are killed and the data dir removed on
 * exit, error, signal or deadline.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { NodeClient } from "../src/client/client.js";
import {
  exitAfter,
  fmtInt,
  fmtMiB,
  fmtMs,
  fmtPct,
  fsTypeOf,
  machineBusyMs,
  NODEPLANE_BIN,
  procCpuMs,
  procRssBytes,
  ROOT,
  scrapeMetrics,
  type Served,
  spawnServing,
  stopServer,
  sumOf,
  track,
  trackTempDir,
} from "./harness.js";
import { cpuPressureUs, waitForQuiet } from "./cpu-window.js";
import { Histogram } from "./histogram.js";
import { WorkerProcess } from "./ipc.js";
import { summarizeProfile } from "./profile-summary.js";
import { scaleNodeName } from "../test/support/realistic-node.js";
import type { FromRegisterWorker, RegisterResult, ToRegisterWorker } from "./register-protocol.js";
import { runSteadyHeartbeat, type SteadyOutcome, steadyRow } from "./steady-heartbeat.js";
import { flagReader } from "./flags.js";
import { emitSummary } from "./summary.js";
import { epochNow, sleep } from "./worker-side.js";

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const WORKER_JS = path.join(HERE, "register-worker.js");
const TRIVIAL_JS = path.join(HERE, "trivial-register-server.js");
const DEFAULT_OUT = path.join(ROOT, "bench/RESULTS-scale.md");
const SERVING = /^nodeplane serving grpc=[^:]+:(\d+) http=(\d+|-)/;
const TARGET = { registerPerSec: 2000, rssBytes: 2 ** 30, restartMs: 5000 };

interface Options {
  quick: boolean;
  nodes: number;
  workers: number;
  lanes: number;
  baselineWindowS: number;
  settleS: number;
  registerTimeoutS: number;
  deadlineS: number;
  steadyIntervalS: number;
  steadyWindowS: number;
  steadyWorkers: number;
  cpuProf: boolean;
  quietWaitS: number;
  maxOtherPct: number;
  out: string;
  keepData: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: "boolean" },
      nodes: { type: "string" },
      workers: { type: "string" },
      lanes: { type: "string" },
      "baseline-window": { type: "string" },
      settle: { type: "string" },
      "register-timeout": { type: "string" },
      deadline: { type: "string" },
      "steady-interval": { type: "string" },
      "steady-window": { type: "string" },
      "steady-workers": { type: "string" },
      "cpu-prof": { type: "boolean" },
      "quiet-wait": { type: "string" },
      "max-other": { type: "string" },
      out: { type: "string" },
      "keep-data": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: node dist/bench/scale.js [--quick] [--nodes N] [--workers K] [--lanes L] [--baseline-window S] [--settle S]\n" +
        "         [--register-timeout S] [--deadline S] [--cpu-prof] [--steady-interval S] [--steady-window S] [--steady-workers K]\n" +
        "         [--quiet-wait S] [--max-other P] [--out FILE] [--keep-data DIR]\n",
    );
    process.exit(0);
  }
  const quick = values.quick ?? process.env.SCALE_QUICK === "1";
  const { raw, num } = flagReader(values, "SCALE");
  return {
    quick,
    nodes: num("nodes", quick ? 10_000 : 100_000, 1, 999_999),
    workers: num("workers", 3, 1, 16),
    lanes: num("lanes", 32, 1, 1024),
    baselineWindowS: num("baseline-window", quick ? 3 : 5, 0, 60, false),
    settleS: num("settle", quick ? 2 : 5, 0, 60, false),
    registerTimeoutS: num("register-timeout", quick ? 60 : 170, 5, 1800, false),
    deadlineS: num("deadline", quick ? 150 : 400, 10, 3600),
    steadyIntervalS: num("steady-interval", 10, 1, 600),
    steadyWindowS: num("steady-window", quick ? 8 : 60, 0, 3600),
    steadyWorkers: num("steady-workers", 2, 1, 16),
    cpuProf: values["cpu-prof"] ?? false,
    quietWaitS: num("quiet-wait", quick ? 5 : 15, 0, 600, false),
    maxOtherPct: num("max-other", 50, 0, 10_000, false),
    out: raw("out") ?? (quick ? "" : DEFAULT_OUT),
    keepData: raw("keep-data"),
  };
}

// ---------------------------------------------------------------------------------------

const log = (s: string): void => void process.stderr.write(`${s}\n`);

/** Peak resident set size of a process so far (VmHWM), bytes. */
function procPeakRssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function dirBytes(dir: string): number {
  let sum = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    sum += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return sum;
}

type Worker = WorkerProcess<ToRegisterWorker, FromRegisterWorker>;

interface RegisterRun {
  done: number;
  elapsedMs: number;
  perSec: number;
  hist: Histogram;
  serverCpuPct: number | undefined;
  workersCpuPct: number;
  /** CPU taken by processes outside the benchmark over the run (other jobs on the machine), % of one core. */
  otherPct: number | undefined;
  /** Share of the run in which some runnable task waited for a CPU (Linux PSI), %. */
  pressurePct: number | undefined;
  /** nodes/s in each tenth of the run (by nodes registered). */
  tenths: number[];
}

let runSeq = 0;

/** Register [0, nodes) split among the workers (or until `stopAt`), with progress. */
async function registerWith(workers: Worker[], nodes: number, opts: Options, stopAt: number, serverPid: number | undefined, what: string, timeoutMs: number): Promise<RegisterRun> {
  const seq = ++runSeq;
  const per = Math.ceil(nodes / workers.length);
  const progress = new Map<number, number>();
  const timeline: Array<{ t: number; done: number }> = [{ t: epochNow(), done: 0 }];
  const offs = workers.map((w) =>
    w.onMessage((m) => {
      if (m.type === "progress" && m.seq === seq) progress.set(m.index, m.done);
    }),
  );
  const cpu0 = procCpuMs(serverPid);
  const machine0 = machineBusyMs();
  const psi0 = cpuPressureUs();
  const own0 = process.cpuUsage();
  const t0 = epochNow();
  let lastLog = t0;
  const ticker = setInterval(() => {
    const done = [...progress.values()].reduce((a, b) => a + b, 0);
    const now = epochNow();
    timeline.push({ t: now, done });
    if (now - lastLog >= 10_000) {
      lastLog = now;
      log(`scale: ${what}: ${fmtInt(done)} registered in ${((now - t0) / 1000).toFixed(0)} s, server RSS ${fmtMiB(procRssBytes(serverPid))}`);
    }
  }, 500);
  let results: RegisterResult[];
  try {
    results = await Promise.all(
      workers.map((w, i) => {
        const r = w.next("result", timeoutMs);
        w.send({ type: "run", seq, from: Math.min(nodes, i * per), to: Math.min(nodes, (i + 1) * per), lanes: opts.lanes, stopAt, deadlineMs: 30_000 });
        return r;
      }),
    );
  } finally {
    clearInterval(ticker);
    for (const off of offs) off();
  }
  const elapsedMs = epochNow() - t0;
  const cpu1 = procCpuMs(serverPid);
  const machine1 = machineBusyMs();
  const psi1 = cpuPressureUs();
  const own = process.cpuUsage(own0);
  const errors: Record<string, number> = {};
  const samples: string[] = [];
  for (const r of results) {
    for (const [k, n] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + n;
    samples.push(...r.samples);
  }
  if (Object.keys(errors).length > 0) throw new Error(`${what}: registrations failed ${JSON.stringify(errors)}\n  ${samples.slice(0, 8).join("\n  ")}`);
  const hist = new Histogram();
  for (const r of results) hist.merge(r.hist);
  const done = results.reduce((a, r) => a + r.done, 0);
  timeline.push({ t: t0 + elapsedMs, done });
  // nodes/s per tenth of the nodes: time between the samples where the count crossed k/10.
  const tenths: number[] = [];
  const crossing = (count: number): number => {
    for (let i = 1; i < timeline.length; i++) {
      const a = timeline[i - 1]!;
      const b = timeline[i]!;
      if (b.done >= count) return b.done === a.done ? b.t : a.t + ((count - a.done) / (b.done - a.done)) * (b.t - a.t);
    }
    return timeline.at(-1)!.t;
  };
  if (stopAt === 0) {
    for (let k = 0; k < 10; k++) {
      const from = crossing((done * k) / 10);
      const to = crossing((done * (k + 1)) / 10);
      tenths.push(to > from ? done / 10 / ((to - from) / 1000) : Number.NaN);
    }
  }
  const serverCpuPct = cpu0 !== undefined && cpu1 !== undefined ? (100 * (cpu1 - cpu0)) / elapsedMs : undefined;
  const workersCpuPct = (100 * results.reduce((a, r) => a + r.cpuUs, 0)) / 1000 / elapsedMs;
  const ownPct = (100 * (own.user + own.system)) / 1000 / elapsedMs;
  const machinePct = machine0 !== undefined && machine1 !== undefined ? (100 * (machine1 - machine0)) / elapsedMs : undefined;
  return {
    done,
    elapsedMs,
    perSec: done / (elapsedMs / 1000),
    hist,
    serverCpuPct,
    workersCpuPct,
    otherPct: machinePct !== undefined && serverCpuPct !== undefined ? Math.max(0, machinePct - serverCpuPct - workersCpuPct - ownPct) : undefined,
    pressurePct: psi0 !== undefined && psi1 !== undefined ? (100 * (psi1 - psi0)) / 1000 / elapsedMs : undefined,
    tenths,
  };
}

/**
 * Start nodeplane on `dataDir` and time it from spawn: to its serving line, and to the first
 * ListNodes answered (polled every 20 ms on `port`, which must be known beforehand; 0 = not polled).
 */
async function startTimed(
  dataDir: string,
  port: number,
  profName: string | undefined,
  profDir: string | undefined,
  timeoutMs: number,
): Promise<{ served: Served; servingMs: number; firstListMs: number; readyMs: number; otherPct: number | undefined; pressurePct: number | undefined }> {
  const args = [
    ...(profDir && profName ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${profName}.cpuprofile`] : []),
    NODEPLANE_BIN,
    "serve",
    "--listen",
    `127.0.0.1:${port}`,
    "--http-listen",
    "127.0.0.1:0",
    "--data-dir",
    dataDir,
    "--log-level",
    "warn",
    "--node-monitor-grace-period",
    "1h",
    "--node-startup-grace-period",
    "1h",
  ];
  const t0 = performance.now();
  if (port === 0) {
    const served = await spawnServing("nodeplane", args, SERVING);
    return { served, servingMs: performance.now() - t0, firstListMs: Number.NaN, readyMs: Number.NaN, otherPct: undefined, pressurePct: undefined };
  }
  const machine0 = machineBusyMs();
  const psi0 = cpuPressureUs();
  const own0 = process.cpuUsage();
  // Our own spawn (not harness.spawnServing): its bound on reaching the serving line is fixed at
  // 20 s, and a slow restart is a result to report, not an error.
  const child = track(spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } }));
  let out = "";
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let firstListMs = Number.NaN;
  let stopPolling = false;
  const poll = (async (): Promise<void> => {
    const client = new NodeClient(`127.0.0.1:${port}`, {
      channelOptions: { "grpc.initial_reconnect_backoff_ms": 10, "grpc.max_reconnect_backoff_ms": 20, "grpc.use_local_subchannel_pool": 1 },
    });
    try {
      while (!stopPolling) {
        try {
          await client.listNodes({ limit: 500 }, { timeoutMs: 2000 });
          firstListMs = performance.now() - t0;
          return;
        } catch {
          await sleep(20);
        }
      }
    } finally {
      client.close();
    }
  })();
  const ports = await new Promise<{ port: number; httpPort: number | undefined; at: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nodeplane did not start serving within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    let seen = false;
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = seen ? null : SERVING.exec(line);
      if (m) {
        seen = true;
        clearTimeout(timer);
        resolve({ port: Number(m[1]), httpPort: m[2] && m[2] !== "-" ? Number(m[2]) : undefined, at: performance.now() });
      } else out += `${line}\n`;
    });
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`nodeplane exited (${e.code ?? e.signal}) before serving:\n${out}`));
    });
  }).catch((err: unknown) => {
    stopPolling = true;
    throw err;
  });
  const listBound = setTimeout(() => (stopPolling = true), timeoutMs);
  await poll;
  clearTimeout(listBound);
  if (!Number.isFinite(firstListMs)) throw new Error(`nodeplane answered no ListNodes within ${timeoutMs} ms of its start`);
  // Serving comes before ready (the watch cache loads in the background): wait for /readyz too.
  let readyMs = Number.NaN;
  while (ports.httpPort !== undefined && performance.now() - t0 < timeoutMs) {
    const status = await fetch(`http://127.0.0.1:${ports.httpPort}/readyz`).then(
      async (res) => (await res.arrayBuffer(), res.status),
      () => 0,
    );
    if (status === 200) {
      readyMs = performance.now() - t0;
      break;
    }
    await sleep(20);
  }
  if (!Number.isFinite(readyMs)) throw new Error(`nodeplane was not ready (/readyz) within ${timeoutMs} ms of its start`);
  // What other processes took while this one started: machine busy time minus the new server's and ours.
  const machine1 = machineBusyMs();
  const psi1 = cpuPressureUs();
  const serverCpu = procCpuMs(child.pid);
  const own = process.cpuUsage(own0);
  const elapsed = performance.now() - t0;
  const otherPct =
    machine0 !== undefined && machine1 !== undefined && serverCpu !== undefined
      ? Math.max(0, (100 * (machine1 - machine0 - serverCpu - (own.user + own.system) / 1000)) / elapsed)
      : undefined;
  return {
    served: { child, port: ports.port, httpPort: ports.httpPort, output: () => out, exited },
    servingMs: ports.at - t0,
    firstListMs,
    readyMs,
    otherPct,
    pressurePct: psi0 !== undefined && psi1 !== undefined ? (100 * (psi1 - psi0)) / 1000 / elapsed : undefined,
  };
}

/** A data dir the run keeps: created if absent, refused unless empty (registering twice would fail). */
function keptDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  if (fs.readdirSync(dir).length > 0) throw new Error(`--keep-data ${dir}: not empty`);
  log(`scale: keeping the data dir ${dir}`);
  return dir;
}

/** A spread of the registered nodes must read back whole. */
async function checkSample(address: string, nodes: number): Promise<number> {
  const client = new NodeClient(address);
  try {
    const step = Math.max(1, Math.floor(nodes / 50));
    let checked = 0;
    for (let i = 0; i < nodes; i += step) {
      const n = await client.getNode(scaleNodeName(i), { timeoutMs: 10_000 });
      if (Object.keys(n.metadata?.labels ?? {}).length !== 20 || n.status?.addresses.length !== 4) {
        throw new Error(`${scaleNodeName(i)} read back without its 20 labels and 4 addresses`);
      }
      checked++;
    }
    const last = await client.getNode(scaleNodeName(nodes - 1), { timeoutMs: 10_000 });
    if (last.metadata?.name !== scaleNodeName(nodes - 1)) throw new Error("the last node did not read back");
    return checked + 1;
  } finally {
    client.close();
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opts = parseOptions(argv);
  exitAfter(opts.deadlineS * 1000, "scale");
  for (const f of [NODEPLANE_BIN, WORKER_JS, TRIVIAL_JS]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first`);
  }
  const began = Date.now();
  const dataDir = opts.keepData ? keptDir(opts.keepData) : trackTempDir(fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-scale-")));
  const profDir = opts.cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-scale-prof-")) : undefined;
  const failures: string[] = [];

  // Workers, and the baseline.
  const workers: Worker[] = [];
  for (let i = 0; i < opts.workers; i++) workers.push(new WorkerProcess(`register worker ${i}`, WORKER_JS));
  const init = async (address: string): Promise<void> => {
    await Promise.all(
      workers.map((w, i) => {
        const ready = w.next("ready", 20_000);
        w.send({ type: "init", index: i, address });
        return ready;
      }),
    );
  };
  const ours = (serverPid: number | undefined): Record<string, number | undefined> => {
    const pids: Record<string, number | undefined> = { server: serverPid, bench: process.pid };
    workers.forEach((w, i) => {
      if (w.child.exitCode === null && w.child.signalCode === null) pids[`worker${i}`] = w.pid;
    });
    return pids;
  };
  let baseline: RegisterRun | undefined;
  if (opts.baselineWindowS > 0) {
    const trivial = await spawnServing("trivial register server", [TRIVIAL_JS], /^trivial serving grpc=[^:]+:(\d+)/);
    await init(`127.0.0.1:${trivial.port}`);
    await waitForQuiet(ours(trivial.child.pid), opts.maxOtherPct, opts.quietWaitS * 1000, log);
    // Names far above the real ones: nothing is stored anyway.
    baseline = await registerWith(
      workers,
      1_000_000,
      opts,
      epochNow() + opts.baselineWindowS * 1000,
      trivial.child.pid,
      "baseline",
      opts.baselineWindowS * 1000 + 40_000,
    );
    await stopServer(trivial, "trivial register server");
    log(
      `scale: baseline (trivial grpc-js Register): ${fmtInt(baseline.perSec)} calls/s, server CPU ${fmtPct(baseline.serverCpuPct)}, ` +
        `workers CPU ${fmtPct(baseline.workersCpuPct)}, other load ${fmtPct(baseline.otherPct)}, CPU pressure ${fmtPct(baseline.pressurePct)}`,
    );
  }

  // nodeplane, empty.
  const first = await startTimed(dataDir, 0, "nodeplane-fill", profDir, 20_000);
  const server = first.served;
  const address = `127.0.0.1:${server.port}`;
  if (server.httpPort === undefined) throw new Error("nodeplane did not report its HTTP port (needed for /metrics)");
  log(`scale: nodeplane at ${address} (data dir ${dataDir}, ${fsTypeOf(dataDir)})`);
  await sleep(opts.settleS * 1000);
  const emptyRss = procRssBytes(server.child.pid);
  const emptyHeap = sumOf(await scrapeMetrics(server.httpPort), "nodejs_heap_size_used_bytes");

  // Register every node.
  await init(address);
  await waitForQuiet(ours(server.child.pid), opts.maxOtherPct, opts.quietWaitS * 1000, log);
  const before = await scrapeMetrics(server.httpPort);
  const reg = await registerWith(workers, opts.nodes, opts, 0, server.child.pid, "register", opts.registerTimeoutS * 1000);
  const after = await scrapeMetrics(server.httpPort);
  const okDelta = sumOf(after, "nodeplane_grpc_server_handled_total", { method: "Register", code: "OK" }) - sumOf(before, "nodeplane_grpc_server_handled_total", { method: "Register", code: "OK" });
  const allDelta = sumOf(after, "nodeplane_grpc_server_handled_total", { method: "Register" }) - sumOf(before, "nodeplane_grpc_server_handled_total", { method: "Register" });
  if (reg.done !== opts.nodes) failures.push(`registered ${reg.done} of ${opts.nodes} nodes`);
  if (okDelta !== reg.done || allDelta !== okDelta) failures.push(`the server counted ${okDelta} OK and ${allDelta - okDelta} failed Register calls; the workers got ${reg.done} OK`);
  log(
    `scale: registered ${fmtInt(reg.done)} nodes in ${(reg.elapsedMs / 1000).toFixed(1)} s: ${fmtInt(reg.perSec)} nodes/s, ` +
      `p50/p99 ${fmtMs(reg.hist.quantileUs(0.5) / 1000)}/${fmtMs(reg.hist.quantileUs(0.99) / 1000)} ms, server CPU ${fmtPct(reg.serverCpuPct)}, workers CPU ${fmtPct(reg.workersCpuPct)}, other load ${fmtPct(reg.otherPct)}, ` +
      `CPU pressure ${fmtPct(reg.pressurePct)}`,
  );
  await Promise.all(workers.map((w) => w.stop()));

  // Memory, idle with every node.
  await sleep(opts.settleS * 1000);
  const fullRss = procRssBytes(server.child.pid);
  const fullPeak = procPeakRssBytes(server.child.pid);
  const fullSamples = await scrapeMetrics(server.httpPort);
  const fullHeap = sumOf(fullSamples, "nodejs_heap_size_used_bytes");
  const revision = sumOf(fullSamples, "nodeplane_store_revision");
  log(`scale: idle with ${fmtInt(opts.nodes)} nodes: RSS ${fmtMiB(fullRss)} (peak ${fmtMiB(fullPeak)}), V8 heap used ${fmtMiB(fullHeap)}`);

  // Restart.
  await waitForQuiet(ours(server.child.pid), opts.maxOtherPct, opts.quietWaitS * 1000, log);
  let t = performance.now();
  const stopped = await stopServer(server, "nodeplane");
  const shutdownMs = performance.now() - t;
  if (stopped.code !== 0) failures.push(`nodeplane exited with ${stopped.code ?? stopped.signal} on SIGTERM`);
  if (server.output().trim()) log(`scale: nodeplane said (warn and above):\n${server.output()}`);
  const dbBytes = dirBytes(dataDir);
  const second = await startTimed(dataDir, server.port, "nodeplane-restart", profDir, 60_000);
  const restarted = second.served;
  log(
    `scale: restarted: serving line after ${fmtMs(second.servingMs)} ms, first ListNodes answered after ${fmtMs(second.firstListMs)} ms, ` +
      `ready after ${fmtMs(second.readyMs)} ms, ` +
      `other load meanwhile ${fmtPct(second.otherPct)}, CPU pressure ${fmtPct(second.pressurePct)}`,
  );
  t = performance.now();
  const sampled = await checkSample(`127.0.0.1:${restarted.port}`, opts.nodes);
  const sampleMs = performance.now() - t;
  await sleep(opts.settleS * 1000);
  const restartRss = procRssBytes(restarted.child.pid);
  const restartPeak = procPeakRssBytes(restarted.child.pid);
  const restartHeap = restarted.httpPort !== undefined ? sumOf(await scrapeMetrics(restarted.httpPort), "nodejs_heap_size_used_bytes") : Number.NaN;
  log(`scale: restarted, idle: RSS ${fmtMiB(restartRss)} (peak ${fmtMiB(restartPeak)}), V8 heap used ${fmtMiB(restartHeap)}`);
  let steady: SteadyOutcome | undefined;
  let steadyBaseline: SteadyOutcome | undefined;
  if (opts.steadyWindowS > 0 && restarted.httpPort !== undefined) {
    const fleet = { nodes: opts.nodes, intervalS: opts.steadyIntervalS, windowS: opts.steadyWindowS, warmupS: 2, workers: opts.steadyWorkers, connections: 8, log };
    // Baseline: the same fleet against a bare grpc-js Heartbeat that answers at once.
    const trivial = await spawnServing("trivial heartbeat server", [TRIVIAL_JS], /^trivial serving grpc=[^:]+:(\d+)/);
    await waitForQuiet(ours(trivial.child.pid), opts.maxOtherPct, opts.quietWaitS * 1000, log);
    log("scale: steady heartbeat against the trivial grpc-js server (baseline)");
    steadyBaseline = await runSteadyHeartbeat({ ...fleet, port: trivial.port, httpPort: undefined, serverPid: trivial.child.pid });
    await stopServer(trivial, "trivial heartbeat server");
    failures.push(...steadyBaseline.failures.map((f) => `steady heartbeat baseline: ${f}`));
    await waitForQuiet(ours(restarted.child.pid), opts.maxOtherPct, opts.quietWaitS * 1000, log);
    log("scale: steady heartbeat against nodeplane");
    steady = await runSteadyHeartbeat({ ...fleet, port: restarted.port, httpPort: restarted.httpPort, serverPid: restarted.child.pid });
    failures.push(...steady.failures.map((f) => `steady heartbeat: ${f}`));
  }
  const stopped2 = await stopServer(restarted, "nodeplane (restarted)");
  if (stopped2.code !== 0) failures.push(`the restarted nodeplane exited with ${stopped2.code ?? stopped2.signal} on SIGTERM`);
  if (restarted.output().trim()) log(`scale: restarted nodeplane said (warn and above):\n${restarted.output()}`);

  // Report.
  const met = (ok: boolean): string => (ok ? "**met**" : "**missed**");
  const n = fmtInt(opts.nodes);
  const restartMs = Math.max(second.servingMs, second.firstListMs);
  const rows = [
    [
      `Register throughput, ${n} realistic nodes, ${opts.workers} workers × ${opts.lanes} in flight`,
      `${fmtInt(reg.perSec)} nodes/s (p50 ${fmtMs(reg.hist.quantileUs(0.5) / 1000)} ms, p99 ${fmtMs(reg.hist.quantileUs(0.99) / 1000)} ms; server CPU ${fmtPct(reg.serverCpuPct)})`,
      baseline ? `trivial grpc-js Register: ${fmtInt(baseline.perSec)} calls/s (${(reg.perSec / baseline.perSec).toFixed(2)}×)` : "–",
      `≥ ${fmtInt(TARGET.registerPerSec)} nodes/s`,
      met(reg.perSec >= TARGET.registerPerSec),
    ],
    [
      `Server RSS, ${n} nodes, idle after registering them`,
      `${fmtMiB(fullRss)} (peak ${fmtMiB(fullPeak)}, V8 heap used ${fmtMiB(fullHeap)})`,
      `empty server: ${fmtMiB(emptyRss)} (heap ${fmtMiB(emptyHeap)})`,
      "≤ 1 GiB",
      met((fullRss ?? Infinity) <= TARGET.rssBytes),
    ],
    [
      `Server RSS, ${n} nodes, idle after a restart`,
      `${fmtMiB(restartRss)} (peak ${fmtMiB(restartPeak)}, V8 heap used ${fmtMiB(restartHeap)})`,
      `empty server: ${fmtMiB(emptyRss)}`,
      "≤ 1 GiB",
      met((restartRss ?? Infinity) <= TARGET.rssBytes),
    ],
    [
      `Restart to serving, ${n} nodes in the store`,
      `${fmtMs(second.servingMs)} ms to the serving line, ${fmtMs(second.firstListMs)} ms to the first ListNodes answer ` +
        `(ready, /readyz 200: ${fmtMs(second.readyMs)} ms)`,
      `empty server: ${fmtMs(first.servingMs)} ms to the serving line`,
      "≤ 5 s",
      met(restartMs <= TARGET.restartMs),
    ],
    ...(steady ? [steadyRow(steady, steadyBaseline)] : []),
  ];
  const table = [
    "| scenario | result | baseline (same run) | target | |",
    "|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
  const tenths = reg.tenths.map((x) => fmtInt(x)).join(" / ");
  const notes = [
    `Register nodes/s per tenth of the run (first → last ${fmtInt(opts.nodes / 10)} nodes): ${tenths}. Workers CPU ${fmtPct(reg.workersCpuPct)} during registration` +
      (baseline ? `, ${fmtPct(baseline.workersCpuPct)} against the trivial server (whose own CPU was ${fmtPct(baseline.serverCpuPct)})` : "") +
      `. Other load (CPU of processes outside the benchmark: other jobs on this shared machine) ${fmtPct(reg.otherPct)} during registration` +
      (baseline ? `, ${fmtPct(baseline.otherPct)} during the baseline` : "") +
      `; CPU pressure (Linux PSI: share of the time some runnable task waited for a CPU) ${fmtPct(reg.pressurePct)} during registration` +
      (baseline ? `, ${fmtPct(baseline.pressurePct)} during the baseline` : "") +
      `. CPU is % of one core; the machine has ${os.cpus().length}.`,
    `Store: revision ${fmtInt(revision)} after registration; data dir ${fmtMiB(dbBytes)} on disk at shutdown; SIGTERM to exit took ${fmtMs(shutdownMs)} ms; ` +
      `while the server restarted, other load ${fmtPct(second.otherPct)} and CPU pressure ${fmtPct(second.pressurePct)}.`,
    `After the restart ${sampled} nodes spread over the range read back whole (GetNode, ${fmtMs(sampleMs)} ms).`,
    ...(steady
      ? [
          `Steady heartbeat (bench/steady-heartbeat.ts), against the restarted server: ${opts.steadyWorkers} load worker processes hold one Heartbeat stream per node ` +
            `(as the SDK's NodeAgent does; 8 HTTP/2 connections each) and renew each node every ${opts.steadyIntervalS} s at a seeded phase of its own, so the load is smooth; ` +
            `streams open at each node's first renewal (the first interval is the ramp), then 2 s of warm-up and ${opts.steadyWindowS} s measured. ` +
            "The baseline runs the same fleet first against bench/trivial-register-server.ts, whose Heartbeat answers each request at once (a Lease renamed to the node) and stores nothing: what grpc-js and HTTP/2 alone cost for this many streams. " +
            "Renewals/s is the server's own nodeplane_heartbeats_total{code=\"OK\"} over the window; writes each is the store revision delta per renewal (1.00 = one durable commit each); " +
            "latency is from the worker's send to the committed answer, over every renewal sent in the window; a renewal due while the node's previous one is unanswered is skipped and counted.",
        ]
      : []),
  ];
  const checks = failures.length === 0
    ? `Checks passed: every Register answered OK with the node's own Lease (the server's Register counter agrees); the restarted server answered ListNodes and GetNode for a sample of nodes; both servers shut down cleanly on SIGTERM.`
    : `CHECKS FAILED:\n- ${failures.join("\n- ")}`;

  const cpus = os.cpus();
  const machine =
    `${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}, data dir on ${fsTypeOf(os.tmpdir())} (${os.tmpdir()})`;
  const command = `node dist/bench/scale.js ${argv.join(" ")}`.trim();
  const doc = [
    "# Scale benchmark: register throughput, memory, restart",
    "",
    `- Command: \`npm run build && ${command}\``,
    `- Date: ${new Date(began).toISOString()} (took ${Math.round((Date.now() - began) / 1000)} s)`,
    `- Machine: ${machine}`,
    `- Server: \`nodeplane serve\` (SQLite store, WAL, synchronous=FULL, group commit), lifecycle controller on (it reads the watch cache's nodes and holds each Lease's renew time) ` +
      "with grace periods longer than the run so it writes nothing; log level warn.",
    `- Load: ${opts.workers} register worker processes (the SDK's NodeClient.register, one grpc-js channel each), ${opts.lanes} calls in flight each, ` +
      `registering disjoint ranges of ${n} nodes, each with 20 labels, 4 addresses, 6 capacity and 6 allocatable resources, 5 conditions, full node info ` +
      "and the agent endpoint (test/support/realistic-node.ts). Each Register creates the Node and its Lease in one durable transaction.",
    "",
    "What is measured: register throughput is nodes registered divided by the wall time from the first call to the last answer; " +
      `the baseline is the same workers for ${opts.baselineWindowS} s against a bare grpc-js server (bench/trivial-register-server.ts) that decodes the request ` +
      "and answers the node and a Lease without storing anything — the ceiling of grpc-js and the codecs on this machine, with clients and server " +
      `sharing its ${cpus.length} CPUs. RSS is VmRSS from /proc after ${opts.settleS} s idle (peak is VmHWM); V8 heap used is from the server's /metrics. ` +
      "Restart time is from spawning the new process to its `nodeplane serving` line, and to the first ListNodes (page of 500) answered, " +
      "polled every 20 ms from spawn on the same port. The server serves before its watch cache has loaded (reads and writes go to the store; " +
      "a Watch waits for the cache); ready is /readyz answering 200 (watch cache loaded, controllers synced), polled every 20 ms.",
    "",
    table,
    "",
    ...notes.map((x) => `- ${x}`),
    "",
    checks,
    "",
  ].join("\n");

  process.stdout.write(`\n${table}\n\n${notes.map((x) => `- ${x}`).join("\n")}\n\n${checks}\n`);
  if (profDir) {
    for (const name of ["nodeplane-fill", "nodeplane-restart"]) {
      const file = path.join(profDir, `${name}.cpuprofile`);
      if (fs.existsSync(file)) process.stdout.write(`\n${summarizeProfile(file)}\n`);
      else log(`scale: no profile at ${file}`);
    }
    log(`scale: profiles kept in ${profDir}; no results file written (profiling slows the servers)`);
  } else if (opts.out) {
    fs.writeFileSync(opts.out, doc);
    log(`scale: wrote ${path.relative(process.cwd(), opts.out) || opts.out}`);
  }
  emitSummary({
    bench: "scale.js",
    details: opts.out && !profDir ? path.relative(ROOT, opts.out) : undefined,
    tookS: (Date.now() - began) / 1000,
    rows: rows.map(([scenario, result, baselineCell, target, verdictCell]) => ({
      scenario: scenario!,
      result: result!,
      baseline: baselineCell!,
      target: target!,
      verdict: verdictCell!.includes("missed") ? "missed" : "met",
    })),
    failures,
  });
  if (failures.length > 0) throw new Error(`${failures.length} check(s) failed`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\nscale FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
