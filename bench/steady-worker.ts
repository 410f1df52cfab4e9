/**
 * A steady-heartbeat worker of bench/steady-heartbeat.ts: simulates `count` agents, each with its
 * own long-lived Heartbeat stream (as the SDK's NodeAgent holds one), renewing its node's Lease
 * every `intervalMs` at a phase of its own (seeded, uniform over one interval), so the fleet's
 * load is smooth as a real fleet's is. A stream opens at its node's first renewal (the first
 * interval is the ramp). An agent never has two renewals outstanding: a renewal due while the
 * previous one is unanswered is counted as skipped. Requests are encoded once; answers are
 * checked by size and decoded on a sample, so the worker's CPU goes to gRPC.
 */
import * as grpc from "@grpc/grpc-js";
import { HeartbeatRequest, HeartbeatResponse, NodeServiceService } from "../src/gen/nodeplane/v1/service.js";
import { scaleNodeName } from "../test/support/realistic-node.js";
import { epochNow, prng, sleep } from "./harness.js";
import { rawClient, rawStream, serve } from "./ipc.js";
import { Errors, Histogram } from "./tally.js";

const VERIFY_EVERY = 101;
/** The sender's timer period: renewals due within it go out together. */
const TICK_MS = 5;

export interface SteadyRun {
  /** Seeds this worker's phases. */
  index: number;
  address: string;
  /** Nodes scaleNodeName(first) … scaleNodeName(first + count - 1), already registered. */
  first: number;
  count: number;
  /** HTTP/2 connections the streams are spread over. */
  connections: number;
  intervalMs: number;
  /** Epoch ms: renewals start (ramping over one interval); the measured window (renewals sent inside it are recorded). */
  startAt: number;
  windowStartAt: number;
  windowEndAt: number;
  /** How long after the window to wait for answers still outstanding. */
  drainMs: number;
}

const clients: grpc.Client[] = [];

const api = {
  async run(cmd: SteadyRun) {
    const n = cmd.count;
    const names = Array.from({ length: n }, (_, j) => scaleNodeName(cmd.first + j));
    const requests = names.map((nodeName) => Buffer.from(HeartbeatRequest.encode({ nodeName, holderIdentity: "", leaseDurationSeconds: 0 }).finish()));
    for (let c = 0; c < cmd.connections; c++) {
      // A subchannel pool of its own: one HTTP/2 connection per client.
      clients.push(await rawClient(cmd.address, { "grpc.use_local_subchannel_pool": 1 }));
    }
    // Node j renews at startAt + phase[j] + k × interval; `order` walks the nodes by phase.
    const random = prng(1000 + cmd.index);
    const phase = Float64Array.from({ length: n }, () => random() * cmd.intervalMs);
    const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => phase[a]! - phase[b]!);
    const streams: Array<grpc.ClientDuplexStream<Buffer, Buffer> | undefined> = new Array(n);
    const sentAt = new Float64Array(n); // epoch ms of the outstanding renewal, 0 = none
    const hist = new Histogram();
    const errors = new Errors();
    let answered = 0;
    let skipped = 0;
    let streamsOpen = 0;

    const open = (j: number): grpc.ClientDuplexStream<Buffer, Buffer> => {
      const call = rawStream(clients[j % clients.length]!, NodeServiceService.heartbeat.path);
      streamsOpen++;
      call.on("data", (res: Buffer) => {
        const now = epochNow();
        const at = sentAt[j]!;
        sentAt[j] = 0;
        const name = res.length === 0 ? "(nothing)" : answered % VERIFY_EVERY === 0 ? HeartbeatResponse.decode(res).lease?.metadata?.name : names[j];
        if (name !== names[j]) return errors.add("VERIFY", `renewed ${names[j]} but the answer is the lease of ${name ?? "(none)"}`);
        answered++;
        if (at >= cmd.windowStartAt && at < cmd.windowEndAt) hist.record((now - at) * 1000);
      });
      call.on("error", (err: grpc.ServiceError) => {
        if (err.code !== grpc.status.CANCELLED) errors.add(grpc.status[err.code] ?? String(err.code), err.details || err.message);
      });
      call.on("status", () => {
        streamsOpen--;
        if (streams[j] === call) streams[j] = undefined;
        sentAt[j] = 0;
      });
      return call;
    };

    await sleep(cmd.startAt - epochNow());
    let openAtEnd = 0;
    let p = 0;
    let cycle = 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = epochNow();
        if (now >= cmd.windowEndAt) {
          openAtEnd = streamsOpen;
          clearInterval(tick);
          return resolve();
        }
        for (;;) {
          const j = order[p]!;
          if (cmd.startAt + cycle * cmd.intervalMs + phase[j]! > now) break;
          if (sentAt[j] !== 0) skipped++;
          else {
            sentAt[j] = now;
            (streams[j] ??= open(j)).write(requests[j]!);
          }
          if (++p === n) {
            p = 0;
            cycle++;
          }
        }
      }, TICK_MS);
    });
    // Answers still due for renewals sent in the window.
    const unanswered = (): number => sentAt.reduce((u, at) => u + (at >= cmd.windowStartAt && at < cmd.windowEndAt ? 1 : 0), 0);
    const drainUntil = epochNow() + cmd.drainMs;
    while (unanswered() > 0 && epochNow() < drainUntil) await sleep(20);
    return { hist: hist.wire(), skipped, unanswered: unanswered(), errors: errors.wire(), streamsOpen: openAtEnd };
  },
};

export type SteadyApi = typeof api;
serve("steady-worker", api, () => {
  for (const c of clients) c.close();
});
