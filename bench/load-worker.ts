/**
 * A load worker (spawned by bench/run.ts with `node`, talking over IPC; the generator when h2load
 * is not installed): keeps `inFlight` RenewLease calls (or etcd Puts of the node's Lease key) in
 * flight against one target (closed loop), each for the next of its nodes round-robin, warms up,
 * then records the latency of every call that completes inside the measured window. In
 * "heartbeat" mode it holds `inFlight` Heartbeat streams instead, each renewing its own node,
 * one renewal in flight per stream. Requests are encoded once up front and responses are checked by size
 * (and decoded on a sample) so that the worker spends its CPU on gRPC, not on protobuf: on a
 * 2-core machine every cycle the client burns is one the server does not get.
 *
 * Bounded: a run stops issuing calls at the end of its window, after `maxCalls`, or after
 * too many errors; every call has a deadline; a watchdog ends the run if calls hang anyway.
 * The worker exits when told to or when its parent goes away (IPC disconnect).
 */
import * as grpc from "@grpc/grpc-js";
import {
  HeartbeatRequest,
  HeartbeatResponse,
  NodeServiceService,
  RenewLeaseRequest,
  RenewLeaseResponse,
} from "../src/gen/nodeplane/v1/service.js";
import { Histogram } from "./histogram.js";
import {
  benchNodeName,
  encodePutRequest,
  ETCD_PUT_PATH,
  etcdLeaseKey,
  type FromWorker,
  type InitCommand,
  type RunCommand,
  type RunResult,
  type TargetKind,
  type ToWorker,
} from "./protocol.js";

const RENEW_PATH = NodeServiceService.renewLease.path;
const HEARTBEAT_PATH = NodeServiceService.heartbeat.path;
/** Decode and check one response in this many. */
const VERIFY_EVERY = 97;
/** A run stops issuing calls after this many errors (it has failed anyway). */
const MAX_ERRORS = 100;

const identity = (b: Buffer): Buffer => b;
const epochNow = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

if (!process.send) {
  process.stderr.write("load-worker: must be spawned by bench/run.js with an IPC channel\n");
  process.exit(2);
}

let index = -1;
interface Target {
  client: grpc.Client;
  kind: TargetKind;
  path: string;
  /** One encoded request per node of this worker. */
  requests: Buffer[];
}
const targets = new Map<string, Target>();
const names: string[] = [];
const heartbeats: Buffer[] = [];

function send(msg: FromWorker): void {
  process.send!(msg);
}

function fatal(err: unknown): void {
  send({ type: "fatal", index, message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exitCode = 1;
  process.disconnect();
}

function shutdown(): void {
  for (const t of targets.values()) t.client.close();
  process.exit(process.exitCode ?? 0);
}

process.on("disconnect", shutdown);
process.on("message", (raw: unknown) => {
  const msg = raw as ToWorker;
  switch (msg.type) {
    case "init":
      init(msg).then(() => send({ type: "ready", index }), fatal);
      break;
    case "run":
      (msg.mode === "heartbeat" ? runHeartbeat(msg) : run(msg)).then(send, fatal);
      break;
    case "exit":
      process.disconnect();
      break;
  }
});

async function init(cmd: InitCommand): Promise<void> {
  index = cmd.index;
  const renewals: Buffer[] = [];
  const puts: Buffer[] = [];
  const value = Buffer.from(cmd.etcdValueBase64 ?? "", "base64");
  for (let i = cmd.index; i < cmd.nodeCount; i += cmd.workers) {
    const name = benchNodeName(i);
    names.push(name);
    renewals.push(Buffer.from(RenewLeaseRequest.encode({ nodeName: name, holderIdentity: "", leaseDurationSeconds: 0 }).finish()));
    heartbeats.push(Buffer.from(HeartbeatRequest.encode({ nodeName: name, holderIdentity: "", leaseDurationSeconds: 0 }).finish()));
    puts.push(encodePutRequest(etcdLeaseKey(name), value));
  }
  if (names.length === 0) throw new Error(`worker ${index} has no nodes (nodes=${cmd.nodeCount}, workers=${cmd.workers})`);
  for (const [label, spec] of Object.entries(cmd.targets)) {
    if (!spec.address.startsWith("127.0.0.1:")) throw new Error(`refusing non-loopback target ${spec.address}`);
    if (spec.kind === "etcd-put" && value.length === 0) throw new Error(`${label}: an etcd target needs etcdValueBase64`);
    const client = new grpc.Client(spec.address, grpc.credentials.createInsecure());
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(new Error(`${label} at ${spec.address}: ${err.message}`)) : resolve())),
    );
    targets.set(label, {
      client,
      kind: spec.kind,
      path: spec.kind === "etcd-put" ? ETCD_PUT_PATH : RENEW_PATH,
      requests: spec.kind === "etcd-put" ? puts : renewals,
    });
  }
}

function verify(res: Buffer, i: number, cmd: RunCommand, sample: boolean): string | undefined {
  if (res.length === 0) return cmd.verify === "etcd" ? "empty PutResponse (no header)" : "empty response (no lease)";
  if (!sample || cmd.verify === "etcd") return undefined;
  const lease = RenewLeaseResponse.decode(res).lease;
  if (!lease?.spec?.renewTime) return "response without lease.spec.renewTime";
  if (cmd.verify === "name" && lease.metadata?.name !== names[i]) {
    return `renewed ${names[i]} but the answer is the lease of ${lease.metadata?.name ?? "(none)"}`;
  }
  return undefined;
}

async function run(cmd: RunCommand): Promise<RunResult> {
  const target = targets.get(cmd.target);
  if (!target) throw new Error(`unknown target ${cmd.target}`);
  const { client, requests } = target;
  const measureStart = cmd.startAt + cmd.warmupMs;
  const measureEnd = measureStart + cmd.durationMs;
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  const errorSamples: string[] = [];
  let errorCount = 0;
  let started = 0;
  let ok = 0;
  let windowOk = 0;
  let active = 0;
  let next = 0;
  const addError = (kind: string, detail: string): void => {
    errors[kind] = (errors[kind] ?? 0) + 1;
    errorCount++;
    if (errorSamples.length < 5) errorSamples.push(`${kind}: ${detail}`);
  };

  // CPU of this worker over the measured window only.
  let cpuStart: NodeJS.CpuUsage | undefined;
  let cpuUs = 0;
  let windowOpened = 0;
  let windowClosed = 0;
  const openWindow = (): void => {
    cpuStart = process.cpuUsage();
    windowOpened = epochNow();
  };
  const closeWindow = (): void => {
    if (windowClosed > 0 || !cpuStart) return;
    const d = process.cpuUsage(cpuStart);
    cpuUs = d.user + d.system;
    windowClosed = epochNow();
  };
  const cpuTimers = [setTimeout(openWindow, measureStart - epochNow()), setTimeout(closeWindow, measureEnd - epochNow())];

  await sleep(cmd.startAt - epochNow());

  return new Promise<RunResult>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(watchdog);
      for (const t of cpuTimers) clearTimeout(t);
      closeWindow();
      if (active > 0) addError("STUCK", `${active} calls still in flight ${cmd.deadlineMs + 2000} ms after the window`);
      resolve({
        type: "result",
        seq: cmd.seq,
        index,
        windowOk,
        started,
        ok,
        errors,
        errorSamples,
        hist: { data: hist.data(), count: hist.count, sumUs: hist.sumUs, minUs: hist.minUs, maxUs: hist.maxUs },
        cpuUs,
        windowMs: windowClosed > 0 ? windowClosed - windowOpened : cmd.durationMs,
      });
    };
    const watchdog = setTimeout(finish, measureEnd - epochNow() + cmd.deadlineMs + 2000);

    const lane = (): void => {
      if (done) return;
      if (epochNow() >= measureEnd || started >= cmd.maxCalls || errorCount >= MAX_ERRORS) {
        if (active === 0) finish();
        return;
      }
      const i = next;
      next = (next + 1) % requests.length;
      started++;
      active++;
      const sample = started % VERIFY_EVERY === 0;
      const t0 = performance.now();
      client.makeUnaryRequest<Buffer, Buffer>(
        target.path,
        identity,
        identity,
        requests[i]!,
        new grpc.Metadata(),
        { deadline: Date.now() + cmd.deadlineMs },
        (err, res) => {
          const t1 = performance.now();
          active--;
          if (err) {
            addError(grpc.status[err.code] ?? String(err.code), err.details || err.message);
          } else {
            const bad = verify(res ?? Buffer.alloc(0), i, cmd, sample);
            if (bad) addError("VERIFY", bad);
            else {
              ok++;
              const end = performance.timeOrigin + t1;
              if (end >= measureStart && end < measureEnd) {
                windowOk++;
                hist.record((t1 - t0) * 1000);
              }
            }
          }
          lane();
        },
      );
    };
    for (let k = 0; k < cmd.inFlight; k++) lane();
    if (cmd.inFlight === 0) setTimeout(finish, measureEnd - epochNow());
  });
}

/**
 * `cmd.inFlight` Heartbeat streams, stream k renewing this worker's node k: each sends one
 * HeartbeatRequest, waits for its answer (sent by the server after the commit), then sends the
 * next, until the window ends; then it half-closes and waits for the server to end the call.
 */
async function runHeartbeat(cmd: RunCommand): Promise<RunResult> {
  const target = targets.get(cmd.target);
  if (!target) throw new Error(`unknown target ${cmd.target}`);
  if (target.kind !== "renew") throw new Error(`${cmd.target} has no Heartbeat method`);
  if (cmd.inFlight > names.length) throw new Error(`worker ${index}: ${cmd.inFlight} streams but only ${names.length} nodes: two streams would renew one node`);
  const measureStart = cmd.startAt + cmd.warmupMs;
  const measureEnd = measureStart + cmd.durationMs;
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  const errorSamples: string[] = [];
  let errorCount = 0;
  let started = 0;
  let ok = 0;
  let windowOk = 0;
  const addError = (kind: string, detail: string): void => {
    errors[kind] = (errors[kind] ?? 0) + 1;
    errorCount++;
    if (errorSamples.length < 5) errorSamples.push(`${kind}: ${detail}`);
  };

  let cpuStart: NodeJS.CpuUsage | undefined;
  let cpuUs = 0;
  let windowOpened = 0;
  let windowClosed = 0;
  const openWindow = (): void => {
    cpuStart = process.cpuUsage();
    windowOpened = epochNow();
  };
  const closeWindow = (): void => {
    if (windowClosed > 0 || !cpuStart) return;
    const d = process.cpuUsage(cpuStart);
    cpuUs = d.user + d.system;
    windowClosed = epochNow();
  };
  const cpuTimers = [setTimeout(openWindow, measureStart - epochNow()), setTimeout(closeWindow, measureEnd - epochNow())];

  await sleep(cmd.startAt - epochNow());

  return new Promise<RunResult>((resolve) => {
    let done = false;
    let open = cmd.inFlight;
    const calls: Array<grpc.ClientDuplexStream<Buffer, Buffer>> = [];
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(watchdog);
      for (const t of cpuTimers) clearTimeout(t);
      closeWindow();
      if (open > 0) {
        addError("STUCK", `${open} streams still open ${cmd.deadlineMs + 2000} ms after the window`);
        for (const c of calls) c.cancel();
      }
      resolve({
        type: "result",
        seq: cmd.seq,
        index,
        windowOk,
        started,
        ok,
        errors,
        errorSamples,
        hist: { data: hist.data(), count: hist.count, sumUs: hist.sumUs, minUs: hist.minUs, maxUs: hist.maxUs },
        cpuUs,
        windowMs: windowClosed > 0 ? windowClosed - windowOpened : cmd.durationMs,
      });
    };
    const watchdog = setTimeout(finish, measureEnd - epochNow() + cmd.deadlineMs + 2000);
    const closed = (): void => {
      open--;
      if (open === 0) finish();
    };

    for (let k = 0; k < cmd.inFlight; k++) {
      const call = target.client.makeBidiStreamRequest<Buffer, Buffer>(HEARTBEAT_PATH, identity, identity, new grpc.Metadata(), {
        deadline: measureEnd + cmd.deadlineMs,
      });
      calls.push(call);
      let sentAt = 0;
      let ending = false;
      const next = (): void => {
        if (done || ending) return;
        if (epochNow() >= measureEnd || started >= cmd.maxCalls || errorCount >= MAX_ERRORS) {
          ending = true;
          call.end();
          return;
        }
        started++;
        sentAt = performance.now();
        call.write(heartbeats[k]!);
      };
      call.on("data", (res: Buffer) => {
        const t1 = performance.now();
        let bad: string | undefined;
        if (res.length === 0) bad = "empty HeartbeatResponse";
        else if (started % VERIFY_EVERY === 0) {
          const name = HeartbeatResponse.decode(res).lease?.metadata?.name;
          if (name !== names[k]) bad = `renewed ${names[k]} but the answer is the lease of ${name ?? "(none)"}`;
        }
        if (bad) addError("VERIFY", bad);
        else {
          ok++;
          const end = performance.timeOrigin + t1;
          if (end >= measureStart && end < measureEnd) {
            windowOk++;
            hist.record((t1 - sentAt) * 1000);
          }
        }
        next();
      });
      call.on("error", (err: grpc.ServiceError) => addError(grpc.status[err.code] ?? String(err.code), err.details || err.message));
      call.on("status", closed);
      next();
    }
    if (cmd.inFlight === 0) setTimeout(finish, measureEnd - epochNow());
  });
}
