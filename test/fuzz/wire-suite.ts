/**
 * The wire fuzz (see wire.test.ts) as a suite for one identity: the cases, the random framings
 * and the many-streams tests, with their assertions.
 */
import { constants as h2, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http2";
import { gzipSync } from "node:zlib";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accountedFor, type FuzzSettings } from "./campaign.js";
import { rngFor, type Rng } from "./generators.js";
import { WatchRequest } from "../../src/gen/nodeplane/v1/service.js";
import { FUZZ_RPCS, type FuzzRpc } from "./rpcs.js";
import { CALL_TIMEOUT_MS, type FuzzIdentity, FuzzTarget, type Outcome } from "./target.js";


/** How a stream ended, as the client saw it. */
export type WireOutcome =
  | { kind: "status"; code: status; details: string; messages: Buffer[] }
  | { kind: "http"; status: number }
  | { kind: "reset"; rstCode: number }
  | { kind: "first message"; messages: Buffer[] }
  | { kind: "no answer" }
  | { kind: "client reset" };

interface WireCase {
  name: string;
  /** Request headers: the gRPC defaults, changed. */
  headers?: (h: OutgoingHttpHeaders) => OutgoingHttpHeaders;
  /**
   * What goes on the stream after the headers, given a good message of the RPC; "reset" ends
   * it with RST_STREAM instead of END_STREAM, "open" leaves it open (the server must answer).
   */
  send: (body: Buffer, ctx: SendContext) => Sent;
  /**
   * grpc-js answers this one itself, with INTERNAL, before any handler runs (as grpc-go does for
   * the same violations): the server cannot answer otherwise, so INTERNAL is accepted here.
   */
  grpcJsAnswersInternal?: boolean;
}

interface SendContext {
  /** The RPC's own adjustment of a message (Watch: answer at once), for cases that build their own. */
  prepare: (message: Buffer) => Buffer;
}

interface Sent {
  chunks: Buffer[];
  end: "end" | "reset" | "open";
}

/** The gRPC length-prefixed frame: flag byte, 4-byte big-endian length, message. */
function frame(body: Buffer, opts: { flag?: number; length?: number } = {}): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(opts.flag ?? 0, 0);
  prefix.writeUInt32BE(opts.length ?? body.length, 1);
  return Buffer.concat([prefix, body]);
}

// 16 MiB of zeros: 16 KiB on the wire, four times the receive limit once inflated.
const GZIP_BOMB = gzipSync(Buffer.alloc(16 * 1024 * 1024));

const CASES: WireCase[] = [
  { name: "length prefix longer than the message", send: (b) => ({ chunks: [frame(b, { length: b.length + 10 })], end: "end" }) },
  { name: "length prefix shorter than the message", send: (b) => ({ chunks: [frame(b, { length: Math.max(0, b.length - 3) })], end: "end" }) },
  { name: "frame header cut short", send: (b) => ({ chunks: [frame(b).subarray(0, 3)], end: "end" }) },
  { name: "message cut short", send: (b) => ({ chunks: [frame(b).subarray(0, 5 + (b.length >> 1))], end: "end" }) },
  { name: "no message at all", send: () => ({ chunks: [], end: "end" }) },
  { name: "empty message", send: (_, ctx) => ({ chunks: [frame(ctx.prepare(Buffer.alloc(0)))], end: "end" }) },
  { name: "two messages on one call", send: (b) => ({ chunks: [frame(b), frame(b)], end: "end" }) },
  { name: "message in 1-byte DATA frames", send: (b) => ({ chunks: [...frame(b)].map((x) => Buffer.of(x)), end: "end" }) },
  { name: "declared length 4 GiB - 1, no data", send: () => ({ chunks: [frame(Buffer.alloc(0), { length: 0xffff_ffff })], end: "open" }) },
  { name: "declared length just over the 4 MiB limit, no data", send: () => ({ chunks: [frame(Buffer.alloc(0), { length: 4 * 1024 * 1024 + 1 })], end: "open" }) },
  { name: "compressed flag without grpc-encoding", send: (b) => ({ chunks: [frame(b, { flag: 1 })], end: "end" }) },
  { name: "flag byte neither 0 nor 1", send: (b) => ({ chunks: [frame(b, { flag: 0xff })], end: "end" }) },
  {
    name: "compressed flag with grpc-encoding gzip, bytes not gzip",
    headers: (h) => ({ ...h, "grpc-encoding": "gzip" }),
    send: (b) => ({ chunks: [frame(b, { flag: 1 })], end: "end" }),
    grpcJsAnswersInternal: true,
  },
  {
    name: "gzip bomb (16 MiB inflated)",
    headers: (h) => ({ ...h, "grpc-encoding": "gzip" }),
    send: () => ({ chunks: [frame(GZIP_BOMB, { flag: 1 })], end: "end" }),
  },
  {
    name: "grpc-encoding nobody supports",
    headers: (h) => ({ ...h, "grpc-encoding": "x-fuzz" }),
    send: (b) => ({ chunks: [frame(b, { flag: 1 })], end: "end" }),
  },
  { name: "content-type text/plain", headers: (h) => ({ ...h, "content-type": "text/plain" }), send: (b) => ({ chunks: [frame(b)], end: "end" }) },
  { name: "content-type application/json", headers: (h) => ({ ...h, "content-type": "application/json" }), send: (b) => ({ chunks: [frame(b)], end: "end" }) },
  { name: "no content-type", headers: ({ "content-type": _, ...h }) => h, send: (b) => ({ chunks: [frame(b)], end: "end" }) },
  { name: "no te: trailers", headers: ({ te: _, ...h }) => h, send: (b) => ({ chunks: [frame(b)], end: "end" }) },
  { name: "method GET", headers: (h) => ({ ...h, ":method": "GET" }), send: (b) => ({ chunks: [frame(b)], end: "end" }) },
  {
    name: "grpc-timeout that does not parse",
    headers: (h) => ({ ...h, "grpc-timeout": "soon" }),
    send: (b) => ({ chunks: [frame(b)], end: "end" }),
    grpcJsAnswersInternal: true,
  },
  { name: "64 KiB metadata value", headers: (h) => ({ ...h, "x-fuzz": "a".repeat(65_536) }), send: (b) => ({ chunks: [frame(b)], end: "end" }) },
  { name: "reset right after the headers", send: () => ({ chunks: [], end: "reset" }) },
  { name: "reset mid-message", send: (b) => ({ chunks: [frame(b).subarray(0, 5 + (b.length >> 1))], end: "reset" }) },
  { name: "reset after a whole message", send: (b) => ({ chunks: [frame(b)], end: "reset" }) },
];

/** A good message of the RPC, framed at random: lengths off by a little or a lot, odd flags, random DATA frame sizes and endings. */
function randomFraming(body: Buffer, rng: Rng): Sent {
  const parts: Buffer[] = [];
  for (let n = 1 + rng.int(rng.chance(0.2) ? 3 : 1); n > 0; n--) {
    const length = rng.chance(0.6) ? body.length : rng.pick([0, 1, body.length - 1, body.length + 1, body.length * 2, 2 ** 31, 2 ** 32 - 1]);
    const flag = rng.chance(0.8) ? 0 : rng.pick([1, 2, 0x80, 0xff]);
    parts.push(frame(body, { flag, length: Math.max(0, Math.min(length, 2 ** 32 - 1)) }));
  }
  let bytes = Buffer.concat(parts);
  if (rng.chance(0.3)) bytes = bytes.subarray(0, rng.int(bytes.length + 1));
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = 1 + rng.int(rng.chance(0.5) ? 16 : bytes.length);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return { chunks, end: rng.chance(0.85) ? "end" : "reset" };
}

/** The RPCs every case runs against: a read, a write, both streams, health, reflection. */
const TARGETS = ["GetNode", "Register", "Watch", "Heartbeat", "health.Check", "reflection.v1"].map((name) => {
  const rpc = FUZZ_RPCS.find((r) => r.name === name);
  if (!rpc) throw new Error(`no ${name} in the RPC table`);
  return rpc;
});

const prepareFor = (rpc: FuzzRpc) => (message: Buffer): Buffer => Buffer.from(rpc.prepare ? rpc.prepare(message) : message);
const goodBody = (rpc: FuzzRpc): Buffer => prepareFor(rpc)(Buffer.from(rpc.bases[0]!));

/** The whole gRPC messages in a byte stream (a cut-off last frame is not one). */
function messagesOf(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at + 5 <= data.length; ) {
    const n = data.readUInt32BE(at + 1);
    if (at + 5 + n > data.length) break;
    out.push(data.subarray(at + 5, at + 5 + n));
    at += 5 + n;
  }
  return out;
}

/**
 * A Watch the server accepts from "now" without initial events rightly says nothing. True when
 * what was sent carries exactly one whole message (grpc-js reads any flag but 1-with-an-encoding
 * as uncompressed) that the server's own decoder reads as such a watch.
 */
function rightlySilent(rpc: FuzzRpc, sent: Sent): boolean {
  if (rpc.name !== "Watch" || sent.end !== "end") return false;
  const messages = messagesOf(Buffer.concat(sent.chunks));
  if (messages.length !== 1) return false;
  try {
    return !WatchRequest.decode(messages[0]!).sendInitialEvents;
  } catch {
    return false;
  }
}

/**
 * One stream: headers, `sent`, then wait for the answer. `giveUp`, when given, ends a stream
 * that is rightly silent (see rightlySilent) once it resolves, instead of waiting for the timeout.
 */
function openStream(session: ClientHttp2Session, rpc: FuzzRpc, headers: OutgoingHttpHeaders, sent: Sent, giveUp?: Promise<unknown>): Promise<WireOutcome> {
  return new Promise<WireOutcome>((resolve) => {
    let settled = false;
    const settle = (o: WireOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const stream = session.request(headers, { endStream: false });
    const timer = setTimeout(() => {
      settle({ kind: "no answer" });
      stream.close(h2.NGHTTP2_CANCEL);
    }, CALL_TIMEOUT_MS);
    let response: IncomingHttpHeaders = {};
    const data: Buffer[] = [];
    const statusFrom = (h: IncomingHttpHeaders): WireOutcome | undefined => {
      const code = h["grpc-status"];
      if (code === undefined) return undefined;
      const raw = String(h["grpc-message"] ?? "");
      let details = raw;
      try {
        details = decodeURIComponent(raw);
      } catch {
        // Not percent-encoding: shown as sent.
      }
      return { kind: "status", code: Number(code) as status, details, messages: messagesOf(Buffer.concat(data)) };
    };
    stream.on("response", (h) => {
      response = h;
      // Trailers-only: the status comes with the headers, possibly while our half is still open.
      const s = statusFrom(h);
      if (s) {
        settle(s);
        if (!stream.closed) stream.close(h2.NGHTTP2_NO_ERROR);
      }
    });
    stream.on("data", (chunk: Buffer) => {
      data.push(chunk);
      if (rpc.answeredAtFirstMessage && messagesOf(Buffer.concat(data)).length > 0) {
        settle({ kind: "first message", messages: messagesOf(Buffer.concat(data)) });
        stream.close(h2.NGHTTP2_CANCEL);
      }
    });
    stream.on("trailers", (t) => {
      const s = statusFrom(t);
      if (s) settle(s);
    });
    stream.on("error", () => {});
    stream.on("close", () => {
      const s = statusFrom(response);
      if (s) settle(s);
      else if (sent.end === "reset") settle({ kind: "client reset" });
      else if (response[":status"] !== undefined && Number(response[":status"]) !== 200) settle({ kind: "http", status: Number(response[":status"]) });
      else settle({ kind: "reset", rstCode: stream.rstCode ?? -1 });
    });
    void giveUp?.then(() => {
      settle({ kind: "client reset" });
      stream.close(h2.NGHTTP2_CANCEL);
    });
    for (const chunk of sent.chunks) stream.write(chunk);
    if (sent.end === "end") stream.end();
    else if (sent.end === "reset") stream.close(h2.NGHTTP2_CANCEL);
  });
}

/** What is wrong with an outcome, or undefined. */
function problem(o: WireOutcome, c: Pick<WireCase, "grpcJsAnswersInternal">): string | undefined {
  switch (o.kind) {
    case "no answer":
      return `no answer within ${CALL_TIMEOUT_MS / 1000} s`;
    case "client reset":
      return undefined;
    case "status":
      if (o.code === status.UNKNOWN) return `UNKNOWN: ${o.details}`;
      if (o.code === status.INTERNAL && !c.grpcJsAnswersInternal) return `INTERNAL: ${o.details}`;
      return undefined;
    case "http":
      return o.status >= 400 ? undefined : `HTTP ${o.status} without a gRPC status`;
    case "reset":
      // A reset from the server is an answer; a stream that merely ended is not.
      return o.rstCode !== h2.NGHTTP2_NO_ERROR ? undefined : "ended without a status";
    case "first message":
      return undefined;
  }
}

const describeOutcome = (o: WireOutcome): string =>
  o.kind === "status" ? `${status[o.code]} ${o.details.slice(0, 120)}` : o.kind === "http" ? `HTTP ${o.status}` : o.kind === "reset" ? `reset ${o.rstCode}` : o.kind;

function asOutcome(o: WireOutcome): Outcome {
  if (o.kind === "status") return { code: o.code, details: o.details, responses: o.messages };
  if (o.kind === "first message") return { code: status.OK, details: "", responses: o.messages };
  // Reset or unanswered: the client cannot know whether a write committed.
  return { code: status.UNAVAILABLE, details: o.kind, responses: [] };
}

/**
 * What an identity adds to the suite's assertions: a problem with one answered stream, or
 * undefined (see identities.ts).
 */
export type WireCheck = (rpc: FuzzRpc, outcome: WireOutcome) => string | undefined;

/** The wire fuzz as a vitest suite run as `who`; `settings.iterations` sizes the random framings. */
export function describeWireFuzz(who: FuzzIdentity, settings: FuzzSettings, check?: WireCheck): void {
  // A case that hangs waits CALL_TIMEOUT_MS before it can fail.
  describe(`fuzz wire (${who.name}, seed ${settings.seed})`, { timeout: 3 * CALL_TIMEOUT_MS }, () => {
    let target: FuzzTarget;
    beforeAll(async () => {
      target = await FuzzTarget.start(who);
      await target.seed();
    });
    afterAll(async () => {
      await target?.stop();
    });

    /** Runs `sends` (rpc, what to send) on one new connection; returns the problems found. */
    async function run(c: Pick<WireCase, "headers" | "grpcJsAnswersInternal">, sends: { rpc: FuzzRpc; sent: Sent; label: string }[]): Promise<string[]> {
      await target.ensureUp();
      await target.seed();
      const before = await target.revision();
      const session = target.who.openHttp2(target.port);
      session.on("error", () => {});
      const headersFor = (rpc: FuzzRpc): OutgoingHttpHeaders => {
        const grpcHeaders = { ":method": "POST", ":path": rpc.path, "content-type": "application/grpc", te: "trailers", ...target.who.headers() };
        return c.headers ? c.headers(grpcHeaders) : grpcHeaders;
      };
      const silent = sends.map((s) => rightlySilent(s.rpc, s.sent));
      const others = Promise.all(sends.map((s, i) => (silent[i] ? undefined : openStream(session, s.rpc, headersFor(s.rpc), s.sent))));
      const outcomes = await Promise.all(
        sends.map((s, i) => (silent[i] ? openStream(session, s.rpc, headersFor(s.rpc), s.sent, others) : others.then((o) => o[i]!))),
      );
      session.close();
      const problems = outcomes.flatMap((o, i) => {
        // grpc-js's own INTERNAL for such a case comes from the headers alone, before any of our
      // code (authentication included) runs: it tells nothing about who may do what.
      const byGrpcJs = c.grpcJsAnswersInternal === true && o.kind === "status" && o.code === status.INTERNAL;
      const p = problem(o, c) ?? (byGrpcJs ? undefined : check?.(sends[i]!.rpc, o));
        return p ? [`${sends[i]!.label}: ${p}`] : [];
      });
      const health = await target.health();
      if (!health.up) return [...problems, `server down afterwards: ${health.why}`];
      const calls = outcomes.map((o, i) => ({ rpc: sends[i]!.rpc, outcome: asOutcome(o) }));
      if (!accountedFor(calls, before, health.revision)) {
        problems.push(`store moved ${before} → ${health.revision}, more than the answers account for (${outcomes.map(describeOutcome).join("; ")})`);
      }
      return problems;
    }

    for (const c of CASES) {
      it(c.name, async () => {
        const problems = await run(
          c,
          TARGETS.map((rpc) => ({
            rpc,
            sent: c.send(goodBody(rpc), { prepare: prepareFor(rpc) }),
            label: rpc.name,
          })),
        );
        expect(problems, problems.join("\n")).toEqual([]);
      });
    }

    const perRpc = Math.max(20, Math.ceil(settings.iterations / 10));
    it("random framings of good messages", { timeout: 180_000 + perRpc * TARGETS.length * 20 }, async () => {
      const problems: string[] = [];
      for (const rpc of TARGETS) {
        for (let start = 0; start < perRpc; start += 50) {
          const sends = Array.from({ length: Math.min(50, perRpc - start) }, (_, k) => {
            const i = start + k;
            return { rpc, sent: randomFraming(goodBody(rpc), rngFor(settings.seed, "wire", rpc.name, i)), label: `${rpc.name} framing #${i}` };
          });
          problems.push(...(await run({}, sends)));
        }
      }
      const shown = problems.slice(0, 20).join("\n") + (problems.length > 20 ? `\n… and ${problems.length - 20} more` : "");
      expect(problems, `${shown}\n(seed ${settings.seed}: replay with NODEPLANE_FUZZ_SEED=${settings.seed})`).toEqual([]);
    });

    it("1,000 streams at once on one connection, each left mid-message, then all reset", async () => {
      const body = goodBody(TARGETS[1]!);
      const problems = await run(
        {},
        Array.from({ length: 1000 }, (_, i) => ({ rpc: TARGETS[i % TARGETS.length]!, sent: { chunks: [frame(body).subarray(0, 7)], end: "reset" as const }, label: `stream ${i}` })),
      );
      expect(problems, problems.join("\n")).toEqual([]);
    });

    it("500 whole calls at once on one connection are all answered", async () => {
      const problems = await run(
        {},
        Array.from({ length: 500 }, (_, i) => {
          const rpc = TARGETS[i % TARGETS.length]!;
          return { rpc, sent: { chunks: [frame(goodBody(rpc))], end: "end" as const }, label: `${rpc.name} call ${i}` };
        }),
      );
      expect(problems, problems.join("\n")).toEqual([]);
    });
  });
}
