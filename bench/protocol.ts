/**
 * The messages between bench/run.ts and its load workers (Node IPC, JSON-serialised), and
 * the node naming both sides share.
 */
import type { HistogramData } from "./histogram.js";

export const NODE_PREFIX = "bench-node-";

export function benchNodeName(i: number): string {
  return `${NODE_PREFIX}${String(i).padStart(5, "0")}`;
}

/**
 * What a target answers: "renew" = nodeplane.v1.NodeService (RenewLease, Heartbeat);
 * "etcd-put" = etcdserverpb.KV/Put of each node's Lease key with `etcdValueBase64`.
 */
export type TargetKind = "renew" | "etcd-put";

export interface TargetSpec {
  /** host:port, always 127.0.0.1. */
  address: string;
  kind: TargetKind;
}

export interface InitCommand {
  type: "init";
  /** This worker's index among `workers`: it renews nodes i with i % workers === index. */
  index: number;
  workers: number;
  nodeCount: number;
  /** Target label → where and what. */
  targets: Record<string, TargetSpec>;
  /** The value every etcd Put writes (a Lease-sized blob), base64; needed for "etcd-put" targets. */
  etcdValueBase64?: string;
}

export interface RunCommand {
  type: "run";
  seq: number;
  target: string;
  /**
   * "unary": RenewLease (or etcd Put) calls, closed loop. "heartbeat": `inFlight` Heartbeat
   * streams, each renewing its own node (one renewal in flight per stream, the next sent when
   * the answer comes), latency per renewal.
   */
  mode?: "unary" | "heartbeat";
  /** Calls (or streams) this worker keeps in flight (closed loop). */
  inFlight: number;
  /** Epoch ms (performance.timeOrigin + performance.now()) at which the warm-up starts. */
  startAt: number;
  warmupMs: number;
  durationMs: number;
  /** Per-call deadline. */
  deadlineMs: number;
  /** "name": the answered lease must be the renewed node's; "lease": any lease will do; "etcd": a PutResponse (non-empty). */
  verify: "name" | "lease" | "etcd";
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

// ---------------------------------------------------------------------------------------
// etcd's PutRequest, by hand (no etcd client library): shared by run.ts and the workers

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

function bytesField(field: number, value: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(value.length), value]);
}

/** An encoded etcdserverpb.PutRequest { key = 1, value = 2 } (no lease, no prev_kv). */
export function encodePutRequest(key: string, value: Uint8Array): Buffer {
  return Buffer.concat([bytesField(1, Buffer.from(key, "utf8")), bytesField(2, value)]);
}

/** Where Kubernetes keeps a node's Lease in etcd. */
export function etcdLeaseKey(nodeName: string): string {
  return `/registry/leases/kube-node-lease/${nodeName}`;
}

export const ETCD_PUT_PATH = "/etcdserverpb.KV/Put";
