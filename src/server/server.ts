/**
 * NodeplaneServer: the composition root. Opens the store, loads the watch cache, serves
 * NodeService, reflection and health over gRPC and metrics/probes over HTTP; shuts down in
 * order: stop taking work, end watches with UNAVAILABLE, finish in-flight calls, close the store.
 */
import * as grpc from "@grpc/grpc-js";
import type { Server as HttpServer } from "node:http";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { UnavailableError } from "../errors.js";
import { NodeServiceService } from "../gen/nodeplane/v1/service.js";
import { createLogger, type LogLevel } from "../log.js";
import { NodeRegistry } from "../registry/nodes.js";
import { Compactor } from "../store/compactor.js";
import { SqliteStore } from "../store/sqlite.js";
import type { Store } from "../store/store.js";
import { WatchCache } from "../watch/cache.js";
import { ControllerMetrics } from "../controller/metrics.js";
import { NodeLifecycleController, type NodeLifecycleOptions } from "../controller/nodelifecycle.js";
import { systemClock } from "../clock.js";
import { EventRecorder } from "../registry/events.js";
import { addHealth, NODE_SERVICE_NAME } from "./health.js";
import { startHttpSide } from "./http.js";
import { ServerMetrics } from "./metrics.js";
import { nodeService } from "./node-service.js";
import { addReflection } from "./reflection.js";

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
}

/** The node lifecycle controller's tunables (flags of `nodeplane serve`). */
export type ControllerSettings = Omit<NodeLifecycleOptions, "registry" | "events" | "clock" | "log" | "metrics">;

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

  private constructor(
    readonly port: number,
    readonly httpPort: number | undefined,
    readonly store: Store,
    readonly registry: NodeRegistry,
    private readonly grpcServer: grpc.Server,
    private readonly httpServer: HttpServer | undefined,
    private readonly cache: WatchCache,
    private readonly compactor: Compactor,
    private readonly health: { setServing(service: string, serving: boolean): void },
    private readonly log: Logger,
    private readonly shutdownTimeoutMs: number,
    /** Read by /readyz: false from the first moment of shutdown. */
    private readonly state: { accepting: boolean },
    /** Stops the controllers and their timers. */
    private readonly stopControllers: () => Promise<void>,
    /** The node lifecycle controller, when it runs. */
    readonly controller: NodeLifecycleController | undefined,
  ) {}

  static async start(opts: ServeOptions): Promise<NodeplaneServer> {
    const log = opts.logger ?? createLogger(opts.logLevel);
    const store = opts.store ?? (await SqliteStore.open({ dir: opts.dataDir }));
    try {
      return await NodeplaneServer.startOn(store, opts, log);
    } catch (err) {
      await store.close().catch(() => {});
      throw err;
    }
  }

  private static async startOn(store: Store, opts: ServeOptions, log: Logger): Promise<NodeplaneServer> {
    const clock = opts.clock ?? systemClock;
    const registry = new NodeRegistry({ store, clock });
    const events = new EventRecorder({ store, clock, source: "node-lifecycle-controller" });
    const cache = new WatchCache({
      store,
      queueLimit: opts.watchQueueLimit ?? DEFAULTS.watchQueueLimit,
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? DEFAULTS.bookmarkIntervalMs,
      maxWatchers: opts.maxWatchers ?? DEFAULTS.maxWatchers,
      onError: (err) => log.warn({ err }, "watch cache restarting"),
    });
    await cache.start();
    const compactor = new Compactor({
      store,
      minEvents: opts.watchWindowEvents ?? DEFAULTS.watchWindowEvents,
      minAgeMs: opts.watchWindowMs ?? DEFAULTS.watchWindowMs,
      intervalMs: opts.compactIntervalMs ?? DEFAULTS.compactIntervalMs,
      onError: (err) => log.warn({ err }, "compaction failed"),
    });
    compactor.start();

    const metrics = new ServerMetrics({ storeRevision: () => store.currentRevision() });
    const controller =
      opts.nodeLifecycle === false
        ? undefined
        : new NodeLifecycleController({
            registry,
            events,
            clock,
            log: log.child({ component: "node-lifecycle" }),
            metrics: new ControllerMetrics(metrics.registry),
            ...opts.nodeLifecycle,
          });
    await controller?.start();
    const expiry = setInterval(() => void events.expire().catch((err: unknown) => log.warn({ err }, "event expiry failed")), 60_000);
    expiry.unref();
    const maxMessage = opts.maxMessageBytes ?? DEFAULTS.maxMessageBytes;
    const server = new grpc.Server({
      "grpc.max_receive_message_length": maxMessage,
      "grpc.max_send_message_length": maxMessage,
      // Find dead peers (a partitioned watcher holds its stream otherwise).
      "grpc.keepalive_time_ms": 60_000,
      "grpc.keepalive_timeout_ms": 20_000,
    });
    server.addService(NodeServiceService, nodeService({ registry, cache, events, metrics, log }));
    addReflection(server);
    const health = addHealth(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(opts.listen, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    ).catch(async (err: unknown) => {
      cache.stop();
      clearInterval(expiry);
      await Promise.all([compactor.stop(), controller?.stop()]);
      throw new Error(`cannot listen on ${opts.listen}: ${err instanceof Error ? err.message : String(err)}`);
    });

    const state = { accepting: true };
    let http: { server: HttpServer; port: number } | undefined;
    if (opts.httpListen) {
      const { host, port: httpPort } = splitHostPort(opts.httpListen);
      http = await startHttpSide({
        host,
        port: httpPort,
        metrics: metrics.registry,
        ready: async () => {
          if (!state.accepting) throw new UnavailableError("shutting down");
          await store.ping();
        },
      }).catch(async (err: unknown) => {
        server.forceShutdown();
        cache.stop();
        clearInterval(expiry);
        await Promise.all([compactor.stop(), controller?.stop()]);
        throw new Error(`cannot listen on ${opts.httpListen}: ${err instanceof Error ? err.message : String(err)}`);
      });
    }
    health.setServing("", true);
    health.setServing(NODE_SERVICE_NAME, true);
    log.info({ listen: opts.listen, port, httpPort: http?.port, revision: await store.currentRevision() }, "nodeplane serving");
    return new NodeplaneServer(
      port,
      http?.port,
      store,
      registry,
      server,
      http?.server,
      cache,
      compactor,
      health,
      log,
      opts.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs,
      state,
      async () => {
        clearInterval(expiry);
        await controller?.stop();
      },
      controller,
    );
  }

  /** Stop taking work, end watches with UNAVAILABLE, finish in-flight calls, close the store. */
  shutdown(): Promise<void> {
    this.shuttingDown ??= this.doShutdown();
    return this.shuttingDown;
  }

  private async doShutdown(): Promise<void> {
    this.log.info("shutting down");
    this.state.accepting = false;
    this.health.setServing("", false);
    this.health.setServing(NODE_SERVICE_NAME, false);
    await this.stopControllers();
    this.cache.stop();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.log.warn({ timeoutMs: this.shutdownTimeoutMs }, "in-flight calls did not finish in time: cutting them off");
        this.grpcServer.forceShutdown();
        resolve();
      }, this.shutdownTimeoutMs);
      this.grpcServer.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await this.compactor.stop();
    await this.store.close();
    if (this.httpServer) {
      const http = this.httpServer;
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
    }
    this.log.info("stopped");
  }
}

/** "host:port" or "[v6]:port". */
function splitHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`bad address ${JSON.stringify(address)}: want host:port, e.g. 127.0.0.1:8080`);
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}
