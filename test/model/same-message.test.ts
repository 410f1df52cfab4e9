/**
 * sameMessage: decoded messages compared field by field, as the no-op check of node writes uses
 * it: equal must mean "encodes to the same thing, map order aside"; anything else is a change.
 */
import { describe, expect, it } from "vitest";
import { Node, NodeSpec } from "../../src/gen/nodeplane/v1/node.js";
import { sameMessage } from "../../src/model/same-message.js";
import { realisticNode } from "../support/realistic-node.js";

/** A realistic node as decoded from its bytes, its first condition's heartbeat at a fixed time. */
function decoded(): Node {
  const node = Node.fromPartial(realisticNode(3, "same-1"));
  node.status!.conditions[0]!.lastHeartbeatTime = new Date(Date.UTC(2026, 11, 6));
  node.spec ??= NodeSpec.fromPartial({ podCidr: "10.0.0.0/24" });
  return Node.decode(Node.encode(node).finish());
}

describe("sameMessage", () => {
  it("finds two decodings of one node equal, and equal to a copy sharing its parts", () => {
    const a = decoded();
    expect(sameMessage(a, decoded())).toBe(true);
    expect(sameMessage(a, { ...a, status: { ...a.status! } })).toBe(true);
  });

  it("ignores the order of map entries, as their meaning does", () => {
    const a = decoded();
    const b = decoded();
    b.metadata!.labels = Object.fromEntries(Object.entries(b.metadata!.labels).reverse());
    expect(Object.keys(b.metadata!.labels)).not.toEqual(Object.keys(a.metadata!.labels));
    expect(sameMessage(a, b)).toBe(true);
  });

  it("sees every kind of field change", () => {
    const changes: Array<[string, (n: Node) => void]> = [
      ["a string in a list element", (n) => (n.status!.conditions[0]!.message += "!")],
      ["a Date by its time", (n) => (n.status!.conditions[0]!.lastHeartbeatTime = new Date(Date.UTC(2026, 11, 6) + 1))],
      ["a bigint", (n) => (n.metadata!.generation += 1n)],
      ["a boolean", (n) => (n.spec!.unschedulable = !n.spec!.unschedulable)],
      ["a list's length", (n) => n.status!.addresses.pop()],
      ["a map value", (n) => (n.status!.capacity["cpu"] = "1")],
      ["a map key more", (n) => (n.metadata!.labels["extra"] = "")],
      ["a map key less", (n) => delete n.metadata!.labels[Object.keys(n.metadata!.labels)[0]!]],
      ["a message unset", (n) => (n.status!.nodeInfo = undefined)],
    ];
    for (const [what, change] of changes) {
      const b = decoded();
      change(b);
      expect([what, sameMessage(decoded(), b)]).toEqual([what, false]);
    }
  });

  it("counts as changed what it cannot tell apart safely", () => {
    expect(sameMessage(Number.NaN, Number.NaN)).toBe(false);
    expect(sameMessage({ a: undefined }, {})).toBe(false);
    expect(sameMessage(new Date(0), 0)).toBe(false);
    expect(sameMessage([], {})).toBe(false);
    expect(sameMessage(null, {})).toBe(false);
    expect(sameMessage(new Date(Number.NaN), new Date(Number.NaN))).toBe(false);
  });
});
