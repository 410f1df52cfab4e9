/**
 * Writes answer with the objects they built instead of decoding what they stored: each answer
 * must be exactly what a read returns afterwards (resource_version, uid, timestamps, managed
 * annotations, allocated pod CIDRs, stamped taints and conditions), down to the encoded bytes.
 * The server's serializers of these answers (src/server/node-wire.ts, which copy a written
 * node's stored bytes instead of encoding it again) write exactly the generated codec's bytes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { Lease } from "../../src/gen/nodeplane/v1/lease.js";
import { Node, type Taint } from "../../src/gen/nodeplane/v1/node.js";
import { ipamRanges } from "../../src/ipam/config.js";
import { Ipam } from "../../src/ipam/ipam.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { RegisterResponse, UpdateStatusResponse } from "../../src/gen/nodeplane/v1/service.js";
import { nodeAnswerSerializers } from "../../src/server/node-wire.js";
import { answerFields } from "../../src/model/node-bytes.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { realisticNode } from "../support/realistic-node.js";

const clock = new FakeClock(Date.UTC(2026, 10, 25, 12, 0, 0));
const uninitialized: Taint = { key: "node.cloudprovider.kubernetes.io/uninitialized", value: "true", effect: "NoSchedule", timeAdded: undefined };
let dir: string;
let store: SqliteStore;
let registry: NodeRegistry;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodeplane-answers-"));
  store = await SqliteStore.open({ dir });
  // Two /32 blocks: the third node created finds none free.
  const ipam = new Ipam({ ranges: ipamRanges({ clusterCidr: "10.244.0.0/31", nodeCidrMaskSizeIpv4: 32 }), events: { record: async () => undefined } });
  registry = new NodeRegistry({ store, clock, ipam, newNodeTaints: [uninitialized] });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const heartbeat = new Date(Date.UTC(2026, 10, 25, 11, 59, 0));

/**
 * A realistic agent registration, with a register-with NoExecute taint (stamped by the server)
 * and heartbeat times of its own, so that registering it twice changes nothing but the Lease.
 */
function agentNode(i: number, name: string, readyStatus = "True"): Node {
  const node = Node.fromPartial({
    ...realisticNode(i, name),
    spec: { taints: [{ key: "example.com/draining", value: "", effect: "NoExecute" }] },
  });
  for (const c of node.status!.conditions) {
    c.lastHeartbeatTime = heartbeat;
    if (c.type === "Ready") c.status = readyStatus;
  }
  return node;
}

async function expectNodeAsRead(answer: Node): Promise<void> {
  const read = await registry.getNode(answer.metadata!.name);
  expect(answer).toEqual(read);
  expect(Node.encode(answer).finish()).toEqual(Node.encode(read).finish());
}

async function expectLeaseAsRead(answer: Lease): Promise<void> {
  const read = await registry.getLease(answer.metadata!.name);
  expect(answer).toEqual(read);
  expect(Lease.encode(answer).finish()).toEqual(Lease.encode(read).finish());
}

describe("a write's answer equals a later read", () => {
  // A case's answer is a node the write stored, sent as its stored bytes, unless nothing changed (then encoded).
  const cases: [string, () => Promise<{ node?: Node; lease?: Lease }>][] = [
    ["Register creating a node", () => registry.register(agentNode(1, "answer-1"))],
    ["Register again, nothing changed but the Lease", () => registry.register(agentNode(1, "answer-1"))],
    ["Register again with a changed condition", () => registry.register(agentNode(1, "answer-1", "False"))],
    [
      "Register again with other labels (agent ownership annotations change)",
      () => registry.register(Node.fromPartial({ ...agentNode(1, "answer-1"), metadata: { name: "answer-1", labels: { "example.com/only": "this" } } })),
    ],
    ["Register when no pod CIDR block is free (CIDRNotAvailable condition)", async () => {
      await registry.register(agentNode(2, "answer-2"));
      const answer = await registry.register(agentNode(3, "answer-3"));
      expect(answer.node.status!.conditions.map((c) => c.reason)).toContain("CIDRNotAvailable");
      return answer;
    }],
    ["CreateNode", async () => ({ node: await registry.createNode(Node.fromPartial({ metadata: { name: "answer-manual", labels: { a: "b" } } })) })],
    ["UpdateNode", async () => {
      const stored = await registry.getNode("answer-1");
      const node = await registry.updateNode({
        ...stored,
        metadata: { ...stored.metadata!, annotations: { ...stored.metadata!.annotations, "ops/ticket": "T-1" } },
        spec: { ...stored.spec!, unschedulable: true, taints: [...stored.spec!.taints, { key: "ops/maintenance", value: "", effect: "NoExecute", timeAdded: undefined }] },
      });
      return { node };
    }],
    ["UpdateStatus, nothing changed (answered without a write)", async () => ({ node: await registry.updateStatus("answer-1", agentNode(1, "answer-1").status, "") })],
    ["UpdateStatus with a changed condition", async () => ({ node: await registry.updateStatus("answer-1", agentNode(1, "answer-1", "False").status, "") })],
    ["RenewLease", async () => ({ lease: await registry.renewLease("answer-1", "answer-1", 30) })],
  ];
  it.each(cases)("%s", async (_name, write) => {
    clock.advance(1_500);
    const { node, lease } = await write();
    if (node) await expectNodeAsRead(node);
    if (lease) await expectLeaseAsRead(lease);
    if (node) {
      expect(answerFields(node) !== undefined, "sent as the bytes the write stored").toBe(!_name.includes("nothing changed"));
      expect(nodeAnswerSerializers.updateStatus.responseSerialize({ node })).toEqual(Buffer.from(UpdateStatusResponse.encode({ node }).finish()));
      expect(nodeAnswerSerializers.register.responseSerialize({ node, lease })).toEqual(Buffer.from(RegisterResponse.encode({ node, lease }).finish()));
    }
  });
});

describe("Register's answer", () => {
  it("carries the server-set fields a read shows", async () => {
    const { node, lease } = await registry.register(agentNode(4, "answer-4"));
    expect(Number(node.metadata!.resourceVersion)).toBe(await store.currentRevision());
    expect(lease.metadata!.resourceVersion).toBe(node.metadata!.resourceVersion);
    expect(node.metadata!.annotations).toHaveProperty(["nodeplane.io/agent-labels"]);
    expect(node.spec!.taints.find((t) => t.effect === "NoExecute")?.timeAdded?.getTime()).toBe(clock.now());
    expect(lease.metadata!.ownerReferences[0]?.uid).toBe(node.metadata!.uid);
  });

  it("is the stored node itself when nothing but the Lease changes", async () => {
    // Without pod CIDR allocation (exhausted in `registry`, which would add a condition).
    const plain = new NodeRegistry({ store, clock });
    const first = await plain.register(agentNode(7, "answer-7"));
    clock.advance(1_500);
    const second = await plain.register(agentNode(7, "answer-7"));
    expect(second.node).toEqual(first.node);
    expect(Number(second.lease.metadata!.resourceVersion)).toBeGreaterThan(Number(first.node.metadata!.resourceVersion));
    expect(second.lease.spec!.renewTime?.getTime()).toBe(clock.now());
  });

  it("shares nothing with the registry's configuration: changing it changes no later node", async () => {
    const { node } = await registry.register(agentNode(5, "answer-5"));
    const taint = node.spec!.taints.find((t) => t.key === uninitialized.key)!;
    taint.key = "changed/by-caller";
    const next = await registry.register(agentNode(6, "answer-6"));
    expect(next.node.spec!.taints.map((t) => t.key)).toContain(uninitialized.key);
    expect(uninitialized.key).toBe("node.cloudprovider.kubernetes.io/uninitialized");
  });
});
