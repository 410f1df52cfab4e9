/**
 * What the gate measures a request by, with authentication on: its size as received. Found by
 * the fuzz suite run with authentication on (test/fuzz/bodies-auth.test.ts): the gate measured
 * a re-encoding of the decoded request, which
 * - threw for a timestamp the decoder accepts but cannot encode (seconds beyond JavaScript's
 *   dates), so an operator's CreateNode was answered INTERNAL instead of the validator's
 *   INVALID_ARGUMENT naming the field;
 * - dropped unknown fields, so a node could send any amount of them past --max-node-request-size.
 */
import * as grpc from "@grpc/grpc-js";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tlsCredentials } from "../../src/auth/client-credentials.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { RegisterRequest } from "../../src/gen/nodeplane/v1/service.js";
import { type AuthHarness, type Credential, startAuthHarness, TOKENS } from "../support/auth.js";
import { agentNode } from "../support/server.js";

const NODE_LIMIT = 64 * 1024;

/** One unary call with raw request bytes; resolves with "CODE details". */
function rawCall(h: AuthHarness, c: Credential, path: string, body: Uint8Array): Promise<string> {
  const client = new grpc.Client(h.address, tlsCredentials({ ca: h.caPem, cert: c.cert, key: c.key }));
  const md = new grpc.Metadata();
  if (c.token) md.set("authorization", `Bearer ${c.token}`);
  const id = (b: Buffer): Buffer => b;
  return new Promise<string>((resolve) => {
    client.makeUnaryRequest(path, id, id, Buffer.from(body), md, { deadline: Date.now() + 10_000 }, (err) => {
      client.close();
      resolve(err ? `${grpc.status[err.code ?? grpc.status.UNKNOWN]} ${err.details}` : "OK");
    });
  });
}

/**
 * A request whose field 1 is the node `name` as an agent registers it, with one taint whose
 * time_added is `seconds` after the epoch (written by hand: the generated encoder cannot).
 */
function nodeRequestWithTaintAddedAt(name: string, seconds: bigint): Uint8Array {
  const w = new BinaryWriter();
  w.uint32((2 << 3) | 2).fork(); // spec (the generated decoder keeps the last one)
  w.uint32((5 << 3) | 2).fork(); // taints
  w.uint32((1 << 3) | 2).string("example.com/x");
  w.uint32((3 << 3) | 2).string("NoSchedule");
  w.uint32((4 << 3) | 2).fork().uint32(1 << 3).int64(seconds).join(); // time_added { seconds }
  w.join().join();
  const node = Buffer.concat([Node.encode(Node.fromPartial(agentNode(name))).finish(), w.finish()]);
  return new BinaryWriter().uint32((1 << 3) | 2).bytes(node).finish();
}

/** `message` followed by an unknown field of `bytes` bytes (decoders skip it). */
function withUnknownField(message: Uint8Array, bytes: number): Uint8Array {
  return Buffer.concat([message, new BinaryWriter().uint32((999 << 3) | 2).bytes(new Uint8Array(bytes)).finish()]);
}

describe("request size, with authentication on", () => {
  let h: AuthHarness;
  beforeAll(async () => {
    h = await startAuthHarness({ limits: { maxNodeRequestBytes: NODE_LIMIT } });
  });
  afterAll(() => h.close());

  it("a timestamp beyond JavaScript's dates is INVALID_ARGUMENT naming the field, for an operator as without authentication", async () => {
    const body = nodeRequestWithTaintAddedAt("t1", 2n ** 62n);
    const answer = await rawCall(h, { token: TOKENS.operator }, "/nodeplane.v1.NodeService/CreateNode", body);
    expect(answer).toMatch(/^INVALID_ARGUMENT .*spec\.taints\[0\]\.time_added/);
  });

  it("the same from a node about its own Node is INVALID_ARGUMENT too", async () => {
    const body = nodeRequestWithTaintAddedAt("t2", 2n ** 62n);
    const answer = await rawCall(h, await nodeCredential(h, "t2"), "/nodeplane.v1.NodeService/Register", body);
    expect(answer).toMatch(/^INVALID_ARGUMENT .*spec\.taints\[0\]\.time_added/);
  });

  it("unknown fields count against a node's size limit: a small Register padded past it is refused", async () => {
    const body = withUnknownField(RegisterRequest.encode({ node: Node.fromPartial(agentNode("t3")) }).finish(), 2 * NODE_LIMIT);
    const answer = await rawCall(h, await nodeCredential(h, "t3"), "/nodeplane.v1.NodeService/Register", body);
    expect(answer).toBe(`RESOURCE_EXHAUSTED request of ${body.length} bytes from user "system:node:t3" is over the ${NODE_LIMIT}-byte limit for nodes and bootstrap tokens (--max-node-request-size)`);
    // Unpadded, the same request is fine.
    const plain = RegisterRequest.encode({ node: Node.fromPartial(agentNode("t3")) }).finish();
    expect(await rawCall(h, await nodeCredential(h, "t3"), "/nodeplane.v1.NodeService/Register", plain)).toBe("OK");
  });
});

async function nodeCredential(h: AuthHarness, name: string): Promise<Credential> {
  return h.certificate(`system:node:${name}`, ["system:nodes"]);
}
