/**
 * NodeAgent: what the kubelet does for its node's life in the control plane. It registers the
 * node (or waits for an operator to create it), renews its Lease every lease duration × 0.25
 * (jitter 4 %; or as the server asks) on the streaming heartbeat, computes the status every update period and sends it only when it changed or
 * the report period passed. It rides out outages with backoff (100 ms doubling to 7 s, with
 * jitter), and registers again by itself when its Node is deleted while it runs.
 */
import { Backoff } from "../backoff.js";
import { type Clock, sleep as sleepOn, systemClock } from "../clock.js";
import { status } from "@grpc/grpc-js";
import { CancelledError, NotFoundError, RpcError } from "../client/errors.js";
import type { HeartbeatStream, NodeClient } from "../client/client.js";
import type { DeepPartial, Node, Taint } from "../gen/nodeplane/v1/node.js";
import type { MachineStatus } from "./machine.js";

/** The little of a logger the agent needs (pino fits). */
export interface AgentLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface NodeAgentOptions {
  client: NodeClient;
  nodeName: string;
  /** Reads the machine (capacity, addresses, node info, pressure conditions). */
  probe: () => MachineStatus;
  /** Self-registration (default true); false = wait for an operator to create the Node. */
  registerNode?: boolean;
  /** Labels to register with (the defaults for the machine included). */
  labels?: Record<string, string>;
  /** --register-with-taints. */
  taints?: DeepPartial<Taint>[];
  providerId?: string;
  leaseDurationSeconds?: number;
  statusUpdateFrequencyMs?: number;
  statusReportFrequencyMs?: number;
  holderIdentity?: string;
  /** "stream" (default): the streaming heartbeat, falling back to RenewLease; "unary": RenewLease only. */
  heartbeat?: "stream" | "unary";
  log?: AgentLogger;
  /** Time for every wait (default: the system clock). */
  clock?: Clock;
}

/** What the agent has done, for tests, benchmarks and logs. */
export interface AgentStats {
  registrations: number;
  renewals: number;
  statusSends: number;
  failures: number;
}

/** When (the clock's ms) the agent last did each thing; 0 = never. Its health checks read them. */
export interface AgentProgress {
  /** Registered (or, in manual mode, found its Node). */
  registeredAt: number;
  renewedAt: number;
  /** Sent its status (a registration sends it too). */
  statusSentAt: number;
}

const silent: AgentLogger = { info: () => {}, warn: () => {} };

export class NodeAgent {
  readonly stats: AgentStats = { registrations: 0, renewals: 0, statusSends: 0, failures: 0 };
  readonly progress: AgentProgress = { registeredAt: 0, renewedAt: 0, statusSentAt: 0 };
  private readonly o: Required<Omit<NodeAgentOptions, "providerId" | "log" | "heartbeat" | "clock">> & Pick<NodeAgentOptions, "providerId">;
  private readonly clock: Clock;
  private readonly log: AgentLogger;
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  /** Aborted when the registration must be redone (node deleted, configuration changed). */
  private cycle = new AbortController();
  private lastStatus = "";
  /** Use the streaming heartbeat until the server says it has none. */
  private streaming: boolean;
  private lastSentAt = 0;
  private resolveRegistered!: () => void;
  /** Resolves once the node is registered (or, in manual mode, exists) for the first time. */
  readonly registered = new Promise<void>((resolve) => (this.resolveRegistered = resolve));

  constructor(opts: NodeAgentOptions) {
    this.o = {
      registerNode: true,
      labels: {},
      taints: [],
      leaseDurationSeconds: 40,
      statusUpdateFrequencyMs: 10_000,
      statusReportFrequencyMs: 5 * 60_000,
      holderIdentity: opts.nodeName,
      ...opts,
    };
    this.log = opts.log ?? silent;
    this.clock = opts.clock ?? systemClock;
    this.streaming = opts.heartbeat !== "unary";
  }

  /** Run until stop(). */
  start(): void {
    this.running ??= this.run();
  }

  /** Stop every loop and in-flight call. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.cycle.abort();
    await this.running;
  }

  /** New labels, taints or provider id: register again (the server reconciles agent-owned fields). */
  reconfigure(change: Pick<NodeAgentOptions, "labels" | "taints" | "providerId">): void {
    Object.assign(this.o, change);
    this.cycle.abort();
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.cycle = new AbortController();
      const signal = AbortSignal.any([this.cycle.signal, this.stopping.signal]);
      const ok = await this.retry("registration", signal, () => (this.o.registerNode ? this.register(signal) : this.awaitNode(signal)));
      if (!ok) continue;
      this.resolveRegistered();
      await Promise.all([this.leaseLoop(signal), this.statusLoop(signal)]);
    }
  }

  private async register(signal: AbortSignal): Promise<void> {
    const status = this.measure();
    const node: DeepPartial<Node> = {
      metadata: { name: this.o.nodeName, labels: this.o.labels },
      spec: { taints: this.o.taints, providerId: this.o.providerId ?? "" },
      status,
    };
    await this.o.client.register(node, { signal });
    this.stats.registrations++;
    this.progress.registeredAt = this.progress.renewedAt = this.clock.now();
    this.noteSent(status);
    this.log.info({ node: this.o.nodeName }, "registered");
  }

  /** Manual mode: wait until an operator has created the Node. */
  private async awaitNode(signal: AbortSignal): Promise<void> {
    const watch = this.o.client.watch({ fieldSelector: `metadata.name=${this.o.nodeName}`, sendInitialEvents: true }, { signal });
    for await (const ev of watch) {
      if (ev.type === "ADDED" || ev.type === "MODIFIED") {
        this.progress.registeredAt = this.clock.now();
        this.log.info({ node: this.o.nodeName }, "node exists: heartbeating");
        return;
      }
      if (ev.type === "BOOKMARK") this.log.info({ node: this.o.nodeName }, "waiting for an operator to create this node (--register-node=false)");
    }
    throw new Error("watch ended before the node was created");
  }

  /**
   * Renew the Lease on the streaming heartbeat (one stream for the agent's life, the server
   * saying when to renew next), or with RenewLease calls if the server does not offer it.
   */
  private async leaseLoop(signal: AbortSignal): Promise<void> {
    let interval = this.o.leaseDurationSeconds * 250;
    let stream: HeartbeatStream | undefined;
    const renewal = { holderIdentity: this.o.holderIdentity, leaseDurationSeconds: this.o.leaseDurationSeconds };
    // Registration renewed the Lease just now. Spread the next renewal over one interval, so a
    // fleet that starts (or reconnects) at once does not keep renewing in step.
    await this.sleep(interval * Math.random(), signal);
    try {
      while (!signal.aborted) {
        const ok = await this.retry("lease renewal", signal, async () => {
          if (this.streaming) {
            try {
              stream ??= this.o.client.heartbeat({ signal });
              const res = await stream.renew(this.o.nodeName, renewal);
              if (res.nextRenewIntervalMs > 0) interval = res.nextRenewIntervalMs;
              this.noteRenewed();
              return;
            } catch (err) {
              stream?.close();
              stream = undefined;
              if (!(err instanceof RpcError && err.code === status.UNIMPLEMENTED)) throw err;
              this.streaming = false;
              this.log.info({ node: this.o.nodeName }, "the server has no streaming heartbeat: renewing with RenewLease");
            }
          }
          await this.o.client.renewLease(this.o.nodeName, { ...renewal, signal });
          this.noteRenewed();
        });
        if (!ok) return;
        await this.sleep(interval * (1 + Math.random() * 0.04), signal);
      }
    } finally {
      stream?.close();
    }
  }

  private async statusLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.sleep(this.o.statusUpdateFrequencyMs, signal);
      if (signal.aborted) return;
      const status = this.measure();
      const due = Date.now() - this.lastSentAt >= this.o.statusReportFrequencyMs;
      if (fingerprint(status) === this.lastStatus && !due) continue;
      try {
        await this.o.client.updateStatus(this.o.nodeName, status, { signal });
        this.stats.statusSends++;
        this.noteSent(status);
      } catch (err) {
        if (!this.handle(err, "status update")) return;
      }
    }
  }

  /**
   * Try until it works, with backoff. False when the attempt should stop: the agent is stopping,
   * the cycle was restarted, or the node is gone (which restarts the cycle).
   */
  private async retry(what: string, signal: AbortSignal, attempt: () => Promise<void>): Promise<boolean> {
    // 100 ms doubling to 7 s, with jitter: the kubelet's node status backoff.
    const backoff = new Backoff({ initialMs: 100, maxMs: 7_000 });
    while (!signal.aborted) {
      try {
        await attempt();
        return true;
      } catch (err) {
        if (!this.handle(err, what)) return false;
        await this.sleep(backoff.next(0), signal);
      }
    }
    return false;
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return sleepOn(this.clock, ms, signal);
  }

  /** Log a failure; answer whether the loop should go on. A missing node restarts the cycle. */
  private handle(err: unknown, what: string): boolean {
    if (this.cycle.signal.aborted || this.stopped || err instanceof CancelledError) return false;
    if (err instanceof NotFoundError) {
      this.log.warn({ node: this.o.nodeName }, `${what}: the node is gone; ${this.o.registerNode ? "registering again" : "waiting for it to be created"}`);
      this.cycle.abort();
      return false;
    }
    this.stats.failures++;
    this.log.warn({ node: this.o.nodeName, err: err instanceof Error ? err.message : String(err) }, `${what} failed; retrying`);
    return true;
  }

  /** The machine's status as the agent reports it, heartbeat times now. */
  private measure(): MachineStatus {
    const status = this.o.probe();
    const now = new Date();
    for (const c of status.conditions) c.lastHeartbeatTime = now;
    return status;
  }

  private noteSent(status: MachineStatus): void {
    this.lastStatus = fingerprint(status);
    this.lastSentAt = Date.now();
    this.progress.statusSentAt = this.clock.now();
  }

  private noteRenewed(): void {
    this.stats.renewals++;
    this.progress.renewedAt = this.clock.now();
  }
}

/** What counts as a change of status: everything but the heartbeat times. */
function fingerprint(s: MachineStatus): string {
  return JSON.stringify([s.capacity, s.allocatable, s.addresses, s.nodeInfo, s.conditions.map((c) => [c.type, c.status, c.reason, c.message]), s.topology, s.daemonEndpoints]);
}
