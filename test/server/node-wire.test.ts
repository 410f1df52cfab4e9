/**
 * The serializers of written nodes' answers (src/server/node-wire.ts) copy the bytes a write
 * stored, resource_version put in (src/model/node-bytes.ts): exactly the generated codec's bytes
 * for the same answer, whatever the lengths (one-, two- and three-byte length varints), and the
 * generated encoder's bytes for any node that is not a write's answer, or whose stored bytes are
 * not as this server writes them.
 */
import { describe, expect, it } from "vitest";
import { Lease } from "../../src/gen/nodeplane/v1/lease.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { CreateNodeResponse, RegisterResponse, UpdateNodeResponse, UpdateStatusResponse, WatchResponse } from "../../src/gen/nodeplane/v1/service.js";
import { encodeNode } from "../../src/model/codec.js";
import { fullNode } from "../../src/model/node.js";
import { answerFields, writtenNode } from "../../src/model/node-bytes.js";
import { SharedNodeDecoder } from "../../src/model/shared-node.js";
import { nodeAnswerSerializers } from "../../src/server/node-wire.js";
import { watchResponseBytes } from "../../src/server/watch-wire.js";
import { realisticNode } from "../support/realistic-node.js";

const kv = (value: Uint8Array, modRevision: number) => ({ key: "/registry/minions/x", value, createRevision: 1, modRevision });
const written = (node: Node, modRevision: number): Node => writtenNode(node, kv(encodeNode(node), modRevision));

const base = fullNode(Node.fromPartial(realisticNode(7)));
const nodes: [string, Node][] = [
  ["a realistic node", base],
  ["no namespace or uid", { ...base, metadata: { ...base.metadata, namespace: "", uid: "" } }],
  ["only a name", fullNode(Node.fromPartial({ metadata: { name: "n" } }))],
  ["metadata over 16 KiB (a three-byte length)", { ...base, metadata: { ...base.metadata, annotations: { big: "x".repeat(20_000) } } }],
  ["a name outside ASCII", { ...base, metadata: { ...base.metadata, name: "nœud-🚀" } }],
];
const revisions = [1, 127, 128, 16_383, 16_384, 2 ** 40];

describe("a written node's answer on the wire", () => {
  for (const [what, node] of nodes) {
    it.each(revisions)(`${what}, revision %d: the generated codec's bytes`, (rev) => {
      const answer = written(node, rev);
      expect(answerFields(answer)).toBeDefined();
      const lease = Lease.fromPartial({ metadata: { name: "n", resourceVersion: String(rev) }, spec: { holderIdentity: "n", leaseDurationSeconds: 40 } });
      const s = nodeAnswerSerializers;
      expect(s.updateStatus.responseSerialize({ node: answer })).toEqual(Buffer.from(UpdateStatusResponse.encode({ node: answer }).finish()));
      expect(s.updateNode.responseSerialize({ node: answer })).toEqual(Buffer.from(UpdateNodeResponse.encode({ node: answer }).finish()));
      expect(s.createNode.responseSerialize({ node: answer })).toEqual(Buffer.from(CreateNodeResponse.encode({ node: answer }).finish()));
      expect(s.register.responseSerialize({ node: answer, lease })).toEqual(Buffer.from(RegisterResponse.encode({ node: answer, lease }).finish()));
    });
  }

  it("encodes any other node with the generated codec", () => {
    const cases: [string, Node | undefined][] = [
      ["a node no write answered (a read's)", { ...base, metadata: { ...base.metadata, resourceVersion: "9" } }],
      ["a copy of a written node (the copy was not answered by the write)", { ...written(base, 5) }],
      ["no node", undefined],
    ];
    for (const [, node] of cases) {
      if (node) expect(answerFields(node)).toBeUndefined();
      expect(nodeAnswerSerializers.updateStatus.responseSerialize({ node })).toEqual(Buffer.from(UpdateStatusResponse.encode({ node }).finish()));
    }
  });

  it("encodes with the generated codec when the stored bytes are not as this server writes them", () => {
    const good = encodeNode(base);
    const odd: [string, Uint8Array][] = [
      ["no metadata first", Buffer.concat([good.subarray(good.indexOf(0x12, 1))])],
      ["a metadata length past the end", Buffer.from([0x0a, 0xff, 0x7f, 0x0a])],
      ["a length varint cut off", Buffer.from([0x0a, 0xff])],
      ["a name field past the metadata's end", Buffer.from([0x0a, 0x03, 0x0a, 0x05, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61])],
      ["no spec or status (decoded, they are empty ones, which the encoder writes)", encodeNode(Node.fromPartial({ metadata: { name: "n" } }))],
      ["status before spec", Buffer.concat([encodeNode(fullNode(Node.fromPartial({ metadata: { name: "n" } }))).subarray(0, 3), Buffer.from([0x1a, 0x00, 0x12, 0x00])])],
      ["a field after the status", Buffer.concat([encodeNode(base), Buffer.from([0x20, 0x01])])],
      ["resource_version already stored", Buffer.from([0x0a, 0x06, 0x0a, 0x01, 0x6e, 0x22, 0x01, 0x37])],
      ["nothing", new Uint8Array()],
    ];
    for (const [what, value] of odd) {
      const answer = writtenNode(base, kv(value, 42));
      expect(answerFields(answer), what).toBeUndefined();
      expect(nodeAnswerSerializers.updateStatus.responseSerialize({ node: answer })).toEqual(Buffer.from(UpdateStatusResponse.encode({ node: answer }).finish()));
    }
  });
});

describe("a watched node's event on the wire", () => {
  const decoder = new SharedNodeDecoder();
  for (const [what, node] of nodes) {
    it.each(revisions)(`${what}, revision %d: the generated codec's bytes, from the stored bytes`, (rev) => {
      const stored = encodeNode(node);
      const shared = decoder.decode(kv(stored, rev));
      for (const type of ["ADDED", "MODIFIED"] as const) {
        const bytes = watchResponseBytes({ type, node: shared, revision: rev, stored });
        expect(bytes).toEqual(Buffer.from(WatchResponse.encode({ type, node: shared, resourceVersion: String(rev) }).finish()));
      }
    });
  }

  it("copies the stored bytes, drops them once sent, and encodes the node when they do not fit the event", () => {
    const shared = decoder.decode(kv(encodeNode(base), 9));
    const other = encodeNode({ ...base, metadata: { ...base.metadata, name: "someone-else" } });
    // The stored bytes are what is sent: the event's node is not encoded again (these bytes are
    // another node's only to tell the two apart; the informer hands a node's own).
    const ev = { type: "MODIFIED" as const, node: shared, revision: 9, stored: other };
    const bytes = watchResponseBytes(ev);
    const copied = WatchResponse.decode(bytes);
    expect(copied.node!.metadata!.name).toBe("someone-else");
    expect(ev.stored).toBeUndefined();
    // In memory of their own: a slice of Node's shared Buffer pool would keep its whole slab.
    expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
    // A node whose resource_version is not the event's (a DELETED one's previous state), or
    // bytes not as this server writes them: encoded.
    for (const ev of [
      { type: "MODIFIED" as const, node: shared, revision: 10, stored: other },
      { type: "MODIFIED" as const, node: shared, revision: 9, stored: new Uint8Array([0x12, 0x00]) },
      { type: "MODIFIED" as const, node: decoder.decode(kv(encodeNode(Node.fromPartial({ metadata: { name: "n" } })), 9)), revision: 9, stored: encodeNode(Node.fromPartial({ metadata: { name: "n" } })) },
    ]) {
      const encoded = watchResponseBytes(ev);
      expect(encoded).toEqual(Buffer.from(WatchResponse.encode({ type: ev.type, node: ev.node, resourceVersion: String(ev.revision) }).finish()));
      expect(encoded.buffer.byteLength).toBe(encoded.byteLength);
    }
  });
});
