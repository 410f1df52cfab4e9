/**
 * Cloud sync (Kubernetes' cloud node lifecycle + cloud node controllers): keeps nodes in step
 * with the machines the cloud provider has. Every pass, for nodes with a provider id:
 * - a new node carrying the `uninitialized` taint gets the instance's addresses and zone/region
 *   labels, then loses the taint; the provider's addresses are updated when they change (they
 *   own their address types: an agent's status report does not replace them, see
 *   keepProviderAddresses in src/registry/reconcile.ts);
 * - a node that is not Ready whose instance is gone is deleted (event DeletingNode) — a Ready
 *   node never is (the provider may be wrong; the node says it is alive);
 * - a node that is not Ready whose instance is shut down is tainted `shutdown:NoSchedule`; the
 *   taint goes once it is Ready again.
 */
import type { Logger } from "pino";
import { type Clock, every, systemClock } from "../clock.js";
import type { CloudProvider, InstanceMetadata } from "../cloud/provider.js";
import { ConflictError, NotFoundError } from "../errors.js";
import type { Taint } from "../gen/nodeplane/v1/node.js";
import type { EventRecorder } from "../registry/events.js";
import type { NodeRegistry } from "../registry/nodes.js";
import { type FullNode, fullNode } from "../model/node.js";
import { providerAddressesDiffer } from "../registry/reconcile.js";
import type { NodeInformer } from "../informer/shared.js";
import { readyCondition } from "./taints.js";

const TAINT_UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized";
const TAINT_SHUTDOWN = "node.cloudprovider.kubernetes.io/shutdown";
const REGION_LABEL = "topology.kubernetes.io/region";
const ZONE_LABEL = "topology.kubernetes.io/zone";

/** The taint nodes registering under a cloud provider carry until it has initialized them. */
export const uninitializedTaint = (): Taint => ({ key: TAINT_UNINITIALIZED, value: "true", effect: "NoSchedule", timeAdded: undefined });

export interface CloudSyncOptions {
  registry: NodeRegistry;
  /** Every node, shared with the watch cache (read only). */
  nodes: NodeInformer;
  provider: CloudProvider;
  events: EventRecorder;
  log?: Logger;
  /** How often nodes are checked (ms, default 5 s: --node-monitor-period). */
  periodMs?: number;
  clock?: Clock;
}

export class CloudSyncController {
  private readonly clock: Clock;
  /** Cancels the periodic passes of the current run. */
  private cancelTimer: (() => void) | undefined;
  private running: Promise<void> = Promise.resolve();
  private busy = false;
  private stopped = false;

  constructor(private readonly o: CloudSyncOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /**
   * Wait for the node informer to sync; with `run`, then pass periodically. start() and stop()
   * may alternate any number of times.
   */
  async start(run = true): Promise<void> {
    this.stopped = false;
    await this.o.nodes.synced();
    if (!run || this.stopped || this.cancelTimer) return;
    this.cancelTimer = every(this.clock, this.o.periodMs ?? 5_000, () => {
      if (this.busy) return;
      this.busy = true;
      this.running = this.pass()
        .catch((err: unknown) => this.o.log?.error({ err }, "cloud sync pass failed"))
        .finally(() => (this.busy = false));
    });
  }

  /** No timer left once this resolves, and no pass running. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.running;
  }

  /** Wait until the informer has seen every change up to the store's current revision. */
  async sync(): Promise<void> {
    await this.o.nodes.waitFor(await this.o.registry.currentRevision());
  }

  /** One pass over every node with a provider id (never on a half-loaded list). */
  async pass(): Promise<void> {
    await this.o.nodes.synced();
    await this.o.provider.refresh();
    for (const node of this.o.nodes.snapshot().objects) {
      if (this.stopped) return;
      const providerId = node.spec.providerId;
      if (providerId === "") continue;
      try {
        await this.syncNode(node, providerId);
      } catch (err) {
        if (err instanceof ConflictError || err instanceof NotFoundError) continue; // it changed: next pass
        throw err;
      }
    }
  }

  private async syncNode(node: FullNode, providerId: string): Promise<void> {
    const p = this.o.provider;
    const name = node.metadata.name;
    const meta = await p.instanceMetadata(providerId);
    if (meta && hasTaint(node, TAINT_UNINITIALIZED)) node = await this.initialize(node, meta);
    else if (meta && providerAddressesDiffer(node, meta.addresses)) {
      node = fullNode(await this.o.registry.setProviderAddresses(name, meta.addresses, node.metadata.resourceVersion));
    }
    const ready = readyCondition(node)?.status === "True";
    if (ready) {
      if (hasTaint(node, TAINT_SHUTDOWN)) await this.setTaints(node, withoutTaint(node, TAINT_SHUTDOWN), "Removed taint", TAINT_SHUTDOWN);
      return;
    }
    if (!(await p.instanceExists(providerId))) {
      this.o.log?.info({ node: name, providerId }, "deleting node: its instance no longer exists");
      await this.o.registry.deleteNode(name, node.metadata.resourceVersion);
      await this.event(name, "Normal", "DeletingNode", `Deleting node ${name} because its instance ${providerId} no longer exists (${p.name} provider)`);
      return;
    }
    if ((await p.instanceShutdown(providerId)) && !hasTaint(node, TAINT_SHUTDOWN)) {
      const taint: Taint = { key: TAINT_SHUTDOWN, value: "", effect: "NoSchedule", timeAdded: undefined };
      await this.setTaints(node, [...node.spec.taints, taint], "Added taint", TAINT_SHUTDOWN);
    }
  }

  /** Fill in addresses and zone labels from the provider, then drop the uninitialized taint. */
  private async initialize(node: FullNode, meta: InstanceMetadata): Promise<FullNode> {
    const name = node.metadata.name;
    let current = node;
    if (providerAddressesDiffer(node, meta.addresses)) {
      current = fullNode(await this.o.registry.setProviderAddresses(name, meta.addresses, node.metadata.resourceVersion));
    }
    const labels = { ...current.metadata.labels };
    if (meta.region) labels[REGION_LABEL] = meta.region;
    if (meta.zone) labels[ZONE_LABEL] = meta.zone;
    const updated = fullNode(
      await this.o.registry.updateNode({
        ...current,
        metadata: { ...current.metadata, labels },
        spec: { ...current.spec, taints: withoutTaint(current, TAINT_UNINITIALIZED) },
      }),
    );
    await this.event(name, "Normal", "Synced", `Node ${name} initialized from the ${this.o.provider.name} provider (zone ${meta.zone || "-"}, region ${meta.region || "-"})`);
    return updated;
  }

  private async setTaints(node: FullNode, taints: Taint[], verb: string, key: string): Promise<void> {
    await this.o.registry.updateNode({ ...node, spec: { ...node.spec, taints } });
    await this.event(node.metadata.name, "Normal", verb === "Added taint" ? "TaintAdded" : "TaintRemoved", `${verb} ${key}:NoSchedule`, key);
  }

  private async event(nodeName: string, type: "Normal" | "Warning", reason: string, message: string, about?: string): Promise<void> {
    try {
      await this.o.events.record({ nodeName, type, reason, message, about });
    } catch (err) {
      this.o.log?.warn({ err, reason, node: nodeName }, "recording an event failed");
    }
  }
}

function hasTaint(node: FullNode, key: string): boolean {
  return node.spec.taints.some((t) => t.key === key && t.effect === "NoSchedule");
}

function withoutTaint(node: FullNode, key: string): Taint[] {
  return node.spec.taints.filter((t) => !(t.key === key && t.effect === "NoSchedule"));
}
