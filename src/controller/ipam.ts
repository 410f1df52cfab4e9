/**
 * The IPAM controller: keeps the allocator's view of used blocks in step with the store (so
 * every existing allocation is marked used before anything new is handed out, and blocks taken
 * or freed by another replica are seen), and gives nodes created while no block was free their
 * CIDRs as soon as one frees up. Records a CIDRNotAvailable event for each such node.
 *
 * start() waits for the blocks only (small); nodes still waiting for a block are found in the
 * shared node informer once it has synced, in the background.
 */
import type { Logger } from "pino";
import { IPAM_PREFIX } from "../ipam/allocator.js";
import type { Ipam } from "../ipam/ipam.js";
import type { EventRecorder } from "../registry/events.js";
import type { NodeRegistry, RegistryHooks } from "../registry/nodes.js";
import { type NodeInformer, StoreInformer } from "./informer.js";

export interface IpamControllerOptions {
  registry: NodeRegistry;
  ipam: Ipam;
  /** Every node, shared with the watch cache (read only). */
  nodes: NodeInformer;
  events: EventRecorder;
  log?: Logger;
  /** How often waiting nodes are tried again even if no release was seen (ms, default 5 s). */
  retryPeriodMs?: number;
}

export class IpamController {
  private readonly blocks: StoreInformer<string>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private again = false;
  private stopped = false;

  constructor(private readonly o: IpamControllerOptions) {
    this.blocks = new StoreInformer<string>({
      store: o.registry.store,
      prefix: IPAM_PREFIX,
      decode: (kv) => new TextDecoder().decode(kv.value),
      onAdd: (name) => o.ipam.markKey(IPAM_PREFIX + name, true),
      onDelete: (name) => {
        o.ipam.markKey(IPAM_PREFIX + name, false);
        this.kick();
      },
      onError: (err) => o.log?.warn({ err }, "ipam informer relisting"),
    });
  }

  /** The registry's hooks into this controller. */
  hooks(): RegistryHooks {
    return {
      exhausted: (name, message) => {
        this.o.ipam.pending.add(name);
        this.o.log?.warn({ node: name }, message);
        // Best effort, as events are: a failed record does not fail the node's write.
        return this.o.events.record({ nodeName: name, type: "Warning", reason: "CIDRNotAvailable", message }).then(
          () => undefined,
          (err: unknown) => this.o.log?.warn({ err, node: name }, "CIDRNotAvailable event not recorded"),
        );
      },
      released: () => this.kick(),
    };
  }

  /**
   * Mark every recorded block used (before this resolves: no block may be handed out twice);
   * then, once the node informer has synced, find the nodes still waiting for one and retry
   * them periodically.
   */
  async start(): Promise<void> {
    await this.blocks.start();
    // Not awaited by stop(): the informer may be stopped after this controller, still loading.
    void this.o.nodes.synced().then(() => {
      if (this.stopped) return;
      for (const [name, node] of this.o.nodes.entries()) if (node.spec.podCidrs.length === 0) this.o.ipam.pending.add(name);
      this.o.log?.info({ ranges: this.o.ipam.describe(), waiting: this.o.ipam.pending.size }, "pod CIDR allocation on");
      this.timer = setInterval(() => this.kick(), this.o.retryPeriodMs ?? 5_000);
      this.timer.unref();
      void this.kick();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.blocks.stop();
    await this.running;
  }

  /** Try the waiting nodes (coalesced: one run at a time, one more if kicked meanwhile). */
  kick(): Promise<void> {
    if (this.stopped || this.o.ipam.pending.size === 0) return this.running;
    if (this.again) return this.running;
    this.again = true;
    this.running = this.running.then(async () => {
      this.again = false;
      for (const name of [...this.o.ipam.pending]) {
        if (this.stopped) return;
        try {
          if (!(await this.o.registry.assignCidrs(name))) break; // still none free: the rest would fail too
          this.o.ipam.pending.delete(name);
        } catch (err) {
          this.o.log?.warn({ err, node: name }, "pod CIDR assignment failed; will retry");
        }
      }
    });
    return this.running;
  }
}
