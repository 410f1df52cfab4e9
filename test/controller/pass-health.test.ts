/**
 * The monitor pass walks the controller's own Health map (one entry per node the informer has,
 * kept in step by its subscription). Changes to the informer while a pass awaits must not make it
 * judge a node twice (a Map iterates an entry added meanwhile, also one deleted and added again)
 * or judge one deleted, and a stopped controller keeps no copy of the nodes. The informer here is an in-memory stand-in
 * whose changes the test makes at exact points of a pass.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { NodeLifecycleController, type NodeLifecycleOptions } from "../../src/controller/nodelifecycle.js";
import { ControllerMetrics } from "../../src/controller/metrics.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import type { NodeInformer } from "../../src/informer/shared.js";
import type { ReflectorHandlers } from "../../src/informer/reflector.js";
import { type FullNode, fullNode } from "../../src/model/node.js";
import { World } from "./support.js";

/** Nodes in memory; every change is reported to the subscribers at once, as a Reflector does. */
class MemoryNodes implements NodeInformer {
  readonly hasSynced = true;
  revision = 1;
  changes = 0;
  private readonly items = new Map<string, FullNode>();
  private readonly subscribers = new Set<ReflectorHandlers<FullNode>>();

  synced(): Promise<void> {
    return Promise.resolve();
  }
  get size(): number {
    return this.items.size;
  }
  get(name: string): FullNode | undefined {
    return this.items.get(name);
  }
  entries(): IterableIterator<[string, FullNode]> {
    return this.items.entries();
  }
  snapshot(): { names: string[]; objects: FullNode[] } {
    return { names: [...this.items.keys()], objects: [...this.items.values()] };
  }
  waitFor(): Promise<boolean> {
    return Promise.resolve(true);
  }
  subscribe(handlers: ReflectorHandlers<FullNode>): () => void {
    this.subscribers.add(handlers);
    for (const [name, node] of this.items) handlers.onAdd?.(name, node, this.revision);
    return () => void this.subscribers.delete(handlers);
  }

  /** A Ready node (a new object each time, as a new revision of it would be). */
  put(name: string, now: number): void {
    const node = fullNode(Node.fromPartial({
      metadata: { name, resourceVersion: String(++this.revision) },
      status: { conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: new Date(now) }] },
    }));
    const old = this.items.get(name);
    this.items.set(name, node);
    this.changes++;
    for (const h of this.subscribers) {
      if (old) h.onUpdate?.(name, node, old, this.revision);
      else h.onAdd?.(name, node, this.revision);
    }
  }

  delete(name: string): void {
    const old = this.items.get(name);
    if (!old) return;
    this.items.delete(name);
    this.changes++;
    this.revision++;
    for (const h of this.subscribers) h.onDelete?.(name, old, this.revision);
  }
}

let w: World | undefined;
let ctl: NodeLifecycleController | undefined;
afterEach(async () => {
  await ctl?.stop();
  await w?.close();
  ctl = undefined;
  w = undefined;
});

/** A started controller (no periodic passes) over `nodes`, with no Lease renewed; the rest from `world`. */
async function controllerOver(world: World, nodes: NodeInformer, extra: Pick<NodeLifecycleOptions, "metrics" | "passSliceNodes"> = {}): Promise<NodeLifecycleController> {
  const controller = new NodeLifecycleController({
    registry: world.registry,
    nodes,
    leases: { synced: () => Promise.resolve(), get: () => undefined, waitFor: () => Promise.resolve(true) },
    events: world.events,
    clock: world.clock,
    ...extra,
  });
  await controller.start(false);
  return controller;
}

/** Nodes counted Ready True by the last pass (the controller's gauge). */
async function countedReady(metrics: ControllerMetrics): Promise<number> {
  const values = (await metrics.nodesByReady.get()).values;
  return values.find((v) => v.labels.status === "True")?.value ?? 0;
}

describe("the monitor pass over the controller's Health map", () => {
  it("judges each node once per pass, though nodes are deleted, deleted and added again, or added while it awaits", async () => {
    w = await World.create();
    const nodes = new MemoryNodes();
    for (const name of ["a", "b", "c"]) nodes.put(name, w.clock.now());
    const metrics = new ControllerMetrics(new Registry());
    ctl = await controllerOver(w, nodes, { metrics, passSliceNodes: 1 });

    // The pass judges "a", then leaves the turn (one node per slice). In that turn, before the
    // pass goes on: "a" is deleted and added again (a new Health entry), "c" deleted before its
    // turn, "d" added.
    const pass = ctl.monitor();
    await new Promise<void>((resolve) => setImmediate(resolve));
    nodes.delete("a");
    nodes.put("a", w.clock.now());
    nodes.delete("c");
    nodes.put("d", w.clock.now());
    await pass;
    expect(await countedReady(metrics)).toBe(2); // "a" once, "b"; "c" skipped; "d" waits for the next pass

    await ctl.monitor();
    expect(await countedReady(metrics)).toBe(3); // a, b, d
  });

  it("keeps no copy of the nodes once stopped", async () => {
    w = await World.create();
    const nodes = new MemoryNodes();
    nodes.put("a", w.clock.now());
    ctl = await controllerOver(w, nodes);
    expect(ctl.probeTime("a")).toBe(w.clock.now());
    await ctl.stop();
    expect(ctl.probeTime("a")).toBeUndefined();
    // Started again, it sees every node afresh.
    await ctl.start(false);
    expect(ctl.probeTime("a")).toBe(w.clock.now());
  });
});
