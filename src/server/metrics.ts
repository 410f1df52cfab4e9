/**
 * Prometheus metrics. One registry per server instance so tests can run several servers in
 * one process without label clashes.
 */
import { PerformanceObserver, constants as perfConstants } from "node:perf_hooks";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CheckpointStats } from "../registry/lease-renewals.js";
import { CallLatency, TalliedCounter } from "./tallies.js";

export class ServerMetrics {
  readonly registry = new Registry();
  // The metrics every call, renewal or event touches: counted in plain numbers (tallies.ts).
  readonly handled = new TalliedCounter({
    name: "nodeplane_grpc_server_handled_total",
    help: "RPCs completed, by method and gRPC status code.",
    labelNames: ["method", "code"] as const,
    registers: [this.registry],
  });
  readonly latency = new CallLatency({
    name: "nodeplane_grpc_server_handling_seconds",
    help: "Time to complete unary RPCs, by method.",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly watchers = new Gauge({
    name: "nodeplane_watchers",
    help: "Open Watch streams.",
    registers: [this.registry],
  });
  readonly watchEvents = new TalliedCounter({
    name: "nodeplane_watch_events_sent_total",
    help: "Watch events written to streams, by type.",
    labelNames: ["type"] as const,
    registers: [this.registry],
  });
  readonly heartbeatStreams = new Gauge({
    name: "nodeplane_heartbeat_streams",
    help: "Open Heartbeat streams (agents connected by the streaming heartbeat).",
    registers: [this.registry],
  });
  readonly heartbeats = new TalliedCounter({
    name: "nodeplane_heartbeats_total",
    help: "Lease renewals received on Heartbeat streams, by result code.",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly slowWatchers = new Counter({
    name: "nodeplane_watch_slow_watchers_total",
    help: "Watchers ended because their queue was full.",
    registers: [this.registry],
  });

  readonly commitBatch = new Histogram({
    name: "nodeplane_store_commit_batch_transactions",
    help: "Transactions per group commit.",
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000],
    registers: [this.registry],
  });
  readonly commitSeconds = new Histogram({
    name: "nodeplane_store_commit_seconds",
    help: "Time to apply and commit one group commit (durable).",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [this.registry],
  });

  readonly leaseCheckpointSeconds = new Histogram({
    name: "nodeplane_lease_checkpoint_seconds",
    help: "Time to write one Lease checkpoint (every Lease renewed since the last one).",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly leaseCheckpointWrites = new Counter({
    name: "nodeplane_lease_checkpoint_leases_total",
    help: "Leases written by checkpoints (one per Lease renewed between two checkpoints).",
    registers: [this.registry],
  });
  readonly leaseCheckpointTxns = new Counter({
    name: "nodeplane_lease_checkpoint_transactions_total",
    help: "Store transactions of Lease checkpoints (up to 128 Leases each).",
    registers: [this.registry],
  });
  readonly leaseRenewalsWaited = new Counter({
    name: "nodeplane_lease_renewals_waited_total",
    help: "Renewals answered only once their checkpoint was written (checkpoints lagging, or --lease-checkpoint-interval 0s).",
    registers: [this.registry],
  });

  /** For the registry's onCheckpoint. */
  readonly onCheckpoint = (c: CheckpointStats): void => {
    this.leaseCheckpointSeconds.observe(c.seconds);
    this.leaseCheckpointWrites.inc(c.leases);
    this.leaseCheckpointTxns.inc(c.txns);
    this.leaseRenewalsWaited.inc(c.waited);
  };

  /** For the store's onCommit. */
  readonly onCommit = (transactions: number, seconds: number): void => {
    this.commitBatch.observe(transactions);
    this.commitSeconds.observe(seconds);
  };

  constructor(opts: { storeRevision: () => Promise<number>; processMetrics?: boolean }) {
    new Gauge({
      name: "nodeplane_store_revision",
      help: "The store's current revision.",
      registers: [this.registry],
      async collect() {
        this.set(await opts.storeRevision());
      },
    });
    if (opts.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      this.gc = new GcDurations(this.registry);
    }
  }

  private readonly gc: GcDurations | undefined;

  /** Stop observing the process (the GC observer); the registry can still be read. */
  close(): void {
    this.gc?.close();
  }
}

/**
 * nodejs_gc_duration_seconds, with every collection in it. prom-client's own (15.x) records only
 * the first entry of each batch its PerformanceObserver is handed, and V8's collections often
 * come in batches (a full collection with the scavenges around it): full collections went
 * uncounted. This one replaces it under the same name, help, label and buckets.
 */
class GcDurations {
  private readonly observer: PerformanceObserver;

  constructor(registry: Registry) {
    const name = "nodejs_gc_duration_seconds";
    registry.removeSingleMetric(name);
    const histogram = new Histogram({
      name,
      help: "Garbage collection duration by kind, one of major, minor, incremental or weakcb.",
      labelNames: ["kind"] as const,
      buckets: [0.001, 0.01, 0.1, 1, 2, 5], // prom-client's
      registers: [registry],
    });
    const kinds = new Map<number, string>([
      [perfConstants.NODE_PERFORMANCE_GC_MAJOR, "major"],
      [perfConstants.NODE_PERFORMANCE_GC_MINOR, "minor"],
      [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL, "incremental"],
      [perfConstants.NODE_PERFORMANCE_GC_WEAKCB, "weakcb"],
    ]);
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const detail: unknown = Reflect.get(entry, "detail"); // a gc entry's { kind, flags }
        const kind = typeof detail === "object" && detail !== null ? kinds.get(Number(Reflect.get(detail, "kind"))) : undefined;
        if (kind) histogram.observe({ kind }, entry.duration / 1000);
      }
    });
    this.observer.observe({ entryTypes: ["gc"] });
  }

  close(): void {
    this.observer.disconnect();
  }
}
