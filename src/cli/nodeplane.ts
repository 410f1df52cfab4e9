/**
 * `nodeplane`: the server (`serve`). Flags are named as Kubernetes names them where
 * Kubernetes has one.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { createLogger, type LogLevel } from "../log.js";
import { addAgentCommand } from "./agent.js";
import { addSecurityOptions, securityOptionsFrom, type SecurityFlags } from "./security-flags.js";
import { DEFAULTS, NodeplaneServer } from "../server/server.js";
import { durationOption, parseAddress, parseBool, parseBytes, parseControllers, parseFraction, parsePositiveInt, parseRate } from "./flags.js";

interface ServeFlags extends SecurityFlags {
  listen: string;
  httpListen: string;
  dataDir: string;
  store: "sqlite" | "etcd";
  etcdEndpoints?: string;
  logLevel: LogLevel;
  watchQueueSize: number;
  watchBookmarkInterval: number;
  watchWindow: number;
  watchWindowDuration: number;
  maxWatchers: number;
  maxMessageSize: number;
  controllers: string[];
  nodeMonitorPeriod: number;
  nodeMonitorGracePeriod: number;
  nodeStartupGracePeriod: number;
  nodeEvictionRate: number;
  secondaryNodeEvictionRate: number;
  unhealthyZoneThreshold: number;
  largeClusterSizeThreshold: number;
  allocateNodeCidrs: boolean;
  clusterCidr?: string;
  nodeCidrMaskSize?: number;
  nodeCidrMaskSizeIpv4?: number;
  nodeCidrMaskSizeIpv6?: number;
  maxHeartbeatRate: number;
  cloudProvider?: string;
  cloudConfig?: string;
}

const program = new Command("nodeplane")
  .description("nodeplane: a node control plane served over gRPC (serve) and its node agent (agent)")
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

addSecurityOptions(program
  .command("serve"))
  .description("run the server")
  .option("--listen <host:port>", "gRPC listen address", parseAddress, DEFAULTS.listen)
  .option("--http-listen <host:port>", "HTTP address for /metrics, /healthz, /readyz (\"\" = none)", (v) => (v === "" ? v : parseAddress(v)), DEFAULTS.httpListen)
  .option("--data-dir <dir>", "where the embedded SQLite store keeps its data", DEFAULTS.dataDir)
  .addOption(new Option("--store <kind>", "storage backend").choices(["sqlite", "etcd"]).default("sqlite"))
  .option("--etcd-endpoints <urls>", "comma-separated etcd client URLs (with --store etcd)")
  .addOption(
    new Option("--log-level <level>", "log level").choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  )
  .option("--watch-queue-size <events>", "events a watcher may fall behind before it is cut off", parsePositiveInt, DEFAULTS.watchQueueLimit)
  .addOption(durationOption("--watch-bookmark-interval <duration>", "how often idle watchers get a BOOKMARK", DEFAULTS.bookmarkIntervalMs))
  .option("--watch-window <events>", "history kept for watchers to resume from: at least this many revisions", parsePositiveInt, DEFAULTS.watchWindowEvents)
  .addOption(durationOption("--watch-window-duration <duration>", "…and at least this much time", DEFAULTS.watchWindowMs))
  .option("--max-watchers <n>", "open Watch streams allowed at once", parsePositiveInt, DEFAULTS.maxWatchers)
  .option("--max-message-size <bytes>", "largest gRPC message accepted or sent (e.g. 4Mi)", parseBytes, DEFAULTS.maxMessageBytes)
  .option("--controllers <list>", "controllers to run: * (all), or a list like '*,-nodelifecycle'", parseControllers, ["nodelifecycle"])
  .addOption(durationOption("--node-monitor-period <duration>", "how often every node's health is checked", 5_000))
  .addOption(durationOption("--node-monitor-grace-period <duration>", "silence allowed before a node is marked Unknown", 40_000))
  .addOption(durationOption("--node-startup-grace-period <duration>", "…for a node that has never posted Ready", 60_000))
  .option("--node-eviction-rate <per-second>", "NoExecute taints per second in a healthy or fully disrupted zone", parseRate, 0.1)
  .option("--secondary-node-eviction-rate <per-second>", "…in a partially disrupted zone larger than --large-cluster-size-threshold", parseRate, 0.01)
  .option("--unhealthy-zone-threshold <fraction>", "share of not-ready nodes (more than 2) that makes a zone partially disrupted", parseFraction, 0.55)
  .option("--large-cluster-size-threshold <nodes>", "zones with more nodes than this taint at the secondary rate when partially disrupted", parsePositiveInt, 50)
  .option("--allocate-node-cidrs [bool]", "give each node pod CIDR blocks from --cluster-cidr", (v) => parseBool(v), false)
  .option("--cluster-cidr <cidrs>", "pod CIDR range: one IPv4 and/or one IPv6 prefix, comma separated")
  .option("--node-cidr-mask-size <bits>", "node block size, single stack only", parsePositiveInt)
  .option("--node-cidr-mask-size-ipv4 <bits>", "IPv4 node block size (default 24)", parsePositiveInt)
  .option("--node-cidr-mask-size-ipv6 <bits>", "IPv6 node block size (default 64; at most 16 bits longer than the cluster mask)", parsePositiveInt)
  .option("--max-heartbeat-rate <per-second>", "Lease renewals per second the fleet's heartbeat streams should stay under: beyond it agents are asked to renew less often", parsePositiveInt, 10_000)
  .addOption(new Option("--cloud-provider <name>", "cloud provider: inventory (a static inventory file)").choices(["inventory"]))
  .option("--cloud-config <file>", "the cloud provider's config: for inventory, a YAML or JSON list of instances")
  .action(async (flags: ServeFlags) => {
    if (flags.store === "etcd") {
      throw new InvalidArgumentError("--store etcd: the etcd backend is not part of this version yet; use --store sqlite");
    }
    const maskFlags = flags.nodeCidrMaskSize ?? flags.nodeCidrMaskSizeIpv4 ?? flags.nodeCidrMaskSizeIpv6;
    if (!flags.allocateNodeCidrs && (flags.clusterCidr !== undefined || maskFlags !== undefined)) {
      throw new InvalidArgumentError("--cluster-cidr and --node-cidr-mask-size* take effect only with --allocate-node-cidrs");
    }
    if ((flags.cloudProvider === undefined) !== (flags.cloudConfig === undefined)) {
      throw new InvalidArgumentError("--cloud-provider and --cloud-config go together (e.g. --cloud-provider=inventory --cloud-config=inventory.yaml)");
    }
    const log = createLogger(flags.logLevel);
    const server = await NodeplaneServer.start({
      cloud: flags.cloudConfig ? { provider: "inventory", configFile: flags.cloudConfig } : undefined,
      maxHeartbeatRate: flags.maxHeartbeatRate,
      ipam: flags.allocateNodeCidrs
        ? {
            clusterCidr: flags.clusterCidr ?? "",
            nodeCidrMaskSize: flags.nodeCidrMaskSize,
            nodeCidrMaskSizeIpv4: flags.nodeCidrMaskSizeIpv4,
            nodeCidrMaskSizeIpv6: flags.nodeCidrMaskSizeIpv6,
          }
        : undefined,
      listen: flags.listen,
      httpListen: flags.httpListen || null,
      security: securityOptionsFrom(flags),
      dataDir: flags.dataDir,
      logger: log,
      watchQueueLimit: flags.watchQueueSize,
      bookmarkIntervalMs: flags.watchBookmarkInterval,
      watchWindowEvents: flags.watchWindow,
      watchWindowMs: flags.watchWindowDuration,
      maxWatchers: flags.maxWatchers,
      maxMessageBytes: flags.maxMessageSize,
      nodeLifecycle: flags.controllers.includes("nodelifecycle") && {
        monitorPeriodMs: flags.nodeMonitorPeriod,
        monitorGracePeriodMs: flags.nodeMonitorGracePeriod,
        startupGracePeriodMs: flags.nodeStartupGracePeriod,
        nodeEvictionRate: flags.nodeEvictionRate,
        secondaryNodeEvictionRate: flags.secondaryNodeEvictionRate,
        unhealthyZoneThreshold: flags.unhealthyZoneThreshold,
        largeClusterSizeThreshold: flags.largeClusterSizeThreshold,
      },
    });
    // Machine-readable line for scripts and tests that start the server on port 0.
    process.stdout.write(`nodeplane serving grpc=127.0.0.1:${server.port} http=${server.httpPort ?? "-"}\n`);
    const stop = (signal: string): void => {
      log.info({ signal }, "signal received");
      server.shutdown().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });

addAgentCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`nodeplane: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
