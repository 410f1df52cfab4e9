/**
 * A node write without a client precondition starts from the node informer's copy instead of
 * reading and decoding the store's (NodeRegistryOptions.nodes): no store read when the copy is
 * current; a stale copy costs one failed compare and a retry from the current node that
 * compare answered (no read), never a lost or wrong write; a write that changes nothing is still
 * recognised (no new revision), judged against a read of the node, never against the copy alone
 * (which may be behind the store); a client precondition is judged against the store, not the
 * copy; and the informer's frozen, shared copy is never modified. A Register of a node the synced
 * informer has never seen reads neither the node nor its Lease; a wrong guess (the node or a
 * Lease exists after all) costs one failed commit, and the next attempt reads both.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { sharedInformers, type SharedInformers } from "../../src/informer/shared.js";
import { ipamRanges } from "../../src/ipam/config.js";
import { Ipam } from "../../src/ipam/ipam.js";
import { Lease } from "../../src/gen/nodeplane/v1/lease.js";
import { encodeLease } from "../../src/model/codec.js";
import { leaseKey, nodeKey } from "../../src/model/keys.js";
import type { FullNode } from "../../src/model/node.js";
import { revisionOf } from "../../src/model/revision.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { realisticNode } from "../support/realistic-node.js";

const clock = new FakeClock(Date.UTC(2026, 11, 6, 12, 0, 0));
let dir: string;
let store: SqliteStore;
let informers: SharedInformers;
let registry: NodeRegistry;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodeplane-cached-writes-"));
  store = await SqliteStore.open({ dir });
  informers = sharedInformers({ store, clock, onError: (kind, err) => expect.fail(`${kind} informer: ${err.message}`) });
  informers.start();
  await informers.nodes.synced();
  registry = new NodeRegistry({ store, clock, nodes: informers.nodes });
});
afterEach(() => vi.restoreAllMocks());
afterAll(async () => {
  await informers.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A node as an agent reports it, every heartbeat at `at` and Ready saying `message`. */
function agentNode(name: string, at: Date, message = "kubelet is posting ready status"): Node {
  const node = Node.fromPartial(realisticNode(7, name));
  for (const c of node.status!.conditions) {
    c.lastHeartbeatTime = at;
    if (c.type === "Ready") c.message = message;
  }
  return node;
}

/** Register `name` and wait until the informer holds it. */
async function registered(name: string): Promise<Node> {
  const { node } = await registry.register(agentNode(name, new Date(clock.now())));
  await informers.nodes.waitFor(revisionOf(node));
  return node;
}

/** Register `name`, post a status once (Ready saying "same") and wait until the informer holds it. */
async function postedOnce(name: string): Promise<{ at: Date; first: Node; storeRevision: number }> {
  await registered(name);
  const at = new Date(clock.now() + 3000);
  const first = await registry.updateStatus(name, agentNode(name, at, "same").status, "");
  await informers.nodes.waitFor(revisionOf(first));
  return { at, first, storeRevision: await store.currentRevision() };
}

const nodeReads = (spy: { mock: { calls: unknown[][] } }, name: string): number => spy.mock.calls.filter(([key]) => key === nodeKey(name)).length;

describe("node writes from the informer's copy", () => {
  it("change a node without reading it from the store, and answer what a read returns", async () => {
    const before = await registered("cached-1");
    const get = vi.spyOn(store, "get");
    const answer = await registry.updateStatus("cached-1", agentNode("cached-1", new Date(clock.now() + 1000), "second").status, "");
    expect(nodeReads(get, "cached-1")).toBe(0);
    expect(revisionOf(answer)).toBeGreaterThan(revisionOf(before));
    expect(answer).toEqual(await registry.getNode("cached-1"));
  });

  it("retry from the current node the failed compare answered when the copy is stale, keeping the other write", async () => {
    await registered("cached-2");
    const stale = informers.nodes.get("cached-2")!;
    // Another writer (another replica, say) changes the node; this registry's copy stays old.
    const other = new NodeRegistry({ store, clock });
    const labelled = await other.updateNode(Node.fromPartial({ ...(await other.getNode("cached-2")), metadata: { ...(await other.getNode("cached-2")).metadata, labels: { team: "blue" } } }));
    const staleView = new NodeRegistry({ store, clock, nodes: { get: (name: string): FullNode | undefined => (name === "cached-2" ? stale : undefined), hasSynced: true } });
    const get = vi.spyOn(store, "get");
    const txn = vi.spyOn(store, "txn");
    const answer = await staleView.updateStatus("cached-2", agentNode("cached-2", new Date(clock.now() + 2000), "after the label").status, "");
    // The failed compare answered the current node: the retry starts from it, with no read.
    expect(txn).toHaveBeenCalledTimes(2);
    expect(nodeReads(get, "cached-2")).toBe(0);
    expect(revisionOf(answer)).toBeGreaterThan(revisionOf(labelled));
    const read = await registry.getNode("cached-2");
    expect(read.metadata!.labels).toEqual({ team: "blue" });
    expect(read.status!.conditions.find((c) => c.type === "Ready")!.message).toBe("after the label");
    expect(answer).toEqual(read);
  });

  it("recognise a write that changes nothing: same revision, nothing committed", async () => {
    const { at, first, storeRevision } = await postedOnce("cached-3");
    const get = vi.spyOn(store, "get");
    const again = await registry.updateStatus("cached-3", agentNode("cached-3", at, "same").status, "");
    expect(nodeReads(get, "cached-3")).toBe(1); // "no change" is confirmed against the store
    expect(again.metadata!.resourceVersion).toBe(first.metadata!.resourceVersion);
    expect(await store.currentRevision()).toBe(storeRevision);
    expect(again).toEqual(await registry.getNode("cached-3"));
  });

  it("recognise a write that changes nothing when it lists a map's entries in another order", async () => {
    const { at, first, storeRevision } = await postedOnce("cached-4");
    const reordered = agentNode("cached-4", at, "same").status!;
    reordered.capacity = Object.fromEntries(Object.entries(reordered.capacity).reverse());
    reordered.allocatable = Object.fromEntries(Object.entries(reordered.allocatable).reverse());
    expect(Object.keys(reordered.capacity)).not.toEqual(Object.keys(first.status!.capacity));
    const again = await registry.updateStatus("cached-4", reordered, "");
    expect(again.metadata!.resourceVersion).toBe(first.metadata!.resourceVersion);
    expect(await store.currentRevision()).toBe(storeRevision);
    // A real change still writes.
    const changed = await registry.updateStatus("cached-4", agentNode("cached-4", at, "changed").status, "");
    expect(revisionOf(changed)).toBeGreaterThan(revisionOf(first));
  });

  it("never answers a write as changing nothing from a copy older than the store", async () => {
    await registered("cached-5");
    const copy = informers.nodes.get("cached-5")!;
    // A registry whose informer stays at this copy while the node changes in the store.
    const behind = new NodeRegistry({ store, clock, nodes: { get: (name) => (name === "cached-5" ? copy : undefined), hasSynced: true } });
    const asRequested = (labels: Record<string, string>): Node => ({ ...copy, metadata: { ...copy.metadata, labels, resourceVersion: "" } });
    const labelled = await registry.updateNode(asRequested({ ...copy.metadata.labels, team: "blue" }));
    // The copy's labels again: nothing to change against the copy, a change against the store.
    const back = await behind.updateNode(asRequested(copy.metadata.labels));
    expect(revisionOf(back)).toBeGreaterThan(revisionOf(labelled));
    expect((await registry.getNode("cached-5")).metadata!.labels).toEqual(copy.metadata.labels);
  });

  it("judge a client precondition against the store, not a stale copy", async () => {
    await registered("cached-4");
    const stale = informers.nodes.get("cached-4")!;
    const changed = await registry.updateStatus("cached-4", agentNode("cached-4", new Date(clock.now() + 4000), "newer").status, "");
    const staleView = new NodeRegistry({ store, clock, nodes: { get: (name: string): FullNode | undefined => (name === "cached-4" ? stale : undefined), hasSynced: true } });
    // The client's precondition is the node's current revision: it must hold, though the copy is older.
    const answer = await staleView.updateStatus("cached-4", agentNode("cached-4", new Date(clock.now() + 5000), "with precondition").status, changed.metadata!.resourceVersion);
    expect(answer.status!.conditions.find((c) => c.type === "Ready")!.message).toBe("with precondition");
    // And a precondition the copy would satisfy but the store does not is a conflict.
    await expect(staleView.updateStatus("cached-4", agentNode("cached-4", new Date(clock.now() + 6000)).status, stale.metadata.resourceVersion)).rejects.toThrow(/resource_version|conflict|modified/i);
  });

  it("leave the informer's frozen copy as it was (status, spec and provider addresses writes)", async () => {
    await registered("cached-5");
    const copy = informers.nodes.get("cached-5")!;
    expect(Object.isFrozen(copy) && Object.isFrozen(copy.status) && Object.isFrozen(copy.metadata.labels)).toBe(true);
    const bytes = Node.encode(copy).finish();
    await registry.updateStatus("cached-5", agentNode("cached-5", new Date(clock.now() + 7000), "status").status, "");
    await informers.nodes.waitFor(await store.currentRevision());
    const next = informers.nodes.get("cached-5")!;
    await registry.updateNode(Node.fromPartial({ ...next, metadata: { ...next.metadata, resourceVersion: "", labels: { ...next.metadata.labels, zone: "b" } }, spec: { ...next.spec, taints: [{ key: "k", value: "v", effect: "NoExecute" }] } }));
    await informers.nodes.waitFor(await store.currentRevision());
    await registry.setProviderAddresses("cached-5", [{ type: "ExternalIP", address: "203.0.113.5" }], "");
    expect(Node.encode(copy).finish()).toEqual(bytes);
    const read = await registry.getNode("cached-5");
    expect(read.metadata!.labels!.zone).toBe("b");
    expect(read.spec!.taints.map((t) => t.key)).toEqual(["k"]);
    expect(read.status!.addresses.map((a) => a.address)).toContain("203.0.113.5");
  });
});

describe("Register of a node nothing here has seen", () => {
  const keyReads = (spy: { mock: { calls: unknown[][] } }, name: string): number =>
    spy.mock.calls.filter(([key]) => key === nodeKey(name) || key === leaseKey(name)).length;

  it("creates the node and its Lease without reading either from the store, answering what reads return", async () => {
    const get = vi.spyOn(store, "get");
    const txn = vi.spyOn(store, "txn");
    const { node, lease } = await registry.register(agentNode("fresh-1", new Date(clock.now())));
    expect(keyReads(get, "fresh-1")).toBe(0);
    expect(txn).toHaveBeenCalledTimes(1);
    get.mockRestore();
    expect(node).toEqual(await registry.getNode("fresh-1"));
    expect(lease).toEqual(await registry.getLease("fresh-1"));
  });

  it("reconciles a node that exists though the informer's view lacks it: one failed commit, then as a read would", async () => {
    const before = await registered("fresh-2");
    const blind = new NodeRegistry({ store, clock, nodes: { get: () => undefined, hasSynced: true } });
    const again = agentNode("fresh-2", new Date(clock.now() + 5000));
    again.metadata!.labels = { ...again.metadata!.labels, "example.com/new": "yes" };
    const txn = vi.spyOn(store, "txn");
    const { node, lease } = await blind.register(again);
    expect(txn).toHaveBeenCalledTimes(2);
    expect(node.metadata!.uid).toBe(before.metadata!.uid);
    expect(node.metadata!.creationTimestamp).toEqual(before.metadata!.creationTimestamp);
    expect(node.metadata!.labels["example.com/new"]).toBe("yes");
    expect(node).toEqual(await registry.getNode("fresh-2"));
    expect(lease.spec!.holderIdentity).toBe("fresh-2");
  });

  it("adopts a Lease left without its node, which this server does not know", async () => {
    const left = Lease.fromPartial({ metadata: { name: "fresh-3", namespace: "kube-node-lease" }, spec: { holderIdentity: "fresh-3", leaseDurationSeconds: 40 } });
    expect((await store.txn({ compare: [], ops: [{ type: "put", key: leaseKey("fresh-3"), value: encodeLease(left) }] })).succeeded).toBe(true);
    const leftRevision = (await store.get(leaseKey("fresh-3")))!.modRevision;
    const { node, lease } = await registry.register(agentNode("fresh-3", new Date(clock.now())));
    expect(Number(lease.metadata!.resourceVersion)).toBeGreaterThan(leftRevision);
    expect(lease.metadata!.ownerReferences.map((o) => o.uid)).toEqual([node.metadata!.uid]);
    expect(lease).toEqual(await registry.getLease("fresh-3"));
  });

  it("reads first when the agent asks for pod CIDRs and IPAM is on: an existing node that holds them is reconciled, not refused", async () => {
    const ipam = new Ipam({ ranges: ipamRanges({ clusterCidr: "10.244.0.0/16", nodeCidrMaskSizeIpv4: 24 }), events: { record: async () => undefined } });
    const blind = new NodeRegistry({ store, clock, ipam, nodes: { get: () => undefined, hasSynced: true } });
    const agent = agentNode("fresh-5", new Date(clock.now()));
    const input = Node.fromPartial({ ...agent, spec: { ...agent.spec, podCidrs: ["10.244.7.0/24"], podCidr: "10.244.7.0/24" } });
    const created = await blind.createNode(input);
    const get = vi.spyOn(store, "get");
    const { node } = await blind.register(input);
    expect(keyReads(get, "fresh-5")).toBe(2);
    expect(node.metadata!.uid).toBe(created.metadata!.uid);
    expect(node.spec!.podCidrs).toEqual(["10.244.7.0/24"]);
  });

  it("reads the node and its Lease while the informer has not synced", async () => {
    const unsynced = new NodeRegistry({ store, clock, nodes: { get: () => undefined, hasSynced: false } });
    const get = vi.spyOn(store, "get");
    await unsynced.register(agentNode("fresh-4", new Date(clock.now())));
    expect(keyReads(get, "fresh-4")).toBe(2);
  });
});
