/**
 * A steady-heartbeat worker (spawned by bench/steady-heartbeat.ts): simulates `count` agents,
 * each with its own long-lived Heartbeat stream (as the SDK's NodeAgent holds one), renewing
 * its node's Lease every `intervalMs` at a phase of its own (seeded, uniform over one interval),
 * so the fleet's load is smooth as a real fleet's is. A stream opens at its node's first
 * renewal (the first interval is the ramp). An agent never has two renewals outstanding: a
 * renewal due while the previous one is unanswered is counted as skipped. Requests are encoded
 * once; answers are checked by size and decoded on a sample, so the worker's CPU goes to gRPC.
 */
import * as grpc from "@grpc/grpc-js";
import { HeartbeatRequest, HeartbeatResponse, NodeServiceService } from "../src/gen/nodeplane/v1/service.js";
import { Histogram } from "./histogram.js";
import { scaleNodeName } from "../test/support/realistic-node.js";
import type { FromSteadyWorker, SteadyResult, SteadyRun, ToSteadyWorker } from "./steady-protocol.js";
import { epochNow, prng, serveParent, sleep } from "./worker-side.js";

const HEARTBEAT_PATH = NodeServiceService.heartbeat.path;
const VERIFY_EVERY = 101;
/** The sender's timer period: renewals due within it go out together. */
const TICK_MS = 5;
const identity = (b: Buffer): Buffer => b;

const clients: grpc.Client[] = [];

serveParent<ToSteadyWorker, FromSteadyWorker>(
  "steady-worker",
  (msg) => run(msg),
  () => {
    for (const c of clients) c.close();
  },
);

async function run(cmd: SteadyRun): Promise<SteadyResult> {
  if (!cmd.address.startsWith("127.0.0.1:")) throw new Error(`refusing non-loopback target ${cmd.address}`);
  const n = cmd.count;
  const names = Array.from({ length: n }, (_, j) => scaleNodeName(cmd.first + j));
  const requests = names.map((nodeName) => Buffer.from(HeartbeatRequest.encode({ nodeName, holderIdentity: "", leaseDurationSeconds: 0 }).finish()));
  for (let c = 0; c < cmd.connections; c++) {
    // A subchannel pool of its own: one HTTP/2 connection per client.
    const client = new grpc.Client(cmd.address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(new Error(`connecting to ${cmd.address}: ${err.message}`)) : resolve())),
    );
    clients.push(client);
  }
  // Node j renews at startAt + phase[j] + k × interval; `order` walks the nodes by phase.
  const random = prng(1000 + cmd.index);
  const phase = Float64Array.from({ length: n }, () => random() * cmd.intervalMs);
  const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => phase[a]! - phase[b]!);
  const streams: (grpc.ClientDuplexStream<Buffer, Buffer> | undefined)[] = new Array(n);
  const sentAt = new Float64Array(n); // epoch ms of the outstanding renewal, 0 = none
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  const errorSamples: string[] = [];
  let sent = 0;
  let answered = 0;
  let windowSent = 0;
  let skipped = 0;
  let streamsOpen = 0;

  const addError = (kind: string, detail: string): void => {
    errors[kind] = (errors[kind] ?? 0) + 1;
    if (errorSamples.length < 5) errorSamples.push(`${kind}: ${detail}`);
  };
  const open = (j: number): grpc.ClientDuplexStream<Buffer, Buffer> => {
    const call = clients[j % clients.length]!.makeBidiStreamRequest<Buffer, Buffer>(HEARTBEAT_PATH, identity, identity, new grpc.Metadata(), {});
    streamsOpen++;
    call.on("data", (res: Buffer) => {
      const now = epochNow();
      const at = sentAt[j]!;
      sentAt[j] = 0;
      if (res.length === 0) return addError("VERIFY", `empty HeartbeatResponse for ${names[j]}`);
      if (answered % VERIFY_EVERY === 0) {
        const name = HeartbeatResponse.decode(res).lease?.metadata?.name;
        if (name !== names[j]) return addError("VERIFY", `renewed ${names[j]} but the answer is the lease of ${name ?? "(none)"}`);
      }
      answered++;
      if (at >= cmd.windowStartAt && at < cmd.windowEndAt) hist.record((now - at) * 1000);
    });
    call.on("error", (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) addError(grpc.status[err.code] ?? String(err.code), err.details || err.message);
    });
    call.on("status", () => {
      streamsOpen--;
      if (streams[j] === call) streams[j] = undefined;
      sentAt[j] = 0;
    });
    return call;
  };

  await sleep(cmd.startAt - epochNow());
  let cpuStart: NodeJS.CpuUsage | undefined;
  let cpuUs = 0;
  let openAtEnd = 0;
  const timers = [
    setTimeout(() => (cpuStart = process.cpuUsage()), cmd.windowStartAt - epochNow()),
    setTimeout(() => {
      const d = process.cpuUsage(cpuStart);
      cpuUs = d.user + d.system;
      openAtEnd = streamsOpen;
    }, cmd.windowEndAt - epochNow()),
  ];
  let p = 0;
  let cycle = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = epochNow();
      if (now >= cmd.windowEndAt) {
        clearInterval(tick);
        resolve();
        return;
      }
      for (;;) {
        const j = order[p]!;
        if (cmd.startAt + cycle * cmd.intervalMs + phase[j]! > now) break;
        if (sentAt[j] !== 0) skipped++;
        else {
          const call = (streams[j] ??= open(j));
          sentAt[j] = now;
          sent++;
          if (now >= cmd.windowStartAt) windowSent++;
          call.write(requests[j]!);
        }
        if (++p === n) {
          p = 0;
          cycle++;
        }
      }
    }, TICK_MS);
  });
  // Answers still due for renewals sent in the window.
  const unansweredNow = (): number => {
    let u = 0;
    for (let j = 0; j < n; j++) if (sentAt[j]! >= cmd.windowStartAt && sentAt[j]! < cmd.windowEndAt) u++;
    return u;
  };
  const drainUntil = epochNow() + cmd.drainMs;
  while (unansweredNow() > 0 && epochNow() < drainUntil) await sleep(20);
  for (const t of timers) clearTimeout(t);
  return {
    type: "result",
    index: cmd.index,
    sent,
    answered,
    windowSent,
    hist: { data: hist.data(), count: hist.count, sumUs: hist.sumUs, minUs: hist.minUs, maxUs: hist.maxUs },
    skipped,
    unanswered: unansweredNow(),
    errors,
    errorSamples,
    streamsOpen: openAtEnd,
    cpuUs,
  };
}
