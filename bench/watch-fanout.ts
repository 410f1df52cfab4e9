/**
 * `node dist/bench/watch-fanout.js`: watch fan-out (issue 7, scenario 4). One nodeplane server with
 * --nodes realistic nodes; a watcher pinned to each node (field selector `metadata.name=NAME`) and
 * --all watchers of every node, held through the SDK by --watcher-procs processes; a writer
 * process changing random nodes with UpdateStatus at --rate per second, paced, each write stamped
 * with its sequence number and clock (bench/fanout-worker.ts). The phases are main()'s: the writes
 * alone, with the pinned watchers, with the all-node watchers too (the scenario, on --flow-window
 * HTTP/2 windows: one all-node stream carries ~2 MB/s at 1,000 changes/s, more than grpc-js's 64 KiB
 * window lets through per round trip), and the same on grpc-js's default window (the SDK's).
 * Every write must reach exactly the watchers it should, once (bench/fanout-checks.ts); what each
 * column means is written into bench/RESULTS-watch.md. Flags (or env FANOUT_<NAME>): --help.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { NodeClient } from "../src/client/client.js";
import { checkDelivery, type Phase } from "./fanout-checks.js";
import type { WatcherApi, WriterApi } from "./fanout-worker.js";
import { Flags } from "./flags.js";
import {
  benchScript,
  epochNow,
  exitAfter,
  grew,
  handled,
  QUIET_CONTROLLER,
  runMain,
  type Samples,
  scrapeMetrics,
  sleep,
  spawnNodeplane,
  stopChecked,
  sumOf,
  tempDir,
} from "./harness.js";
import { stopAll, Worker } from "./ipc.js";
import { cpuWindow, fsTypeOf, type Pids, procBytes, waitForQuiet } from "./proc.js";
import { registerRange } from "./register.js";
import { docHead, finish, fmtInt, fmtMiB, fmtMs, fmtPct, mdTable, verdict } from "./report.js";
import { Histogram } from "./tally.js";

const TARGET_P99_MS = 100;
const log = (s: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${s}\n`);
const windowName = (bytes: number): string => (bytes === 0 ? "64 KiB (grpc-js default)" : `${fmtMiB(bytes).replace(" MiB", "")} MiB`);

function options() {
  const f = new Flags("watch-fanout.js", "FANOUT");
  const q = f.quick;
  const o = {
    quick: q,
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
    watchQueueSize: f.num("watch-queue-size", 0, 0, 10_000_000, "nodeplane's --watch-queue-size: events a watcher may fall behind before it is cut off (0 = the server's default, 1,000)"),
    deadlineS: f.num("deadline", q ? 100 : 300, 10, 1800, "bound on the whole run, s"),
    quiet: f.quiet(),
    cpuProf: f.bool("cpu-prof", "profile the server (node --cpu-prof) and print a summary; no results file"),
    out: f.out("watch"),
  };
  f.done();
  return o;
}

type Options = ReturnType<typeof options>;

/** The server, the writer and the watcher processes, and what a phase does with them. */
class Fanout {
  readonly writer: Worker<WriterApi>;
  readonly watchers: Array<Worker<WatcherApi>>;
  readonly pids: Pids;
  readonly phases: Phase[] = [];

  constructor(
    private readonly o: Options,
    private readonly httpPort: number,
    serverPid: number | undefined,
  ) {
    this.writer = new Worker("writer", benchScript("fanout-worker.js"), ["writer"]);
    this.watchers = Array.from({ length: o.watcherProcs }, (_, p) => new Worker<WatcherApi>(`watcher ${p}`, benchScript("fanout-worker.js"), ["watcher"]));
    this.pids = { server: serverPid, writer: this.writer.pid, bench: process.pid };
    this.watchers.forEach((w, p) => (this.pids[`watcher${p}`] = w.pid));
  }

  /** Nodes each watcher process pins watchers to. */
  get per(): number {
    return Math.ceil(this.o.nodes / this.o.watcherProcs);
  }

  async init(address: string): Promise<void> {
    const { o, per } = this;
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
    return sumOf(await scrapeMetrics(this.httpPort), "nodeplane_watchers");
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
    const { o, httpPort } = this;
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
    const update = handled(before, await scrapeMetrics(httpPort), "UpdateStatus");
    if (Object.keys(writer.errors.counts).length > 0) throw new Error(`phase ${name}: writes failed: ${JSON.stringify(writer.errors.counts)}\n  ${writer.errors.samples.join("\n  ")}`);
    if (writer.acked !== writer.seqTo - writer.seqFrom) throw new Error(`phase ${name}: ${writer.seqTo - writer.seqFrom} writes issued, ${writer.acked} answered OK`);
    if (update.ok !== writer.acked || update.notOk !== 0) throw new Error(`phase ${name}: the server counted ${update.ok} OK and ${update.notOk} failed UpdateStatus calls; the writer got ${writer.acked} OK`);
    const handledN = grew(a, b, "nodeplane_grpc_server_handling_seconds_count", { method: "UpdateStatus" });
    const commits = grew(a, b, "nodeplane_store_commit_seconds_count");
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
    };
    const workersPct = Object.entries(c.pct).reduce<number | undefined>((s, [k, v]) => (k === "server" ? s : s === undefined || v === undefined ? undefined : s + v), 0);
    log(
      `fanout: ${label}: ${fmtInt(writer.windowWrites / windowS)} writes/s, ${fmtInt(phase.eventsPerSec)} events/s sent, ` +
        `UpdateStatus p50/p99 ${fmtMs(phase.updates.ms(0.5))}/${fmtMs(phase.updates.ms(0.99))} ms, server CPU ${fmtPct(c.pct.server)}, RSS ${fmtMiB(c.rss.server)}, ` +
        `writer late ${writer.lateWrites}, max lag ${fmtMs(writer.maxLagMs)} ms, ` +
        `handler ${fmtMs(handledN > 0 ? (grew(a, b, "nodeplane_grpc_server_handling_seconds_sum", { method: "UpdateStatus" }) / handledN) * 1000 : Number.NaN)} ms, ` +
        `${fmtInt(commits / windowS)} commits/s of ${fmtMs(commits > 0 ? (grew(a, b, "nodeplane_store_commit_seconds_sum") / commits) * 1000 : Number.NaN)} ms, ` +
        // prom-client resets its event-loop delay histogram on every scrape: this is the window's.
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
  const address = `127.0.0.1:${server.port}`;
  log(`fanout: nodeplane at ${address} (data dir ${dataDir}, ${fsTypeOf(dataDir)})`);

  let t = performance.now();
  const reg = new NodeClient(address);
  await reg.waitForReady(10_000);
  await registerRange(reg, 0, o.nodes, 64).finally(() => reg.close());
  const registerS = (performance.now() - t) / 1000;
  log(`fanout: registered ${fmtInt(o.nodes)} nodes in ${registerS.toFixed(1)} s`);

  const run = new Fanout(o, server.httpPort, server.child.pid);
  await run.init(address);

  // 1. No watchers.
  await run.phase("none", "no watchers (baseline)", o.baselineWindowS, 0);

  // 2. The pinned watchers.
  const rssBefore = procBytes(server.child.pid);
  t = performance.now();
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
  const checked = checkDelivery({ nodes: o.nodes, all: o.all, per: run.per, phases: run.phases, fan, sdk, reports, openPinned, open, gaugeAtEnd: await run.gauge(), log });
  await run.stop();
  await stopChecked(server, "nodeplane", checked.failures);
  report(o, { began, dataDir, profDir, phases: run.phases, fan, sdk, registerS, openS, rssBefore, rssAfter, ...checked });
}

interface Outcome extends ReturnType<typeof checkDelivery> {
  began: number;
  dataDir: string;
  profDir: string | undefined;
  phases: Phase[];
  fan: Phase;
  sdk: Phase | undefined;
  registerS: number;
  openS: number;
  rssBefore: number | undefined;
  rssAfter: number | undefined;
}

function report(o: Options, r: Outcome): void {
  const { phases, fan, sdk, set0, set1, failures } = r;
  const base = phases[0]!;
  const serverPct = (p: Phase): number => p.cpu.pct.server ?? Number.NaN;
  const cells = (p: Phase) => {
    const writesPerSec = p.writer.windowWrites / (p.writer.windowMs / 1000);
    const extraUsPerEvent = p === base || p.eventsPerSec === 0 ? Number.NaN : (((serverPct(p) - serverPct(base)) / 100) * 1e6) / p.eventsPerSec;
    const workers = Object.entries(p.cpu.pct).reduce<number | undefined>((s, [k, v]) => (k === "server" ? s : s === undefined || v === undefined ? undefined : s + v), 0);
    return {
      label: p.label,
      open: p.watchersOpen === p.watchersAtEnd ? fmtInt(p.watchersOpen) : `${fmtInt(p.watchersOpen)} → ${fmtInt(p.watchersAtEnd)}`,
      writes: fmtInt(writesPerSec),
      events: fmtInt(p.eventsPerSec),
      pinned: p.pinned.count ? `${fmtMs(p.pinned.ms(0.5))} / ${fmtMs(p.pinned.ms(0.99))}` : "–",
      all: p.all.count ? `${fmtMs(p.all.ms(0.5))} / ${fmtMs(p.all.ms(0.99))}` : "–",
      update: `${fmtMs(p.updates.ms(0.5))} / ${fmtMs(p.updates.ms(0.99))}`,
      cpu: fmtPct(p.cpu.pct.server),
      usPerChange: fmtInt(((serverPct(p) / 100) * 1e6) / writesPerSec),
      extra: Number.isFinite(extraUsPerEvent) ? fmtInt(extraUsPerEvent) : "–",
      rss: fmtMiB(p.cpu.rss.server),
      workers: fmtPct(workers),
      other: fmtPct(p.cpu.otherPct),
      pressure: fmtPct(p.cpu.pressurePct),
    };
  };
  const table = mdTable(
    "| phase | watchers open | writes/s | events sent/s | delivery p50 / p99 ms, pinned | delivery p50 / p99 ms, all-node | UpdateStatus p50 / p99 ms | server CPU | server CPU µs/change | extra server CPU µs/event | server RSS | workers CPU | other load | CPU pressure |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    phases.map((p) => Object.values(cells(p))),
  );
  const p99Pinned = fan.pinned.ms(0.99);
  const p99All = fan.all.ms(0.99);
  const metFan = p99Pinned <= TARGET_P99_MS && p99All <= TARGET_P99_MS && set0.cut === 0;
  let verdictText =
    `Target: fan-out delivery p99 ≤ ${TARGET_P99_MS} ms. With ${windowName(o.flowWindow)} client windows: pinned ${fmtMs(p99Pinned)} ms, all-node ${fmtMs(p99All)} ms` +
    (set0.cut > 0 ? `, ${set0.cut} of ${o.all} all-node watchers cut off` : "") +
    `: ${metFan ? "**met**" : "**missed**"}.`;
  if (sdk && set1) {
    const metSdk = sdk.pinned.ms(0.99) <= TARGET_P99_MS && sdk.all.ms(0.99) <= TARGET_P99_MS && set1.cut === 0;
    verdictText +=
      ` With the SDK's default ${windowName(0)} window for the all-node watchers: pinned ${fmtMs(sdk.pinned.ms(0.99))} ms, all-node ${fmtMs(sdk.all.ms(0.99))} ms` +
      (set1.cut > 0 ? ` over the ones that kept up, **${set1.cut} of ${o.all} all-node watchers cut off** (RESOURCE_EXHAUSTED: more than --watch-queue-size events behind)` : "") +
      `: ${metSdk ? "**met**" : "**missed**"}.`;
  }
  const checks =
    failures.length === 0
      ? `Checks passed: ${fmtInt(phases.reduce((a, p) => a + p.writer.acked, 0))} writes, all answered OK (the server's UpdateStatus counter agrees); ` +
        `each of the ${fmtInt(r.pinnedChecked)} writes made while the pinned watchers were open reached the watcher pinned to its node exactly once and no other watcher; ` +
        `each of the ${o.all} all-node watchers of phase 3 got each of its ${fmtInt(fan.writer.acked)} writes exactly once` +
        (sdk && set1 ? `, and in phase 4 each that was not cut off got each of its ${fmtInt(sdk.writer.acked)} writes exactly once` : "") +
        "; no unexpected event, no pinned stream ended; the server's watcher gauge agreed."
      : `CHECKS FAILED:\n- ${failures.join("\n- ")}`;
  const doc = [
    ...docHead("Watch fan-out benchmark", "watch-fanout.js", r.began, r.dataDir),
    `- Setup: one \`nodeplane serve\` (SQLite store, durable commits; lifecycle controller on with grace periods longer than the run; ` +
      `--watch-queue-size ${o.watchQueueSize > 0 ? fmtInt(o.watchQueueSize) : "1,000 (default)"}) with ` +
      `${fmtInt(o.nodes)} registered nodes (20 labels, 4 addresses, full capacity/allocatable, 5 conditions, node info; registered in ${r.registerS.toFixed(1)} s). ` +
      `${fmtInt(o.nodes)} watchers each pinned to one node (\`field_selector: metadata.name=NAME\`) and ${o.all} watching every node, ` +
      `held through the SDK (NodeClient.watch) by ${o.watcherProcs} processes, ${fmtInt(o.perChannel)} pinned watchers per grpc-js channel ` +
      "(`grpc.use_local_subchannel_pool`: one TCP connection each), the all-node watchers of each process on a channel of their own; " +
      `channels with a ${windowName(o.flowWindow)} HTTP/2 flow-control window (\`grpc-node.flow_control_window\`) except in the last phase. ` +
      `Opening the pinned watchers took ${r.openS.toFixed(1)} s and server RSS went ${fmtMiB(r.rssBefore)} → ${fmtMiB(r.rssAfter)}.`,
    "- Load: one writer process (grpc-js unary calls with each node's status built once, to leave the CPU to the server and the watchers), " +
      `UpdateStatus of uniformly random nodes at ${fmtInt(o.rate)}/s, paced (open loop, up to 1,000 in flight), ` +
      `each write stamping its sequence number and the writer's clock into the Ready condition's message. Each phase: ${o.warmupS} s of writes ` +
      `ramping up from 0 to ${fmtInt(o.rate)}/s (the workers start cold), then the measured window at the full rate ` +
      `(${o.windowS} s for fan-out, ${o.baselineWindowS} s for the others).`,
    "",
    "What is measured: delivery latency is the watcher's clock when the event comes out of the SDK's watch iterator minus the writer's stamp, " +
      "i.e. from the moment the write was sent — it includes the durable commit (UpdateStatus latency, shown beside it), the watch cache, " +
      "encoding and the client's decoding — over every write stamped inside the window. Events sent/s is the server's " +
      "nodeplane_watch_events_sent_total over the window. CPU is % of one core over the window from /proc; server CPU µs/change is the server's " +
      "CPU per write; extra server CPU µs/event is what each delivered event added over the no-watcher baseline in the same run; " +
      "workers CPU is the writer and watcher processes together; other load is CPU taken by processes outside the benchmark (noise); " +
      "CPU pressure is the share of the window in which some runnable task waited for a CPU (Linux PSI): high means the numbers are contended. " +
      "Watchers open: at the start of the phase → at the end of its window, when the server cut some off (a watcher more than " +
      "--watch-queue-size events, default 1,000, behind is ended with RESOURCE_EXHAUSTED). Clients and server share the machine's CPUs.",
    "",
    table,
    "",
    verdictText,
    "",
    checks,
    "",
  ].join("\n");
  process.stdout.write(`\n${table}\n\n${verdictText}\n\n${checks}\n`);
  const fanRow = cells(fan);
  const baseRow = cells(base);
  finish({
    name: "fanout",
    doc,
    out: o.out,
    profDir: r.profDir,
    profiles: ["nodeplane"],
    rows: [
      {
        scenario: `Watch fan-out: ${fmtInt(o.nodes)} watchers pinned to one node each + ${o.all} on every node, ${fmtInt(o.rate)} UpdateStatus/s (${windowName(o.flowWindow)} client windows)`,
        result:
          `delivery p50 / p99 ${fmtMs(fan.pinned.ms(0.5))} / ${fmtMs(p99Pinned)} ms pinned, ${fmtMs(fan.all.ms(0.5))} / ${fmtMs(p99All)} ms all-node; ` +
          `${fmtInt(fan.eventsPerSec)} events/s sent, ${set0.cut} watchers cut off; server CPU ${fanRow.cpu} (${fanRow.usPerChange} µs/change); UpdateStatus p50 / p99 ${fanRow.update} ms`,
        baseline: `the same writes with no watchers: server CPU ${baseRow.cpu} (${baseRow.usPerChange} µs/change), UpdateStatus p50 / p99 ${baseRow.update} ms`,
        target: `p99 ≤ ${TARGET_P99_MS} ms`,
        verdict: verdict(metFan),
      },
    ],
    failures,
  });
}

runMain("watch-fanout", main);
