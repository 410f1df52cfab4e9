/**
 * Messages between bench/scale.ts and its register workers (bench/register-worker.ts).
 */
import type { HistogramWire } from "./fanout-protocol.js";

export interface RegisterInit {
  type: "init";
  index: number;
  /** host:port (always 127.0.0.1). */
  address: string;
}

/**
 * Register nodes [from, to) with `lanes` calls in flight, stopping early at `stopAt` (epoch ms,
 * 0 = never) — for time-boxed runs against the baseline server.
 */
export interface RegisterRun {
  type: "run";
  seq: number;
  from: number;
  to: number;
  lanes: number;
  stopAt: number;
  deadlineMs: number;
}

export type ToRegisterWorker = RegisterInit | RegisterRun;

export interface RegisterProgress {
  type: "progress";
  seq: number;
  index: number;
  done: number;
}

export interface RegisterResult {
  type: "result";
  seq: number;
  index: number;
  done: number;
  /** Register latency of every call, µs. */
  hist: HistogramWire;
  /** This worker's CPU over the run, µs, and the run's length, ms. */
  cpuUs: number;
  elapsedMs: number;
  errors: Record<string, number>;
  samples: string[];
}

export type FromRegisterWorker = { type: "ready"; index: number } | RegisterProgress | RegisterResult;
