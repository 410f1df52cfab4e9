/**
 * The IPAM controller: gives nodes created while no pod CIDR block was free their blocks as soon
 * as one frees up (Kubernetes' range allocator retrying its queue). It runs on one replica at a
 * time; which blocks are used is followed by every replica's Ipam (src/ipam/ipam.ts), and the
 * CIDRNotAvailable event is recorded where the node was written.
 *
 * Waiting nodes are the ones without pod CIDRs in the shared node informer. It tries them when a
 * block is freed (a block key deleted), when such a node appears, and every retry period.
 * start() and stop() may be called any number of times; a stopped controller holds no timer and
 * no subscription.
 */
import type { Logger } from "pino";
import { type Clock, every, systemClock } from "../clock.js";
import type { NodeInformer, SharedInformer } from "../informer/shared.js";
import type { FullNode } from "../model/node.js";
import type { NodeRegistry } from "../registry/nodes.js";

export interface IpamControllerOptions {
  registry: NodeRegistry;
  /** Every node (read only). */
  nodes: NodeInformer;
  /** The pod CIDR block keys (read only). */
  blocks: SharedInformer<string>;
  clock?: Clock;
  log?: Logger;
  /** How often waiting nodes are tried again even if no release was seen (ms, default 5 s). */
  retryPeriodMs?: number;
}

export class IpamController {
  private readonly clock: Clock;
  /** What start() set up, undone by stop(). */
  private running: { stop: (() => void)[] } | undefined;
  private work: Promise<void> = Promise.resolve();
  private again = false;

  constructor(private readonly o: IpamControllerOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /** Once both informers have synced: try the waiting nodes now, then on every release and period. */
  async start(): Promise<void> {
    if (this.running) return;
    const run: { stop: (() => void)[] } = { stop: [] };
    this.running = run;
    await Promise.all([this.o.nodes.synced(), this.o.blocks.synced()]);
    if (this.running !== run) return;
    const waiting = (node: FullNode): void => {
      if (node.spec.podCidrs.length === 0) void this.kick();
    };
    run.stop.push(
      this.o.blocks.subscribe({ onDelete: () => void this.kick() }),
      this.o.nodes.subscribe({ onAdd: (_, node) => waiting(node), onUpdate: (_, node) => waiting(node) }),
      every(this.clock, this.o.retryPeriodMs ?? 5_000, () => void this.kick()),
    );
    this.o.log?.info({ waiting: this.waitingNodes().length }, "pod CIDR allocation controller started");
    void this.kick();
  }

  async stop(): Promise<void> {
    const run = this.running;
    this.running = undefined;
    for (const stop of run?.stop ?? []) stop();
    await this.work;
  }

  /** Try the waiting nodes (coalesced: one run at a time, one more if kicked meanwhile). */
  kick(): Promise<void> {
    if (!this.running || this.again) return this.work;
    this.again = true;
    this.work = this.work.then(async () => {
      this.again = false;
      for (const name of this.waitingNodes()) {
        if (!this.running) return;
        try {
          if (!(await this.o.registry.assignCidrs(name))) break; // still none free: the rest would fail too
        } catch (err) {
          this.o.log?.warn({ err, node: name }, "pod CIDR assignment failed; will retry");
        }
      }
    });
    return this.work;
  }

  private waitingNodes(): string[] {
    const out: string[] = [];
    for (const [name, node] of this.o.nodes.entries()) if (node.spec.podCidrs.length === 0) out.push(name);
    return out;
  }
}
