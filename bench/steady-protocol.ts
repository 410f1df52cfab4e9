/**
 * Messages between bench/steady-heartbeat.ts (parent) and bench/steady-worker.ts: a share of a
 * simulated fleet, each node holding its own Heartbeat stream and renewing every `intervalMs`.
 */
import type { HistogramData } from "./histogram.js";

export interface SteadyRun {
  type: "run";
  index: number;
  /** nodeplane's gRPC address (loopback only). */
  address: string;
  /** Nodes scaleNodeName(first) … scaleNodeName(first + count - 1) (test/support/realistic-node.ts), already registered. */
  first: number;
  count: number;
  /** HTTP/2 connections the streams are spread over. */
  connections: number;
  /** Each node renews this often, at its own phase (seeded uniform spread over one interval). */
  intervalMs: number;
  /** Epoch ms: renewals start (streams open at each node's first renewal), ramping over one interval. */
  startAt: number;
  /** Epoch ms: the measured window (renewals sent inside it are recorded). */
  windowStartAt: number;
  windowEndAt: number;
  /** How long after the window to wait for answers still outstanding. */
  drainMs: number;
}

export interface SteadyResult {
  type: "result";
  index: number;
  /** Renewals sent over the whole run / answered. */
  sent: number;
  answered: number;
  /** Renewals sent inside the window, and their latency (send → answer, µs). */
  windowSent: number;
  hist: { data: HistogramData; count: number; sumUs: number; minUs: number; maxUs: number };
  /** Renewals not sent because the node's previous one was still unanswered when the next was due. */
  skipped: number;
  /** Renewals sent in the window and still unanswered `drainMs` after it. */
  unanswered: number;
  /** Streams that ended with an error, by gRPC code, and a few samples. */
  errors: Record<string, number>;
  errorSamples: string[];
  /** Streams open at the end of the window. */
  streamsOpen: number;
  /** This worker's CPU over the window, µs. */
  cpuUs: number;
}

export type ToSteadyWorker = SteadyRun;
export type FromSteadyWorker = SteadyResult;
