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
import { MIN_MESSAGE_BYTES } from "../registry/size.js";
import { SqliteStore } from "../store/sqlite.js";
import { DataDirLock } from "../store/sqlite-lock.js";
import type { Store } from "../store/store.js";
import { DEFAULT_MONITOR_GRACE_MS, type NodeLifecycleController } from "../controller/nodelifecycle.js";
import { DEFAULT_LEASE_CHECKPOINT_MS, type NodeRegistry } from "../registry/nodes.js";
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
import { Dashboard, type DashboardOptions } from "../dashboard/dashboard.js";
import { defaultMaxConnections, fdLimitWarning, GrpcListener } from "./connections.js";
import { Security, type SecurityOptions } from "../auth/setup.js";
import { dashboardAuth, restAccess } from "../auth/http-adapters.js";
import { serverInterceptors, tolerantServer } from "./call-guard.js";
import { releaseDecodedChunks } from "./stream-decoder.js";
import { addNodeProxy, type NodeProxySettings } from "../proxy/serve.js";

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
  /**
   * How often Lease renewals are checkpointed, ms (--lease-checkpoint-interval; 0 = every renewal
   * is a durable write). At most an eighth of the node monitor grace period (see
   * leaseCheckpointMs()); default 1 s, or that eighth if less.
   */
  leaseCheckpointMs?: number;
  /**
   * How far a Lease's stored renew time may trail the renewals answered for it, ms
   * (--lease-write-interval; per Lease at most half its duration; 0 = every renewal is written
   * by the next checkpoint). At most half the node monitor grace period; default that half.
   */
  leaseWriteIntervalMs?: number;
  /** gRPC connections open at once (--max-connections; default: what `ulimit -n` allows, see connections.ts). */
  maxConnections?: number;
  /** Concurrent streams (calls) on one gRPC connection (--max-streams-per-connection). */
  maxStreamsPerConnection?: number;
  /** A gRPC connection with no call for this long is closed (--connection-idle-timeout). */
  connectionIdleMs?: number;
  /** Connections open at once on the HTTP side (--http-max-connections). */
  httpMaxConnections?: number;
  /** A cloud provider (--cloud-provider=inventory --cloud-config=FILE); undefined = none. */
  cloud?: { provider: "inventory"; configFile: string };
  /** The REST API's access check, instead of the one `security` gives (tests). */
  restAccess?: RestAccess;
  /** The dashboard on the HTTP listener (its limits; authentication comes from `security` unless given here); false = none. */
  dashboard?: false | DashboardSettings;
  /** TLS, authentication, authorization, limits, audit (src/auth/setup.ts); undefined = plaintext on loopback, no authentication. */
  security?: SecurityOptions;
  /** Run the controllers only while holding the leader Lease (replicas); undefined = always run them. */
  leaderElection?: LeaderElectionSettings;
  /** How the server reaches node agents for NodeProxyService (src/proxy/node-proxy.ts). */
  agentProxy?: NodeProxySettings;
}

export type DashboardSettings = Omit<DashboardOptions, "registry" | "events" | "store" | "controller" | "log" | "metrics">;

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
  maxStreamsPerConnection: 10_000,
  connectionIdleMs: 5 * 60_000,
  httpMaxConnections: 1000,
  leaseCheckpointMs: DEFAULT_LEASE_CHECKPOINT_MS,
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
    if ((opts.maxMessageBytes ?? DEFAULTS.maxMessageBytes) < MIN_MESSAGE_BYTES) {
      throw new Error(`--max-message-size ${opts.maxMessageBytes} is too small: at least ${MIN_MESSAGE_BYTES} bytes (64Ki), so that a node and its answer fit in one message`);
    }
    leaseWriteIntervalMs(opts);
    const ranges = opts.ipam ? ipamRanges(opts.ipam) : undefined;
    Security.check(opts.security, opts.listen, opts.httpListen);
    if (opts.leaderElection) checkLeaderElection(opts.leaderElection);
    const provider = opts.cloud
      ? await InventoryProvider.open(opts.cloud.configFile, (err) => log.error({ err }, "cloud inventory not reloaded"))
      : undefined;
    let revision = (): Promise<number> => Promise.resolve(0);
    // One server per data directory: the lock is held until the store is closed (or the process ends).
    const lock = opts.store ? undefined : DataDirLock.acquire(opts.dataDir, opts.listen);
    const metrics = new ServerMetrics({ storeRevision: () => revision() });
    let store: Store;
    try {
      store = opts.store ?? (await SqliteStore.open({ dir: opts.dataDir, onCommit: metrics.onCommit }));
    } catch (err) {
      metrics.close();
      lock?.release();
      throw err;
    }
    revision = () => store.currentRevision();
    try {
      return await NodeplaneServer.startOn(store, opts, log, ranges, provider, metrics, lock);
    } catch (err) {
      await store.close().catch(() => {});
      lock?.release();
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
    lock: DataDirLock | undefined,
  ): Promise<NodeplaneServer> {
    const clock = opts.clock ?? systemClock;
    // Background parts, stopped in reverse order on shutdown or when start-up fails half way.
    const parts: (() => Promise<void> | void)[] = [];
    const stopParts = async (): Promise<void> => {
      for (const stop of parts.splice(0).reverse()) await stop();
    };
    parts.push(() => metrics.close());
    try {
      const security = await Security.create(opts.security, { dataDir: opts.dataDir, listen: opts.listen, httpListen: opts.httpListen, store, clock, log, metrics });
      const maxMessage = opts.maxMessageBytes ?? DEFAULTS.maxMessageBytes;
      const core = buildCore({
        // Stored nodes are capped below the message size, so that every answer carrying one fits.
        maxMessageBytes: maxMessage,
        leaseCheckpointMs: leaseCheckpointMs(opts),
        leaseLagLimitMs: leaseLagLimitMs(opts),
        leaseWriteIntervalMs: leaseWriteIntervalMs(opts),
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
      // Ready only once the store file has passed its check (reads are answered meanwhile; writes
      // wait); the controllers act once the informers have synced (no node is judged on a
      // half-loaded list), and with leader election only on the replica that leads.
      if (store instanceof SqliteStore && store.migrated) {
        log.info({ fromSchema: store.migrated.from, seconds: store.migrated.seconds }, "store file migrated to the current schema (checked whole first)");
      }
      const checked =
        store instanceof SqliteStore
          ? store.checked.then((seconds) => {
              log.info({ seconds }, "store file checked (PRAGMA quick_check): ok");
              if (store.schemaRaisedFrom !== undefined) {
                log.info({ fromSchema: store.schemaRaisedFrom }, "store file moved to the current schema after its check: an older nodeplane refuses it from now on");
              }
            })
          : Promise.resolve();
      const leadership = startLeadership({
        controllers: core.controllers,
        synced: Promise.all([core.ready, checked]).then(() => undefined),
        store,
        clock,
        log,
        metrics: metrics.registry,
        election: opts.leaderElection,
      });
      parts.push(() => leadership.stop());
      const syncing = leadership.ready;

      const dashboard =
        opts.httpListen && opts.dashboard !== false
          ? new Dashboard({
              ...dashboardAuth(security.access),
              ...opts.dashboard,
              registry,
              events,
              store,
              controller: core.lifecycle,
              log: log.child({ component: "dashboard" }),
              metrics: metrics.registry,
            })
          : undefined;
      if (dashboard) parts.push(() => dashboard.stop());

      const interceptors = serverInterceptors(security.serverOptions().interceptors ?? []);
      const server = new grpc.Server({
        // Undecodable requests are refused before anything (authorization included) reads them;
        // every status's details are bounded (call-guard.ts: by an interceptor only when
        // authorization needs interceptors anyway, else by the handlers tolerantServer wraps).
        interceptors,
        "grpc.max_receive_message_length": maxMessage,
        "grpc.max_send_message_length": maxMessage,
        // Find dead peers (a partitioned watcher holds its stream otherwise).
        "grpc.keepalive_time_ms": 60_000,
        "grpc.keepalive_timeout_ms": 20_000,
        // Bounds per connection (the connection count is GrpcListener's).
        "grpc.max_concurrent_streams": opts.maxStreamsPerConnection ?? DEFAULTS.maxStreamsPerConnection,
        "grpc.max_connection_idle_ms": opts.connectionIdleMs ?? DEFAULTS.connectionIdleMs,
      });
      const calls = new Calls(metrics, log);
      // The Kubernetes REST API on the HTTP side: the same registry, watch cache and events.
      const rest = new RestRouter({
        registry,
        cache,
        events,
        store,
        log: log.child({ component: "rest" }),
        access: opts.restAccess ?? (security.enabled ? restAccess(security.access) : undefined),
        watchQueueLimit: opts.watchQueueLimit,
        bookmarkIntervalMs: opts.bookmarkIntervalMs,
      });
      parts.push(() => rest.close());
      const heartbeats = new HeartbeatStreams({
        registry,
        metrics,
        calls,
        maxRate: opts.maxHeartbeatRate,
        admit: security.gate.active ? (md, req) => security.gate.admitRenewal(md, req) : undefined,
      });
      parts.push(() => heartbeats.closeAll());
      // Each call's decoder lets go of a message's chunks once it is decoded (stream-decoder.ts).
      if (!releaseDecodedChunks()) log.warn("@grpc/grpc-js's StreamDecoder is not the one this server knows: each stream keeps its last message's chunks until the next one");
      const services = tolerantServer(server, { interceptors, measure: security.gate.active });
      services.addService(nodeServiceDefinition, nodeService({ registry, cache, events, heartbeats, metrics, calls, maxMessageBytes: maxMessage }));
      security.addServices(services, calls);
      const tunnels = addNodeProxy(services, { ...opts.agentProxy, registry, calls, security, log });
      parts.push(() => tunnels.closeAll());
      // AgentService is in the descriptors (node_proxy.proto imports its messages), but agents serve it.
      addReflection(services, undefined, { exclude: ["nodeplane.v1.AgentService"] });
      const health = addHealth(services);
      const maxConnections = opts.maxConnections ?? defaultMaxConnections();
      const httpMaxConnections = opts.httpMaxConnections ?? DEFAULTS.httpMaxConnections;
      const fdWarning = fdLimitWarning(maxConnections, opts.httpListen ? httpMaxConnections : 0);
      if (fdWarning) log.warn(fdWarning);
      const listener = await GrpcListener.listen({
        server,
        credentials: grpc.ServerCredentials.createInsecure(),
        ...splitHostPort(opts.listen),
        maxConnections,
        firstBytesTimeoutMs: Math.min(10_000, opts.connectionIdleMs ?? DEFAULTS.connectionIdleMs),
        tls: security.tls,
        log,
      }).catch((err: unknown) => {
        throw new Error(`cannot listen on ${opts.listen}: ${err instanceof Error ? err.message : String(err)}`);
      });
      const port = listener.port;
      security.attach(listener);
      parts.push(() => security.close());
      parts.push(() => {
        listener.close();
        server.forceShutdown();
      });
      lock?.setListen(opts.listen.replace(/:\d+$/, `:${port}`));

      const state: ServerParts["state"] = { accepting: true, synced: false };
      let http: { server: HttpServer; port: number } | undefined;
      if (opts.httpListen) {
        const { host, port: httpPort } = splitHostPort(opts.httpListen);
        http = await startHttpSide({
          host,
          port: httpPort,
          maxConnections: httpMaxConnections,
          metrics: metrics.registry,
          tls: security.tls,
          protectMetrics: security.enabled ? (req) => security.access.authorizeHttp(req, "get", "metrics").then(() => undefined) : undefined,
          // Ready: the watch cache has loaded, the controllers have synced, the store answers and
          // we are not shutting down.
          ready: async () => {
            if (!state.accepting) throw new UnavailableError("shutting down");
            if (state.failed) throw new UnavailableError(`start-up failed: ${state.failed}`);
            if (!cache.isLoaded) throw new UnavailableError("the watch cache is still loading");
            if (!state.synced) throw new UnavailableError("the controllers' informers are still syncing");
            if (listener.saturated) {
              throw new UnavailableError(`gRPC connections at the limit: ${listener.connections} of ${maxConnections} (--max-connections)`);
            }
            await store.ping();
            return leadership.describe();
          },
          fallback: rest.handle,
          routes: dashboard && ((req, res) => dashboard.handle(req, res)),
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
      ready.catch((err: unknown) => {
        state.failed = err instanceof Error ? err.message : String(err);
        log.error({ err }, "start-up sync failed: not ready");
      });
      return new NodeplaneServer({
        port,
        httpPort: http?.port,
        store,
        registry,
        grpcServer: server,
        listener,
        httpServer: http?.server,
        health,
        log,
        shutdownTimeoutMs: opts.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs,
        state,
        stopParts,
        controller: core.lifecycle,
        ready,
        lock,
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
    p.listener.close(); // no new connections; grpc-js ends the open ones below
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
    p.lock?.release();
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
  listener: GrpcListener;
  httpServer: HttpServer | undefined;
  health: { setServing(service: string, serving: boolean): void };
  log: Logger;
  shutdownTimeoutMs: number;
  /**
   * Read by /readyz: accepting is false from the first moment of shutdown; synced once every part
   * has loaded; failed says why start-up cannot complete (e.g. the store failed its check).
   */
  state: { accepting: boolean; synced: boolean; failed?: string };
  /** Stops the background parts (controllers, watch cache, compactor), last started first. */
  stopParts: () => Promise<void>;
  controller: NodeLifecycleController | undefined;
  /** Settles once the watch cache has loaded and the controllers have synced. */
  ready: Promise<void>;
  /** The data directory's lock (none when the store was given). */
  lock: DataDirLock | undefined;
}

/**
 * The Lease checkpoint interval. Renewals a crash loses span at most 2 × the interval, and with
 * several servers the leader sees another server's renewals at its checkpoints: an interval of at
 * most an eighth of the grace period keeps both far inside it (the default: 1 s of 40 s), so that
 * no node is judged Unknown for want of a renewal that was only late to reach the store.
 */
function leaseCheckpointMs(opts: ServeOptions): number {
  const grace = monitorGraceMs(opts);
  const ms = opts.leaseCheckpointMs ?? Math.min(DEFAULTS.leaseCheckpointMs, Math.floor(grace / 8));
  if (!Number.isFinite(ms) || ms < 0 || ms > grace / 8) {
    throw new Error(`--lease-checkpoint-interval ${ms}ms is out of range: from 0 (every renewal a durable write) to an eighth of --node-monitor-grace-period (${grace}ms), so that late renewals never make a node Unknown`);
  }
  return ms;
}

function monitorGraceMs(opts: ServeOptions): number {
  return (opts.nodeLifecycle || undefined)?.monitorGracePeriodMs ?? DEFAULT_MONITOR_GRACE_MS;
}

/**
 * How long a Lease checkpoint may run before renewals wait for it: an eighth of the grace period
 * too (5 s of 40 s), so that a checkpoint the store is briefly slow to commit grows the next one
 * instead of stalling every agent, while the renewals a crash can lose (at most twice this) and
 * the other servers' lag stay far inside the grace period.
 */
function leaseLagLimitMs(opts: ServeOptions): number {
  return Math.max(leaseCheckpointMs(opts), Math.floor(monitorGraceMs(opts) / 8));
}

/**
 * The Lease write interval S: a renewal may be left for a later checkpoint while it is in the
 * stored renew time's write period and younger than S, and the stored one younger than 1.25 × S.
 * Half the grace period at most (the default), so that with C and L at most an eighth of it the
 * leader sees another server's node renew within a grace period whatever its interval (writes at
 * least every 1.25 × S + C, each visible within L: at most 7/8 of the grace period).
 */
function leaseWriteIntervalMs(opts: ServeOptions): number {
  const grace = monitorGraceMs(opts);
  const checkpoint = leaseCheckpointMs(opts);
  const ms = opts.leaseWriteIntervalMs ?? Math.floor(grace / 2);
  if (!Number.isFinite(ms) || ms < 0 || ms > grace / 2) {
    throw new Error(`--lease-write-interval ${ms}ms is out of range: from 0 (every renewal written by the next checkpoint) to half of --node-monitor-grace-period (${grace}ms), so that other servers see renewals well within a grace period`);
  }
  return checkpoint === 0 ? 0 : ms;
}

/** "host:port" or "[v6]:port". */
function splitHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`bad address ${JSON.stringify(address)}: want host:port, e.g. 127.0.0.1:8080`);
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}
