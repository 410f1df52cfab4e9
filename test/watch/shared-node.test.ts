/** The watch cache's shared node copy: complete, equal to a plain decode, compact, frozen. */
import { describe, expect, it } from "vitest";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { decodeNode, encodeNode } from "../../src/model/codec.js";
import { nodeKey } from "../../src/model/keys.js";
import type { KeyValue } from "../../src/store/store.js";
import { SharedNodeDecoder } from "../../src/model/shared-node.js";

const stored = (node: Node, rev: number): KeyValue => ({ key: nodeKey(node.metadata!.name), value: encodeNode(node), createRevision: rev, modRevision: rev });

const at = new Date(Date.UTC(2026, 0, 1));
const labels = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`example.com/label-${i}`, `value-${i % 3}`]));
const node = Node.fromPartial({
  metadata: { name: "n1", labels: { ...labels, "kubernetes.io/hostname": "n1" }, annotations: { a: "b" }, creationTimestamp: at },
  spec: { taints: [{ key: "k", value: "v", effect: "NoExecute", timeAdded: at }] },
  status: {
    capacity: { cpu: "4" },
    addresses: [{ type: "Hostname", address: "n1" }],
    conditions: ["Ready", "MemoryPressure"].map((type) => ({ type, status: "True", reason: "R", message: "m", lastHeartbeatTime: at, lastTransitionTime: at })),
    nodeInfo: { kernelVersion: "6.1.0" },
  },
});

describe("SharedNodeDecoder", () => {
  it("decodes what a plain decode does, with one Date per distinct time", () => {
    const decoder = new SharedNodeDecoder();
    const shared = decoder.decode(stored(node, 7));
    expect(shared).toEqual(decodeNode(stored(node, 7)));
    expect(shared.metadata.resourceVersion).toBe("7");
    const [ready, memory] = shared.status.conditions;
    expect(ready!.lastHeartbeatTime).toBe(memory!.lastTransitionTime);
    expect(ready!.lastHeartbeatTime).toBe(shared.metadata.creationTimestamp);
    expect(shared.spec.taints[0]!.timeAdded).toBe(shared.metadata.creationTimestamp);
  });

  it("fills absent parts, as the controllers expect a FullNode", () => {
    const bare = new SharedNodeDecoder().decode(stored(Node.fromPartial({ metadata: { name: "bare" } }), 3));
    expect(bare.spec.taints).toEqual([]);
    expect(bare.status.conditions).toEqual([]);
  });

  it("freezes the whole node: nobody can change what every reader shares", () => {
    const shared = new SharedNodeDecoder().decode(stored(node, 7));
    const parts: object[] = [
      shared, shared.metadata, shared.metadata.labels, shared.metadata.annotations, shared.spec, shared.spec.taints,
      shared.spec.taints[0]!, shared.status, shared.status.capacity, shared.status.addresses[0]!, shared.status.conditions[1]!,
      shared.status.nodeInfo!, shared.metadata.creationTimestamp!,
    ];
    for (const part of parts) expect(Object.isFrozen(part)).toBe(true);
    expect(() => shared.status.conditions.push(shared.status.conditions[0]!)).toThrow(TypeError);
    expect(() => {
      (shared.metadata as { name: string }).name = "other";
    }).toThrow(TypeError);
  });

  describe("given the node's previous copy", () => {
    const decoder = new SharedNodeDecoder();
    const v1 = decoder.decode(stored(node, 7));
    const later = new Date(at.getTime() + 10_000);
    const withConditions = (n: Node): Node => ({
      ...n,
      status: { ...n.status!, conditions: n.status!.conditions.map((c) => (c.type === "Ready" ? { ...c, message: "seq 2", lastHeartbeatTime: later } : c)) },
    });

    it("takes every unchanged part from it and equals a plain decode", () => {
      const next = withConditions(node);
      const v2 = decoder.decode(stored(next, 8), v1);
      expect(v2).toEqual(decodeNode(stored(next, 8)));
      expect(v2.metadata.resourceVersion).toBe("8");
      expect(v2.metadata).not.toBe(v1.metadata);
      for (const [now, before] of [
        [v2.metadata.labels, v1.metadata.labels],
        [v2.metadata.annotations, v1.metadata.annotations],
        [v2.metadata.creationTimestamp, v1.metadata.creationTimestamp],
        [v2.spec, v1.spec],
        [v2.status.capacity, v1.status.capacity],
        [v2.status.addresses, v1.status.addresses],
        [v2.status.nodeInfo, v1.status.nodeInfo],
        [v2.status.conditions[1], v1.status.conditions[1]], // MemoryPressure, unchanged
      ] as const)
        expect(now).toBe(before);
      expect(v2.status.conditions[0]).not.toBe(v1.status.conditions[0]);
      expect(v2.status.conditions[0]!.lastHeartbeatTime).toEqual(later);
      expect(v2.status.conditions[0]!.lastTransitionTime).toBe(v1.metadata.creationTimestamp); // one Date per time still
      expect(Object.isFrozen(v2.status.conditions[0])).toBe(true);
      expect(Object.isFrozen(v2.status.conditions)).toBe(true);
      expect(v1).toEqual(decodeNode(stored(node, 7))); // the previous copy is not changed
    });

    it("gives a new part's time the Date a shared part holds (one Date per distinct time still)", () => {
      // Ready's heartbeat moves to MemoryPressure's time; MemoryPressure is shared, and comes later.
      const memoryAt = new Date(at.getTime() + 20_000);
      const base = { ...node, status: { ...node.status!, conditions: node.status!.conditions.map((c) => (c.type === "MemoryPressure" ? { ...c, lastHeartbeatTime: memoryAt } : c)) } };
      const before = decoder.decode(stored(base, 10));
      const next = { ...base, status: { ...base.status, conditions: base.status.conditions.map((c) => (c.type === "Ready" ? { ...c, lastHeartbeatTime: memoryAt } : c)) } };
      const after = decoder.decode(stored(next, 11), before);
      expect(after.status.conditions[1]).toBe(before.status.conditions[1]);
      expect(after.status.conditions[0]!.lastHeartbeatTime).toBe(after.status.conditions[1]!.lastHeartbeatTime);
      expect(after).toEqual(decodeNode(stored(next, 11)));
    });

    it("keeps a changed map's own entries and order, and shares nothing that differs", () => {
      const { a: _dropped, ...rest } = node.metadata!.annotations;
      const reordered = Object.fromEntries(Object.entries(node.metadata!.labels).reverse());
      const next = { ...node, metadata: { ...node.metadata!, labels: reordered, annotations: { ...rest, c: "d" } } };
      const v2 = decoder.decode(stored(next, 9), v1);
      expect(v2).toEqual(decodeNode(stored(next, 9)));
      expect(v2.metadata.labels).not.toBe(v1.metadata.labels);
      expect(Object.keys(v2.metadata.labels)).toEqual(Object.keys(reordered));
      expect(v2.metadata.annotations).toEqual({ c: "d" });
      expect(v2.status).toBe(v1.status); // all of the status is unchanged
    });
  });
});
