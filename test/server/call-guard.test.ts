/**
 * What every call passes through, whoever implements its service: an undecodable request is
 * answered INVALID_ARGUMENT (grpc-js says INTERNAL), also in the middle of a stream a library
 * handler is still answering; a status's details are bounded. Raw HTTP/2, as any client sends.
 *
 * This server has no authentication, so no interceptors: the handlers tolerantServer wraps guard
 * the calls (call-guard.ts), and a stream's answers written in one turn go out together. The
 * callGuard interceptor, used with authentication, is exercised by the fuzz suite's
 * authenticated runs.
 */
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, agentNode, startHarness } from "../support/server.js";

interface Answer {
  status: number | undefined;
  details: string;
  messages: number;
  /** DATA frames that carried them. */
  chunks: number;
}

/** Frames `messages` as gRPC messages (uncompressed). */
function frames(...messages: Buffer[]): Buffer {
  return Buffer.concat(messages.flatMap((m) => [Buffer.from([0, ...[24, 16, 8, 0].map((s) => (m.length >>> s) & 0xff)]), m]));
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

/** One call on its own connection: sends `body` and half-closes; the status ends it. */
function call(path: string, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${h.server.port}`);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
    let data = Buffer.alloc(0);
    let chunks = 0;
    let status: number | undefined;
    let details = "";
    const read = (headers: http2.IncomingHttpHeaders): void => {
      if (headers["grpc-status"] !== undefined) status = Number(headers["grpc-status"]);
      if (typeof headers["grpc-message"] === "string") details = decodeURIComponent(headers["grpc-message"]);
    };
    stream.on("response", read);
    stream.on("trailers", read);
    stream.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      chunks++;
    });
    stream.on("close", () => {
      session.close();
      let messages = 0;
      for (let at = 0; at + 5 <= data.length; at += 5 + data.readUInt32BE(at + 1)) messages++;
      resolve({ status, details, messages, chunks });
    });
    stream.end(body);
  });
}

const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
// grpc.reflection.v1 ServerReflectionRequest { list_services: "" }, and one cut after its tag.
const LIST_SERVICES = Buffer.from("3a00", "hex");
const CUT = Buffer.from("3a", "hex");

describe("undecodable requests", () => {
  it("a unary call of ours is answered INVALID_ARGUMENT naming the method", async () => {
    const answer = await call("/nodeplane.v1.NodeService/GetNode", frames(Buffer.from("0a05ab", "hex")));
    expect(answer.status).toBe(INVALID_ARGUMENT);
    expect(answer.details).toMatch(/^request to \/nodeplane\.v1\.NodeService\/GetNode is not a valid protobuf message of its type: /);
  });

  it("mid-stream on a library's service: the answers so far, then INVALID_ARGUMENT (the call used to hang for ever)", async () => {
    const answer = await call("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", frames(LIST_SERVICES, LIST_SERVICES, CUT));
    expect(answer.status).toBe(INVALID_ARGUMENT);
    expect(answer.messages).toBeGreaterThanOrEqual(1);
    expect(answer.messages).toBeLessThanOrEqual(2);
  });

  it("a Heartbeat stream with an undecodable renewal ends with INVALID_ARGUMENT", async () => {
    const answer = await call("/nodeplane.v1.NodeService/Heartbeat", frames(Buffer.from("0aff", "hex")));
    expect(answer.status).toBe(INVALID_ARGUMENT);
  });
});

/** A HeartbeatRequest renewing `node` (node_name = 1). */
const renewal = (node: string): Buffer => Buffer.concat([Buffer.from([0x0a, node.length]), Buffer.from(node)]);

describe("a Heartbeat stream", () => {
  it("ends INVALID_ARGUMENT at an undecodable renewal: the answers so far, none after", async () => {
    await h.client.register(agentNode("guard-1"));
    const answer = await call("/nodeplane.v1.NodeService/Heartbeat", frames(renewal("guard-1"), renewal("guard-1"), Buffer.from("0aff", "hex"), renewal("guard-1")));
    expect(answer.status).toBe(INVALID_ARGUMENT);
    expect(answer.details).toMatch(/^request to \/nodeplane\.v1\.NodeService\/Heartbeat is not a valid protobuf message/);
    // The first renewal is answered at once; the second may still be on its way when the stream ends.
    expect(answer.messages).toBeGreaterThanOrEqual(1);
    expect(answer.messages).toBeLessThanOrEqual(2);
  });

  it("sends the answers to a burst of pipelined renewals together, in order (a few DATA frames, not one each)", async () => {
    await h.client.register(agentNode("guard-2"));
    const n = 200;
    const answer = await call("/nodeplane.v1.NodeService/Heartbeat", frames(...Array.from({ length: n }, () => renewal("guard-2"))));
    expect(answer.status).toBe(0);
    expect(answer.messages).toBe(n);
    expect(answer.chunks).toBeLessThan(n / 4);
  });
});

describe("status details", () => {
  it("are bounded even when a library quotes the request back (health names the unknown service)", async () => {
    const service = "x".repeat(256 * 1024);
    const name = Buffer.from(service);
    const request = Buffer.concat([Buffer.from([0x0a, 0x80 | (name.length & 0x7f), 0x80 | ((name.length >>> 7) & 0x7f), name.length >>> 14]), name]);
    const answer = await call("/grpc.health.v1.Health/Check", frames(request));
    expect(answer.status).toBe(NOT_FOUND);
    expect(answer.details.length).toBeLessThan(4200);
    expect(answer.details).toMatch(/… \(\d+ more bytes\)$/);
  });
});
