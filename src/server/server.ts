/**
 * NodeplaneServer: the composition root. Opens the store, starts loading the watch cache (which
 * is also the controllers' node informer), serves NodeService, reflection and health over gRPC
 * and metrics/probes over HTTP; shuts down in order: stop taking work, end watches with
 * UNAVAILABLE, finish in-flight calls, close the store.
 *
 * Serving and ready, as kube-apiserver does it:
 * - serving (the `nodeplane serving` log line, gRPC health SERVING) as soon as the port is bound,
 *   before the watch cache has loaded: reads and writes go to the store, which answers them
 *   correctly from the first call; a Watch waits for the cache's first load;
 * - ready (/readyz 200, the `nodeplane ready` log line) once the watch cache has loaded and the
 *   controllers' informers have synced. Controllers act only from then on: no node is judged on
 *   a half-loaded list. With leader election (replicas), only the leader runs them, and being
 *   ready does not wait for leading (src/server/leadership.ts).
 */
import * as grpc from "@grpc/grpc-js";
import type { Server as HttpServer } from "node:http";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { UnavailableError } from "../errors.js";
import { createLogger, type LogLevel } from "../log.js";
import { SqliteStore } from "../store/sqlite.js";
import type { Store } from "../store/store.js";
import type { NodeLifecycleController } from "../controller/nodelifecycle.js";
import type { NodeRegistry } from "../registry/nodes.js";
import { buildCore, type ControllerSettings } from "./core.js";
import { checkLeaderElection, type LeaderElectionSettings, startLeadership } from "./leadership.js";
import { systemClock } from "../clock.js";
import { InventoryProvider } from "../cloud/inventory.js";
import type { CloudProvider } from "../cloud/provider.js";
import { type FamilyRange, type IpamFlags, ipamRanges } from "../ipam/config.js";
import { addHealth, NODE_SERVICE_NAME } from "./health.js";
import { startHttpSide } from "./http.js";
import { ServerMetrics } from "./metrics.js";
import { Calls } from "./calls.js";
import { HeartbeatStreams } from "./heartbeat.js";
import { nodeService } from "./node-service.js";
import { nodeServiceDefinition } from "./watch-wire.js";
import { addReflection } from "./reflection.js";
import type { RestAccess } from "../rest/access.js";
import { RestRouter } from "../rest/router.js";

export interface ServeOptions {
  /** gRPC address, host:port (port 0 = any free port). */
  listen: string;
  /** HTTP address for /metrics, /healthz, /readyz; null = no HTTP side. */
  httpListen: string | null;
  /** Where the SQLite store lives (ignored when `store` is given). */
  dataDir: string;
  /** A store to serve instead of opening SQLite under dataDir (it is closed on shutdown). */
  store?: Store;
  logger?: Logger;
  logLevel?: LogLevel;
  clock?: Clock;
  /** Per-watcher queue bound in events. */
  watchQueueLimit?: number;
  bookmarkIntervalMs?: number;
  maxWatchers?: number;
  /** The retained history: at least this many revisions… */
  watchWindowEvents?: number;
  /** …and at least this much time. */
  watchWindowMs?: number;
  compactIntervalMs?: number;
  /** Largest request or response message. */
  maxMessageBytes?: number;
  /** How long shutdown waits for in-flight calls before cutting them off. */
  shutdownTimeoutMs?: number;
  /** The node lifecycle controller's settings; false = do not run it. */
  nodeLifecycle?: false | ControllerSettings;
  /** Pod CIDR allocation (--allocate-node-cidrs); undefined = off. */
  ipam?: IpamFlags;
  /** Renewals per second the whole fleet's heartbeat streams should stay under. */
  maxHeartbeatRate?: number;
  /** A cloud provider (--cloud-provider=inventory --cloud-config=FILE); undefined = none. */
  cloud?: { provider: "inventory"; configFile: string };
  /** Authentication and authorization of the Kubernetes REST API on the HTTP side; default allow all. */
  restAccess?: RestAccess;
  /** Run the controllers only while holding the leader Lease (replicas); undefined = always run them. */
  leaderElection?: LeaderElectionSettings;
}

export type { ControllerSettings } from "./core.js";
export type { LeaderElectionSettings } from "./leadership.js";

export const DEFAULTS = {
  listen: "127.0.0.1:50051",
  httpListen: "127.0.0.1:8080",
  dataDir: "./nodeplane-data",
  watchQueueLimit: 1000,
  bookmarkIntervalMs: 60_000,
  maxWatchers: 100_000,
  watchWindowEvents: 10_000,
  watchWindowMs: 5 * 60_000,
  compactIntervalMs: 30_000,
  maxMessageBytes: 4 * 1024 * 1024,
  shutdownTimeoutMs: 10_000,
} as const;

export class NodeplaneServer {
  private shuttingDown: Promise<void> | undefined;

  readonly port: number;
  readonly httpPort: number | undefined;
  readonly store: Store;
  readonly registry: NodeRegistry;
  /** The node lifecycle controller, when it runs. */
  readonly controller: NodeLifecycleController | undefined;
  private readonly parts: ServerParts;

  private constructor(parts: ServerParts) {
    this.parts = parts;
    this.port = parts.port;
    this.httpPort = parts.httpPort;
    this.store = parts.store;
    this.registry = parts.registry;
    this.controller = parts.controller;
  }

  static async start(opts: ServeOptions): Promise<NodeplaneServer> {
    const log = opts.logger ?? createLogger(opts.logLevel);
    // Bad flag combinations are refused before anything is opened.
    const ranges = opts.ipam ? ipamRanges(opts.ipam) : undefined;
    if (opts.leaderElection) checkLeaderElection(opts.leaderElection);
    const provider = opts.cloud
      ? await InventoryProvider.open(opts.cloud.configFile, (err) => log.error({ err }, "cloud inventory not reloaded"))
      : undefined;
    let revision = (): Promise<number> => Promise.resolve(0);
    const metrics = new ServerMetrics({ storeRevision: () => revision() });
    const store = opts.store ?? (await SqliteStore.open({ dir: opts.dataDir, onCommit: metrics.onCommit }));
    revision = () => store.currentRevision();
    try {
      return await NodeplaneServer.startOn(store, opts, log, ranges, provider, metrics);
    } catch (err) {
      await store.close().catch(() => {});
      throw err;
    }
  }

  private static async startOn(
    store: Store,
    opts: ServeOptions,
    log: Logger,
    ranges: FamilyRange[] | undefined,
    provider: CloudProvider | undefined,
    metrics: ServerMetrics,
  ): Promise<NodeplaneServer> {
    const clock = opts.clock ?? systemClock;
    // Background parts, stopped in reverse order on shutdown or when start-up fails half way.
    const parts: (() => Promise<void> | void)[] = [];
    const stopParts = async (): Promise<void> => {
      for (const stop of parts.splice(0).reverse()) await stop();
    };
    try {
      const core = buildCore({
        store,
        clock,
        log,
        metrics,
        watch: {
          queueLimit: opts.watchQueueLimit ?? DEFAULTS.watchQueueLimit,
          bookmarkIntervalMs: opts.bookmarkIntervalMs ?? DEFAULTS.bookmarkIntervalMs,
          maxWatchers: opts.maxWatchers ?? DEFAULTS.maxWatchers,
        },
        compaction: {
          minEvents: opts.watchWindowEvents ?? DEFAULTS.watchWindowEvents,
          minAgeMs: opts.watchWindowMs ?? DEFAULTS.watchWindowMs,
          intervalMs: opts.compactIntervalMs ?? DEFAULTS.compactIntervalMs,
        },
        nodeLifecycle: opts.nodeLifecycle,
        ipamRanges: ranges,
        cloud: provider,
      });
      parts.push(() => core.stop());
      const { registry, cache, events } = core;
      const loadStarted = performance.now();
      // Every used pod CIDR block is known before the first Register can allocate one.
      await core.informers.blocks?.synced();
      // Controllers act once the informers have synced (no node is judged on a half-loaded list),
      // and with leader election only on the replica that leads.
      const leadership = startLeadership({
        controllers: core.controllers,
        synced: core.ready,
        store,
        clock,
        log,
        metrics: metrics.registry,
        election: opts.leaderElection,
      });
      parts.push(() => leadership.stop());
      const syncing = leadership.ready;

      const maxMessage = opts.maxMessageBytes ?? DEFAULTS.maxMessageBytes;
      const server = new grpc.Server({
        "grpc.max_receive_message_length": maxMessage,
        "grpc.max_send_message_length": maxMessage,
        // Find dead peers (a partitioned watcher holds its stream otherwise).
        "grpc.keepalive_time_ms": 60_000,
        "grpc.keepalive_timeout_ms": 20_000,
      });
      const calls = new Calls(metrics, log);
      // The Kubernetes REST API on the HTTP side: the same registry, watch cache and events.
      const rest = new RestRouter({
        registry,
        cache,
        events,
        store,
        log: log.child({ component: "rest" }),
        access: opts.restAccess,
        watchQueueLimit: opts.watchQueueLimit,
        bookmarkIntervalMs: opts.bookmarkIntervalMs,
      });
      parts.push(() => rest.close());
      const heartbeats = new HeartbeatStreams({ registry, metrics, calls, maxRate: opts.maxHeartbeatRate });
      parts.push(() => heartbeats.closeAll());
      server.addService(nodeServiceDefinition, nodeService({ registry, cache, events, heartbeats, metrics, calls }));
      addReflection(server);
      const health = addHealth(server);
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(opts.listen, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      ).catch((err: unknown) => {
        throw new Error(`cannot listen on ${opts.listen}: ${err instanceof Error ? err.message : String(err)}`);
      });
      parts.push(() => server.forceShutdown());

      const state = { accepting: true, synced: false };
      let http: { server: HttpServer; port: number } | undefined;
      if (opts.httpListen) {
        const { host, port: httpPort } = splitHostPort(opts.httpListen);
        http = await startHttpSide({
          host,
          port: httpPort,
          metrics: metrics.registry,
          // Ready: the watch cache has loaded, the controllers have synced, the store answers and
          // we are not shutting down.
          ready: async () => {
            if (!state.accepting) throw new UnavailableError("shutting down");
            if (!cache.isLoaded) throw new UnavailableError("the watch cache is still loading");
            if (!state.synced) throw new UnavailableError("the controllers' informers are still syncing");
            await store.ping();
            return leadership.describe();
          },
          fallback: rest.handle,
        }).catch((err: unknown) => {
          throw new Error(`cannot listen on ${opts.httpListen}: ${err instanceof Error ? err.message : String(err)}`);
        });
      }
      parts.pop(); // from here on, shutdown() stops the gRPC server gracefully
      health.setServing("", true);
      health.setServing(NODE_SERVICE_NAME, true);
      log.info(
        { listen: opts.listen, port, httpPort: http?.port, revision: await store.currentRevision(), cacheLoaded: cache.isLoaded },
        "nodeplane serving",
      );
      const ready = syncing.then(() => {
        if (!state.accepting) return;
        state.synced = true;
        log.info({ nodes: core.informers.nodes.size, ms: Math.round(performance.now() - loadStarted) }, opts.leaderElection ? "nodeplane ready: watch cache loaded, informers synced" : "nodeplane ready: watch cache loaded, controllers synced");
      });
      ready.catch((err: unknown) => log.error({ err }, "start-up sync failed: not ready"));
      return new NodeplaneServer({
        port,
        httpPort: http?.port,
        store,
        registry,
        grpcServer: server,
        httpServer: http?.server,
        health,
        log,
        shutdownTimeoutMs: opts.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs,
        state,
        stopParts,
        controller: core.lifecycle,
        ready,
      });
    } catch (err) {
      await stopParts();
      throw err;
    }
  }

  /**
   * Resolves once the watch cache has loaded and the controllers' informers have synced (from
   * then on /readyz answers 200); calls are answered before that.
   */
  whenReady(): Promise<void> {
    return this.parts.ready;
  }

  /** Stop taking work, end watches with UNAVAILABLE, finish in-flight calls, close the store. */
  shutdown(): Promise<void> {
    this.shuttingDown ??= this.doShutdown();
    return this.shuttingDown;
  }

  private async doShutdown(): Promise<void> {
    const p = this.parts;
    p.log.info("shutting down");
    p.state.accepting = false;
    p.health.setServing("", false);
    p.health.setServing(NODE_SERVICE_NAME, false);
    // Controllers, IPAM, watch cache (its watchers end with UNAVAILABLE), compactor.
    await p.stopParts();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        p.log.warn({ timeoutMs: p.shutdownTimeoutMs }, "in-flight calls did not finish in time: cutting them off");
        p.grpcServer.forceShutdown();
        resolve();
      }, p.shutdownTimeoutMs);
      p.grpcServer.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await p.store.close();
    if (p.httpServer) {
      const http = p.httpServer;
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
    }
    p.log.info("stopped");
  }
}

/** What a running server is made of. */
interface ServerParts {
  port: number;
  httpPort: number | undefined;
  store: Store;
  registry: NodeRegistry;
  grpcServer: grpc.Server;
  httpServer: HttpServer | undefined;
  health: { setServing(service: string, serving: boolean): void };
  log: Logger;
  shutdownTimeoutMs: number;
  /** Read by /readyz: accepting is false from the first moment of shutdown; synced once every part has loaded. */
  state: { accepting: boolean; synced: boolean };
  /** Stops the background parts (controllers, watch cache, compactor), last started first. */
  stopParts: () => Promise<void>;
  controller: NodeLifecycleController | undefined;
  /** Settles once the watch cache has loaded and the controllers have synced. */
  ready: Promise<void>;
}

/** "host:port" or "[v6]:port". */
function splitHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`bad address ${JSON.stringify(address)}: want host:port, e.g. 127.0.0.1:8080`);
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}
