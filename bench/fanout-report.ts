/**
 * What bench/watch-fanout.ts found: its delivery checks and its results. The checks, from the writer's record (which node each write
 * changed) and each watcher process's record (which write reached which watcher, how often):
 *   - pinned watchers: every write made while they were open reached the watcher pinned to its
 *     node exactly once and no other watcher; none of the no-watcher phase's writes reached any;
 *   - all-node watchers: each set got every write of its phase exactly once and none from before
 *     it opened; a watcher cut off in phase 3 is a failure, in phase 4 (the SDK's window) a result;
 *   - no foreign event, no pinned stream ended, the server's watcher gauges agreed, and the
 *     writer kept its pace (at most 1% of a window's writes issued more than 50 ms late).
 * The trivial grpc-js baseline (its own workers, warmed up by writes with no watcher, then its
 * fan-out phase) is held to the same checks.
 */
import type { WatcherApi, WriterApi } from "./fanout-worker.js";
import type { CpuSpan } from "./proc.js";
import { docHead, finish, fmtInt, fmtMiB, fmtMs, fmtPct, fmtRatio, mdTable, verdict } from "./report.js";
import type { Histogram } from "./tally.js";
import type { Options } from "./watch-fanout.js";

const TARGET_P99_MS = 100;
/** UpdateStatus's p99 with the watchers over its p99 without, at most. */
const MAX_UPDATE_RATIO = 2;
export const windowName = (bytes: number): string => (bytes === 0 ? "64 KiB (grpc-js default)" : `${fmtMiB(bytes).replace(" MiB", "")} MiB`);

type WriterResult = Awaited<ReturnType<WriterApi["run"]>>;
type WatcherReport = Awaited<ReturnType<WatcherApi["report"]>>;

export interface Phase {
  name: string;
  label: string;
  writer: WriterResult;
  /** UpdateStatus latency (the writer's), and delivery latency of the pinned and all-node watchers, µs. */
  updates: Histogram;
  pinned: Histogram;
  all: Histogram;
  cpu: CpuSpan;
  /** The server's nodeplane_watch_events_sent_total over the window, per second. */
  eventsPerSec: number;
  /** Watchers open when the phase started, and at the end of its window (the server's gauge). */
  watchersOpen: number;
  watchersAtEnd: number;
  /** The server's full (mark-compact) collections in the window, and their time in all, ms (nodeplane's nodejs_gc_duration_seconds, kind major). */
  fullGcs: number;
  fullGcMs: number;
}

export interface Delivery {
  nodes: number;
  all: number;
  /** Nodes pinned by each watcher process (process p holds [p × per, (p + 1) × per)). */
  per: number;
  phases: Phase[];
  /** The phase of `phases` with no watcher open (its writes must reach none); the others had the pinned ones. */
  unwatched: Phase | undefined;
  fan: Phase;
  sdk: Phase | undefined;
  reports: WatcherReport[];
  /** The server's watcher gauge after opening the pinned, then the all-node watchers, and at the end. */
  openPinned: number;
  open: number;
  gaugeAtEnd: number;
  log: (s: string) => void;
}

interface SetCheck {
  watchers: number;
  cut: number;
  missing: number;
  dup: number;
  early: number;
}

/** All-node watchers of set k (opened for phase `ph`) in every process. */
function checkSet(reports: WatcherReport[], k: number, ph: Phase): SetCheck {
  const out = { watchers: 0, cut: 0, missing: 0, dup: 0, early: 0 };
  const w = ph.writer;
  for (const r of reports) {
    const set = r.allSets[k];
    set?.got.forEach((got, i) => {
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
}

export function checkDelivery(d: Delivery): { failures: string[]; pinnedChecked: number; set0: SetCheck; set1: SetCheck | undefined } {
  const failures: string[] = [];
  const fail = (s: string): void => void failures.push(s);
  const { reports } = d;
  for (const r of reports) {
    if (r.foreign > 0) fail(`watcher process ${r.index}: ${r.foreign} unexpected events`);
    if (r.wrongNode > 0) fail(`watcher process ${r.index}: ${r.wrongNode} events of another node than the pinned one`);
    if (r.pinnedStreamErrors > 0) fail(`watcher process ${r.index}: ${r.pinnedStreamErrors} pinned watch streams ended or failed`);
  }
  // Every write made while the pinned watchers were open reached the watcher pinned to its node exactly once, and no other.
  let [missing, dup, wrong, stray, pinnedChecked] = [0, 0, 0, 0, 0];
  for (const ph of d.phases) {
    if (ph === d.unwatched) continue;
    const w = ph.writer;
    for (let s = w.seqFrom; s < w.seqTo; s++) {
      const node = w.nodeOf[s - w.seqFrom]!;
      pinnedChecked++;
      reports.forEach((r, p) => {
        const got = r.pinnedGot[s]!;
        if (p !== Math.floor(node / d.per)) stray += got !== -1 ? 1 : 0;
        else if (got === -1) missing++;
        else if (got === -2) dup++;
        else if (got !== node) wrong++;
      });
    }
  }
  // Writes of the no-watcher phase came before any watcher: none may have reached one.
  const b = d.unwatched?.writer;
  if (b) for (const r of reports) for (let s = b.seqFrom; s < b.seqTo; s++) if (r.pinnedGot[s] !== -1) stray++;
  if (missing + dup + wrong + stray > 0) {
    fail(
      `pinned watchers: of ${pinnedChecked} writes, ${missing} never reached the node's watcher, ${dup} reached it more than once, ` +
        `${wrong} reached the watcher of another node; ${stray} deliveries to a watcher that should not have had them`,
    );
  }
  const set0 = checkSet(reports, 0, d.fan);
  if (set0.watchers !== d.all) fail(`${set0.watchers} all-node watchers reported, ${d.all} expected`);
  if (set0.cut > 0) fail(`${set0.cut} of ${d.all} all-node watchers were cut off in the fan-out phase (too far behind: RESOURCE_EXHAUSTED)`);
  if (set0.missing + set0.dup + set0.early > 0) {
    fail(`all-node watchers: ${set0.missing} (watcher, write) pairs missing, ${set0.dup} delivered more than once, ${set0.early} from before the watcher opened`);
  }
  const set1 = d.sdk ? checkSet(reports, 1, d.sdk) : undefined;
  if (set1 && set1.missing + set1.dup + set1.early > 0) {
    fail(
      `all-node watchers on the SDK's window, the ones not cut off: ${set1.missing} (watcher, write) pairs missing, ` +
        `${set1.dup} delivered more than once, ${set1.early} from before the watcher opened`,
    );
  }
  if (set0.cut > 0 || (set1?.cut ?? 0) > 0) {
    const seen = [...new Set(reports.flatMap((r) => r.samples.map((x) => x.replace(/resource_version \d+/, "resource_version N"))))];
    if (seen.length > 0) d.log(`fanout: the watchers saw: ${seen.slice(0, 3).join(" | ")}`);
  }
  if (d.openPinned !== d.nodes) fail(`the server counted ${d.openPinned} pinned watchers open, ${d.nodes} expected`);
  if (d.open !== d.all + d.nodes) fail(`the server counted ${d.open} watchers open, ${d.all + d.nodes} expected`);
  const expectAtEnd = d.nodes + d.all - (set1?.cut ?? set0.cut);
  if (d.gaugeAtEnd !== expectAtEnd && failures.length === 0) fail(`at the end the server counted ${d.gaugeAtEnd} watchers open, ${expectAtEnd} expected`);
  for (const p of d.phases) {
    if (p.writer.lateWrites > 0.01 * p.writer.windowWrites) {
      fail(`phase ${p.name}: the writer issued ${p.writer.lateWrites} of ${p.writer.windowWrites} writes more than 50 ms late (max lag ${fmtMs(p.writer.maxLagMs)} ms)`);
    }
  }
  return { failures, pinnedChecked, set0, set1 };
}

/** The fan-out phase against the trivial grpc-js server (bench/trivial-server.ts), and its checks. */
export interface TrivialRun extends ReturnType<typeof checkDelivery> {
  phase: Phase;
}

interface Outcome extends ReturnType<typeof checkDelivery> {
  began: number;
  dataDir: string;
  profDir: string | undefined;
  phases: Phase[];
  fan: Phase;
  sdk: Phase | undefined;
  trivial: TrivialRun | undefined;
  registerS: number;
  openS: number;
  rssBefore: number | undefined;
  rssAfter: number | undefined;
}

export function report(o: Options, r: Outcome): void {
  const { phases, fan, sdk, trivial, set0, set1, failures } = r;
  const base = phases[0]!;
  const serverPct = (p: Phase): number => p.cpu.pct.server ?? Number.NaN;
  /** A row; `unwatched` is the same server's no-watcher phase (the trivial baseline's is a warm-up, not compared). */
  const cells = (p: Phase, unwatched: Phase | undefined) => {
    const writesPerSec = p.writer.windowWrites / (p.writer.windowMs / 1000);
    const extraUsPerEvent =
      !unwatched || p === unwatched || p.eventsPerSec === 0 ? Number.NaN : (((serverPct(p) - serverPct(unwatched)) / 100) * 1e6) / p.eventsPerSec;
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
      fullGcs: fullGcs(p),
      workers: fmtPct(workers),
      other: fmtPct(p.cpu.otherPct),
      pressure: fmtPct(p.cpu.pressurePct),
    };
  };
  /** "0", or "N × M ms": the server's full collections in the window and their mean pause. */
  const fullGcs = (p: Phase): string => (p.fullGcs === 0 ? "0" : `${fmtInt(p.fullGcs)} × ${fmtMs(p.fullGcMs / p.fullGcs)} ms`);
  const p99Pinned = fan.pinned.ms(0.99);
  const p99All = fan.all.ms(0.99);
  // Issue 17's target 4: delivery p99 ≤ 100 ms, and UpdateStatus's p99 with the watchers at most
  // twice its p99 with none (phase 1).
  const updateP99 = fan.updates.ms(0.99);
  const unwatchedUpdateP99 = base.updates.ms(0.99);
  const updateRatio = fmtRatio(updateP99, unwatchedUpdateP99);
  const metUpdate = updateP99 / unwatchedUpdateP99 <= MAX_UPDATE_RATIO;
  const metDelivery = p99Pinned <= TARGET_P99_MS && p99All <= TARGET_P99_MS && set0.cut === 0;
  const metFan = metDelivery && metUpdate;
  // The trivial baseline's row, and nodeplane's fan-out delivery p99 over its.
  const tr = trivial && {
    row: cells(trivial.phase, undefined),
    cut: trivial.set0.cut,
    p99: `pinned ${fmtMs(trivial.phase.pinned.ms(0.99))} ms, all-node ${fmtMs(trivial.phase.all.ms(0.99))} ms`,
    ratio: { pinned: fmtRatio(p99Pinned, trivial.phase.pinned.ms(0.99)), all: fmtRatio(p99All, trivial.phase.all.ms(0.99)) },
  };
  const table = mdTable(
    "| phase | watchers open | writes/s | events sent/s | delivery p50 / p99 ms, pinned | delivery p50 / p99 ms, all-node | UpdateStatus p50 / p99 ms | server CPU | server CPU µs/change | extra server CPU µs/event | server RSS | server full GCs | workers CPU | other load | CPU pressure |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    [...phases.map((p) => cells(p, base)), ...(tr ? [tr.row] : [])].map((c) => Object.values(c)),
  );
  let verdictText =
    `Target: fan-out delivery p99 ≤ ${TARGET_P99_MS} ms, and UpdateStatus p99 with the watchers ≤ ${MAX_UPDATE_RATIO} × without. ` +
    `With ${windowName(o.flowWindow)} client windows: pinned ${fmtMs(p99Pinned)} ms, all-node ${fmtMs(p99All)} ms` +
    (set0.cut > 0 ? `, ${set0.cut} of ${o.all} all-node watchers cut off` : "") +
    ` (${metDelivery ? "met" : "missed"}); UpdateStatus p99 ${fmtMs(updateP99)} ms against ${fmtMs(unwatchedUpdateP99)} ms with no watchers, ` +
    `**${updateRatio}** (${metUpdate ? "met" : "missed"}): ${metFan ? "**met**" : "**missed**"}.` +
    // A full collection stops the server for tens of ms; the writes that arrive meanwhile, and
    // the catch-up at the phase's load, make a p99 of 20,000 writes (see the README's profile).
    ` Server full collections in the windows: ${fullGcs(base)} with no watchers, ${fullGcs(fan)} in the fan-out.`;
  if (tr) {
    verdictText +=
      ` The trivial grpc-js baseline (same watchers, writer, nodes and window; a server that stores nothing): ${tr.p99}` +
      (tr.cut > 0 ? `, ${tr.cut} of ${o.all} all-node streams ended` : "") +
      `; nodeplane/trivial delivery p99: pinned **${tr.ratio.pinned}**, all-node **${tr.ratio.all}**.`;
  }
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
        "; no unexpected event, no pinned stream ended; the server's watcher gauge agreed." +
        (trivial
          ? ` Against the trivial server the same: its ${fmtInt(trivial.phase.writer.acked)} writes all answered OK (by the writer's count), each reached the watcher pinned to its node ` +
            `exactly once and no other, and each of the ${o.all} all-node watchers exactly once; its watcher gauge agreed.`
          : "")
      : `CHECKS FAILED:\n- ${failures.join("\n- ")}`;
  const doc = [
    ...docHead("Watch fan-out benchmark", "watch-fanout.js", r.began, r.dataDir),
    `- Setup: one \`nodeplane serve\` (SQLite store, durable commits; lifecycle controller on with grace periods longer than the run; ` +
      `--watch-queue-size ${o.watchQueueSize > 0 ? fmtInt(o.watchQueueSize) : "1,000 (default)"}) with ` +
      `${fmtInt(o.nodes)} registered nodes (20 labels, 4 addresses, full capacity/allocatable, 5 conditions, node info; registered in ${r.registerS.toFixed(1)} s). ` +
      `${fmtInt(o.nodes)} watchers each pinned to one node (\`field_selector: metadata.name=NAME\`) and ${o.all} watching every node, ` +
      `held through the SDK (NodeClient.watch) by ${o.watcherProcs} processes (run with \`--no-allocation-site-pretenuring\`, as the server: see WATCHER_V8_FLAGS in bench/watch-fanout.ts), ` +
      `${fmtInt(o.perChannel)} pinned watchers per grpc-js channel ` +
      "(`grpc.use_local_subchannel_pool`: one TCP connection each), the all-node watchers of each process on a channel of their own; " +
      `channels with a ${windowName(o.flowWindow)} HTTP/2 flow-control window (\`grpc-node.flow_control_window\`) except in phase 4 (the SDK's window). ` +
      `Opening the pinned watchers took ${r.openS.toFixed(1)} s and server RSS went ${fmtMiB(r.rssBefore)} → ${fmtMiB(r.rssAfter)}.`,
    ...(trivial
      ? [
          "- Baseline (the last row): after nodeplane has stopped, the fan-out phase again with fresh worker processes (the same watchers, writer, nodes and window; " +
            "the writer first warmed up by a phase of writes with no watcher open, as before nodeplane's, not reported) " +
            "against bench/trivial-server.ts: a bare grpc-js server (same proto and codecs, nodeplane's V8 flags) that keeps the registered nodes in a Map " +
            "and on UpdateStatus sets the status, encodes one WatchResponse and writes the same bytes to each matching watcher, batched per stream as nodeplane's " +
            "(no store, no commit, no watch cache, no queue limit: grpc-js buffers what a slow watcher has not taken). What this machine, grpc-js and the SDK alone make of the scenario.",
        ]
      : []),
    "- Load: one writer process (gRPC unary calls over a bare HTTP/2 session, each node's status encoded once and only its conditions per write, to leave the CPU to the server and the watchers), " +
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
      "--watch-queue-size events, default 1,000, behind is ended with RESOURCE_EXHAUSTED). Clients and server share the machine's CPUs. " +
      "The trivial row's events sent/s and watchers are the trivial server's own counts; its UpdateStatus is answered from memory.",
    "",
    table,
    "",
    verdictText,
    "",
    checks,
    "",
  ].join("\n");
  process.stdout.write(`\n${table}\n\n${verdictText}\n\n${checks}\n`);
  const fanRow = cells(fan, base);
  const baseRow = cells(base, base);
  finish({
    name: "fanout",
    doc,
    out: o.out,
    profDir: r.profDir,
    profiles: trivial ? ["nodeplane", "trivial"] : ["nodeplane"],
    rows: [
      {
        scenario: `Watch fan-out: ${fmtInt(o.nodes)} watchers pinned to one node each + ${o.all} on every node, ${fmtInt(o.rate)} UpdateStatus/s (${windowName(o.flowWindow)} client windows)`,
        result:
          `delivery p50 / p99 ${fmtMs(fan.pinned.ms(0.5))} / ${fmtMs(p99Pinned)} ms pinned, ${fmtMs(fan.all.ms(0.5))} / ${fmtMs(p99All)} ms all-node; ` +
          `${fmtInt(fan.eventsPerSec)} events/s sent, ${set0.cut} watchers cut off; server CPU ${fanRow.cpu} (${fanRow.usPerChange} µs/change); UpdateStatus p50 / p99 ${fanRow.update} ms`,
        baseline:
          `the same writes with no watchers: server CPU ${baseRow.cpu} (${baseRow.usPerChange} µs/change), UpdateStatus p50 / p99 ${baseRow.update} ms` +
          (tr
            ? `; the same fan-out against a trivial grpc-js server: delivery p50 / p99 ${tr.row.pinned} ms pinned, ${tr.row.all} ms all-node ` +
              `(nodeplane/trivial p99 ${tr.ratio.pinned} / ${tr.ratio.all}), server CPU ${tr.row.cpu}`
            : ""),
        target: `p99 ≤ ${TARGET_P99_MS} ms; UpdateStatus p99 ≤ ${MAX_UPDATE_RATIO} × without watchers (here ${updateRatio})`,
        verdict: verdict(metFan),
      },
    ],
    failures,
  });
}
