/**
 * A steady-heartbeat worker of bench/steady-heartbeat.ts: simulates `count` agents, each with its
 * own long-lived Heartbeat stream (as the SDK's NodeAgent holds one), renewing its node's Lease
 * every `intervalMs` at a phase of its own (seeded, uniform over one interval), so the fleet's
 * load is smooth as a real fleet's is. A stream opens at its node's first renewal (the first
 * interval is the ramp). An agent never has two renewals outstanding: a renewal due while the
 * previous one is unanswered is counted as skipped.
 *
 * The generator must cost far less than the server it measures (they share the machine's cores),
 * so it speaks gRPC by hand over plain node:http2 sessions rather than through grpc-js: requests
 * are framed once (0x00, u32 BE length, bytes), answers are split out of the DATA chunks by a
 * small per-stream parser and checked by size, decoded on a sample; a stream's trailers must end
 * it with grpc-status 0.
 */
import { status } from "@grpc/grpc-js";
import http2 from "node:http2";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { HeartbeatRequest, HeartbeatResponse, NodeServiceService } from "../src/gen/nodeplane/v1/service.js";
import { scaleNodeName } from "../test/support/realistic-node.js";
import { grpcFrame } from "./h2load.js";
import { epochNow, prng, sleep } from "./harness.js";
import { loopbackOnly, notify, serve } from "./ipc.js";
import { Errors, Histogram } from "./tally.js";

const VERIFY_EVERY = 101;
/** The sender's timer period: renewals due within it go out together. */
const TICK_MS = 5;
const EMPTY: Buffer = Buffer.alloc(0);
const HEADERS = { ":method": "POST", ":path": NodeServiceService.heartbeat.path, "content-type": "application/grpc", te: "trailers" };

export interface SteadyRun {
  /** Seeds this worker's phases. */
  index: number;
  address: string;
  /** Nodes scaleNodeName(first) … scaleNodeName(first + count - 1), already registered. */
  first: number;
  count: number;
  /** HTTP/2 sessions the streams are spread over (node j on session j mod connections). */
  connections: number;
  intervalMs: number;
  /** Epoch ms: renewals start (ramping over one interval). The measured window comes later, by `window`; the note
   * "ramp drained" says when every node has had its first renewal answered. */
  startAt: number;
  /** How long after the window to wait for answers still outstanding. */
  drainMs: number;
}

/** One stream's gRPC messages out of its DATA chunks: a message may span chunks, a chunk may hold several. */
class Unframer {
  private held: Buffer = EMPTY;

  /** Calls `onMessage` for every whole message; an error text on a compressed frame. */
  push(chunk: Buffer, onMessage: (message: Buffer) => void): string | undefined {
    const buf = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
    let at = 0;
    while (buf.length - at >= 5) {
      if (buf[at] !== 0) return `compressed or malformed gRPC frame (flag ${buf[at]})`;
      const len = buf.readUInt32BE(at + 1);
      if (buf.length - at - 5 < len) break;
      onMessage(buf.subarray(at + 5, at + 5 + len));
      at += 5 + len;
    }
    this.held = at === buf.length ? EMPTY : buf.subarray(at);
    return undefined;
  }

  /** Bytes of a message not yet whole. */
  get heldBytes(): number {
    return this.held.length;
  }
}

const sessions: http2.ClientHttp2Session[] = [];
/** Epoch ms: the measured window (renewals sent inside it are recorded), once the parent has set it. */
const measured = { startAt: Infinity, endAt: Infinity };

/** One HTTP/2 session to a loopback `address`, connected (bounded), allowing `streams` streams at once. */
function connect(address: string, streams: number, errors: Errors): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://${loopbackOnly(address)}`, {
    // Until the server's SETTINGS say otherwise the client assumes 100 (and a server that sets no
    // limit never says otherwise); and thousands of streams outgrow the default 10 MB of session memory.
    peerMaxConcurrentStreams: streams + 100,
    maxSessionMemory: 1024,
    settings: { enablePush: false },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`connecting to ${address}: no connection within 10 s`));
    }, 10_000);
    session.once("connect", () => {
      clearTimeout(timer);
      session.off("error", reject);
      session.on("error", (err: Error) => errors.add("SESSION", err.message));
      session.on("goaway", (code: number) => errors.add("GOAWAY", `the server sent GOAWAY (HTTP/2 error ${code})`));
      resolve(session);
    });
    session.once("error", (err: Error) => {
      clearTimeout(timer);
      reject(new Error(`connecting to ${address}: ${err.message}`));
    });
  });
}

/** grpc-message is percent-encoded; a malformed one is shown as sent. */
function percentDecoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A gRPC status code's name ("14" → "UNAVAILABLE"). */
const statusName = (code: string): string => status[Number(code)] ?? `status ${code}`;

const api = {
  async run(cmd: SteadyRun) {
    const n = cmd.count;
    const errors = new Errors();
    const names = Array.from({ length: n }, (_, j) => scaleNodeName(cmd.first + j));
    const requests = names.map((nodeName) => grpcFrame(HeartbeatRequest.encode({ nodeName, holderIdentity: "", leaseDurationSeconds: 0 }).finish()));
    const perSession = Math.ceil(n / cmd.connections);
    for (let c = 0; c < cmd.connections; c++) sessions.push(await connect(cmd.address, perSession, errors));
    // Node j renews at startAt + phase[j] + k × interval; `order` walks the nodes by phase.
    const random = prng(1000 + cmd.index);
    const phase = Float64Array.from({ length: n }, () => random() * cmd.intervalMs);
    const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => phase[a]! - phase[b]!);
    const streams: Array<http2.ClientHttp2Stream | undefined> = new Array(n);
    const sentAt = new Float64Array(n); // epoch ms of the outstanding renewal, 0 = none
    const hist = new Histogram();
    let answered = 0;
    let streamsOpen = 0;
    // The ramp: each node's first answer, and renewals skipped before the window.
    const opened = new Uint8Array(n);
    const firstAnswered = new Uint8Array(n);
    let firstAnswers = 0;
    let drainedNoted = false;
    let lastFirstAnswerAt = 0;
    let firstAnswersAtWindow: number | undefined;
    let lastFirstOpenAt = 0;
    let rampSkipped = 0;
    let skipped = 0;
    // The generator's own lag over the window: a late timer or a late 'data' event inflates the latencies it records.
    const lag = monitorEventLoopDelay({ resolution: 10 });

    const answer = (j: number, res: Buffer): void => {
      const now = epochNow();
      const at = sentAt[j]!;
      if (at === 0) return errors.add("UNASKED", `an answer on ${names[j]}'s stream with no renewal outstanding`);
      sentAt[j] = 0;
      const name = res.length === 0 ? "(nothing)" : answered % VERIFY_EVERY === 0 ? HeartbeatResponse.decode(res).lease?.metadata?.name : names[j];
      if (name !== names[j]) return errors.add("VERIFY", `renewed ${names[j]} but the answer is the lease of ${name ?? "(none)"}`);
      answered++;
      if (firstAnswered[j] === 0) {
        firstAnswered[j] = 1;
        firstAnswers++;
        lastFirstAnswerAt = now;
      }
      if (at >= measured.startAt && at < measured.endAt) hist.record((now - at) * 1000);
    };

    const open = (j: number): http2.ClientHttp2Stream => {
      const stream = sessions[j % sessions.length]!.request(HEADERS, { endStream: false });
      streamsOpen++;
      const unframer = new Unframer();
      let grpcStatus: string | undefined;
      let grpcMessage = "";
      let failed = false;
      const fail = (kind: string, detail: string): void => {
        if (failed) return;
        failed = true;
        errors.add(kind, `${names[j]}: ${detail}`);
      };
      // Trailers, or the response headers of a trailers-only answer (a call refused at once).
      const take = (h: http2.IncomingHttpHeaders): void => {
        if (h["grpc-status"] !== undefined) grpcStatus = String(h["grpc-status"]);
        if (h["grpc-message"] !== undefined) grpcMessage = percentDecoded(String(h["grpc-message"]));
      };
      stream.on("response", (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader) => {
        if (h[":status"] !== 200) fail("HTTP", `HTTP status ${h[":status"]}`);
        take(h);
      });
      stream.on("trailers", take);
      stream.on("data", (chunk: Buffer) => {
        const bad = unframer.push(chunk, (res) => answer(j, res));
        if (bad) fail("FRAME", bad);
      });
      stream.on("error", (err: Error) => fail("STREAM", err.message));
      // The server's end (trailers): the call is over, though our side is still open until we close it
      // ('close' waits for both); the node's next renewal opens a new stream.
      let ended = false;
      stream.on("end", () => {
        ended = true;
        if (streams[j] === stream) streams[j] = undefined;
        sentAt[j] = 0;
        if (grpcStatus === undefined) fail("STREAM", "ended without a grpc-status");
        else if (grpcStatus !== "0") fail(statusName(grpcStatus), grpcMessage);
        else if (unframer.heldBytes > 0) fail("FRAME", `${unframer.heldBytes} bytes of a message cut off by the end of the stream`);
        stream.close();
      });
      stream.on("close", () => {
        streamsOpen--;
        if (streams[j] === stream) streams[j] = undefined;
        sentAt[j] = 0;
        if (!ended) fail("STREAM", `reset before its end (HTTP/2 code ${stream.rstCode})`);
      });
      return stream;
    };

    const renew = (j: number, now: number): void => {
      let stream = streams[j];
      if (stream === undefined) {
        try {
          stream = streams[j] = open(j);
        } catch (err) {
          // The session is gone (its error was counted): this renewal is never sent.
          return errors.add("OPEN", `${names[j]}: ${err instanceof Error ? err.message : String(err)}`);
        }
        if (opened[j] === 0) {
          opened[j] = 1;
          lastFirstOpenAt = now;
        }
      }
      sentAt[j] = now;
      stream.write(requests[j]!);
    };

    await sleep(cmd.startAt - epochNow());
    let openAtEnd = 0;
    let p = 0;
    let cycle = 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = epochNow();
        if (!drainedNoted && firstAnswers === n) {
          drainedNoted = true;
          notify("ramp drained" satisfies SteadyNote);
        }
        if (firstAnswersAtWindow === undefined && now >= measured.startAt) {
          firstAnswersAtWindow = firstAnswers;
          lag.enable();
        }
        if (now >= measured.endAt) {
          lag.disable();
          openAtEnd = streamsOpen;
          clearInterval(tick);
          return resolve();
        }
        for (;;) {
          const j = order[p]!;
          const due = cmd.startAt + cycle * cmd.intervalMs + phase[j]!;
          if (due > now) break;
          if (sentAt[j] === 0) renew(j, now);
          else if (due >= measured.startAt) skipped++;
          else rampSkipped++;
          if (++p === n) {
            p = 0;
            cycle++;
          }
        }
      }, TICK_MS);
    });
    // Answers still due for renewals sent in the window.
    const unanswered = (): number => sentAt.reduce((u, at) => u + (at >= measured.startAt && at < measured.endAt ? 1 : 0), 0);
    const drainUntil = epochNow() + cmd.drainMs;
    while (unanswered() > 0 && epochNow() < drainUntil) await sleep(20);
    return {
      hist: hist.wire(),
      skipped,
      unanswered: unanswered(),
      errors: errors.wire(),
      streamsOpen: openAtEnd,
      /** This worker's event-loop delay over the window, ms. */
      lagMs: { p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 },
      ramp: {
        /** Epoch ms: the last stream opened for the first time; the last node's first answer (0 = some never had one). */
        lastOpenAt: lastFirstOpenAt,
        lastFirstAnswerAt: firstAnswers === n ? lastFirstAnswerAt : 0,
        firstAnswersAtWindow: firstAnswersAtWindow ?? firstAnswers,
        skipped: rampSkipped,
      },
    };
  },

  /** Open the measured window [startAt, endAt) (epoch ms, startAt still ahead); `run` ends after it. */
  async window(w: { startAt: number; endAt: number }) {
    if (epochNow() >= w.startAt) throw new Error("the window must start in the future");
    measured.startAt = w.startAt;
    measured.endAt = w.endAt;
  },
};

export type SteadyApi = typeof api;
/** The worker's one note: every one of its nodes has had its first renewal answered. */
export type SteadyNote = "ramp drained";
serve("steady-worker", api, () => {
  for (const s of sessions) s.destroy();
});
