/**
 * `node dist/bench/watch-fanout.js`: watch fan-out (issue 7, scenario 4). One real nodeplane
 * server (child process, temp data dir) with --nodes registered nodes (test/support/realistic-node.ts);
 * one watcher per node pinned by the field selector `metadata.name=NAME`, plus --all watchers of
 * every node, held by --watcher-procs processes through the SDK (NodeClient.watch), --per-channel
 * pinned watchers per grpc-js channel (`grpc.use_local_subchannel_pool`: each channel its own
 * connection); a writer process changes random nodes with UpdateStatus at --rate per second,
 * paced (open loop), stamping each write's sequence number and its clock into the node's Ready
 * condition message (bench/fanout-worker.ts).
 *
 * Phases, each with --warmup seconds of writes before its measured window:
 *   1. baseline: the same writes with no watcher open (--baseline-window s): the server's CPU
 *      for the writes alone.
 *   2. pinned only: the watcher pinned to each node open (--baseline-window s).
 *   3. fan-out, the scenario: the --all watchers of every node open too (--window s).
 *   4. the same with the all-node watchers reopened on channels with grpc-js's default 64 KiB
 *      HTTP/2 flow-control window, which is what NodeClient uses unless told otherwise
 *      (--baseline-window s; skipped with --flow-window 0, where phase 3 already is this).
 * Watchers' channels use a --flow-window window otherwise (default 4 MiB): one all-node watch
 * stream carries ~2 MB/s at 1,000 changes/s, and a 64 KiB window lets a stream carry only one
 * window per round trip through both event loops.
 * Per phase: writes/s achieved, UpdateStatus latency (writer), delivery latency p50/p99 (watcher
 * clock at receipt minus the writer's stamp, i.e. from the moment the write was sent; writes
 * stamped inside the window), events delivered/s (the server's nodeplane_watch_events_sent_total),
 * server CPU (/proc, % of one core) and RSS, the workers' CPU, other load and CPU pressure (PSI).
 *
 * Checks (any failure fails the run): every write answered OK, and the server's UpdateStatus OK
 * counter agrees; in phases 2 and 3 every write reached the watcher pinned to its node exactly
 * once and no other watcher; every all-node watcher got every write of phase 3
 * exactly once (in phase 4, each that was not cut off); no unexpected event, no pinned watch
 * stream ended; the server's watcher gauge matched; the writer kept its pace (at most 1% of a
 * window's writes issued more than 50 ms late).
 *
 * Flags (or env FANOUT_<NAME>):
 *   --quick               ~1 minute smoke run: 2,000 nodes, short windows; writes no file unless --out
 *   --nodes N             registered nodes = pinned watchers (default 10000; quick 2000)
 *   --all K               watchers of every node (default 10)
 *   --rate R              node changes per second (default 1000)
 *   --window S            fan-out measured seconds (default 20; quick 6)
 *   --baseline-window S   phases 1, 2 and 4 measured seconds (default 10; quick 4)
 *   --warmup S            writes (ramping up) before each window (default 4; quick 2)
 *   --watcher-procs P     watcher processes (default 2)
 *   --per-channel C       pinned watchers per channel (default 1000)
 *   --flow-window B       HTTP/2 flow-control window of the watchers' channels, bytes
 *                         (grpc-node.flow_control_window; default 4 MiB; 0 = grpc-js's 64 KiB)
 *   --no-sdk-window-phase skip phase 4
 *   --watch-queue-size N  passed to nodeplane serve: events a watcher may fall behind before it is
 *                         cut off (default: the server's, 1,000)
 *   --deadline S          bound on the whole run (default 300; quick 100)
 *   --quiet-wait S        before each measurement, wait up to S s while other processes take more than
 *                         --max-other % of a core (default 15; quick 5): this machine is shared
 *   --max-other P         see --quiet-wait (default 50)
 *   --cpu-prof            profile the server (node --cpu-prof) and print a summary; no file written
 *   --out FILE            default bench/RESULTS-watch.md (quick: none); "" = nowhere
 *
 * Local (127.0.0.1) and bounded; the server and workers are killed and the data dir removed on
 * exit, error, signal or deadline.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { NodeClient } from "../src/client/client.js";
import { type CpuWindow, cpuWindow, waitForQuiet } from "./cpu-window.js";
import type { FromWatcher, FromWriter, ToWatcher, ToWriter, WatcherReport, WatcherStatus, WriterResult } from "./fanout-protocol.js";
import {
  exitAfter,
  fmtInt,
  fmtMiB,
  fmtMs,
  fmtPct,
  fsTypeOf,
  NODEPLANE_BIN,
  procRssBytes,
  ROOT,
  type Samples,
  scrapeMetrics,
  type Served,
  spawnServing,
  stopServer,
  sumOf,
  trackTempDir,
} from "./harness.js";
import { Histogram } from "./histogram.js";
import { WorkerProcess } from "./ipc.js";
import { flagReader } from "./flags.js";
import { emitSummary, verdict as summaryVerdict } from "./summary.js";
import { summarizeProfile } from "./profile-summary.js";
import { registerRange } from "./register.js";
import { epochNow, sleep } from "./worker-side.js";

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const WORKER_JS = path.join(HERE, "fanout-worker.js");
const DEFAULT_OUT = path.join(ROOT, "bench/RESULTS-watch.md");
const TARGET_P99_MS = 100;

interface Options {
  quick: boolean;
  nodes: number;
  all: number;
  rate: number;
  windowS: number;
  baselineWindowS: number;
  warmupS: number;
  watcherProcs: number;
  perChannel: number;
  flowWindow: number;
  /** The server's --watch-queue-size (0 = its default, 1,000 events). */
  watchQueueSize: number;
  sdkWindowPhase: boolean;
  deadlineS: number;
  cpuProf: boolean;
  quietWaitS: number;
  maxOtherPct: number;
  out: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: "boolean" },
      nodes: { type: "string" },
      all: { type: "string" },
      rate: { type: "string" },
      window: { type: "string" },
      "baseline-window": { type: "string" },
      warmup: { type: "string" },
      "watcher-procs": { type: "string" },
      "per-channel": { type: "string" },
      "flow-window": { type: "string" },
      "watch-queue-size": { type: "string" },
      "no-sdk-window-phase": { type: "boolean" },
      deadline: { type: "string" },
      "cpu-prof": { type: "boolean" },
      "quiet-wait": { type: "string" },
      "max-other": { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: node dist/bench/watch-fanout.js [--quick] [--nodes N] [--all K] [--rate R] [--window S] [--baseline-window S] [--warmup S]\n" +
        "         [--watcher-procs P] [--per-channel C] [--flow-window B] [--no-sdk-window-phase] [--watch-queue-size N] [--deadline S] [--cpu-prof]\n" +
        "         [--quiet-wait S] [--max-other P] [--out FILE]\n",
    );
    process.exit(0);
  }
  const quick = values.quick ?? process.env.FANOUT_QUICK === "1";
  const { raw, num } = flagReader(values, "FANOUT");
  const opts: Options = {
    quick,
    nodes: num("nodes", quick ? 2000 : 10_000, 1, 100_000),
    all: num("all", 10, 0, 100),
    rate: num("rate", 1000, 1, 10_000),
    windowS: num("window", quick ? 6 : 20, 1, 120, false),
    baselineWindowS: num("baseline-window", quick ? 4 : 10, 1, 120, false),
    warmupS: num("warmup", quick ? 2 : 4, 0, 60, false),
    watcherProcs: num("watcher-procs", 2, 1, 8),
    perChannel: num("per-channel", 1000, 1, 100_000),
    flowWindow: num("flow-window", 4 * 2 ** 20, 0, 2 ** 31 - 1),
    watchQueueSize: num("watch-queue-size", 0, 0, 10_000_000),
    sdkWindowPhase: !(values["no-sdk-window-phase"] ?? false),
    deadlineS: num("deadline", quick ? 100 : 300, 10, 1800),
    cpuProf: values["cpu-prof"] ?? false,
    quietWaitS: num("quiet-wait", quick ? 5 : 15, 0, 600, false),
    maxOtherPct: num("max-other", 50, 0, 10_000, false),
    out: raw("out") ?? (quick ? "" : DEFAULT_OUT),
  };
  return opts;
}

// ---------------------------------------------------------------------------------------

interface Phase {
  name: string;
  label: string;
  writer: WriterResult;
  cpu: CpuWindow;
  /** Server counters over the window. */
  eventsPerSec: number;
  updateOk: number;
  updateNotOk: number;
  pinned: Histogram;
  all: Histogram;
  /** Watchers open when the phase started, and at the end of its window (the server's gauge). */
  watchersOpen: number;
  watchersAtEnd: number;
  /** UpdateStatus handling time inside the server (its histogram), mean ms. */
  handlerMeanMs: number;
  /** Group commits per second and their mean duration (apply + fsync), ms. */
  commitsPerSec: number;
  commitMeanMs: number;
  /** The server's event-loop delay over the window (includes the monitor's 10 ms resolution). */
  loopP99Ms: number;
  loopMaxMs: number;
}

const wireToHist = (h: Histogram, w: WatcherReport["phases"][string]["pinned"]): void => h.merge(w);

function q(h: Histogram, quantile: number): number {
  return h.count === 0 ? Number.NaN : h.quantileUs(quantile) / 1000;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opts = parseOptions(argv);
  exitAfter(opts.deadlineS * 1000, "watch-fanout");
  for (const f of [NODEPLANE_BIN, WORKER_JS]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first`);
  }
  const began = Date.now();
  const log = (s: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${s}\n`);
  const dataDir = trackTempDir(fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-fanout-")));
  const profDir = opts.cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-fanout-prof-")) : undefined;

  // The lifecycle controller runs (its informer follows every change, as in production) but with
  // grace periods longer than the run: the nodes renew no Lease, and marking them Unknown would
  // add writes of its own.
  const server: Served = await spawnServing(
    "nodeplane",
    [
      ...(profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`, "--cpu-prof-name=nodeplane.cpuprofile"] : []),
      NODEPLANE_BIN,
      "serve",
      "--listen",
      "127.0.0.1:0",
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
      ...(opts.watchQueueSize > 0 ? ["--watch-queue-size", String(opts.watchQueueSize)] : []),
    ],
    /^nodeplane serving grpc=[^:]+:(\d+) http=(\d+|-)/,
  );
  const httpPort = server.httpPort;
  if (httpPort === undefined) throw new Error("nodeplane did not report its HTTP port (needed for /metrics)");
  const address = `127.0.0.1:${server.port}`;
  log(`fanout: nodeplane at ${address} (data dir ${dataDir}, ${fsTypeOf(dataDir)})`);

  // Register the nodes.
  let t = performance.now();
  const reg = new NodeClient(address);
  try {
    await reg.waitForReady(10_000);
    await registerRange(reg, 0, opts.nodes, 64);
  } finally {
    reg.close();
  }
  const registerS = (performance.now() - t) / 1000;
  log(`fanout: registered ${fmtInt(opts.nodes)} nodes in ${registerS.toFixed(1)} s`);

  // Workers.
  const totalWrites = Math.ceil(opts.rate * (4 * opts.warmupS + 3 * opts.baselineWindowS + opts.windowS)) + 10; // ≥ what the writer plans (4 phases)
  const maxSeq = totalWrites + 1000;
  const writer = new WorkerProcess<ToWriter, FromWriter>("writer", WORKER_JS, ["writer"]);
  const watchers: WorkerProcess<ToWatcher, FromWatcher>[] = [];
  const per = Math.ceil(opts.nodes / opts.watcherProcs);
  for (let p = 0; p < opts.watcherProcs; p++) watchers.push(new WorkerProcess(`watcher ${p}`, WORKER_JS, ["watcher"]));
  const writerReady = writer.next("ready", 20_000);
  writer.send({ type: "init", address, nodeCount: opts.nodes, maxSeq, seed: 7 });
  await writerReady;
  await Promise.all(
    watchers.map((w, p) => {
      const ready = w.next("ready", 20_000);
      w.send({
        type: "init",
        index: p,
        address,
        pinnedFrom: Math.min(opts.nodes, p * per),
        pinnedTo: Math.min(opts.nodes, (p + 1) * per),
        perChannel: opts.perChannel,
        all: Math.floor(opts.all / opts.watcherProcs) + (p < opts.all % opts.watcherProcs ? 1 : 0),
        maxSeq,
      });
      return ready;
    }),
  );
  const pids: Record<string, number | undefined> = { server: server.child.pid, writer: writer.pid, bench: process.pid };
  watchers.forEach((w, p) => (pids[`watcher${p}`] = w.pid));

  const gauge = async (): Promise<number> => sumOf(await scrapeMetrics(httpPort), "nodeplane_watchers");
  const waitWatchers = async (want: number, timeoutMs: number): Promise<number> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const n = await gauge();
      if (n >= want) return n;
      if (Date.now() > until) {
        const st = await statuses().catch(() => []);
        const why = st.flatMap((x) => x.samples.slice(0, 3).map((m) => `\n  watcher process ${x.index}: ${m}`)).join("");
        throw new Error(`only ${n} of ${want} watchers open on the server after ${timeoutMs} ms${why}`);
      }
      await sleep(100);
    }
  };

  const statuses = (): Promise<WatcherStatus[]> =>
    Promise.all(
      watchers.map((w) => {
        const st = w.next("status", 10_000);
        w.send({ type: "status" });
        return st;
      }),
    );

  const phases: Phase[] = [];
  const runPhase = async (name: string, label: string, windowS: number, watchersOpen: number): Promise<Phase> => {
    await waitForQuiet(pids, opts.maxOtherPct, opts.quietWaitS * 1000, log);
    const startAt = epochNow() + 300;
    log(`fanout: ${label}: writing from ${new Date(startAt).toISOString().slice(11, 23)}, window from ${new Date(startAt + opts.warmupS * 1000).toISOString().slice(11, 23)}`);
    const windowStart = startAt + opts.warmupS * 1000;
    const windowEnd = windowStart + windowS * 1000;
    await Promise.all(
      watchers.map((w) => {
        const set = w.next("windowSet", 5000);
        w.send({ type: "window", phase: name, startAt: windowStart, endAt: windowEnd });
        return set;
      }),
    );
    const before = await scrapeMetrics(httpPort);
    const cpu = cpuWindow(pids, windowStart, windowEnd);
    // The server's counters over the window: scraped at its edges.
    let atStart: Samples | undefined;
    let atEnd: Samples | undefined;
    const scrapes = Promise.all([
      sleep(windowStart - epochNow()).then(async () => (atStart = await scrapeMetrics(httpPort))),
      sleep(windowEnd - epochNow()).then(async () => (atEnd = await scrapeMetrics(httpPort))),
    ]);
    const ran = writer.next("ran", (windowEnd - epochNow()) + 30_000);
    writer.send({
      type: "run",
      phase: name,
      startAt,
      warmupMs: opts.warmupS * 1000,
      durationMs: windowS * 1000,
      rate: opts.rate,
      maxInFlight: 1000,
      deadlineMs: 10_000,
    });
    const result = await ran;
    const c = await cpu;
    await scrapes;
    const after = await scrapeMetrics(httpPort);
    const errs = Object.entries(result.errors);
    if (errs.length > 0) throw new Error(`phase ${name}: writes failed: ${JSON.stringify(result.errors)}\n  ${result.samples.join("\n  ")}`);
    const issued = result.seqTo - result.seqFrom;
    if (result.acked !== issued) throw new Error(`phase ${name}: ${issued} writes issued, ${result.acked} answered OK`);
    const ok = sumOf(after, "nodeplane_grpc_server_handled_total", { method: "UpdateStatus", code: "OK" }) -
      sumOf(before, "nodeplane_grpc_server_handled_total", { method: "UpdateStatus", code: "OK" });
    const all = sumOf(after, "nodeplane_grpc_server_handled_total", { method: "UpdateStatus" }) -
      sumOf(before, "nodeplane_grpc_server_handled_total", { method: "UpdateStatus" });
    if (ok !== result.acked || all !== ok) {
      throw new Error(`phase ${name}: the server counted ${ok} OK and ${all - ok} failed UpdateStatus calls; the writer got ${result.acked} OK`);
    }
    const a = atStart!;
    const b = atEnd!;
    const delta = (name: string, labels: Record<string, string> = {}): number => sumOf(b, name, labels) - sumOf(a, name, labels);
    const events = delta("nodeplane_watch_events_sent_total");
    const handled = delta("nodeplane_grpc_server_handling_seconds_count", { method: "UpdateStatus" });
    const commits = delta("nodeplane_store_commit_seconds_count");
    const phase: Phase = {
      name,
      label,
      writer: result,
      cpu: c,
      eventsPerSec: events / (windowS),
      updateOk: ok,
      updateNotOk: all - ok,
      pinned: new Histogram(),
      all: new Histogram(),
      watchersOpen,
      watchersAtEnd: sumOf(b, "nodeplane_watchers"),
      handlerMeanMs: handled > 0 ? (delta("nodeplane_grpc_server_handling_seconds_sum", { method: "UpdateStatus" }) / handled) * 1000 : Number.NaN,
      commitsPerSec: commits / windowS,
      commitMeanMs: commits > 0 ? (delta("nodeplane_store_commit_seconds_sum") / commits) * 1000 : Number.NaN,
      // prom-client resets its event-loop delay histogram on every scrape: this is the window's.
      loopP99Ms: sumOf(b, "nodejs_eventloop_lag_p99_seconds") * 1000,
      loopMaxMs: sumOf(b, "nodejs_eventloop_lag_max_seconds") * 1000,
    };
    log(
      `fanout: ${label}: ${fmtInt(result.windowWrites / windowS)} writes/s, ${fmtInt(phase.eventsPerSec)} events/s sent, ` +
        `UpdateStatus p50/p99 ${fmtMs(q(histOf(result), 0.5))}/${fmtMs(q(histOf(result), 0.99))} ms, ` +
        `server CPU ${fmtPct(c.pct.server)}, RSS ${fmtMiB(c.rss.server)}, writer late ${result.lateWrites}, max lag ${fmtMs(result.maxLagMs)} ms, ` +
        `handler ${fmtMs(phase.handlerMeanMs)} ms, ${fmtInt(phase.commitsPerSec)} commits/s of ${fmtMs(phase.commitMeanMs)} ms, ` +
        `loop delay p99/max ${fmtMs(phase.loopP99Ms)}/${fmtMs(phase.loopMaxMs)} ms, workers ${fmtPct(workersPct(c))}, other ${fmtPct(c.otherPct)}, ` +
        `CPU pressure ${fmtPct(c.cpuPressurePct)} (${Object.entries(c.pct)
          .map(([k, v]) => `${k} ${fmtPct(v)}`)
          .join(", ")})`,
    );
    phases.push(phase);
    return phase;
  };

  // 1. Baseline: no watchers.
  await runPhase("none", "no watchers (baseline)", opts.baselineWindowS, 0);

  // 2. The pinned watchers.
  const rssBefore = procRssBytes(server.child.pid);
  t = performance.now();
  await Promise.all(
    watchers.map((w) => {
      const opened = w.next("opened", 60_000);
      w.send({ type: "open", which: "pinned", flowWindow: opts.flowWindow });
      return opened;
    }),
  );
  const openPinned = await waitWatchers(opts.nodes, 60_000);
  const openS = (performance.now() - t) / 1000;
  await sleep(1000);
  const rssAfter = procRssBytes(server.child.pid);
  log(`fanout: ${fmtInt(openPinned)} watchers open on the server (${openS.toFixed(1)} s to open them); server RSS ${fmtMiB(rssBefore)} → ${fmtMiB(rssAfter)}`);
  const pinnedOnly = await runPhase("pinned", `${fmtInt(opts.nodes)} pinned watchers`, opts.baselineWindowS, openPinned);

  const windowName = (bytes: number): string => (bytes === 0 ? "64 KiB (grpc-js default)" : `${fmtMiB(bytes).replace(" MiB", "")} MiB`);
  const openAll = async (flowWindow: number): Promise<number> => {
    await Promise.all(
      watchers.map((w) => {
        const opened = w.next("opened", 20_000);
        w.send({ type: "open", which: "all", flowWindow });
        return opened;
      }),
    );
    return waitWatchers(opts.nodes + opts.all, 20_000);
  };
  /**
   * Wait (bounded) until the watchers have all the server will send: every pinned event so far,
   * and `perWatcher` events at each all-node watcher of the latest set that is still open.
   */
  const drain = async (pinnedWant: number, perWatcher: number): Promise<void> => {
    const until = Date.now() + 15_000;
    for (;;) {
      const st = await statuses();
      const alive = opts.all - st.reduce((a, x) => a + x.allEnded, 0);
      const gotAll = st.reduce((a, x) => a + x.allAliveEvents, 0);
      const gotPinned = st.reduce((a, x) => a + x.pinnedEvents, 0);
      if ((gotAll >= alive * perWatcher && gotPinned >= pinnedWant) || Date.now() > until) return;
      await sleep(250);
    }
  };

  // 3. The watchers of every node too: the scenario.
  const open = await openAll(opts.flowWindow);
  const fan = await runPhase(
    "fanout",
    `${fmtInt(opts.nodes)} pinned + ${opts.all} all-node watchers, ${windowName(opts.flowWindow)} window`,
    opts.windowS,
    open,
  );
  await drain(pinnedOnly.writer.acked + fan.writer.acked, fan.writer.acked);

  // 4. The all-node watchers again, on channels with the SDK's default window.
  let sdk: Phase | undefined;
  if (opts.sdkWindowPhase && opts.flowWindow !== 0) {
    await Promise.all(
      watchers.map((w) => {
        const closed = w.next("closed", 10_000);
        w.send({ type: "closeAll" });
        return closed;
      }),
    );
    const until = Date.now() + 10_000;
    while ((await gauge()) > opts.nodes && Date.now() < until) await sleep(100);
    const reopened = await openAll(0);
    sdk = await runPhase("sdk", `the same, all-node watchers on the SDK's default ${windowName(0)} window`, opts.baselineWindowS, reopened);
    await drain(pinnedOnly.writer.acked + fan.writer.acked + sdk.writer.acked, sdk.writer.acked);
  }

  const reports = await Promise.all(
    watchers.map((w) => {
      const r = w.next("report", 20_000);
      w.send({ type: "report" });
      return r;
    }),
  );
  const gaugeAtEnd = await gauge();

  // Checks.
  const failures: string[] = [];
  const fail = (s: string): void => void failures.push(s);
  const reportOf = (node: number): number => Math.floor(node / per);
  for (const r of reports) {
    if (r.foreign > 0) fail(`watcher process ${r.index}: ${r.foreign} unexpected events`);
    if (r.wrongNode > 0) fail(`watcher process ${r.index}: ${r.wrongNode} events of another node than the pinned one`);
    if (r.pinnedStreamErrors > 0) fail(`watcher process ${r.index}: ${r.pinnedStreamErrors} pinned watch streams ended or failed`);
  }
  // Every write made while the pinned watchers were open reached the watcher pinned to its node exactly once, and no other.
  let pinnedMissing = 0;
  let pinnedDup = 0;
  let pinnedWrong = 0;
  let pinnedStray = 0;
  let pinnedChecked = 0;
  for (const ph of phases.slice(1)) {
    const w = ph.writer;
    for (let s = w.seqFrom; s < w.seqTo; s++) {
      const node = w.nodeOf[s - w.seqFrom]!;
      pinnedChecked++;
      reports.forEach((r, p) => {
        const got = r.pinnedGot[s]!;
        if (p === reportOf(node)) {
          if (got === -1) pinnedMissing++;
          else if (got === -2) pinnedDup++;
          else if (got !== node) pinnedWrong++;
        } else if (got !== -1) pinnedStray++;
      });
    }
  }
  // Writes of the baseline came before any watcher: none may have reached one.
  const b = phases[0]!.writer;
  for (const r of reports) for (let s = b.seqFrom; s < b.seqTo; s++) if (r.pinnedGot[s] !== -1) pinnedStray++;
  if (pinnedMissing + pinnedDup + pinnedWrong + pinnedStray > 0) {
    fail(
      `pinned watchers: of ${pinnedChecked} writes, ${pinnedMissing} never reached the node's watcher, ${pinnedDup} reached it more than once, ` +
        `${pinnedWrong} reached the watcher of another node; ${pinnedStray} deliveries to a watcher that should not have had them`,
    );
  }
  // All-node watchers: set k got every write of its phase exactly once and none from before it opened.
  // A watcher of set 0 (phase 3) cut off is a failure; in set 1 (phase 4, the SDK's window) it is the result.
  const checkSet = (k: number, ph: Phase): { watchers: number; cut: number; missing: number; dup: number; early: number } => {
    const out = { watchers: 0, cut: 0, missing: 0, dup: 0, early: 0 };
    const w = ph.writer;
    for (const r of reports) {
      const set = r.allSets[k];
      if (!set) continue;
      set.got.forEach((got, i) => {
        out.watchers++;
        const cut = set.ended[i]!;
        if (cut) out.cut++;
        for (let s = w.seqFrom; s < w.seqTo; s++) {
          if (got[s] === 0 && !cut) out.missing++;
          else if (got[s]! > 1) out.dup++;
        }
        for (let s = 0; s < w.seqFrom; s++) if (got[s]! > 0) out.early++;
      });
    }
    return out;
  };
  const set0 = checkSet(0, fan);
  if (set0.watchers !== opts.all) fail(`${set0.watchers} all-node watchers reported, ${opts.all} expected`);
  if (set0.cut > 0) fail(`${set0.cut} of ${opts.all} all-node watchers were cut off in the fan-out phase (too far behind: RESOURCE_EXHAUSTED)`);
  if (set0.missing + set0.dup + set0.early > 0) {
    fail(`all-node watchers: ${set0.missing} (watcher, write) pairs missing, ${set0.dup} delivered more than once, ${set0.early} from before the watcher opened`);
  }
  const set1 = sdk ? checkSet(1, sdk) : undefined;
  if (set1 && set1.missing + set1.dup + set1.early > 0) {
    fail(
      `all-node watchers on the SDK's window, the ones not cut off: ${set1.missing} (watcher, write) pairs missing, ` +
        `${set1.dup} delivered more than once, ${set1.early} from before the watcher opened`,
    );
  }
  if (set0.cut > 0 || (set1?.cut ?? 0) > 0) {
    const seen = [...new Set(reports.flatMap((r) => r.samples.map((x) => x.replace(/resource_version \d+/, "resource_version N"))))];
    if (seen.length > 0) log(`fanout: the watchers saw: ${seen.slice(0, 3).join(" | ")}`);
  }
  if (openPinned !== opts.nodes) fail(`the server counted ${openPinned} pinned watchers open, ${opts.nodes} expected`);
  if (open !== opts.all + opts.nodes) fail(`the server counted ${open} watchers open, ${opts.all + opts.nodes} expected`);
  const expectAtEnd = opts.nodes + opts.all - (set1?.cut ?? set0.cut);
  if (gaugeAtEnd !== expectAtEnd && failures.length === 0) fail(`at the end the server counted ${gaugeAtEnd} watchers open, ${expectAtEnd} expected`);
  // The load must be what it claims: at most 1% of a window's writes issued more than 50 ms late.
  for (const p of phases) {
    if (p.writer.lateWrites > 0.01 * p.writer.windowWrites) {
      fail(`phase ${p.name}: the writer issued ${p.writer.lateWrites} of ${p.writer.windowWrites} writes more than 50 ms late (max lag ${fmtMs(p.writer.maxLagMs)} ms)`);
    }
  }

  for (const p of phases) {
    for (const r of reports) {
      const h = r.phases[p.name];
      if (!h) continue;
      wireToHist(p.pinned, h.pinned);
      wireToHist(p.all, h.all);
    }
  }

  // Stop everything.
  await Promise.all([writer.stop(), ...watchers.map((x) => x.stop())]);
  const exit = await stopServer(server, "nodeplane");
  if (exit.code !== 0) fail(`nodeplane exited with ${exit.code ?? exit.signal} on SIGTERM`);
  if (server.output().trim()) log(`fanout: nodeplane said (warn and above):\n${server.output()}`);

  // Report.
  const base = phases[0]!;
  const cpus = os.cpus();
  const machine =
    `${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}, data dir on ${fsTypeOf(os.tmpdir())} (${os.tmpdir()})`;
  const command = `node dist/bench/watch-fanout.js ${argv.join(" ")}`.trim();
  const rows = phases.map((p) => {
    const writesPerSec = p.writer.windowWrites / (p.writer.windowMs / 1000);
    const serverCoreMs = ((p.cpu.pct.server ?? Number.NaN) / 100) * 1000; // per second of window
    const usPerChange = (serverCoreMs * 1000) / writesPerSec;
    const extraUsPerEvent =
      p === base || p.eventsPerSec === 0 ? Number.NaN : (((p.cpu.pct.server ?? Number.NaN) - (base.cpu.pct.server ?? Number.NaN)) / 100) * 1e6 / p.eventsPerSec;
    return [
      p.label,
      p.watchersOpen === p.watchersAtEnd ? fmtInt(p.watchersOpen) : `${fmtInt(p.watchersOpen)} → ${fmtInt(p.watchersAtEnd)}`,
      fmtInt(writesPerSec),
      fmtInt(p.eventsPerSec),
      p.pinned.count ? `${fmtMs(q(p.pinned, 0.5))} / ${fmtMs(q(p.pinned, 0.99))}` : "–",
      p.all.count ? `${fmtMs(q(p.all, 0.5))} / ${fmtMs(q(p.all, 0.99))}` : "–",
      `${fmtMs(q(histOf(p.writer), 0.5))} / ${fmtMs(q(histOf(p.writer), 0.99))}`,
      fmtPct(p.cpu.pct.server),
      fmtInt(usPerChange),
      Number.isFinite(extraUsPerEvent) ? fmtInt(extraUsPerEvent) : "–",
      fmtMiB(p.cpu.rss.server),
      fmtPct(workersPct(p.cpu)),
      fmtPct(p.cpu.otherPct),
      fmtPct(p.cpu.cpuPressurePct),
    ];
  });
  const table = [
    "| phase | watchers open | writes/s | events sent/s | delivery p50 / p99 ms, pinned | delivery p50 / p99 ms, all-node | UpdateStatus p50 / p99 ms | server CPU | server CPU µs/change | extra server CPU µs/event | server RSS | workers CPU | other load | CPU pressure |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
  const p99Pinned = q(fan.pinned, 0.99);
  const p99All = q(fan.all, 0.99);
  const metFan = p99Pinned <= TARGET_P99_MS && p99All <= TARGET_P99_MS && set0.cut === 0;
  let verdict =
    `Target: fan-out delivery p99 ≤ ${TARGET_P99_MS} ms. With ${windowName(opts.flowWindow)} client windows: pinned ${fmtMs(p99Pinned)} ms, ` +
    `all-node ${fmtMs(p99All)} ms` +
    (set0.cut > 0 ? `, ${set0.cut} of ${opts.all} all-node watchers cut off` : "") +
    `: ${metFan ? "**met**" : "**missed**"}.`;
  if (sdk && set1) {
    const p99SdkPinned = q(sdk.pinned, 0.99);
    const p99SdkAll = q(sdk.all, 0.99);
    const metSdk = p99SdkPinned <= TARGET_P99_MS && p99SdkAll <= TARGET_P99_MS && set1.cut === 0;
    verdict +=
      ` With the SDK's default ${windowName(0)} window for the all-node watchers: pinned ${fmtMs(p99SdkPinned)} ms, all-node ${fmtMs(p99SdkAll)} ms` +
      (set1.cut > 0 ? ` over the ones that kept up, **${set1.cut} of ${opts.all} all-node watchers cut off** (RESOURCE_EXHAUSTED: more than --watch-queue-size events behind)` : "") +
      `: ${metSdk ? "**met**" : "**missed**"}.`;
  }
  const checks =
    failures.length === 0
      ? `Checks passed: ${fmtInt(phases.reduce((a, p) => a + p.writer.acked, 0))} writes, all answered OK (the server's UpdateStatus counter agrees); ` +
        `each of the ${fmtInt(pinnedChecked)} writes made while the pinned watchers were open reached the watcher pinned to its node exactly once and no other watcher; ` +
        `each of the ${opts.all} all-node watchers of phase 3 got each of its ${fmtInt(fan.writer.acked)} writes exactly once` +
        (sdk && set1 ? `, and in phase 4 each that was not cut off got each of its ${fmtInt(sdk.writer.acked)} writes exactly once` : "") +
        `; no unexpected event, no pinned stream ended; the server's watcher gauge agreed.`
      : `CHECKS FAILED:\n- ${failures.join("\n- ")}`;
  const doc = [
    "# Watch fan-out benchmark",
    "",
    `- Command: \`npm run build && ${command}\``,
    `- Date: ${new Date(began).toISOString()} (took ${Math.round((Date.now() - began) / 1000)} s)`,
    `- Machine: ${machine}`,
    `- Setup: one \`nodeplane serve\` (SQLite store, durable commits; lifecycle controller on with grace periods longer than the run; ` +
      `--watch-queue-size ${opts.watchQueueSize > 0 ? fmtInt(opts.watchQueueSize) : "1,000 (default)"}) with ` +
      `${fmtInt(opts.nodes)} registered nodes (20 labels, 4 addresses, full capacity/allocatable, 5 conditions, node info; registered in ${registerS.toFixed(1)} s). ` +
      `${fmtInt(opts.nodes)} watchers each pinned to one node (\`field_selector: metadata.name=NAME\`) and ${opts.all} watching every node, ` +
      `held through the SDK (NodeClient.watch) by ${opts.watcherProcs} processes, ${fmtInt(opts.perChannel)} pinned watchers per grpc-js channel ` +
      `(\`grpc.use_local_subchannel_pool\`: one TCP connection each), the all-node watchers of each process on a channel of their own; ` +
      `channels with a ${windowName(opts.flowWindow)} HTTP/2 flow-control window (\`grpc-node.flow_control_window\`) except in the last phase. ` +
      `Opening the pinned watchers took ${openS.toFixed(1)} s and server RSS went ${fmtMiB(rssBefore)} → ${fmtMiB(rssAfter)}.`,
    `- Load: one writer process (grpc-js unary calls with each node's status built once, to leave the CPU to the server and the watchers), ` +
      `UpdateStatus of uniformly random nodes at ${fmtInt(opts.rate)}/s, paced (open loop, up to 1,000 in flight), ` +
      `each write stamping its sequence number and the writer's clock into the Ready condition's message. Each phase: ${opts.warmupS} s of writes ` +
      `ramping up from 0 to ${fmtInt(opts.rate)}/s (the workers start cold), then the measured window at the full rate ` +
      `(${opts.windowS} s for fan-out, ${opts.baselineWindowS} s for the others).`,
    "",
    "What is measured: delivery latency is the watcher's clock when the event comes out of the SDK's watch iterator minus the writer's stamp, " +
      "i.e. from the moment the write was sent — it includes the durable commit (UpdateStatus latency, shown beside it), the watch cache, " +
      "encoding and the client's decoding — over every write stamped inside the window. Events sent/s is the server's " +
      "nodeplane_watch_events_sent_total over the window. CPU is % of one core over the window from /proc; server CPU µs/change is the server's " +
      "CPU per write; extra server CPU µs/event is what each delivered event added over the no-watcher baseline in the same run; " +
      "workers CPU is the writer and watcher processes together; other load is CPU taken by processes outside the benchmark (noise); " +
      "CPU pressure is the share of the window in which some runnable task waited for a CPU (Linux PSI): high means the numbers are contended. " +
      "Watchers open: at the start of the phase → at the end of its window, when the server cut some off (a watcher more than " +
      "--watch-queue-size events, default 1,000, behind is ended with RESOURCE_EXHAUSTED). " +
      "Clients and server share the machine's CPUs.",
    "",
    table,
    "",
    verdict,
    "",
    checks,
    "",
  ].join("\n");

  process.stdout.write(`\n${table}\n\n${verdict}\n\n${checks}\n`);
  if (profDir) {
    const file = path.join(profDir, "nodeplane.cpuprofile");
    if (fs.existsSync(file)) process.stdout.write(`\n${summarizeProfile(file)}\n`);
    log(`fanout: profile kept in ${profDir}; no results file written (profiling slows the server)`);
  } else if (opts.out) {
    fs.writeFileSync(opts.out, doc);
    log(`fanout: wrote ${path.relative(process.cwd(), opts.out) || opts.out}`);
  }
  const fanRow = rows[phases.indexOf(fan)]!;
  const baseRow = rows[phases.indexOf(base)]!;
  emitSummary({
    bench: "watch-fanout.js",
    details: opts.out && !profDir ? path.relative(ROOT, opts.out) : undefined,
    tookS: (Date.now() - began) / 1000,
    rows: [
      {
        scenario: `Watch fan-out: ${fmtInt(opts.nodes)} watchers pinned to one node each + ${opts.all} on every node, ${fmtInt(opts.rate)} UpdateStatus/s (${windowName(opts.flowWindow)} client windows)`,
        result:
          `delivery p50 / p99 ${fmtMs(q(fan.pinned, 0.5))} / ${fmtMs(p99Pinned)} ms pinned, ${fmtMs(q(fan.all, 0.5))} / ${fmtMs(p99All)} ms all-node; ` +
          `${fmtInt(fan.eventsPerSec)} events/s sent, ${set0.cut} watchers cut off; server CPU ${fanRow[7]} (${fanRow[8]} µs/change); UpdateStatus p50 / p99 ${fanRow[6]} ms`,
        baseline: `the same writes with no watchers: server CPU ${baseRow[7]} (${baseRow[8]} µs/change), UpdateStatus p50 / p99 ${baseRow[6]} ms`,
        target: `p99 ≤ ${TARGET_P99_MS} ms`,
        verdict: summaryVerdict(metFan),
      },
    ],
    failures,
  });
  if (failures.length > 0) throw new Error(`${failures.length} check(s) failed`);
}

/** CPU of the writer and watcher processes together (and this one), % of one core. */
function workersPct(c: CpuWindow): number | undefined {
  let sum = 0;
  for (const [k, v] of Object.entries(c.pct)) {
    if (k === "server") continue;
    if (v === undefined) return undefined;
    sum += v;
  }
  return sum;
}

function histOf(r: WriterResult): Histogram {
  const h = new Histogram();
  h.merge(r.hist);
  return h;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\nwatch-fanout FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
