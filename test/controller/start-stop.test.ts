/**
 * Controllers start and stop at run time, any number of times (what leader election needs): a
 * stopped group holds no timer on the clock and no subscription on the shared informers, and a
 * restarted one works again on its own timers.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { InventoryProvider } from "../../src/cloud/inventory.js";
import { CloudSyncController } from "../../src/controller/cloudsync.js";
import { Controllers } from "../../src/controller/controllers.js";
import { IpamController } from "../../src/controller/ipam.js";
import { NodeLifecycleController } from "../../src/controller/nodelifecycle.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { sharedInformers } from "../../src/informer/shared.js";
import { ipamRanges } from "../../src/ipam/config.js";
import { Ipam } from "../../src/ipam/ipam.js";
import { EventRecorder } from "../../src/registry/events.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { SqliteStore } from "../../src/store/sqlite.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it("starts and stops every controller three times, leaving no timer and no subscription, and works after each start", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nodeplane-startstop-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = await SqliteStore.open({ dir });
  cleanups.push(() => store.close());
  const clock = new FakeClock();
  const informers = sharedInformers({ store, clock, blocks: true, onError: (kind, err) => expect.fail(`${kind}: ${err.message}`) });
  informers.start();
  cleanups.push(() => informers.stop());
  const events = new EventRecorder({ store, clock, source: "test" });
  const ipam = new Ipam({ ranges: ipamRanges({ clusterCidr: "10.244.0.0/24", nodeCidrMaskSizeIpv4: 28 }), events });
  cleanups.push(ipam.follow(informers.blocks!));
  const registry = new NodeRegistry({ store, clock, ipam });
  const inventory = join(dir, "inventory.json");
  writeFileSync(inventory, JSON.stringify({ instances: [] }));
  const provider = await InventoryProvider.open(inventory, () => {});
  const lifecycle = new NodeLifecycleController({ registry, nodes: informers.nodes, leases: informers.leases, events, clock });
  const controllers = new Controllers([
    lifecycle,
    new IpamController({ registry, nodes: informers.nodes, blocks: informers.blocks!, clock }),
    new CloudSyncController({ registry, nodes: informers.nodes, provider, events, clock }),
  ].map((c, i) => ({ name: `c${i}`, start: () => c.start(), stop: () => c.stop() })));
  const subscriptions = (): number[] => [informers.nodes, informers.leases, informers.blocks!].map((r) => r.subscriberCount);
  await Promise.all([informers.nodes.synced(), informers.leases.synced(), informers.blocks!.synced()]);
  const idle = subscriptions();
  expect(clock.pendingTimers).toBe(0);

  for (let round = 1; round <= 3; round++) {
    await controllers.start();
    expect(clock.pendingTimers).toBeGreaterThan(0);
    // Nodes and blocks are subscribed to; Lease renew times are read by each pass, never subscribed to.
    expect(subscriptions().map((n, i) => Math.sign(n - idle[i]!))).toEqual([1, 0, 1]);

    // The restarted controllers work on their own timers: a node that goes silent becomes
    // Unknown once the grace period has passed on the clock.
    const name = `silent-${round}`;
    await registry.register(Node.fromPartial({ metadata: { name }, status: { conditions: [{ type: "Ready", status: "True" }] } }));
    await lifecycle.sync();
    await lifecycle.monitor(); // a pass sees the new node's Lease (passes read renew times)
    clock.advance(45_000); // grace 40 s + the 5 s monitor period: the timer fires a pass
    await lifecycle.monitor(); // queued behind the pass the timer started
    const ready = (await registry.getNode(name)).status?.conditions.find((c) => c.type === "Ready");
    expect([ready?.status, ready?.reason]).toEqual(["Unknown", "NodeStatusUnknown"]);

    await controllers.stop();
    expect(clock.pendingTimers).toBe(0);
    expect(subscriptions()).toEqual(idle);
  }
});
