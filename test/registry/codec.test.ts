/** The stored encoding: resource_version left out, and one reused writer that never leaks bytes between objects. */
import { describe, expect, it } from "vitest";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { decodeNode, encodeNode } from "../../src/model/codec.js";
import { realisticNode } from "../support/realistic-node.js";

const node = (i: number): Node => Node.fromPartial(realisticNode(i));
/** What a writer of its own makes of `n` as stored (no resource_version). */
const fresh = (n: Node): Uint8Array => Node.encode({ ...n, metadata: { ...n.metadata!, resourceVersion: "" } }).finish();

describe("encodeNode", () => {
  it("leaves resource_version out and answers bytes of their own", () => {
    const a = node(1);
    a.metadata!.resourceVersion = "42";
    const bytesA = encodeNode(a);
    const bytesB = encodeNode(node(2));
    expect(bytesA).toEqual(fresh(a));
    expect(bytesB).toEqual(fresh(node(2)));
    expect(decodeNode({ key: "k", value: bytesA, createRevision: 7, modRevision: 7 }).metadata?.resourceVersion).toBe("7");
    expect(a.metadata!.resourceVersion).toBe("42");
  });

  it("is unharmed by an encode that threw half way through an object", () => {
    const bad = node(3);
    bad.status!.conditions[0]!.lastHeartbeatTime = new Date(Number.NaN);
    expect(() => encodeNode(bad)).toThrow();
    expect(encodeNode(node(4))).toEqual(fresh(node(4)));
  });

  it("encodes a small node right after a huge one", () => {
    const huge = node(5);
    huge.metadata!.annotations = { "example.com/blob": "x".repeat(200 * 1024) };
    expect(encodeNode(huge)).toEqual(fresh(huge));
    expect(encodeNode(node(6))).toEqual(fresh(node(6)));
  });
});
