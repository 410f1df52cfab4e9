/**
 * The messages between bench/run.ts and its load workers (Node IPC, JSON-serialised), and
 * the node naming both sides share.
 */
import type { HistogramData } from "./histogram.js";

export const NODE_PREFIX = "bench-node-";

export function benchNodeName(i: number): string {
  return `${NODE_PREFIX}${String(i).padStart(5, "0")}`;
}

export interface InitCommand {
  type: "init";
  /** This worker's index among `workers`: it renews nodes i with i % workers === index. */
  index: number;
  workers: number;
  nodeCount: number;
  /** Target label → host:port (always 127.0.0.1). */
  targets: Record<string, string>;
}

export interface RunCommand {
  type: "run";
  seq: number;
  target: string;
  /** Calls this worker keeps in flight (closed loop). */
  inFlight: number;
  /** Epoch ms (performance.timeOrigin + performance.now()) at which the warm-up starts. */
  startAt: number;
  warmupMs: number;
  durationMs: number;
  /** Per-call deadline. */
  deadlineMs: number;
  /** "name": the answered lease must be the renewed node's; "lease": any lease will do. */
  verify: "name" | "lease";
  /** Hard bound on calls this worker starts in this run, whatever the clock says. */
  maxCalls: number;
}

export interface ExitCommand {
  type: "exit";
}

export type ToWorker = InitCommand | RunCommand | ExitCommand;

export interface ReadyMessage {
  type: "ready";
  index: number;
}

export interface RunResult {
  type: "result";
  seq: number;
  index: number;
  /** Calls completed OK inside the measured window (these make up the histogram). */
  windowOk: number;
  /** Every call of the run (warm-up, window and drain). */
  started: number;
  ok: number;
  /** gRPC status name (or "VERIFY"/"STUCK") → count, over the whole run. */
  errors: Record<string, number>;
  errorSamples: string[];
  hist: { data: HistogramData; count: number; sumUs: number; minUs: number; maxUs: number };
  /** This worker's CPU time during the measured window, µs. */
  cpuUs: number;
  /** The measured window as this worker saw it, ms. */
  windowMs: number;
}

export interface FatalMessage {
  type: "fatal";
  index: number;
  message: string;
}

export type FromWorker = ReadyMessage | RunResult | FatalMessage;
