/**
 * NodeLifecycleController: health monitoring of every node (Kubernetes' node lifecycle
 * controller). It reads through informers (nodes and leases) and writes through the registry
 * like any client, on an injected clock:
 *
 * - a node's probe time is when *we* last saw it alive (its Ready heartbeat time changed, or a
 *   pass found its Lease's renew time advanced, as Kubernetes' controller reads the Lease in each
 *   pass); a node we have not yet seen gets `now`, so every node has a full grace period after a
 *   start or restart of the controller;
 * - past the grace period its Ready/MemoryPressure/DiskPressure/PIDPressure become Unknown;
 * - NoSchedule taints follow conditions and spec.unschedulable on every change;
 * - NoExecute not-ready/unreachable taints are removed and swapped at once, but added at a
 *   per-zone rate that depends on the zone's disruption state; when every zone is fully
 *   disrupted the control plane assumes it is the one cut off and stops tainting.
 *
 * It acts only once both informers have synced: a node is never judged on a half-loaded list.
 */
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { ConflictError, NotFoundError } from "../errors.js";
import type { Node, NodeCondition } from "../gen/nodeplane/v1/node.js";
import type { EventInput, EventRecorder } from "../registry/events.js";
import type { NodeRegistry } from "../registry/nodes.js";
import { type FullNode, fullNode } from "../model/node.js";
import { every } from "../clock.js";
import type { NodeInformer, RenewTimes } from "../informer/shared.js";
import type { ControllerMetrics } from "./metrics.js";
import {
  desiredNoExecuteKey,
  desiredNoScheduleKeys,
  noExecuteKeyOf,
  noScheduleInStep,
  readyCondition,
  reconcileNoSchedule,
  type TaintChange,
  withNoExecute,
} from "./taints.js";
import {
  computeZoneState,
  EXCLUDE_DISRUPTION_LABEL,
  TokenBucket,
  ZoneQueue,
  type ZoneState,
  zoneName,
  zoneOf,
  zoneRate,
} from "./zones.js";

export interface NodeLifecycleOptions {
  registry: NodeRegistry;
  /** Every node, shared with the watch cache (the controller only reads it). */
  nodes: NodeInformer;
  /** Every node's Lease renew time (shared, read only; read by each pass). */
  leases: RenewTimes;
  events: EventRecorder;
  clock: Clock;
  log?: Logger;
  metrics?: ControllerMetrics;
  /** How often every node's health is checked (ms, default 5 s). */
  monitorPeriodMs?: number;
  /** Silence allowed to a node that has posted Ready before (ms, default 40 s). */
  monitorGracePeriodMs?: number;
  /** Silence allowed to a node that has never posted Ready (ms, default 60 s). */
  startupGracePeriodMs?: number;
  nodeEvictionRate?: number;
  secondaryNodeEvictionRate?: number;
  unhealthyZoneThreshold?: number;
  largeClusterSizeThreshold?: number;
  /** How often queued NoExecute taints are tried against the zone rate (ms, default 100). */
  taintPassPeriodMs?: number;
  /**
   * Nodes a monitor pass looks at per event-loop turn (default 2,000). A pass over 100,000
   * nodes took 400–500 ms in one turn under 100,000 heartbeat streams (each node a few cache
   * misses in a 2 GiB heap), holding every call back for as long.
   */
  passSliceNodes?: number;
}

/** Silence allowed to a node that has posted Ready before, by default (Kubernetes' 40 s). */
export const DEFAULT_MONITOR_GRACE_MS = 40_000;

/**
 * What a pass reads of a node, worked out when the informer hands the controller a new copy of
 * it (its copies are frozen and replaced on every change). A pass over nodes that did not change
 * then reads only their Health, never the nodes: at 100,000 nodes, looking each node up and
 * chasing its conditions and taints was most of a pass.
 */
interface NodeView {
  /** The node these were worked out from. */
  of: FullNode;
  readyCondition: NodeCondition | undefined;
  allMonitoredUnknown: boolean;
  noScheduleInStep: boolean;
  /** desiredNoExecuteKey and noExecuteKeyOf. */
  noExecuteWanted: string | undefined;
  noExecuteHas: string | undefined;
}

function viewOf(node: FullNode): NodeView {
  return {
    of: node,
    readyCondition: readyCondition(node),
    allMonitoredUnknown: allMonitoredUnknown(node),
    noScheduleInStep: noScheduleInStep(node),
    noExecuteWanted: desiredNoExecuteKey(node),
    noExecuteHas: noExecuteKeyOf(node),
  };
}

/** What the controller remembers of a node between passes. */
interface Health {
  /** The node as the informer has it now (kept in step by the subscription), as a pass reads it. */
  view: NodeView;
  /** Controller clock (ms) when the node was last seen alive. */
  probe: number;
  /** The Ready condition's last_heartbeat_time we last saw (ms, -1 = none). */
  heartbeat: number;
  /** The Lease's renew_time we last saw (ms, -1 = none). */
  renew: number;
  /** The Ready status we last saw ("" = never posted). */
  ready: string;
  /** Its zone key and whether it is excluded from zone accounting (from its labels). */
  zone: string;
  excluded: boolean;
  readonly name: string;
  /** Deleted: a pass that took it before then skips it. */
  forgotten: boolean;
}

const MONITORED = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/** True when every monitored condition is present and Unknown (nothing left to mark). */
function allMonitoredUnknown(node: FullNode): boolean {
  let unknown = 0;
  const conditions = node.status.conditions; // frozen: an indexed loop allocates nothing (taints.ts)
  for (let i = 0; i < conditions.length; i++) if (conditions[i]!.status === "Unknown" && MONITORED.includes(conditions[i]!.type)) unknown++;
  return unknown === MONITORED.length;
}

export class NodeLifecycleController {
  private readonly o: Required<Omit<NodeLifecycleOptions, "log" | "metrics">> & Pick<NodeLifecycleOptions, "log" | "metrics">;
  private readonly nodes: NodeInformer;
  /** Each node's Lease renew_time (ms, -1 = none): all the controller reads of a Lease. */
  private readonly leases: RenewTimes;
  /** The current run (start to stop): what it set up, and when it has seen every node. */
  private active: { ready: Promise<void>; undo: (() => void)[] } | undefined;
  private readonly health = new Map<string, Health>();
  private readonly zoneStates = new Map<string, ZoneState>();
  private readonly queues = new Map<string, ZoneQueue>();
  /** Nodes changed since their NoSchedule taints were last reconciled. */
  private readonly dirty = new Set<string>();
  /** Passes and writes run one at a time. */
  private chain: Promise<unknown> = Promise.resolve();
  /** Every zone is fully disrupted: the control plane assumes it is the one cut off. */
  private allDisrupted = false;

  constructor(opts: NodeLifecycleOptions) {
    this.o = {
      monitorPeriodMs: 5_000,
      monitorGracePeriodMs: DEFAULT_MONITOR_GRACE_MS,
      startupGracePeriodMs: 60_000,
      nodeEvictionRate: 0.1,
      secondaryNodeEvictionRate: 0.01,
      unhealthyZoneThreshold: 0.55,
      largeClusterSizeThreshold: 50,
      taintPassPeriodMs: 100,
      passSliceNodes: 2000,
      ...opts,
    };
    this.nodes = opts.nodes;
    this.leases = opts.leases;
  }

  /**
   * Start a run: once both informers have synced, see every node (each gets a full grace period
   * from now: after a restart or a change of leader no node is judged on an old observation),
   * then, with `run`, pass periodically. Resolves once every node has been seen (or stop() came
   * first). start() and stop() may alternate any number of times.
   */
  start(run = true): Promise<void> {
    if (this.active) return this.active.ready;
    this.health.clear();
    this.zoneStates.clear();
    this.queues.clear();
    this.dirty.clear();
    this.allDisrupted = false;
    const active: { ready: Promise<void>; undo: (() => void)[] } = { ready: Promise.resolve(), undo: [] };
    this.active = active;
    active.ready = Promise.all([this.nodes.synced(), this.leases.synced()]).then(() => {
      if (this.active !== active) return;
      // Renew times are not subscribed to: each pass reads them (see observeLease). A renewal
      // costs the controller nothing, and is seen by the next pass.
      active.undo.push(
        this.nodes.subscribe({
          onAdd: (name, node) => this.nodeChanged(name, node),
          onUpdate: (name, node) => this.nodeChanged(name, node),
          onDelete: (name) => this.forget(name),
        }),
      );
      if (!run) return;
      // A tick while the same pass is still queued or running is skipped, so a slow pass never
      // builds a backlog of passes that then run back to back.
      const periodic = (ms: number, fn: () => Promise<void>): (() => void) => {
        let busy = false;
        return every(this.o.clock, ms, () => {
          if (busy) return;
          busy = true;
          this.serial(fn)
            .catch((err: unknown) => this.o.log?.error({ err }, "node lifecycle pass failed"))
            .finally(() => (busy = false));
        });
      };
      active.undo.push(periodic(this.o.monitorPeriodMs, () => this.monitorPass()), periodic(this.o.taintPassPeriodMs, () => this.taintPass()));
    });
    return active.ready;
  }

  /** End the run: no timer and no subscription left; resolves once its last pass has ended. */
  async stop(): Promise<void> {
    const active = this.active;
    if (!active) return;
    this.active = undefined;
    for (const undo of active.undo) undo();
    await this.chain.catch(() => undefined);
    // A stopped controller (a replica that lost leadership) keeps no copy of the nodes: the
    // informer goes on replacing them, and start() begins from nothing anyway.
    if (!this.active) this.health.clear();
  }

  private get stopped(): boolean {
    return this.active === undefined;
  }

  /** Wait until the informers have applied every change up to the store's current revision. */
  async sync(): Promise<void> {
    await this.active?.ready;
    const rev = await this.o.registry.currentRevision();
    await Promise.all([this.nodes.waitFor(rev), this.leases.waitFor(rev)]);
  }

  /** One health-monitoring pass (then the NoSchedule reconciliation it implies). */
  monitor(): Promise<void> {
    return this.serial(() => this.monitorPass());
  }

  /** One pass over the zone queues: add the NoExecute taints the zone rates allow now. */
  taint(): Promise<void> {
    return this.serial(() => this.taintPass());
  }

  /** Reconcile NoSchedule taints of nodes changed since the last time. */
  reconcileChanged(): Promise<void> {
    return this.serial(() => this.reconcileDirty());
  }

  /** Passes and writes, one at a time, never before the informers have synced, never when stopped. */
  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(() => this.active?.ready).then(() => (this.stopped ? undefined : fn()));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private markDirty(name: string): void {
    if (this.dirty.has(name)) return;
    this.dirty.add(name);
    if (this.dirty.size === 1) void this.reconcileChanged().catch((err: unknown) => this.o.log?.warn({ err }, "taint reconcile failed"));
  }

  private forget(name: string): void {
    const h = this.health.get(name);
    if (h) h.forgotten = true;
    this.health.delete(name);
    this.dirty.delete(name);
    for (const q of this.queues.values()) q.remove(name);
  }

  private async monitorPass(): Promise<void> {
    const started = performance.now();
    const run = this.active;
    let now = this.o.clock.now();
    const counts = new Map<string, { ready: number; notReady: number }>();
    const byReady = { True: 0, False: 0, Unknown: 0 };
    // Over the Health of every node the informer has (the subscription keeps them in step: a
    // node changed while this pass awaited is judged as it is now, one deleted is skipped, one
    // added waits for the next pass, its grace period running from when it was added). Each
    // node's Health holds the node and what the pass reads of it (NodeView): no lookup and, for
    // a node that did not change, no read of the node. The entries are taken into one array and
    // walked by index: a for-of over the map would allocate an iterator result and a pair per
    // node (the loop awaits, so V8 cannot optimise them away), and would also reach an entry made
    // while the pass awaits (a node deleted and added again would be judged twice). The pass
    // leaves the turn every passSliceNodes nodes; changes await writes.
    const entries = [...this.health.values()];
    const slice = Math.max(1, this.o.passSliceNodes);
    for (let i = 0; i < entries.length; i++) {
      if (i > 0 && i % slice === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        // Nodes are judged by the time they are looked at (a pass over many slices takes a while).
        now = this.o.clock.now();
      }
      // Stopped, or stopped and started again (the new run makes its own passes).
      if (this.active !== run || run === undefined) return;
      const h = entries[i]!;
      if (h.forgotten) continue;
      const name = h.name;
      // After a write of its own, the pass goes on with the node as written.
      let view = h.view;
      this.observeLease(name, h);
      const grace = view.readyCondition !== undefined ? this.o.monitorGracePeriodMs : this.o.startupGracePeriodMs;
      if (now > h.probe + grace && !view.allMonitoredUnknown) {
        const written = await this.markUnknown(view.of, now);
        if (written) view = viewOf(written);
      }
      const ready = view.readyCondition;
      const status = ready?.status ?? "Unknown";
      byReady[status === "True" || status === "False" ? status : "Unknown"]++;
      if (h.ready !== (ready?.status ?? "")) {
        await this.recordReadyChange(view.of, h.ready, status);
        h.ready = ready?.status ?? "";
      }
      const zone = h.zone;
      if (!h.excluded) {
        let c = counts.get(zone);
        if (!c) counts.set(zone, (c = { ready: 0, notReady: 0 }));
        if (status === "True") c.ready++;
        else c.notReady++;
      }
      const immediate = this.processNoExecute(name, zone, view);
      if (immediate) {
        const written = await this.applyTaints(view.of, immediate);
        if (written) view = viewOf(written);
      }
      if (!view.noScheduleInStep) await this.applyNoSchedule(view.of);
    }
    await this.handleDisruption(counts, now);
    const m = this.o.metrics;
    if (m) {
      for (const [status, n] of Object.entries(byReady)) m.nodesByReady.set({ status }, n);
      const zones = { Initial: 0, Normal: 0, PartialDisruption: 0, FullDisruption: 0 };
      for (const s of this.zoneStates.values()) zones[s]++;
      for (const [state, n] of Object.entries(zones)) m.zonesByState.set({ state }, n);
      m.passSeconds.observe((performance.now() - started) / 1000);
    }
  }

  /**
   * A node was added or changed: its probe time moves to now when its Ready heartbeat changed
   * (a node seen for the first time starts with a full grace period from now).
   */
  private nodeChanged(name: string, node: FullNode): void {
    // Worked out first: should it throw, nothing here has changed (the Reflector reports it).
    const view = viewOf(node);
    this.markDirty(name);
    const heartbeat = view.readyCondition?.lastHeartbeatTime?.getTime() ?? -1;
    const zone = zoneOf(node);
    const excluded = node.metadata.labels[EXCLUDE_DISRUPTION_LABEL] !== undefined;
    let h = this.health.get(name);
    if (!h) {
      const renew = this.leases.get(name) ?? -1;
      h = { view, probe: this.o.clock.now(), heartbeat, renew, ready: view.readyCondition?.status ?? "", zone, excluded, name, forgotten: false };
      this.health.set(name, h);
      return;
    }
    h.view = view;
    if (heartbeat !== h.heartbeat) {
      h.heartbeat = heartbeat;
      h.probe = this.o.clock.now();
    }
    h.zone = zone;
    h.excluded = excluded;
  }

  /**
   * The node's probe time moves to now when its Lease's renew time advanced
   * since the last pass, as Kubernetes' tryUpdateNodeHealth compares the Lease it lists with the
   * one it last observed. A renewal is so seen at most one period after it was answered: the
   * probe time is never earlier than the renewal, so no node gets less grace than its renewals
   * give it.
   */
  private observeLease(name: string, h: Health): void {
    const renew = this.leases.get(name) ?? -1;
    if (renew > h.renew) {
      h.renew = renew;
      h.probe = this.o.clock.now();
    }
  }

  /** Past the grace period: the monitored conditions become Unknown. */
  private async markUnknown(node: FullNode, now: number): Promise<FullNode | undefined> {
    const at = new Date(now);
    let changed = false;
    const conditions: NodeCondition[] = node.status.conditions.map((c) => {
      if (!MONITORED.includes(c.type) || c.status === "Unknown") return c;
      changed = true;
      return { ...c, status: "Unknown", reason: "NodeStatusUnknown", message: "Node agent stopped posting node status.", lastTransitionTime: at };
    });
    for (const type of MONITORED) {
      if (conditions.some((c) => c.type === type)) continue;
      changed = true;
      conditions.push({
        type,
        status: "Unknown",
        reason: "NodeStatusNeverUpdated",
        message: "Node agent never posted node status.",
        lastHeartbeatTime: node.metadata.creationTimestamp ?? at,
        lastTransitionTime: at,
      });
    }
    if (!changed) return undefined;
    return this.write(() => this.o.registry.updateStatus(node.metadata.name, { ...node.status, conditions }, node.metadata.resourceVersion));
  }

  /** NodeReady / NodeNotReady events on transitions of the Ready status we observe. */
  private async recordReadyChange(node: FullNode, before: string, now: string): Promise<void> {
    const name = node.metadata.name;
    if (before === now || before === "") return;
    if (now === "True") {
      await this.event({ nodeName: name, type: "Normal", reason: "NodeReady", message: `Node ${name} status is now: NodeReady` });
    } else if (before === "True" || now === "Unknown") {
      const why = readyCondition(node)?.message;
      await this.event({
        nodeName: name,
        type: "Warning",
        reason: "NodeNotReady",
        message: `Node ${name} status is now: NodeNotReady (Ready ${now}${why ? `: ${why}` : ""})`,
      });
    }
  }

  /** Remove or swap the NoExecute taint at once; queue an addition for the zone's rate. */
  /**
   * Queue the node for a rate-limited NoExecute taint, or answer the change to make at once
   * (removal on recovery, not-ready/unreachable swap).
   */
  private processNoExecute(name: string, zone: string, view: NodeView): TaintChange | undefined {
    // While every zone is down we taint nobody, and take off (again, if a write lost a race)
    // any not-ready/unreachable NoExecute taint.
    const want = this.allDisrupted ? undefined : view.noExecuteWanted;
    const has = view.noExecuteHas;
    if (want === undefined || has !== undefined) {
      this.queueFor(zone).remove(name);
      return want === has ? undefined : withNoExecute(view.of, want, new Date(this.o.clock.now()));
    }
    this.queueFor(zone).add(name);
    return undefined;
  }

  private async taintPass(): Promise<void> {
    for (const queue of this.queues.values()) {
      const stillWanted = (name: string): boolean => {
        const node = this.nodes.get(name);
        return node !== undefined && desiredNoExecuteKey(node) !== undefined && noExecuteKeyOf(node) === undefined;
      };
      for (const name of [...queue.drain(stillWanted)]) {
        if (this.stopped) return;
        const node = this.nodes.get(name)!;
        const ok = (await this.applyTaints(node, withNoExecute(node, desiredNoExecuteKey(node), new Date(this.o.clock.now())))) !== undefined;
        // A write that lost a race is tried again on the next pass (its token is spent, as in Kubernetes).
        if (!ok) queue.add(name);
      }
    }
  }

  private async reconcileDirty(): Promise<void> {
    const names = [...this.dirty];
    this.dirty.clear();
    for (const name of names) {
      if (this.stopped) return;
      const node = this.nodes.get(name);
      if (node) await this.applyNoSchedule(node);
    }
  }

  private async applyNoSchedule(node: FullNode): Promise<void> {
    if (!noScheduleInStep(node)) await this.applyTaints(node, reconcileNoSchedule(node, desiredNoScheduleKeys(node)));
  }

  /** Write a taint change under the node's resource_version; undefined if it lost a race. */
  private async applyTaints(node: FullNode, change: TaintChange | undefined): Promise<FullNode | undefined> {
    if (!change) return node;
    const name = node.metadata.name;
    const updated = await this.write(() => this.o.registry.updateNode({ ...node, spec: { ...node.spec, taints: change.taints } }));
    if (!updated) return undefined;
    for (const taint of change.added) {
      this.o.metrics?.taintsAdded.inc({ taint });
      await this.event({ nodeName: name, type: "Normal", reason: "TaintAdded", message: `Added taint ${taint}`, about: taint });
    }
    for (const taint of change.removed) {
      this.o.metrics?.taintsRemoved.inc({ taint });
      await this.event({ nodeName: name, type: "Normal", reason: "TaintRemoved", message: `Removed taint ${taint}`, about: taint });
    }
    return updated;
  }

  /** Zone states decide the tainting rates; all zones down means we are the ones cut off. */
  private async handleDisruption(counts: Map<string, { ready: number; notReady: number }>, now: number): Promise<void> {
    const next = new Map<string, ZoneState>();
    for (const [zone, c] of counts) next.set(zone, computeZoneState(c.ready, c.notReady, this.o));
    const allFull = (m: Map<string, ZoneState>): boolean => m.size > 0 && [...m.values()].every((s) => s === "FullDisruption");
    const allAre = allFull(next);
    const allWere = allFull(this.zoneStates);
    const sizeOf = (zone: string): number => {
      const c = counts.get(zone);
      return c ? c.ready + c.notReady : 0;
    };
    if (allAre && !allWere) {
      this.o.log?.warn("every zone is fully disrupted: assuming the control plane is cut off; removing not-ready/unreachable NoExecute taints and adding none");
      this.allDisrupted = true;
      for (const q of this.queues.values()) {
        q.bucket.setRate(0);
        q.clear();
      }
      // Taints are removed now; one that loses a race is removed by the next pass (processNoExecute).
      for (const node of this.nodes.snapshot().objects) {
        if (this.stopped) return;
        if (noExecuteKeyOf(node) !== undefined) await this.applyTaints(node, withNoExecute(node, undefined, new Date(now)));
      }
    } else if (!allAre && allWere) {
      this.o.log?.info("zones are no longer all fully disrupted: every node gets a fresh grace period");
      this.allDisrupted = false;
      // Never back: `now` is the pass's start, and the pass may have moved a probe time past it.
      for (const h of this.health.values()) h.probe = Math.max(h.probe, now);
      // Every queue gets its rate back, including zones made only of excluded nodes (not counted in `next`).
      for (const [zone, q] of this.queues) {
        const state = next.get(zone);
        q.bucket.setRate(state === undefined ? this.o.nodeEvictionRate : zoneRate(state, sizeOf(zone), this.o));
      }
    } else if (!allAre) {
      for (const [zone, state] of next) {
        if (this.zoneStates.get(zone) !== state) this.queueFor(zone).bucket.setRate(zoneRate(state, sizeOf(zone), this.o));
      }
    }
    for (const [zone, state] of next) {
      const before = this.zoneStates.get(zone) ?? "Initial";
      if (before === state) continue;
      await this.event({
        nodeName: "",
        type: state === "Normal" ? "Normal" : "Warning",
        reason: "ZoneStateChanged",
        message: `Zone ${zoneName(zone)} is now ${state} (was ${before})`,
        about: zoneName(zone).replace(/[^A-Za-z0-9.-]/g, "-"),
      });
    }
    this.zoneStates.clear();
    for (const [zone, state] of next) this.zoneStates.set(zone, state);
  }

  private queueFor(zone: string): ZoneQueue {
    let q = this.queues.get(zone);
    if (!q) {
      q = new ZoneQueue(new TokenBucket(this.allDisrupted ? 0 : this.o.nodeEvictionRate, this.o.clock));
      this.queues.set(zone, q);
    }
    return q;
  }

  /** A write that may lose a race with the node's agent or an operator: undefined then. */
  private async write(fn: () => Promise<Node>): Promise<FullNode | undefined> {
    try {
      return fullNode(await fn());
    } catch (err) {
      if (err instanceof ConflictError || err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  private async event(input: EventInput): Promise<void> {
    try {
      await this.o.events.record(input);
    } catch (err) {
      this.o.log?.warn({ err, reason: input.reason, node: input.nodeName }, "recording an event failed");
    }
  }

  /** When the controller last saw a node alive (controller clock), if it has seen it. */
  probeTime(name: string): number | undefined {
    return this.health.get(name)?.probe;
  }

  /** Zone states as last computed (for tests, metrics and the dashboard). */
  zones(): ReadonlyMap<string, ZoneState> {
    return this.zoneStates;
  }

  /** Silence allowed to a node that has posted Ready before (ms). */
  get monitorGracePeriodMs(): number {
    return this.o.monitorGracePeriodMs;
  }
}
