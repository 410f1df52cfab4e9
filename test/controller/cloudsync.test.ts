/** Cloud sync over a temporary inventory file, with a fake clock; passes are driven by the test. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { InventoryProvider } from "../../src/cloud/inventory.js";
import { CloudSyncController, uninitializedTaint } from "../../src/controller/cloudsync.js";
import { NotFoundError } from "../../src/errors.js";
import { Node, type NodeAddress } from "../../src/gen/nodeplane/v1/node.js";
import { EventRecorder } from "../../src/registry/events.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { sharedInformers, type SharedInformers } from "../../src/informer/shared.js";

let dir: string;
let store: SqliteStore;
let registry: NodeRegistry;
let events: EventRecorder;
let cloud: CloudSyncController;
let informers: SharedInformers;
let inventory: string;
const clock = new FakeClock(Date.UTC(2026, 3, 1));
const reloadErrors: Error[] = [];

interface Machine {
  id: string;
  shutdown?: boolean;
  zone?: string;
}
function writeInventory(machines: Machine[]): void {
  const doc = {
    instances: machines.map((m) => ({
      providerID: m.id,
      shutdown: m.shutdown ?? false,
      region: "eu-west",
      zone: m.zone ?? "eu-west-1a",
      addresses: [{ type: "ExternalIP", address: "203.0.113.7" }],
    })),
  };
  writeFileSync(inventory, JSON.stringify(doc));
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodeplane-cloud-"));
  inventory = join(dir, "inventory.json");
  writeInventory([{ id: "inventory://r1/m1" }, { id: "inventory://r1/m2" }]);
  store = await SqliteStore.open({ dir });
  registry = new NodeRegistry({ store, clock, newNodeTaints: [uninitializedTaint()] });
  events = new EventRecorder({ store, clock, source: "test" });
  informers = sharedInformers({ store, onError: () => {} });
  informers.start();
  cloud = new CloudSyncController({
    registry,
    nodes: informers.nodes,
    events,
    provider: await InventoryProvider.open(inventory, (err) => reloadErrors.push(err)),
  });
  await cloud.start(false);
});
afterEach(async () => {
  await cloud.stop();
  await informers.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function pass(): Promise<void> {
  await cloud.sync();
  await cloud.pass();
  await cloud.sync();
}

async function register(name: string, providerId: string, ready: string): Promise<void> {
  await registry.register(
    Node.fromPartial({
      metadata: { name },
      spec: { providerId },
      status: {
        addresses: [{ type: "InternalIP", address: "10.0.0.7" }],
        conditions: [{ type: "Ready", status: ready, lastHeartbeatTime: new Date(clock.now()) }],
      },
    }),
  );
}

const taintsOf = async (name: string): Promise<string[]> => (await registry.getNode(name)).spec!.taints.map((t) => `${t.key}:${t.effect}`);

describe("cloud sync", () => {
  it("deletes a NotReady node (and its Lease) whose instance disappeared, after the file is edited", async () => {
    await register("gone", "inventory://r1/m1", "False");
    await pass();
    expect((await registry.getNode("gone")).metadata?.name).toBe("gone");
    writeInventory([{ id: "inventory://r1/m2" }]);
    await pass();
    await expect(registry.getNode("gone")).rejects.toBeInstanceOf(NotFoundError);
    await expect(registry.getLease("gone")).rejects.toBeInstanceOf(NotFoundError);
    expect((await events.list("gone")).map((e) => e.reason)).toContain("DeletingNode");
  });

  it("keeps a Ready node whose instance disappeared", async () => {
    await register("alive", "inventory://r1/m1", "True");
    writeInventory([]);
    await pass();
    expect((await registry.getNode("alive")).metadata?.name).toBe("alive");
  });

  it("taints a NotReady node whose instance is shut down, and removes the taint once it is Ready", async () => {
    await register("off", "inventory://r1/m2", "False");
    writeInventory([{ id: "inventory://r1/m1" }, { id: "inventory://r1/m2", shutdown: true }]);
    await pass();
    expect(await taintsOf("off")).toContain("node.cloudprovider.kubernetes.io/shutdown:NoSchedule");
    await registry.updateStatus("off", { ...Node.fromPartial({ status: { conditions: [{ type: "Ready", status: "True" }] } }).status! }, "");
    await pass();
    expect(await taintsOf("off")).not.toContain("node.cloudprovider.kubernetes.io/shutdown:NoSchedule");
  });

  it("fills in addresses and zone labels, then removes the uninitialized taint", async () => {
    await register("fresh", "inventory://r1/m1", "True");
    expect(await taintsOf("fresh")).toEqual(["node.cloudprovider.kubernetes.io/uninitialized:NoSchedule"]);
    await pass();
    const node = await registry.getNode("fresh");
    expect(node.spec?.taints).toEqual([]);
    expect(node.metadata?.labels).toMatchObject({ "topology.kubernetes.io/region": "eu-west", "topology.kubernetes.io/zone": "eu-west-1a" });
    expect(node.status?.addresses).toEqual([
      { type: "ExternalIP", address: "203.0.113.7" },
      { type: "InternalIP", address: "10.0.0.7" },
    ]);
    // The agent reports its status (its own addresses only): the provider's come back.
    await registry.updateStatus("fresh", Node.fromPartial({ status: { addresses: [{ type: "InternalIP", address: "10.0.0.7" }], conditions: [{ type: "Ready", status: "True" }] } }).status!, "");
    await pass();
    expect((await registry.getNode("fresh")).status?.addresses).toContainEqual({ type: "ExternalIP", address: "203.0.113.7" });
  });

  it("keeps the last good inventory when the file stops parsing", async () => {
    await register("safe", "inventory://r1/m1", "False");
    writeFileSync(inventory, "instances: [ {providerID: ");
    await pass();
    expect((await registry.getNode("safe")).metadata?.name).toBe("safe");
    expect(reloadErrors.at(-1)?.message).toContain("keeping the last inventory");
  });
});

/**
 * Issue 11, defect 9: an agent's status report used to replace the node's addresses and drop the
 * provider's ExternalIP, and cloud sync put it back a moment later (two extra writes and watch
 * events per report). The provider's address types are now recorded and kept by status reports.
 */
const EXTERNAL: NodeAddress = { type: "ExternalIP", address: "203.0.113.7" };
const OWN: NodeAddress[] = [
  { type: "InternalIP", address: "10.0.0.7" },
  { type: "Hostname", address: "m1" },
];

/** What the agent sends: its own addresses only, and a Ready condition with this message. */
function agentStatus(message: string): Node["status"] {
  return Node.fromPartial({ status: { addresses: OWN, conditions: [{ type: "Ready", status: "True", reason: "AgentReady", message }] } }).status;
}

const addressesOf = async (): Promise<NodeAddress[]> => (await registry.getNode("m1")).status!.addresses;

describe("addresses a cloud provider owns", () => {
  it("a status report leaves the provider's ExternalIP in place and causes no extra write or watch event", async () => {
    await registry.register(Node.fromPartial({ metadata: { name: "m1" }, spec: { providerId: "inventory://r1/m1" }, status: agentStatus("up") }));
    await pass(); // initialized: the ExternalIP, the zone labels, the taint gone
    expect(await addressesOf()).toEqual([EXTERNAL, ...OWN]);

    // Every change a watcher (here the cache's subscribers) sees from now on.
    const seen: NodeAddress[][] = [];
    const unsubscribe = informers.nodes.subscribe({ onUpdate: (name, node) => name === "m1" && seen.push(node.status.addresses) });
    const before = await store.currentRevision();

    await registry.updateStatus("m1", agentStatus("still up"), ""); // UpdateStatus
    expect(await addressesOf()).toEqual([EXTERNAL, ...OWN]);
    await registry.register(Node.fromPartial({ metadata: { name: "m1" }, spec: { providerId: "inventory://r1/m1" }, status: agentStatus("re-registered") }));
    expect(await addressesOf()).toEqual([EXTERNAL, ...OWN]);
    await pass(); // nothing to put back
    await informers.nodes.waitFor(await store.currentRevision());
    unsubscribe();

    expect(await store.currentRevision()).toBe(before + 2); // the two reports, nothing else
    expect(seen).toEqual([
      [EXTERNAL, ...OWN],
      [EXTERNAL, ...OWN],
    ]);
  });

  it("an agent cannot replace the provider's address with its own of that type, but the provider can change it", async () => {
    await registry.register(Node.fromPartial({ metadata: { name: "m1" }, spec: { providerId: "inventory://r1/m1" }, status: agentStatus("up") }));
    await pass();
    await registry.updateStatus("m1", { ...agentStatus("up")!, addresses: [...OWN, { type: "ExternalIP", address: "198.51.100.1" }] }, "");
    expect(await addressesOf()).toEqual([EXTERNAL, ...OWN]);
    const moved: NodeAddress = { type: "ExternalIP", address: "203.0.113.99" };
    await registry.setProviderAddresses("m1", [moved], "");
    expect(await addressesOf()).toEqual([moved, ...OWN]);
  });
});
