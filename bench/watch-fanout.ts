/**
 * `node dist/bench/watch-fanout.js`: watch fan-out (issue 7, scenario 4). One nodeplane server with
 * --nodes realistic nodes; a watcher pinned to each node (field selector `metadata.name=NAME`) and
 * --all watchers of every node, held through the SDK by --watcher-procs processes; a writer
 * process changing random nodes with UpdateStatus at --rate per second, paced, each write stamped
 * with its sequence number and clock (bench/fanout-worker.ts). The phases are main()'s: the writes
 * alone, with the pinned watchers, with the all-node watchers too (the scenario, on --flow-window
 * HTTP/2 windows: one all-node stream carries ~2 MB/s at 1,000 changes/s, more than grpc-js's 64 KiB
 * window lets through per round trip), and the same on grpc-js's default window (the SDK's).
 * Then (unless --no-trivial-phase) the baseline: the fan-out phase again, with fresh workers, against
 * a bare grpc-js server that stores nothing (bench/trivial-server.ts) holding the same nodes: what
 * this machine, grpc-js and the SDK alone make of the same watchers and writes.
 * Every write must reach exactly the watchers it should, once (bench/fanout-report.ts); what each
 * column means is written into bench/RESULTS-watch.md. Flags (or env FANOUT_<NAME>): --help.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { NodeClient } from "../src/client/client.js";
import { checkDelivery, type Phase, report, type TrivialRun, windowName } from "./fanout-report.js";
import type { WatcherApi, WriterApi } from "./fanout-worker.js";
import { Flags } from "./flags.js";
import {
  benchScript,
  epochNow,
  exitAfter,
  grew,
  handled,
  NODEPLANE_V8_FLAGS,
  QUIET_CONTROLLER,
  runMain,
  type Samples,
  scrapeMetrics,
  sleep,
  spawnNodeplane,
  spawnTrivial,
  stopChecked,
  sumOf,
  tempDir,
} from "./harness.js";
import { stopAll, Worker } from "./ipc.js";
import { cpuWindow, fsTypeOf, type Pids, procBytes, waitForQuiet } from "./proc.js";
import { registerRange } from "./register.js";
import { fmtInt, fmtMiB, fmtMs, fmtPct } from "./report.js";
import { Histogram } from "./tally.js";

const log = (s: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${s}\n`);

function options() {
  const f = new Flags("watch-fanout.js", "FANOUT");
  const q = f.quick;
  const o = {
    nodes: f.num("nodes", q ? 2000 : 10_000, 1, 100_000, "registered nodes = pinned watchers"),
    all: f.num("all", 10, 0, 100, "watchers of every node"),
    rate: f.num("rate", 1000, 1, 10_000, "node changes per second"),
    windowS: f.num("window", q ? 6 : 20, 1, 120, "fan-out measured seconds", false),
    baselineWindowS: f.num("baseline-window", q ? 4 : 10, 1, 120, "phases 1, 2 and 4 measured seconds", false),
    warmupS: f.num("warmup", q ? 2 : 4, 0, 60, "writes (ramping up) before each window, s", false),
    watcherProcs: f.num("watcher-procs", 2, 1, 8, "watcher processes"),
    perChannel: f.num("per-channel", 1000, 1, 100_000, "pinned watchers per channel"),
    flowWindow: f.num("flow-window", 4 * 2 ** 20, 0, 2 ** 31 - 1, "HTTP/2 flow-control window of the watchers' channels, bytes (0 = grpc-js's 64 KiB)"),
    sdkWindowPhase: !f.bool("no-sdk-window-phase", "skip phase 4"),
    trivialPhase: !f.bool("no-trivial-phase", "skip phase 5, the baseline: the fan-out against a trivial grpc-js server (bench/trivial-server.ts)"),
    watchQueueSize: f.num("watch-queue-size", 0, 0, 10_000_000, "nodeplane's --watch-queue-size: events a watcher may fall behind before it is cut off (0 = the server's default, 1,000)"),
    deadlineS: f.num("deadline", q ? 150 : 300, 10, 1800, "bound on the whole run, s"),
    quiet: f.quiet(),
    cpuProf: f.bool("cpu-prof", "profile the servers (node --cpu-prof) and print summaries; no results file"),
    out: f.out("watch"),
  };
  f.done();
  return o;
}

export type Options = ReturnType<typeof options>;

/**
 * The server under test: nodeplane, or the trivial grpc-js server of the baseline, which serves
 * the watcher gauge, events sent and event-loop delay under nodeplane's names but counts no calls
 * or commits.
 */
interface Target {
  kind: "nodeplane" | "trivial";
  address: string;
  httpPort: number;
  pid: number | undefined;
}

/** nodeplane's UpdateStatus handler time and store commits over a window (scrapes `a`, `b`), for the log. */
function storeLine(a: Samples, b: Samples, windowS: number): string {
  const handledN = grew(a, b, "nodeplane_grpc_server_handling_seconds_count", { method: "UpdateStatus" });
  const commits = grew(a, b, "nodeplane_store_commit_seconds_count");
  return (
    `handler ${fmtMs(handledN > 0 ? (grew(a, b, "nodeplane_grpc_server_handling_seconds_sum", { method: "UpdateStatus" }) / handledN) * 1000 : Number.NaN)} ms, ` +
    `${fmtInt(commits / windowS)} commits/s of ${fmtMs(commits > 0 ? (grew(a, b, "nodeplane_store_commit_seconds_sum") / commits) * 1000 : Number.NaN)} ms, `
  );
}

/**
 * The watcher processes run without V8's allocation-site pretenuring, as the server does
 * (NODEPLANE_V8_FLAGS), against nodeplane and the trivial server alike. With it, they took ~1.4×
 * the CPU against nodeplane, for a reason of their own: in the phase with the pinned watchers
 * alone, each quiet stream's `for await` keeps its last event (a decoded node) until the next,
 * ~10 s later, so nearly every node decoded then outlives two young-generation collections; V8
 * takes that as the decoder's allocation sites making long-lived objects and from then on
 * allocates every decoded node straight into the old generation. In the fan-out phase that is
 * ~40 MB/s into a watcher's old generation (a full collection every ~4 s, scavenges ~130 ms/s
 * each), against ~4 MB/s without pretenuring. The trivial baseline's fresh watchers, which have
 * no pinned-only phase, were spared it, so the comparison was not even.
 */
const WATCHER_V8_FLAGS = ["--no-allocation-site-pretenuring"];

/** The server, the writer and the watcher processes, and what a phase does with them. */
class Fanout {
  readonly writer: Worker<WriterApi>;
  readonly watchers: Array<Worker<WatcherApi>>;
  readonly pids: Pids;
  readonly phases: Phase[] = [];

  constructor(
    private readonly o: Options,
    private readonly target: Target,
  ) {
    this.writer = new Worker("writer", benchScript("fanout-worker.js"), ["writer"]);
    this.watchers = Array.from(
      { length: o.watcherProcs },
      (_, p) => new Worker<WatcherApi>(`watcher ${p}`, benchScript("fanout-worker.js"), ["watcher"], WATCHER_V8_FLAGS),
    );
    this.pids = { server: target.pid, writer: this.writer.pid, bench: process.pid };
    this.watchers.forEach((w, p) => (this.pids[`watcher${p}`] = w.pid));
  }

  /** Nodes each watcher process pins watchers to. */
  get per(): number {
    return Math.ceil(this.o.nodes / this.o.watcherProcs);
  }

  async init(): Promise<void> {
    const { o, per } = this;
    const { address } = this.target;
    const maxSeq = Math.ceil(o.rate * (4 * o.warmupS + 3 * o.baselineWindowS + o.windowS)) + 1010; // ≥ what the writer plans (4 phases)
    await this.writer.call("init", 20_000, { address, nodeCount: o.nodes, maxSeq, seed: 7 });
    await Promise.all(
      this.watchers.map((w, p) =>
        w.call("init", 20_000, {
          index: p,
          address,
          pinnedFrom: Math.min(o.nodes, p * per),
          pinnedTo: Math.min(o.nodes, (p + 1) * per),
          perChannel: o.perChannel,
          all: Math.floor(o.all / o.watcherProcs) + (p < o.all % o.watcherProcs ? 1 : 0),
          maxSeq,
        }),
      ),
    );
  }

  /** Watchers open on the server (its gauge). */
  async gauge(): Promise<number> {
    return sumOf(await scrapeMetrics(this.target.httpPort), "nodeplane_watchers");
  }

  statuses() {
    return Promise.all(this.watchers.map((w) => w.call("status", 10_000)));
  }

  /** Open the pinned watchers or a new set of all-node ones; wait (bounded) until the server has `want` open. */
  async open(which: "pinned" | "all", flowWindow: number, want: number, timeoutMs: number): Promise<number> {
    await Promise.all(this.watchers.map((w) => w.call("open", timeoutMs, { which, flowWindow })));
    const until = Date.now() + timeoutMs;
    for (;;) {
      const n = await this.gauge();
      if (n >= want) return n;
      if (Date.now() > until) {
        const why = (await this.statuses().catch(() => [])).flatMap((x, p) => x.samples.slice(0, 3).map((m) => `\n  watcher process ${p}: ${m}`)).join("");
        throw new Error(`only ${n} of ${want} watchers open on the server after ${timeoutMs} ms${why}`);
      }
      await sleep(100);
    }
  }

  /** Cancel the latest all-node watchers and wait (bounded) until the server has only the pinned ones. */
  async closeAll(): Promise<void> {
    await Promise.all(this.watchers.map((w) => w.call("closeAll", 10_000)));
    const until = Date.now() + 10_000;
    while ((await this.gauge()) > this.o.nodes && Date.now() < until) await sleep(100);
  }

  /**
   * Wait (bounded) until the watchers have all the server will send: every pinned event so far,
   * and `perWatcher` events at each all-node watcher of the latest set that is still open.
   */
  async drain(pinnedWant: number, perWatcher: number): Promise<void> {
    const until = Date.now() + 15_000;
    for (;;) {
      const st = await this.statuses();
      const alive = this.o.all - st.reduce((a, x) => a + x.allEnded, 0);
      const done = st.reduce((a, x) => a + x.allAliveEvents, 0) >= alive * perWatcher && st.reduce((a, x) => a + x.pinnedEvents, 0) >= pinnedWant;
      if (done || Date.now() > until) return;
      await sleep(250);
    }
  }

  /** One phase: writes at the rate, measured over a window of `windowS`; the server's counters around it. */
  async phase(name: string, label: string, windowS: number, watchersOpen: number): Promise<Phase> {
    const { o } = this;
    const { httpPort } = this.target;
    const nodeplane = this.target.kind === "nodeplane";
    await waitForQuiet(this.pids, o.quiet, log);
    const startAt = epochNow() + 300;
    const windowStart = startAt + o.warmupS * 1000;
    const windowEnd = windowStart + windowS * 1000;
    log(`fanout: ${label}: writing from ${new Date(startAt).toISOString().slice(11, 23)}, window from ${new Date(windowStart).toISOString().slice(11, 23)}`);
    await Promise.all(this.watchers.map((w) => w.call("window", 5000, { phase: name, startAt: windowStart, endAt: windowEnd })));
    const before = await scrapeMetrics(httpPort);
    const cpu = cpuWindow(this.pids, windowStart, windowEnd);
    // The server's counters over the window: scraped at its edges.
    const scrapeAt = (at: number): Promise<Samples> => sleep(at - epochNow()).then(() => scrapeMetrics(httpPort));
    const edges = Promise.all([scrapeAt(windowStart), scrapeAt(windowEnd)]);
    edges.catch(() => undefined); // awaited below; a failed write must not leave it unhandled
    const writer = await this.writer.call("run", windowEnd - epochNow() + 30_000, {
      phase: name,
      startAt,
      warmupMs: o.warmupS * 1000,
      durationMs: windowS * 1000,
      rate: o.rate,
      maxInFlight: 1000,
      deadlineMs: 10_000,
    });
    const c = await cpu;
    const [a, b] = await edges;
    if (Object.keys(writer.errors.counts).length > 0) throw new Error(`phase ${name}: writes failed: ${JSON.stringify(writer.errors.counts)}\n  ${writer.errors.samples.join("\n  ")}`);
    if (writer.acked !== writer.seqTo - writer.seqFrom) throw new Error(`phase ${name}: ${writer.seqTo - writer.seqFrom} writes issued, ${writer.acked} answered OK`);
    // The server's own count of the calls: nodeplane's only (the trivial server counts none).
    if (nodeplane) {
      const update = handled(before, await scrapeMetrics(httpPort), "UpdateStatus");
      if (update.ok !== writer.acked || update.notOk !== 0) throw new Error(`phase ${name}: the server counted ${update.ok} OK and ${update.notOk} failed UpdateStatus calls; the writer got ${writer.acked} OK`);
    }
    const phase: Phase = {
      name,
      label,
      writer,
      updates: Histogram.of([writer.hist]),
      cpu: c,
      eventsPerSec: grew(a, b, "nodeplane_watch_events_sent_total") / windowS,
      pinned: new Histogram(),
      all: new Histogram(),
      watchersOpen,
      watchersAtEnd: sumOf(b, "nodeplane_watchers"),
      fullGcs: grew(a, b, "nodejs_gc_duration_seconds_count", { kind: "major" }),
      fullGcMs: grew(a, b, "nodejs_gc_duration_seconds_sum", { kind: "major" }) * 1000,
    };
    const workersPct = Object.entries(c.pct).reduce<number | undefined>((s, [k, v]) => (k === "server" ? s : s === undefined || v === undefined ? undefined : s + v), 0);
    log(
      `fanout: ${label}: ${fmtInt(writer.windowWrites / windowS)} writes/s, ${fmtInt(phase.eventsPerSec)} events/s sent, ` +
        `UpdateStatus p50/p99 ${fmtMs(phase.updates.ms(0.5))}/${fmtMs(phase.updates.ms(0.99))} ms, server CPU ${fmtPct(c.pct.server)}, RSS ${fmtMiB(c.rss.server)}, ` +
        `writer late ${writer.lateWrites}, max lag ${fmtMs(writer.maxLagMs)} ms, ` +
        (nodeplane ? storeLine(a, b, windowS) : "") +
        // Both servers reset their event-loop delay histogram on every scrape (prom-client's): this is the window's.
        `loop delay p99/max ${fmtMs(sumOf(b, "nodejs_eventloop_lag_p99_seconds") * 1000)}/${fmtMs(sumOf(b, "nodejs_eventloop_lag_max_seconds") * 1000)} ms, ` +
        `workers ${fmtPct(workersPct)}, other ${fmtPct(c.otherPct)}, CPU pressure ${fmtPct(c.pressurePct)} ` +
        `(${Object.entries(c.pct).map(([k, v]) => `${k} ${fmtPct(v)}`).join(", ")})`,
    );
    this.phases.push(phase);
    return phase;
  }

  /** Each watcher process's record, its latencies merged into the phases. */
  async reports() {
    const reports = await Promise.all(this.watchers.map((w) => w.call("report", 20_000)));
    for (const p of this.phases) {
      for (const r of reports) {
        p.pinned.merge(r.phases[p.name]?.pinned ?? new Histogram().wire());
        p.all.merge(r.phases[p.name]?.all ?? new Histogram().wire());
      }
    }
    return reports;
  }

  stop(): Promise<unknown> {
    return stopAll([this.writer, ...this.watchers]);
  }
}

/** Register nodes [0, --nodes) with the server at `address`; resolves with the seconds it took. */
async function registerNodes(o: Options, address: string): Promise<number> {
  const t = performance.now();
  const reg = new NodeClient(address);
  await reg.waitForReady(10_000);
  await registerRange(reg, 0, o.nodes, 64).finally(() => reg.close());
  return (performance.now() - t) / 1000;
}

/**
 * The baseline: the fan-out phase again (same watchers, writer, window; fresh worker processes,
 * warmed up by a phase of writes with no watcher, as nodeplane's are) against the trivial grpc-js
 * server holding the same nodes, registered alike. Delivery is checked
 * as nodeplane's; the server's call and commit counters are nodeplane's alone.
 */
async function trivialBaseline(o: Options, profDir: string | undefined): Promise<TrivialRun> {
  const prof = profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`, "--cpu-prof-name=trivial.cpuprofile"] : [];
  // With nodeplane's young-generation size (harness.ts, spawnNodeplane).
  const server = await spawnTrivial([...prof, ...NODEPLANE_V8_FLAGS]);
  const target: Target = { kind: "trivial", address: `127.0.0.1:${server.port}`, httpPort: server.httpPort!, pid: server.child.pid };
  log(`fanout: trivial grpc-js server at ${target.address}; registered ${fmtInt(o.nodes)} nodes in ${(await registerNodes(o, target.address)).toFixed(1)} s`);
  const run = new Fanout(o, target);
  await run.init();
  // Fresh workers start cold: the writer first runs as it did before nodeplane's fan-out, with no
  // watcher open (not reported; its writes must reach no watcher opened later).
  const unwatched = await run.phase("trivial-none", "trivial grpc-js baseline, no watchers (warm-up)", o.baselineWindowS, 0);
  const openPinned = await run.open("pinned", o.flowWindow, o.nodes, 60_000);
  const open = await run.open("all", o.flowWindow, o.nodes + o.all, 20_000);
  const label = `trivial grpc-js baseline (stores nothing): ${fmtInt(o.nodes)} pinned + ${o.all} all-node watchers, ${windowName(o.flowWindow)} window`;
  const phase = await run.phase("trivial", label, o.windowS, open);
  await run.drain(phase.writer.acked, phase.writer.acked);
  const reports = await run.reports();
  const checked = checkDelivery({ nodes: o.nodes, all: o.all, per: run.per, phases: run.phases, unwatched, fan: phase, sdk: undefined, reports, openPinned, open, gaugeAtEnd: await run.gauge(), log });
  await run.stop();
  await stopChecked(server, "trivial server", checked.failures);
  return { ...checked, phase, failures: checked.failures.map((f) => `trivial baseline: ${f}`) };
}

async function main(): Promise<void> {
  const o = options();
  exitAfter(o.deadlineS * 1000, "watch-fanout");
  const began = Date.now();
  const dataDir = tempDir("nodeplane-fanout-");
  const profDir = o.cpuProf ? fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-fanout-prof-")) : undefined;
  const server = await spawnNodeplane({
    dataDir,
    args: [...QUIET_CONTROLLER, ...(o.watchQueueSize > 0 ? ["--watch-queue-size", String(o.watchQueueSize)] : [])],
    profile: profDir ? { dir: profDir, name: "nodeplane" } : undefined,
  });
  const target: Target = { kind: "nodeplane", address: `127.0.0.1:${server.port}`, httpPort: server.httpPort, pid: server.child.pid };
  log(`fanout: nodeplane at ${target.address} (data dir ${dataDir}, ${fsTypeOf(dataDir)})`);

  const registerS = await registerNodes(o, target.address);
  log(`fanout: registered ${fmtInt(o.nodes)} nodes in ${registerS.toFixed(1)} s`);

  const run = new Fanout(o, target);
  await run.init();

  // 1. No watchers.
  const none = await run.phase("none", "no watchers (baseline)", o.baselineWindowS, 0);

  // 2. The pinned watchers.
  const rssBefore = procBytes(server.child.pid);
  const t = performance.now();
  const openPinned = await run.open("pinned", o.flowWindow, o.nodes, 60_000);
  const openS = (performance.now() - t) / 1000;
  await sleep(1000);
  const rssAfter = procBytes(server.child.pid);
  log(`fanout: ${fmtInt(openPinned)} watchers open on the server (${openS.toFixed(1)} s to open them); server RSS ${fmtMiB(rssBefore)} → ${fmtMiB(rssAfter)}`);
  const pinned = await run.phase("pinned", `${fmtInt(o.nodes)} pinned watchers`, o.baselineWindowS, openPinned);

  // 3. The watchers of every node too: the scenario.
  const open = await run.open("all", o.flowWindow, o.nodes + o.all, 20_000);
  const fan = await run.phase("fanout", `${fmtInt(o.nodes)} pinned + ${o.all} all-node watchers, ${windowName(o.flowWindow)} window`, o.windowS, open);
  await run.drain(pinned.writer.acked + fan.writer.acked, fan.writer.acked);

  // 4. The all-node watchers again, on channels with the SDK's default window.
  let sdk: Phase | undefined;
  if (o.sdkWindowPhase && o.flowWindow !== 0) {
    await run.closeAll();
    const reopened = await run.open("all", 0, o.nodes + o.all, 20_000);
    sdk = await run.phase("sdk", `the same, all-node watchers on the SDK's default ${windowName(0)} window`, o.baselineWindowS, reopened);
    await run.drain(pinned.writer.acked + fan.writer.acked + sdk.writer.acked, sdk.writer.acked);
  }

  const reports = await run.reports();
  const checked = checkDelivery({ nodes: o.nodes, all: o.all, per: run.per, phases: run.phases, unwatched: none, fan, sdk, reports, openPinned, open, gaugeAtEnd: await run.gauge(), log });
  await run.stop();
  await stopChecked(server, "nodeplane", checked.failures);

  // 5. The same fan-out against the trivial grpc-js server.
  // A baseline that fails is a failed check: nodeplane's phases are reported all the same.
  let trivial: TrivialRun | undefined;
  const failures = [...checked.failures];
  if (o.trivialPhase) {
    try {
      trivial = await trivialBaseline(o, profDir);
      failures.push(...trivial.failures);
    } catch (err) {
      failures.push(`trivial baseline: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  report(o, { began, dataDir, profDir, phases: run.phases, fan, sdk, trivial, registerS, openS, rssBefore, rssAfter, ...checked, failures });
}

runMain("watch-fanout", main);
