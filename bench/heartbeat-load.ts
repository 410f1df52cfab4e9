/**
 * The load generators of bench/run.ts, behind one interface: each drives RenewLease (or etcd
 * Put) at a given number of calls in flight, or the streaming Heartbeat, against a target, and
 * calls the window hooks at the measured window's edges (with the generator's pids, for CPU).
 *
 *   - h2load (Debian nghttp2-client): "in-flight L" is L h2load processes, each one connection
 *     with one call in flight renewing its own node (h2load sends one pre-framed body per process,
 *     and two calls renewing one node at once would queue behind each other in nodeplane), i.e. L
 *     agents; the Heartbeat runs --hb-conns processes, each one connection with --hb-streams
 *     streams whose body is many framed HeartbeatRequests for that process's own nodes (with
 *     `hbHot`, all for one node: one hot Lease). h2load
 *     counts gRPC errors as success: every body is sent once by hand first (trailers read), and
 *     callers check the servers' own counters; answers must carry a message (response bytes).
 *   - grpc-js worker processes (bench/load-worker.ts), when h2load is not installed.
 */
import * as grpc from "@grpc/grpc-js";
import fs from "node:fs";
import path from "node:path";
import { HeartbeatRequest, HeartbeatResponse, NodeServiceService, RenewLeaseRequest, RenewLeaseResponse } from "../src/gen/nodeplane/v1/service.js";
import { encodeLeasePut, ETCD_PUT_PATH, type Tool } from "./etcd.js";
import { grpcCall, grpcFrame, H2LOAD_PACKAGE, runH2load } from "./h2load.js";
import { benchScript, epochNow } from "./harness.js";
import { rawStream, stopAll, Worker, workers as spawnWorkers } from "./ipc.js";
import type { LoadApi, LoadRun } from "./load-worker.js";
import { Errors, Histogram } from "./tally.js";

export type Target = "nodeplane" | "trivial" | "etcd";
export type Scenario = "renew" | "heartbeat";

const CALL_DEADLINE_MS = 10_000;
const RENEW_PATH = NodeServiceService.renewLease.path;
const HEARTBEAT_PATH = NodeServiceService.heartbeat.path;

export interface WindowHooks {
  open(pids: number[]): void;
  close(pids: number[]): void;
}

export interface LoadOutcome {
  /** Calls (or renewals) the generator saw complete OK inside the window. */
  windowOk: number;
  windowMs: number;
  hist: Histogram;
  /** Where the latency comes from: the generator's calls, or a probe agent beside it. */
  latency: "client" | "probe";
  clientCpuMs: number | undefined;
  /** Every OK call of the run, when the generator waits for every call (grpc-js): the server must agree exactly. */
  exactOk?: number;
  /** OK answers h2load counted over the whole run: the server must have at least that many. */
  atLeastOk?: number;
  /** The rate to report is the server's count in the window (h2load heartbeat: h2load sees whole streams only). */
  rateFromServer?: boolean;
  /** h2load unary: ms from the last process start until every connection had had an answer. */
  admittedMs?: number;
}

export type Drive = (hooks: WindowHooks) => Promise<LoadOutcome>;

export interface Shape {
  nodes: number;
  warmupS: number;
  durationS: number;
  hbConns: number;
  hbStreams: number;
  /** Heartbeat: every stream renews one node's Lease (h2load only; the caller refuses it with workers). */
  hbHot: boolean;
  workers: number;
}

export interface Servers {
  /** host:port of each target; "etcd" only with etcd; its base URL for h2load and the body probe. */
  address: Partial<Record<Target, string>>;
  etcdUrl: string | undefined;
}

export interface Generator {
  unary(target: Target, inFlight: number): Drive;
  heartbeat(streams: number): Drive;
  /** Nodes whose Leases the drives so far renewed on nodeplane. */
  readonly renewed: Set<number>;
  /** How the load was made, for the results file. */
  describe(streams: number): string;
  stop(): Promise<unknown>;
}

// ---------------------------------------------------------------------------------------
// grpc-js workers

export async function workersGenerator(o: Shape, names: string[], servers: Servers, etcdValue: Buffer): Promise<Generator> {
  const ws = spawnWorkers<LoadApi>(o.workers, "load worker", benchScript("load-worker.js"));
  const targets: Record<string, { address: string; kind: "renew" | "etcd-put" }> = {};
  for (const [t, address] of Object.entries(servers.address)) targets[t] = { address, kind: t === "etcd" ? "etcd-put" : "renew" };
  await Promise.all(ws.map((w, index) => w.call("init", 20_000, { index, workers: ws.length, nodes: names, targets, etcdValue })));
  const renewed = new Set<number>();
  const drive = (target: Target, mode: LoadRun["mode"], inFlight: number): Drive => {
    // Unary calls renew each worker's nodes round-robin: every node. Stream k of worker i renews
    // that worker's node k, node i + k × workers (load-worker.ts): the first `inFlight` nodes.
    if (target === "nodeplane") for (let k = 0; k < (mode === "heartbeat" ? inFlight : o.nodes); k++) renewed.add(k);
    return (hooks) => workersDrive(o, ws, { target, mode, inFlight, verify: target === "nodeplane" ? "name" : target === "trivial" ? "lease" : "etcd" }, hooks);
  };
  return {
    renewed,
    unary: (target, inFlight) => drive(target, "unary", inFlight),
    heartbeat: (streams) => drive("nodeplane", "heartbeat", streams),
    describe: (streams) =>
      `${o.workers} grpc-js worker processes (bench/load-worker.ts), one channel each, closed loop, total in-flight split evenly; each unary call renews the next of the worker's nodes ` +
      `(for etcd: Puts that node's Lease key); Heartbeat: ${streams} streams over the workers, each renewing its own node, one renewal in flight per stream; latencies per call or renewal as the workers saw them.`,
    stop: () => stopAll(ws),
  };
}

async function workersDrive(o: Shape, ws: Array<Worker<LoadApi>>, run: Pick<LoadRun, "target" | "mode" | "inFlight" | "verify">, hooks: WindowHooks): Promise<LoadOutcome> {
  const warmupMs = o.warmupS * 1000;
  const durationMs = o.durationS * 1000;
  const startAt = epochNow() + 200;
  const pids = ws.flatMap((w) => (w.pid === undefined ? [] : [w.pid]));
  const t1 = setTimeout(() => hooks.open(pids), startAt + warmupMs - epochNow());
  let t2: NodeJS.Timeout | undefined;
  const windowClosed = new Promise<void>((resolve) => (t2 = setTimeout(() => resolve(hooks.close(pids)), startAt + warmupMs + durationMs - epochNow())));
  try {
    const results = await Promise.all(
      ws.map((w, i) =>
        w.call("run", warmupMs + durationMs + CALL_DEADLINE_MS + 15_000, {
          ...run,
          inFlight: Math.floor(run.inFlight / ws.length) + (i < run.inFlight % ws.length ? 1 : 0),
          startAt,
          warmupMs,
          durationMs,
          deadlineMs: CALL_DEADLINE_MS,
          maxCalls: Math.ceil(((warmupMs + durationMs) / 1000) * 200_000),
        }),
      ),
    );
    await windowClosed;
    Errors.of(results.map((r) => r.errors)).check(`${run.target} (${run.mode}) at ${run.inFlight}`);
    const sum = (f: (r: (typeof results)[number]) => number): number => results.reduce((a, r) => a + f(r), 0);
    return {
      windowOk: sum((r) => r.windowOk),
      windowMs: sum((r) => r.windowMs) / results.length,
      hist: Histogram.of(results.map((r) => r.hist)),
      latency: "client",
      clientCpuMs: sum((r) => r.cpuUs) / 1000,
      exactOk: sum((r) => r.ok),
    };
  } finally {
    clearTimeout(t1);
    clearTimeout(t2);
  }
}

// ---------------------------------------------------------------------------------------
// h2load

/** Bytes of one answer's gRPC frame: at least `min`; exactly `min` when `exact` (a constant answer). */
interface AnswerSize {
  min: number;
  exact: boolean;
}

export async function h2loadGenerator(o: Shape, bin: Tool, names: string[], servers: Servers, etcdValue: Buffer, workDir: string): Promise<Generator> {
  const dir = path.join(workDir, "bodies");
  fs.mkdirSync(dir);
  // One RenewLease and one etcd Put body per node; one Heartbeat body per connection (the last node is kept for the latency probe),
  // each for that connection's own nodes, or all for node 0 with hbHot.
  const renewBody = (i: number): string => path.join(dir, `renew-${i}`);
  const putBody = (i: number): string => path.join(dir, `put-${i}`);
  const hbBody = (p: number): string => path.join(dir, `hb-${p}`);
  names.forEach((name, i) => {
    fs.writeFileSync(renewBody(i), grpcFrame(RenewLeaseRequest.encode({ nodeName: name, holderIdentity: "", leaseDurationSeconds: 0 }).finish()));
    fs.writeFileSync(putBody(i), grpcFrame(encodeLeasePut(name, etcdValue)));
  });
  const framesPerBody = Math.floor((o.nodes - 1) / o.hbConns);
  const heartbeatFrame = (j: number): Buffer =>
    grpcFrame(HeartbeatRequest.encode({ nodeName: names[o.hbHot ? 0 : j]!, holderIdentity: "", leaseDurationSeconds: 0 }).finish());
  for (let p = 0; p < o.hbConns; p++) fs.writeFileSync(hbBody(p), Buffer.concat(Array.from({ length: framesPerBody }, (_, j) => heartbeatFrame(p * framesPerBody + j))));
  const answers = await probeBodies(servers, renewBody(0), putBody(0), hbBody(0), framesPerBody, names[0]!);
  process.stderr.write(`bench: ${o.nodes} RenewLease and Put bodies, ${o.hbConns} Heartbeat bodies of ${framesPerBody} requests each; each answered OK when sent by hand\n`);

  const h2Work = path.join(workDir, "h2load");
  const urlOf = (t: Target): string => (t === "etcd" ? `${servers.etcdUrl!}${ETCD_PUT_PATH}` : `http://${servers.address[t]!}${RENEW_PATH}`);
  const renewed = new Set<number>();
  let offset = 0;
  return {
    renewed,
    unary(target, inFlight) {
      const from = offset;
      offset = (offset + inFlight) % o.nodes;
      if (target === "nodeplane") for (let k = 0; k < inFlight; k++) renewed.add((from + k) % o.nodes);
      const jobs = Array.from({ length: inFlight }, (_, k) => ({ bodyFile: (target === "etcd" ? putBody : renewBody)((from + k) % o.nodes), clients: 1, streams: 1 }));
      return async (hooks) => {
        const url = urlOf(target);
        const answer = answers[target];
        const r = await runH2load(bin, { url, jobs, warmupMs: o.warmupS * 1000, durationMs: o.durationS * 1000, workDir: h2Work, perRequestLog: true }, hooks);
        if (r.windowBadStatus > 0) throw new Error(`${url}: ${r.windowBadStatus} answers in the window had an HTTP status other than 200`);
        if (r.non2xx > 0) throw new Error(`${url}: h2load saw ${r.non2xx} non-2xx answers`);
        const carried = `${url}: ${r.succeeded} answers carried ${r.dataBytes} bytes`;
        // A gRPC error is a trailers-only answer: no message, no DATA bytes.
        if (r.dataBytes < r.succeeded * answer.min) throw new Error(`${carried}, less than ${answer.min} each: some were gRPC errors without a message`);
        // A constant answer: every one accounted for (calls cut when h2load stopped may add a partial few).
        if (answer.exact && r.dataBytes > (r.succeeded + inFlight) * answer.min) throw new Error(`${carried}, more than ${answer.min} each`);
        return { ...r, latency: "client", atLeastOk: r.succeeded, admittedMs: r.allServedAfterMs };
      };
    },
    heartbeat() {
      if (o.hbHot) renewed.add(0);
      else for (let k = 0; k < o.hbConns * framesPerBody; k++) renewed.add(k);
      return async (hooks) => {
        const address = servers.address.nodeplane!;
        const probe = new HeartbeatProbe(address, names[o.nodes - 1]!);
        const jobs = Array.from({ length: o.hbConns }, (_, p) => ({ bodyFile: hbBody(p), clients: 1, streams: o.hbStreams }));
        const r = await runH2load(
          bin,
          { url: `http://${address}${HEARTBEAT_PATH}`, jobs, warmupMs: o.warmupS * 1000, durationMs: o.durationS * 1000, workDir: h2Work, perRequestLog: false },
          {
            open: (pids) => ((probe.recording = true), hooks.open(pids)),
            close: (pids) => ((probe.recording = false), hooks.close(pids)),
          },
        ).finally(() => probe.stop());
        if (r.non2xx > 0) throw new Error(`Heartbeat: h2load saw ${r.non2xx} non-2xx answers`);
        if (r.dataBytes === 0) throw new Error("Heartbeat: h2load received no response data");
        return { windowOk: 0, windowMs: r.windowMs, hist: probe.hist, latency: "probe", clientCpuMs: r.clientCpuMs, rateFromServer: true };
      };
    },
    describe: () =>
      `h2load ${bin.version} (Debian ${H2LOAD_PACKAGE}), pre-framed gRPC bodies. RenewLease and etcd Put: "in-flight L" is L h2load processes, ` +
      "each one HTTP/2 connection with one call in flight (closed loop), each on its own node (its own Lease key in etcd) — L agents; " +
      "h2load sends one body per process, and two calls renewing one node at once would queue behind each other in nodeplane. Latencies are h2load's per-request times. " +
      `Heartbeat: ${o.hbConns} h2load processes, each one connection with ${o.hbStreams} concurrent Heartbeat streams whose body is ${framesPerBody} framed ` +
      `HeartbeatRequests ${o.hbHot ? "all for one node (one hot Lease: every stream renews it)" : "for that process's own nodes (the streams of one process walk the same nodes, staggered)"}; the server answers each in order. ` +
      'h2load sees whole streams only, so the rate is nodeplane\'s own `nodeplane_heartbeats_total{code="OK"}` over the window (the probe\'s few renewals included), and p50/p99 are those of a probe agent ' +
      "(one more stream on its own node, one renewal in flight, in the orchestrating process) during the window; server p50/p99 are nodeplane's Heartbeat handling histogram (renewal start to answer written, interpolated in its buckets).",
    stop: async () => undefined,
  };
}

/** Each pre-framed body answered OK once, by hand (node:http2, trailers read): h2load would not tell. What one answer's frame weighs, per target. */
async function probeBodies(s: Servers, renew: string, put: string, heartbeat: string, framesPerBody: number, firstNode: string): Promise<Record<Target, AnswerSize>> {
  const check = async (what: string, origin: string, p: string, file: string, expect: number): Promise<Buffer[]> => {
    const r = await grpcCall(origin, p, fs.readFileSync(file));
    if (r.grpcStatus !== "0") throw new Error(`${what}: grpc-status ${r.grpcStatus ?? "(none)"} ${r.grpcMessage ?? ""}`);
    if (r.messages.length !== expect) throw new Error(`${what}: ${r.messages.length} messages, want ${expect}`);
    return r.messages;
  };
  const [lease] = await check("RenewLease body on nodeplane", `http://${s.address.nodeplane!}`, RENEW_PATH, renew, 1);
  if (RenewLeaseResponse.decode(lease!).lease?.metadata?.name !== firstNode) throw new Error("RenewLease body: wrong lease in the answer");
  const [constant] = await check("RenewLease body on the trivial server", `http://${s.address.trivial!}`, RENEW_PATH, renew, 1);
  await check("Heartbeat body on nodeplane", `http://${s.address.nodeplane!}`, HEARTBEAT_PATH, heartbeat, framesPerBody);
  const [ack] = s.etcdUrl ? await check("Put body on etcd", s.etcdUrl, ETCD_PUT_PATH, put, 1) : [];
  if (s.etcdUrl && !ack?.length) throw new Error("Put body on etcd: empty PutResponse");
  // The trivial server's answer is constant; nodeplane's Lease varies by a few bytes (revision
  // digits, timestamp nanos); etcd's PutResponse only grows (its revision).
  return {
    trivial: { min: 5 + constant!.length, exact: true },
    nodeplane: { min: 5 + Math.max(1, lease!.length - 10), exact: false },
    etcd: { min: 5 + Math.max(1, (ack?.length ?? 1) - 2), exact: false },
  };
}

/**
 * One agent's view while h2load floods the Heartbeat: a grpc-js stream in this process renewing
 * its own node, one renewal in flight, recording latencies while `recording`.
 */
class HeartbeatProbe {
  readonly hist = new Histogram();
  recording = false;
  private stopped = false;
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private readonly done: Promise<void>;
  private error: string | undefined;

  constructor(address: string, node: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
    this.call = rawStream(this.client, HEARTBEAT_PATH, { deadline: Date.now() + 120_000 });
    const req = Buffer.from(HeartbeatRequest.encode({ nodeName: node, holderIdentity: "", leaseDurationSeconds: 0 }).finish());
    let sentAt = performance.now();
    this.call.on("data", (res: Buffer) => {
      const t = performance.now();
      if (HeartbeatResponse.decode(res).lease?.metadata?.name !== node) this.error = `the probe renewed ${node} but got another lease`;
      if (this.recording) this.hist.record((t - sentAt) * 1000);
      if (this.stopped) return;
      sentAt = performance.now();
      this.call.write(req);
    });
    this.done = new Promise<void>((resolve) =>
      this.call.on("status", (s: grpc.StatusObject) => {
        if (s.code !== grpc.status.OK && !this.stopped) this.error = `probe stream ended: ${grpc.status[s.code]} ${s.details}`;
        resolve();
      }),
    );
    this.call.on("error", () => undefined);
    this.call.write(req);
  }

  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.recording = false;
      this.call.end();
      const timer = setTimeout(() => this.call.cancel(), 5000);
      await this.done;
      clearTimeout(timer);
      this.client.close();
    }
    if (this.error) throw new Error(this.error);
  }
}
