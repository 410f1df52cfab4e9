/**
 * A load worker of bench/run.ts (the generator when h2load is not installed): keeps `inFlight`
 * RenewLease calls (or etcd Puts of the node's Lease key) in flight against one target (closed
 * loop), each for the next of its nodes round-robin; or, in "heartbeat" mode, holds `inFlight`
 * Heartbeat streams, each renewing its own node with one renewal in flight. It warms up, then
 * records the latency of every call that completes inside the measured window. Requests are
 * encoded once and answers checked by size (decoded on a sample) so that the worker spends its
 * CPU on gRPC, not on protobuf: on a 2-core machine every cycle the client burns is one the
 * server does not get.
 *
 * Bounded: a run stops issuing calls at the end of its window, after `maxCalls`, or after 100
 * errors; every call has a deadline; a watchdog ends the run if calls hang anyway.
 */
import * as grpc from "@grpc/grpc-js";
import { HeartbeatRequest, HeartbeatResponse, NodeServiceService, RenewLeaseRequest, RenewLeaseResponse } from "../src/gen/nodeplane/v1/service.js";
import { encodeLeasePut, ETCD_PUT_PATH } from "./etcd.js";
import { epochNow, sleep } from "./harness.js";
import { rawClient, rawStream, rawUnary, serve } from "./ipc.js";
import { Errors, Histogram, type HistogramWire } from "./tally.js";

/** Decode and check one response in this many. */
const VERIFY_EVERY = 97;
const MAX_ERRORS = 100;
const heartbeatRequest = (nodeName: string): Buffer => Buffer.from(HeartbeatRequest.encode({ nodeName, holderIdentity: "", leaseDurationSeconds: 0 }).finish());

export interface LoadInit {
  /** This worker renews the nodes i (of `nodes`) with i % workers === index. */
  index: number;
  workers: number;
  nodes: string[];
  /** Target label → host:port (127.0.0.1) and what it answers: NodeService ("renew") or etcd's KV/Put ("etcd-put"). */
  targets: Record<string, { address: string; kind: "renew" | "etcd-put" }>;
  /** What every etcd Put writes (a Lease-sized value). */
  etcdValue: Uint8Array;
}

export interface LoadRun {
  target: string;
  /** "unary": RenewLease (or etcd Put) calls, closed loop; "heartbeat": `inFlight` streams. */
  mode: "unary" | "heartbeat";
  /** Calls (or streams) this worker keeps in flight. */
  inFlight: number;
  /** Epoch ms at which the warm-up starts; the window is [startAt + warmupMs, + durationMs). */
  startAt: number;
  warmupMs: number;
  durationMs: number;
  deadlineMs: number;
  /** "name": the answered lease must be the renewed node's; "lease": any lease will do; "etcd": a non-empty PutResponse. */
  verify: "name" | "lease" | "etcd";
  maxCalls: number;
}

export interface LoadResult {
  /** Calls completed OK inside the window (these make up the histogram). */
  windowOk: number;
  /** Calls completed OK over the whole run (warm-up, window and drain). */
  ok: number;
  errors: { counts: Record<string, number>; samples: string[] };
  hist: HistogramWire;
  /** This worker's CPU over the window, µs, and the window as it saw it, ms. */
  cpuUs: number;
  windowMs: number;
}

const names: string[] = [];
const targets = new Map<string, { client: grpc.Client; path: string; kind: "renew" | "etcd-put"; requests: Buffer[] }>();

const api = {
  async init(c: LoadInit): Promise<void> {
    for (let i = c.index; i < c.nodes.length; i += c.workers) names.push(c.nodes[i]!);
    if (names.length === 0) throw new Error(`worker ${c.index} has no nodes`);
    for (const [label, { address, kind }] of Object.entries(c.targets)) {
      const client = await rawClient(address);
      const requests = names.map((nodeName) =>
        kind === "etcd-put"
          ? encodeLeasePut(nodeName, c.etcdValue)
          : Buffer.from(RenewLeaseRequest.encode({ nodeName, holderIdentity: "", leaseDurationSeconds: 0 }).finish()),
      );
      targets.set(label, { client, kind, path: kind === "etcd-put" ? ETCD_PUT_PATH : NodeServiceService.renewLease.path, requests });
    }
  },

  run: (cmd: LoadRun): Promise<LoadResult> => (cmd.mode === "heartbeat" ? streams(cmd) : unary(cmd)),
};

export type LoadApi = typeof api;
serve("load-worker", api, () => {
  for (const t of targets.values()) t.client.close();
});

/** The bookkeeping of one run: counts, the window's latencies and CPU, the end. */
class Run {
  readonly hist = new Histogram();
  readonly errors = new Errors();
  started = 0;
  ok = 0;
  windowOk = 0;
  private readonly start: number;
  private readonly end: number;
  private cpu0: NodeJS.CpuUsage | undefined;
  private cpuUs = 0;
  private opened = 0;
  private closed = 0;
  private readonly timers: NodeJS.Timeout[];
  private done = false;
  readonly finished: Promise<LoadResult>;
  private resolve!: (r: LoadResult) => void;

  constructor(
    readonly cmd: LoadRun,
    /** Calls or streams still open when the watchdog fires; cancels them. */
    private readonly stuck: () => string | undefined,
  ) {
    this.start = cmd.startAt + cmd.warmupMs;
    this.end = this.start + cmd.durationMs;
    this.finished = new Promise((resolve) => (this.resolve = resolve));
    this.timers = [
      setTimeout(() => ((this.cpu0 = process.cpuUsage()), (this.opened = epochNow())), this.start - epochNow()),
      setTimeout(() => this.closeWindow(), this.end - epochNow()),
      setTimeout(() => this.finish(), this.end - epochNow() + cmd.deadlineMs + 2000),
    ];
  }

  private closeWindow(): void {
    if (this.closed > 0 || !this.cpu0) return;
    const d = process.cpuUsage(this.cpu0);
    this.cpuUs = d.user + d.system;
    this.closed = epochNow();
  }

  /** Whether another call may start. */
  more(): boolean {
    return !this.done && epochNow() < this.end && this.started < this.cmd.maxCalls && this.errors.total < MAX_ERRORS;
  }

  /** A call answered OK at performance.now() `t1`, sent at `t0`. */
  answered(t0: number, t1: number): void {
    this.ok++;
    const at = performance.timeOrigin + t1;
    if (at >= this.start && at < this.end) {
      this.windowOk++;
      this.hist.record((t1 - t0) * 1000);
    }
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    for (const t of this.timers) clearTimeout(t);
    this.closeWindow();
    const stuck = this.stuck();
    if (stuck) this.errors.add("STUCK", `${stuck} still open ${this.cmd.deadlineMs + 2000} ms after the window`);
    this.resolve({
      windowOk: this.windowOk,
      ok: this.ok,
      errors: this.errors.wire(),
      hist: this.hist.wire(),
      cpuUs: this.cpuUs,
      windowMs: this.closed > 0 ? this.closed - this.opened : this.cmd.durationMs,
    });
  }
}

function target(cmd: LoadRun): { client: grpc.Client; path: string; kind: "renew" | "etcd-put"; requests: Buffer[] } {
  const t = targets.get(cmd.target);
  if (!t) throw new Error(`unknown target ${cmd.target}`);
  return t;
}

function verify(res: Buffer, i: number, cmd: LoadRun, sample: boolean): string | undefined {
  if (res.length === 0) return cmd.verify === "etcd" ? "empty PutResponse (no header)" : "empty response (no lease)";
  if (!sample || cmd.verify === "etcd") return undefined;
  const lease = RenewLeaseResponse.decode(res).lease;
  if (!lease?.spec?.renewTime) return "response without lease.spec.renewTime";
  if (cmd.verify === "name" && lease.metadata?.name !== names[i]) return `renewed ${names[i]} but the answer is the lease of ${lease.metadata?.name ?? "(none)"}`;
  return undefined;
}

/** `cmd.inFlight` lanes of unary calls, each for the next node round-robin. */
async function unary(cmd: LoadRun): Promise<LoadResult> {
  const { client, path, requests } = target(cmd);
  let active = 0;
  let next = 0;
  const run = new Run(cmd, () => (active > 0 ? `${active} calls` : undefined));
  await sleep(cmd.startAt - epochNow());
  const lane = (): void => {
    if (!run.more()) {
      if (active === 0) run.finish();
      return;
    }
    const i = next;
    next = (next + 1) % requests.length;
    const sample = ++run.started % VERIFY_EVERY === 0;
    active++;
    const t0 = performance.now();
    const settled = (err: grpc.ServiceError | undefined, res?: Buffer): void => {
      const t1 = performance.now();
      active--;
      const bad = err ? undefined : verify(res!, i, cmd, sample);
      if (err) run.errors.add(grpc.status[err.code] ?? String(err.code), err.details || err.message);
      else if (bad) run.errors.add("VERIFY", bad);
      else run.answered(t0, t1);
      lane();
    };
    rawUnary(client, path, requests[i]!, cmd.deadlineMs).then((res) => settled(undefined, res), settled);
  };
  for (let k = 0; k < cmd.inFlight; k++) lane();
  if (cmd.inFlight === 0) run.finish();
  return run.finished;
}

/**
 * `cmd.inFlight` Heartbeat streams, stream k renewing this worker's node k: each sends one
 * HeartbeatRequest, waits for its answer (sent by the server after the commit), then sends the
 * next, until the window ends; then it half-closes and waits for the server to end the call.
 */
async function streams(cmd: LoadRun): Promise<LoadResult> {
  const { client, kind } = target(cmd);
  if (kind !== "renew") throw new Error(`${cmd.target} has no Heartbeat method`);
  if (cmd.inFlight > names.length) throw new Error(`${cmd.inFlight} streams but only ${names.length} nodes: two streams would renew one node`);
  const calls: Array<grpc.ClientDuplexStream<Buffer, Buffer>> = [];
  let open = cmd.inFlight;
  const run = new Run(cmd, () => {
    if (open === 0) return undefined;
    for (const c of calls) c.cancel();
    return `${open} streams`;
  });
  await sleep(cmd.startAt - epochNow());
  for (let k = 0; k < cmd.inFlight; k++) {
    const call = rawStream(client, NodeServiceService.heartbeat.path, { deadline: cmd.startAt + cmd.warmupMs + cmd.durationMs + cmd.deadlineMs });
    calls.push(call);
    const request = heartbeatRequest(names[k]!);
    let sentAt = 0;
    let ending = false;
    const send = (): void => {
      if (ending) return;
      if (!run.more()) {
        ending = true;
        return void call.end();
      }
      run.started++;
      sentAt = performance.now();
      call.write(request);
    };
    call.on("data", (res: Buffer) => {
      const t1 = performance.now();
      const name = res.length === 0 ? "(nothing)" : run.started % VERIFY_EVERY === 0 ? HeartbeatResponse.decode(res).lease?.metadata?.name : names[k];
      if (name !== names[k]) run.errors.add("VERIFY", `renewed ${names[k]} but the answer is the lease of ${name ?? "(none)"}`);
      else run.answered(sentAt, t1);
      send();
    });
    call.on("error", (err: grpc.ServiceError) => run.errors.add(grpc.status[err.code] ?? String(err.code), err.details || err.message));
    call.on("status", () => --open === 0 && run.finish());
    send();
  }
  if (cmd.inFlight === 0) run.finish();
  return run.finished;
}
