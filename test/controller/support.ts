/**
 * A node lifecycle controller over a real SQLite store, registry and watch cache (its node
 * informer, as in the server), on a fake clock the test steps. Nothing sleeps: `step()` advances
 * the clock, then runs exactly one monitor pass and one tainting pass, waiting for the informers
 * to catch up in between.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock } from "../../src/clock.js";
import { NodeLifecycleController, type NodeLifecycleOptions } from "../../src/controller/nodelifecycle.js";
import { type DeepPartial, Node, type NodeCondition, NodeStatus } from "../../src/gen/nodeplane/v1/node.js";
import { EventRecorder } from "../../src/registry/events.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { renewTimes } from "../../src/registry/renew-times.js";
import { type FullNode, fullNode } from "../../src/model/node.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/store.js";
import { sharedInformers, type SharedInformers } from "../../src/informer/shared.js";

export type Tunables = Partial<Omit<NodeLifecycleOptions, "registry" | "nodes" | "leases" | "events" | "clock">>;

export class World {
  readonly clock = new FakeClock(Date.UTC(2026, 0, 1));
  registry!: NodeRegistry;
  events!: EventRecorder;
  ctl!: NodeLifecycleController;
  informers!: SharedInformers;
  store!: SqliteStore;
  private dir = mkdtempSync(join(tmpdir(), "nodeplane-ctl-"));

  /** `wrap` puts something between the store and the registry (a test's held store). */
  static async create(tunables: Tunables = {}, opts: { leaseCheckpointMs?: number; wrap?: (s: Store) => Store } = {}): Promise<World> {
    const w = new World();
    w.catchUp = opts.wrap === undefined;
    w.store = await SqliteStore.open({ dir: w.dir });
    w.registry = new NodeRegistry({ store: opts.wrap?.(w.store) ?? w.store, clock: w.clock, leaseCheckpointMs: opts.leaseCheckpointMs });
    w.events = new EventRecorder({ store: w.store, clock: w.clock, source: "test" });
    w.informers = sharedInformers({ store: w.store, onError: () => {} });
    w.informers.start();
    w.registry.renewals.start();
    await w.startController(tunables);
    return w;
  }

  /** (Re)start the controller, as after a control-plane restart. */
  async startController(tunables: Tunables = {}): Promise<void> {
    await this.ctl?.stop();
    this.ctl = new NodeLifecycleController({
      registry: this.registry,
      nodes: this.informers.nodes,
      leases: renewTimes(this.informers.leases, this.registry.renewals),
      events: this.events,
      clock: this.clock,
      ...tunables,
    });
    await this.ctl.start(false);
  }

  async close(): Promise<void> {
    await this.ctl.stop();
    await this.registry.renewals.stop();
    await this.informers.stop();
    await this.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Wait for the Lease checkpoint in flight before each step, so that fake time never runs ahead
   * of real commits (which would hold renewals back on a loaded machine). Off when the test holds
   * the store itself (a wrapped store: it studies lagging checkpoints).
   */
  private catchUp = true;

  /** Nodes whose agents renew their Lease at every step. */
  readonly alive = new Set<string>();

  /** Advance the clock by `ms`, renew the leases of `alive` nodes, then one monitor pass and one tainting pass. */
  async step(ms = 0): Promise<void> {
    if (this.catchUp) await this.registry.renewals.idle();
    this.clock.advance(ms);
    for (const name of this.alive) await this.registry.renewLease(name, "", 0);
    await this.settle();
    await this.ctl.monitor();
    await this.settle();
    await this.ctl.taint();
    await this.settle();
  }

  /** Step `ms` at a time until `total` has passed. */
  async run(total: number, ms = 1000): Promise<void> {
    for (let t = 0; t < total; t += ms) await this.step(ms);
  }

  /** Let the informers see every write, then reconcile the nodes that changed. */
  async settle(): Promise<void> {
    await this.ctl.sync();
    await this.ctl.reconcileChanged();
    await this.ctl.sync();
  }

  /** A node as its agent registers it: Ready True, heartbeat now. */
  /**
   * A healthy node kept alive in the zone-less zone, so that one silent node is not "every zone
   * fully disrupted" (where the controller rightly adds no NoExecute taint).
   */
  async companion(): Promise<void> {
    await this.healthy("companion");
    this.alive.add("companion");
  }

  async healthy(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.registry.register(Node.fromPartial({ metadata: { name, labels }, status: { conditions: [this.ready("True")] } }));
  }

  /** The agent posts its status (a status heartbeat); default Ready True. */
  async post(name: string, conditions: DeepPartial<NodeCondition>[] = [this.ready("True")]): Promise<void> {
    await this.registry.updateStatus(name, NodeStatus.fromPartial({ conditions }), "");
  }

  /** A Ready condition as an agent posts it now. */
  ready(status: string): DeepPartial<NodeCondition> {
    return { type: "Ready", status, lastHeartbeatTime: new Date(this.clock.now()), reason: `Agent${status}` };
  }

  async node(name: string): Promise<FullNode> {
    return fullNode(await this.registry.getNode(name));
  }

  async readyStatus(name: string): Promise<string | undefined> {
    return (await this.node(name)).status.conditions.find((c) => c.type === "Ready")?.status;
  }

  async taints(name: string): Promise<string[]> {
    return (await this.node(name)).spec.taints.map((t) => `${t.key}:${t.effect}`).sort();
  }

  /** How many of `names` carry a not-ready/unreachable NoExecute taint. */
  async noExecuteCount(names: string[]): Promise<number> {
    let n = 0;
    for (const name of names) if ((await this.taints(name)).some((t) => t.endsWith(":NoExecute"))) n++;
    return n;
  }
}

export const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
export const zone = (z: string): Record<string, string> => ({ "topology.kubernetes.io/region": "r1", "topology.kubernetes.io/zone": z });
