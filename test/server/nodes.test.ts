/** Each NodeService RPC's success path and each error row of API.md, through the real SDK. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import {
  AbortedError,
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
} from "../../src/client/errors.js";
import { type Harness, agentNode, startHarness } from "../support/server.js";

const clock = new FakeClock(Date.UTC(2026, 10, 25, 12, 0, 0));
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ clock });
});
afterAll(() => h.close());

describe("Register", () => {
  it("creates the node and its lease, owned by the node", async () => {
    const { node, lease } = await h.client.register(agentNode("reg-1"));
    expect(node?.metadata?.name).toBe("reg-1");
    expect(node?.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(node?.metadata?.generation).toBe(1n);
    expect(node?.metadata?.creationTimestamp?.getTime()).toBe(clock.now());
    expect(Number(node?.metadata?.resourceVersion)).toBeGreaterThan(0);
    expect(node?.status?.conditions[0]?.lastTransitionTime?.getTime()).toBe(clock.now());
    expect(lease?.metadata?.namespace).toBe("kube-node-lease");
    expect(lease?.metadata?.name).toBe("reg-1");
    expect(lease?.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: "Node", name: "reg-1", uid: node?.metadata?.uid }),
    ]);
    expect(lease?.spec?.holderIdentity).toBe("reg-1");
    expect(lease?.spec?.leaseDurationSeconds).toBe(40);
    expect(lease?.spec?.renewTime?.getTime()).toBe(clock.now());
    expect((await h.client.getLease("reg-1")).metadata?.uid).toBe(lease?.metadata?.uid);
  });

  it("is idempotent: a second identical registration keeps the node as it is", async () => {
    const first = await h.client.register(agentNode("reg-2"));
    const second = await h.client.register(agentNode("reg-2"));
    expect(second.node?.metadata?.resourceVersion).toBe(first.node?.metadata?.resourceVersion);
    expect(second.node?.metadata?.uid).toBe(first.node?.metadata?.uid);
    expect(second.lease?.metadata?.uid).toBe(first.lease?.metadata?.uid);
  });

  it("reconciles the agent's fields and keeps what an operator set", async () => {
    await h.client.register(
      agentNode("reg-3", {
        metadata: { labels: { "agent/old": "x", "agent/keep": "1" } },
        spec: { taints: [{ key: "agent/startup", value: "", effect: "NoSchedule" }] },
      }),
    );
    const stored = await h.client.getNode("reg-3");
    await h.client.updateNode({
      ...stored,
      metadata: {
        ...stored.metadata,
        labels: { ...stored.metadata?.labels, "team": "storage" },
        annotations: { ...stored.metadata?.annotations, "ops/ticket": "T-1" },
      },
      spec: { ...stored.spec, unschedulable: true, taints: [...(stored.spec?.taints ?? []), { key: "ops/maint", value: "yes", effect: "NoExecute" }] },
    });
    const { node } = await h.client.register(
      agentNode("reg-3", {
        metadata: { labels: { "agent/keep": "2", "agent/new": "y" } },
        spec: { taints: [] },
        status: { addresses: [{ type: "InternalIP", address: "10.0.0.99" }] },
      }),
    );
    expect(node?.metadata?.labels).toMatchObject({ "agent/keep": "2", "agent/new": "y", team: "storage" });
    expect(node?.metadata?.labels).not.toHaveProperty("agent/old");
    expect(node?.metadata?.annotations?.["ops/ticket"]).toBe("T-1");
    expect(node?.spec?.unschedulable).toBe(true);
    expect(node?.spec?.taints.map((t) => t.key)).toEqual(["ops/maint"]);
    expect(node?.status?.addresses).toEqual([{ type: "InternalIP", address: "10.0.0.99" }]);
  });

  it("rewrites nothing when an unchanged agent registers again after an operator changed the node", async () => {
    const request = agentNode("reg-4", {
      metadata: { labels: { "agent/a": "1" } },
      spec: { taints: [{ key: "agent/t", value: "", effect: "NoSchedule" }] },
    });
    await h.client.register(request);
    const stored = await h.client.getNode("reg-4");
    const operated = await h.client.updateNode({
      ...stored,
      metadata: { ...stored.metadata, labels: { ...stored.metadata?.labels, ops: "x" } },
      spec: { ...stored.spec, taints: [...(stored.spec?.taints ?? []), { key: "ops/t", value: "", effect: "NoSchedule" }] },
    });
    const again = await h.client.register(request);
    expect(again.node?.metadata?.resourceVersion).toBe(operated.metadata?.resourceVersion);
    expect(again.node?.metadata?.generation).toBe(operated.metadata?.generation);
    expect(again.node?.spec?.taints.map((t) => t.key)).toEqual(["agent/t", "ops/t"]);
  });

  it("keeps the record of agent-owned fields out of operators' reach", async () => {
    await h.client.register(agentNode("reg-5", { metadata: { labels: { team: "a" } } }));
    const stored = await h.client.getNode("reg-5");
    // An update that drops every annotation, or forges the record, changes nothing of it.
    await h.client.updateNode({ ...stored, metadata: { ...stored.metadata, labels: { ...stored.metadata?.labels, ops: "keep" }, annotations: { owner: "ops" } } });
    const forged = await h.client.getNode("reg-5");
    await h.client.updateNode({
      ...forged,
      metadata: { ...forged.metadata, annotations: { ...forged.metadata?.annotations, "nodeplane.io/agent-labels": "ops" } },
    });
    const { node } = await h.client.register(agentNode("reg-5"));
    expect(node?.metadata?.labels).not.toHaveProperty("team");
    expect(node?.metadata?.labels?.ops).toBe("keep");
    expect(node?.metadata?.annotations?.owner).toBe("ops");
  });

  it("rejects an invalid node with INVALID_ARGUMENT naming field, value and rule", async () => {
    const err = await h.client.register(agentNode("Bad_Name")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain("metadata.name");
    expect((err as Error).message).toContain('"Bad_Name"');
    expect((err as Error).message).toContain("lower case");
    await expect(h.client.getNode("Bad_Name")).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("CreateNode", () => {
  it("creates a node without a lease", async () => {
    const node = await h.client.createNode({ metadata: { name: "manual-1", labels: { rack: "r1" } }, spec: { providerId: "inventory://r1/m1" } });
    expect(node.metadata?.labels).toEqual({ rack: "r1" });
    expect(node.spec?.providerId).toBe("inventory://r1/m1");
    await expect(h.client.getLease("manual-1")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("answers ALREADY_EXISTS naming the node", async () => {
    await h.client.createNode({ metadata: { name: "manual-2" } });
    const err = await h.client.createNode({ metadata: { name: "manual-2" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlreadyExistsError);
    expect((err as Error).message).toContain('"manual-2"');
  });
});

describe("GetNode", () => {
  it("answers the stored node", async () => {
    await h.client.register(agentNode("get-1"));
    const node = await h.client.getNode("get-1");
    expect(node.status?.capacity).toEqual({ cpu: "4", memory: "16Gi", pods: "110" });
  });

  it("answers NOT_FOUND naming the node", async () => {
    const err = await h.client.getNode("nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain('"nope"');
  });
});

describe("UpdateNode", () => {
  it("replaces spec, labels and annotations, ignores status, bumps generation on spec changes only", async () => {
    const { node } = await h.client.register(agentNode("upd-1"));
    const labelled = await h.client.updateNode({
      ...node,
      metadata: { ...node?.metadata, labels: { a: "b" } },
      status: { capacity: { cpu: "999" } },
    });
    expect(labelled.metadata?.labels).toEqual({ a: "b" });
    expect(labelled.status?.capacity?.cpu).toBe("4");
    expect(labelled.metadata?.generation).toBe(1n);
    const cordoned = await h.client.updateNode({ ...labelled, spec: { ...labelled.spec, unschedulable: true } });
    expect(cordoned.spec?.unschedulable).toBe(true);
    expect(cordoned.metadata?.generation).toBe(2n);
    expect(Number(cordoned.metadata?.resourceVersion)).toBeGreaterThan(Number(labelled.metadata?.resourceVersion));
  });

  it("answers ABORTED on a stale resource_version, saying expected and current, and changes nothing", async () => {
    const { node } = await h.client.register(agentNode("upd-2"));
    const fresh = await h.client.updateNode({ ...node, metadata: { ...node?.metadata, labels: { v: "1" } } });
    const err = await h.client
      .updateNode({ ...node, metadata: { ...node?.metadata, labels: { v: "stale" } } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as Error).message).toContain(`expected resource_version ${node?.metadata?.resourceVersion}`);
    expect((err as Error).message).toContain(`current is ${fresh.metadata?.resourceVersion}`);
    expect((await h.client.getNode("upd-2")).metadata?.labels).toEqual({ v: "1" });
  });

  it("without a resource_version it updates unconditionally", async () => {
    await h.client.register(agentNode("upd-3"));
    const node = await h.client.updateNode({ metadata: { name: "upd-3", labels: { x: "y" } } });
    expect(node.metadata?.labels).toEqual({ x: "y" });
  });

  it("answers NOT_FOUND for a missing node", async () => {
    await expect(h.client.updateNode({ metadata: { name: "ghost" } })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("rejects an invalid update and changes nothing", async () => {
    const { node } = await h.client.register(agentNode("upd-4"));
    const err = await h.client
      .updateNode({ ...node, spec: { taints: [{ key: "k", value: "v", effect: "Sometimes" }] } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain("spec.taints[0].effect");
    expect((await h.client.getNode("upd-4")).metadata?.resourceVersion).toBe(node?.metadata?.resourceVersion);
  });
});

describe("UpdateStatus", () => {
  it("keeps last_transition_time for an unchanged condition status and sets it on a change", async () => {
    const t0 = clock.now();
    await h.client.register(agentNode("st-1"));
    clock.advance(10_000);
    const same = await h.client.updateStatus("st-1", {
      conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: new Date(clock.now()) }],
    });
    const ready = same.status?.conditions[0];
    expect(ready?.lastTransitionTime?.getTime()).toBe(t0);
    expect(ready?.lastHeartbeatTime?.getTime()).toBe(clock.now());
    clock.advance(10_000);
    const changed = await h.client.updateStatus("st-1", {
      conditions: [
        { type: "Ready", status: "False", reason: "KernelDeadlock" },
        { type: "DiskPressure", status: "False" },
      ],
    });
    expect(changed.status?.conditions[0]?.lastTransitionTime?.getTime()).toBe(clock.now());
    expect(changed.status?.conditions[0]?.lastHeartbeatTime?.getTime()).toBe(clock.now());
    expect(changed.status?.conditions[1]?.lastTransitionTime?.getTime()).toBe(clock.now());
  });

  it("replaces only the status", async () => {
    await h.client.register(agentNode("st-2", { metadata: { labels: { keep: "me" } } }));
    const node = await h.client.updateStatus("st-2", { capacity: { cpu: "8" } });
    expect(node.status?.capacity).toEqual({ cpu: "8" });
    expect(node.status?.addresses).toEqual([]);
    expect(node.metadata?.labels?.keep).toBe("me");
  });

  it("answers NOT_FOUND and ABORTED", async () => {
    await expect(h.client.updateStatus("ghost", {})).rejects.toBeInstanceOf(NotFoundError);
    const { node } = await h.client.register(agentNode("st-3"));
    await h.client.updateStatus("st-3", { capacity: { cpu: "2" } });
    const err = await h.client
      .updateStatus("st-3", { capacity: { cpu: "3" } }, { resourceVersion: node?.metadata?.resourceVersion })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((await h.client.getNode("st-3")).status?.capacity?.cpu).toBe("2");
  });
});

describe("DeleteNode", () => {
  it("removes the node and its lease and answers the node as it was", async () => {
    const { node } = await h.client.register(agentNode("del-1"));
    const deleted = await h.client.deleteNode("del-1");
    expect(deleted.metadata?.uid).toBe(node?.metadata?.uid);
    await expect(h.client.getNode("del-1")).rejects.toBeInstanceOf(NotFoundError);
    await expect(h.client.getLease("del-1")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("answers NOT_FOUND, and ABORTED on a stale precondition", async () => {
    await expect(h.client.deleteNode("ghost")).rejects.toBeInstanceOf(NotFoundError);
    const { node } = await h.client.register(agentNode("del-2"));
    await h.client.updateStatus("del-2", { capacity: { cpu: "1" } });
    await expect(h.client.deleteNode("del-2", { resourceVersion: node?.metadata?.resourceVersion })).rejects.toBeInstanceOf(
      AbortedError,
    );
    await expect(h.client.getNode("del-2")).resolves.toBeDefined();
  });
});

describe("RenewLease and GetLease", () => {
  it("creates the lease on the first renewal of a manually created node, then renews it", async () => {
    const node = await h.client.createNode({ metadata: { name: "lease-1" } });
    const first = await h.client.renewLease("lease-1");
    expect(first.spec?.holderIdentity).toBe("lease-1");
    expect(first.spec?.leaseDurationSeconds).toBe(40);
    expect(first.metadata?.ownerReferences[0]?.uid).toBe(node.metadata?.uid);
    clock.advance(10_123);
    const second = await h.client.renewLease("lease-1");
    expect(second.spec?.renewTime?.getTime()).toBe(clock.now());
    expect(second.spec?.acquireTime?.getTime()).toBe(first.spec?.acquireTime?.getTime());
    // A renewal is answered from memory: the Lease keeps its revision until the next checkpoint.
    expect(second.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
    expect((await h.client.getLease("lease-1")).spec?.renewTime?.getTime()).toBe(clock.now());
  });

  it("keeps millisecond precision in renew_time", async () => {
    await h.client.createNode({ metadata: { name: "lease-ms" } });
    clock.advance(7);
    const lease = await h.client.renewLease("lease-ms");
    expect(lease.spec?.renewTime?.getTime()).toBe(clock.now());
  });

  it("counts a change of holder as a transition and keeps or sets the duration", async () => {
    await h.client.createNode({ metadata: { name: "lease-2" } });
    await h.client.renewLease("lease-2", { holderIdentity: "agent-a", leaseDurationSeconds: 20 });
    const kept = await h.client.renewLease("lease-2", { holderIdentity: "agent-a" });
    expect(kept.spec?.leaseDurationSeconds).toBe(20);
    expect(kept.spec?.leaseTransitions).toBe(0);
    clock.advance(1000);
    const moved = await h.client.renewLease("lease-2", { holderIdentity: "agent-b" });
    expect(moved.spec?.leaseTransitions).toBe(1);
    expect(moved.spec?.acquireTime?.getTime()).toBe(clock.now());
  });

  it("answers NOT_FOUND for a node that does not exist, and for a missing lease", async () => {
    const err = await h.client.renewLease("ghost").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain('"ghost"');
    await expect(h.client.getLease("ghost")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("lists every node's Lease", async () => {
    const names = (await h.client.listLeases()).map((l) => l.metadata?.name);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(["lease-1", "lease-2", "lease-ms"]));
  });

  it("rejects a bad lease duration", async () => {
    await h.client.createNode({ metadata: { name: "lease-3" } });
    await expect(h.client.renewLease("lease-3", { leaseDurationSeconds: -5 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
