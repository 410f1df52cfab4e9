/**
 * Messages between bench/watch-fanout.ts and its workers (bench/fanout-worker.ts): watcher
 * processes holding many Watch streams, and the writer that changes nodes at a paced rate.
 *
 * Every write stamps the node's Ready condition message with `bench seq=S t=T`: S is the
 * write's sequence number (unique over the run), T the writer's clock (epoch ms, fractional)
 * just before the call. A watcher's latency for an event is its own clock at receipt minus T
 * (both processes read the same system clock through performance.timeOrigin + now()).
 */
import type { HistogramData } from "./histogram.js";

export interface HistogramWire {
  data: HistogramData;
  count: number;
  sumUs: number;
  minUs: number;
  maxUs: number;
}

export const STAMP = /^bench seq=(\d+) t=(\d+(?:\.\d+)?)$/;
export const stamp = (seq: number, t: number): string => `bench seq=${seq} t=${t.toFixed(3)}`;

// ---------------------------------------------------------------------------------------
// Watcher processes

export interface WatcherInit {
  type: "init";
  index: number;
  address: string;
  /** Node indices [from, to) this process pins one watcher each to (fieldSelector metadata.name=…). */
  pinnedFrom: number;
  pinnedTo: number;
  /** Pinned watchers per grpc-js channel (each channel its own TCP connection). */
  perChannel: number;
  /** Watchers of every node this process holds (on a channel of their own). */
  all: number;
  /** Sequence numbers are below this. */
  maxSeq: number;
}

/** Open the pinned watchers, or a new set of all-node watchers (on a new channel). */
export interface WatcherOpen {
  type: "open";
  which: "all" | "pinned";
  /** HTTP/2 flow-control window of the new channels (`grpc-node.flow_control_window`), bytes; 0 = grpc-js's default (64 KiB). */
  flowWindow: number;
}

/** Cancel the latest set of all-node watchers. */
export interface WatcherCloseAll {
  type: "closeAll";
}

/** Record latencies of writes stamped in [startAt, endAt) under `phase`. */
export interface WatcherWindow {
  type: "window";
  phase: string;
  startAt: number;
  endAt: number;
}

export interface WatcherReportRequest {
  type: "report";
}

/** Counts only (cheap), for progress. */
export interface WatcherStatusRequest {
  type: "status";
}

export type ToWatcher = WatcherInit | WatcherOpen | WatcherCloseAll | WatcherWindow | WatcherReportRequest | WatcherStatusRequest;

export interface WatcherStatus {
  type: "status";
  index: number;
  pinnedEvents: number;
  allEvents: number;
  /** Pinned watch streams that ended or failed so far; all-node watchers of the latest set that did. */
  pinnedStreamErrors: number;
  allEnded: number;
  /** Events received by the all-node watchers of the latest set that did not end. */
  allAliveEvents: number;
  samples: string[];
}

export interface WatcherReport {
  type: "report";
  index: number;
  /** Latency histograms per phase: pinned watchers' events, all-watchers' events (µs). */
  phases: Record<string, { pinned: HistogramWire; all: HistogramWire }>;
  /** By sequence number: index of the node whose pinned watcher got that write (-1 none, -2 more than once). */
  pinnedGot: Int32Array;
  /**
   * Per set of all-node watchers (in the order opened), per watcher: by sequence number, how many
   * times it got that write (saturating at 255); and whether its stream ended or failed.
   */
  allSets: Array<{ got: Uint8Array[]; ended: boolean[] }>;
  pinnedEvents: number;
  allEvents: number;
  /** Events a pinned watcher got for another node than its own. */
  wrongNode: number;
  /** Events without a bench stamp, or of a type other than MODIFIED. */
  foreign: number;
  /** Pinned watch streams that ended or failed. */
  pinnedStreamErrors: number;
  samples: string[];
}

export type FromWatcher =
  | { type: "ready"; index: number }
  | { type: "opened"; which: "all" | "pinned"; count: number }
  | { type: "closed" }
  | { type: "windowSet" }
  | WatcherStatus
  | WatcherReport;

// ---------------------------------------------------------------------------------------
// The writer

export interface WriterInit {
  type: "init";
  address: string;
  nodeCount: number;
  maxSeq: number;
  seed: number;
}

export interface WriterRun {
  type: "run";
  phase: string;
  /** Epoch ms at which writing starts; the measured window is [startAt + warmupMs, + durationMs). */
  startAt: number;
  warmupMs: number;
  durationMs: number;
  /** UpdateStatus calls per second, paced (not a closed loop); ramped up linearly over the warm-up. */
  rate: number;
  /** Calls in flight at most; a write due while this many are in flight waits (and may be late). */
  maxInFlight: number;
  deadlineMs: number;
}

export type ToWriter = WriterInit | WriterRun;

export interface WriterResult {
  type: "ran";
  phase: string;
  /** Sequence numbers of this run: [seqFrom, seqTo); nodeOf[s - seqFrom] is the node written. */
  seqFrom: number;
  seqTo: number;
  nodeOf: Int32Array;
  acked: number;
  /** UpdateStatus latency (issue to answer) of writes issued inside the window, µs. */
  hist: HistogramWire;
  /** Writes issued inside the window, and its length as the writer saw it. */
  windowWrites: number;
  windowMs: number;
  /** Writes due in the window: most the writer fell behind its schedule (ms), and how many it issued more than 50 ms late. */
  maxLagMs: number;
  lateWrites: number;
  errors: Record<string, number>;
  samples: string[];
}

export type FromWriter = { type: "ready" } | WriterResult;
