/**
 * The delivery checks of bench/watch-fanout.ts, from the writer's record (which node each write
 * changed) and each watcher process's record (which write reached which watcher, how often):
 *   - pinned watchers: every write made while they were open reached the watcher pinned to its
 *     node exactly once and no other watcher; none of the baseline's writes reached any;
 *   - all-node watchers: each set got every write of its phase exactly once and none from before
 *     it opened; a watcher cut off in phase 3 is a failure, in phase 4 (the SDK's window) a result;
 *   - no foreign event, no pinned stream ended, the server's watcher gauges agreed, and the
 *     writer kept its pace (at most 1% of a window's writes issued more than 50 ms late).
 */
import type { WatcherApi, WriterApi } from "./fanout-worker.js";
import type { CpuSpan } from "./proc.js";
import { fmtMs } from "./report.js";
import type { Histogram } from "./tally.js";

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
}

export interface Delivery {
  nodes: number;
  all: number;
  /** Nodes pinned by each watcher process (process p holds [p × per, (p + 1) × per)). */
  per: number;
  phases: Phase[];
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
  for (const ph of d.phases.slice(1)) {
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
  // Writes of the baseline came before any watcher: none may have reached one.
  const b = d.phases[0]!.writer;
  for (const r of reports) for (let s = b.seqFrom; s < b.seqTo; s++) if (r.pinnedGot[s] !== -1) stray++;
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
