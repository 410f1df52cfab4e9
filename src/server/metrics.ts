/**
 * Prometheus metrics. One registry per server instance so tests can run several servers in
 * one process without label clashes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class ServerMetrics {
  readonly registry = new Registry();
  readonly handled = new Counter({
    name: "nodeplane_grpc_server_handled_total",
    help: "RPCs completed, by method and gRPC status code.",
    labelNames: ["method", "code"] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: "nodeplane_grpc_server_handling_seconds",
    help: "Time to complete unary RPCs, by method.",
    labelNames: ["method"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly watchers = new Gauge({
    name: "nodeplane_watchers",
    help: "Open Watch streams.",
    registers: [this.registry],
  });
  readonly watchEvents = new Counter({
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
  readonly heartbeats = new Counter({
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
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }
}
