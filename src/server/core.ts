/**
 * Everything under the transport, built once per server in dependency order: the shared
 * informers over the store, pod CIDR allocation (a collaborator of the registry, built before
 * it), the registry, the watch cache (fan-out over the node informer), the compactor and the
 * controllers (a group that can be started and stopped at run time).
 */
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { CloudProvider } from "../cloud/provider.js";
import { CloudSyncController, uninitializedTaint } from "../controller/cloudsync.js";
import { type Controller, Controllers } from "../controller/controllers.js";
import { IpamController } from "../controller/ipam.js";
import { ControllerMetrics } from "../controller/metrics.js";
import { NodeLifecycleController, type NodeLifecycleOptions } from "../controller/nodelifecycle.js";
import { sharedInformers, type SharedInformers } from "../informer/shared.js";
import type { FamilyRange } from "../ipam/config.js";
import { Ipam } from "../ipam/ipam.js";
import { EventRecorder } from "../registry/events.js";
import { NodeRegistry } from "../registry/nodes.js";
import { renewTimes } from "../registry/renew-times.js";
import { Compactor } from "../store/compactor.js";
import type { Store } from "../store/store.js";
import { WatchCache } from "../watch/cache.js";
import type { ServerMetrics } from "./metrics.js";

/** The node lifecycle controller's tunables (flags of `nodeplane serve`). */
export type ControllerSettings = Omit<NodeLifecycleOptions, "registry" | "nodes" | "leases" | "events" | "clock" | "log" | "metrics">;

export interface CoreOptions {
  store: Store;
  /** The largest message (--max-message-size): stored nodes are capped below it. */
  maxMessageBytes: number;
  /** How often Lease renewals are checkpointed, ms (--lease-checkpoint-interval; 0 = each is a durable write). */
  leaseCheckpointMs: number;
  /** How long a checkpoint may run before renewals wait for it, ms (an eighth of the grace period, at least the interval). */
  leaseLagLimitMs: number;
  /** How far a Lease's stored renew time may trail its renewals, ms (--lease-write-interval; 0 = every renewal written). */
  leaseWriteIntervalMs: number;
  clock: Clock;
  log: Logger;
  metrics: ServerMetrics;
  watch: { queueLimit: number; bookmarkIntervalMs: number; maxWatchers: number };
  compaction: { minEvents: number; minAgeMs: number; intervalMs: number };
  /** The node lifecycle controller's settings; false = do not run it. */
  nodeLifecycle: false | ControllerSettings | undefined;
  /** Pod CIDR ranges (--allocate-node-cidrs); undefined = off. */
  ipamRanges: FamilyRange[] | undefined;
  cloud: CloudProvider | undefined;
}

export interface Core {
  informers: SharedInformers;
  registry: NodeRegistry;
  events: EventRecorder;
  cache: WatchCache;
  controllers: Controllers;
  /** The node lifecycle controller, when it runs. */
  lifecycle: NodeLifecycleController | undefined;
  /** Resolves once every informer has synced and pod CIDR blocks are known (before any claim). */
  ready: Promise<void>;
  /** Stops the controllers, the Lease checkpoints (writing the last one), the compactor, the watch cache and the informers, in that order. */
  stop(): Promise<void>;
}

export function buildCore(o: CoreOptions): Core {
  const { store, clock, log } = o;
  const informers = sharedInformers({
    store,
    clock,
    blocks: o.ipamRanges !== undefined,
    onError: (kind, err) => log.warn({ err, informer: kind }, "informer recovering (it lists or watches again by itself)"),
  });
  const events = new EventRecorder({ store, clock, source: "node-lifecycle-controller" });
  const ipam = o.ipamRanges && new Ipam({ ranges: o.ipamRanges, events, log: log.child({ component: "ipam" }) });
  const stopFollowing = ipam && informers.blocks ? ipam.follow(informers.blocks) : undefined;
  const registry = new NodeRegistry({
    store,
    clock,
    ipam,
    nodes: informers.nodes,
    newNodeTaints: o.cloud ? [uninitializedTaint()] : [],
    maxMessageBytes: o.maxMessageBytes,
    leaseCheckpointMs: o.leaseCheckpointMs,
    leaseLagLimitMs: o.leaseLagLimitMs,
    leaseWriteIntervalMs: o.leaseWriteIntervalMs,
    onCheckpoint: o.metrics.onCheckpoint,
    onCheckpointError: (err) => log.warn({ err }, "lease checkpoint failed (its renewals go into the next one; renewals wait for it meanwhile)"),
  });
  const cache = new WatchCache({ store, nodes: informers.nodes, ...o.watch });
  const compactor = new Compactor({ store, ...o.compaction, onError: (err) => log.warn({ err }, "compaction failed") });

  const list: Controller[] = [];
  const lifecycle =
    o.nodeLifecycle === false
      ? undefined
      : new NodeLifecycleController({
          registry,
          nodes: informers.nodes,
          // The store's renew times and this server's renewals not yet checkpointed.
          leases: renewTimes(informers.leases, registry.renewals),
          events,
          clock,
          log: log.child({ component: "node-lifecycle" }),
          metrics: new ControllerMetrics(o.metrics.registry),
          ...o.nodeLifecycle,
        });
  if (lifecycle) list.push(named("nodelifecycle", lifecycle));
  if (ipam && informers.blocks) {
    const ctl = new IpamController({ registry, nodes: informers.nodes, blocks: informers.blocks, clock, log: log.child({ component: "ipam" }) });
    list.push(named("ipam", ctl));
    log.info({ ranges: ipam.describe() }, "pod CIDR allocation on");
  }
  if (o.cloud) {
    const ctl = new CloudSyncController({
      registry,
      nodes: informers.nodes,
      provider: o.cloud,
      events,
      clock,
      log: log.child({ component: "cloud-sync" }),
      periodMs: (o.nodeLifecycle || undefined)?.monitorPeriodMs,
    });
    list.push(named("cloudsync", ctl));
  }
  const controllers = new Controllers(list);

  // Loads in the background (in pages, answering calls in between).
  const cacheReady = cache.start();
  informers.start();
  registry.renewals.start();
  // Every stored Lease into the ones the registry knows, in the background: a node's first
  // renewal after a start is then answered from memory instead of reading its Lease first.
  const loading = new AbortController();
  void registry.loadLeases(informers.nodes, loading.signal).then(
    (leases) => log.debug({ leases }, "stored Leases loaded"),
    (err: unknown) => {
      if (!loading.signal.aborted) log.warn({ err }, "loading the stored Leases stopped (the rest are read at their first renewal)");
    },
  );
  // A node deleted through another server: its renewals here end at once, not at a checkpoint.
  const stopForgetting = informers.nodes.subscribe({ onDelete: (name, _old, revision) => registry.renewals.forget(name, revision) });
  compactor.start();
  const expiry = setInterval(() => void events.expire().catch((err: unknown) => log.warn({ err }, "event expiry failed")), 60_000);
  expiry.unref();
  return {
    informers,
    registry,
    events,
    cache,
    controllers,
    lifecycle,
    ready: Promise.all([cacheReady, informers.leases.synced(), informers.blocks?.synced()]).then(() => undefined),
    async stop() {
      clearInterval(expiry);
      loading.abort();
      await controllers.stop();
      // Writes every renewal answered so far; later ones are durable writes.
      stopForgetting();
      await registry.renewals.stop();
      await compactor.stop();
      await cache.stop();
      stopFollowing?.();
      await informers.stop();
    },
  };
}

function named(name: string, c: { start(): Promise<void>; stop(): Promise<void> }): Controller {
  return { name, start: () => c.start(), stop: () => c.stop() };
}
