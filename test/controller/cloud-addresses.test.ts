/**
 * Issue 11, defect 9: with a cloud provider, an agent's status report used to replace the
 * node's addresses and drop the provider's ExternalIP; cloud sync put it back a moment later —
 * two extra writes and watch events per report, and watchers saw the node without its
 * ExternalIP. Now the provider's address types are recorded (as the agent's labels are) and a
 * status report keeps them: one write per report, and no watcher ever sees the ExternalIP gone.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { InventoryProvider } from "../../src/cloud/inventory.js";
import { CloudSyncController, uninitializedTaint } from "../../src/controller/cloudsync.js";
import { Node, type NodeAddress } from "../../src/gen/nodeplane/v1/node.js";
import { EventRecorder } from "../../src/registry/events.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { WatchCache } from "../../src/watch/cache.js";

let dir: string;
let store: SqliteStore;
let registry: NodeRegistry;
let cache: WatchCache;
let cloud: CloudSyncController;
const clock = new FakeClock(Date.UTC(2026, 3, 1));
const EXTERNAL: NodeAddress = { type: "ExternalIP", address: "203.0.113.7" };
const OWN: NodeAddress[] = [
  { type: "InternalIP", address: "10.0.0.7" },
  { type: "Hostname", address: "m1" },
];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodeplane-cloud-addr-"));
  const inventory = join(dir, "inventory.json");
  writeFileSync(inventory, JSON.stringify({ instances: [{ providerID: "inventory://r1/m1", region: "eu-west", zone: "eu-west-1a", addresses: [EXTERNAL] }] }));
  store = await SqliteStore.open({ dir });
  registry = new NodeRegistry({ store, clock, newNodeTaints: [uninitializedTaint()] });
  cache = new WatchCache({ store });
  await cache.start();
  cloud = new CloudSyncController({
    registry,
    nodes: cache,
    events: new EventRecorder({ store, clock, source: "test" }),
    provider: await InventoryProvider.open(inventory, () => {}),
  });
  await cloud.start(false);
});
afterEach(async () => {
  await cloud.stop();
  await cache.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function pass(): Promise<void> {
  await cloud.sync();
  await cloud.pass();
  await cloud.sync();
}

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
    const unsubscribe = cache.subscribe({ onUpdate: (name, node) => name === "m1" && seen.push(node.status.addresses) });
    const before = await store.currentRevision();

    await registry.updateStatus("m1", agentStatus("still up"), ""); // UpdateStatus
    expect(await addressesOf()).toEqual([EXTERNAL, ...OWN]);
    await registry.register(Node.fromPartial({ metadata: { name: "m1" }, spec: { providerId: "inventory://r1/m1" }, status: agentStatus("re-registered") }));
    expect(await addressesOf()).toEqual([EXTERNAL, ...OWN]);
    await pass(); // nothing to put back
    await cache.waitFor(await store.currentRevision());
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
