/**
 * `nodeplane`: the server (`serve`). Flags are named as Kubernetes names them where
 * Kubernetes has one.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { InvalidError } from "../errors.js";
import { createLogger, type LogLevel } from "../log.js";
import { DEFAULT_ETCD_PREFIX, EtcdStore } from "../store/etcd.js";
import { addAgentCommand } from "./agent.js";
import { addSecurityOptions, securityOptionsFrom, type SecurityFlags } from "./security-flags.js";
import { checkLeaderElection, LEADER_ELECTION_DEFAULTS } from "../server/leadership.js";
import { DEFAULTS, type LeaderElectionSettings, NodeplaneServer } from "../server/server.js";
import { defaultMaxConnections } from "../server/connections.js";
import { SqliteStore } from "../store/sqlite.js";
import { durationOption, parseAddress, parseBool, parseBytes, parseControllers, parseDuration, parseFraction, parsePositiveInt, parseRate } from "./flags.js";

interface ServeFlags extends SecurityFlags {
  agentTimeout: number;
  agentPreferredAddressTypes: string;
  listen: string;
  httpListen: string;
  dataDir: string;
  store: "sqlite" | "etcd";
  etcdEndpoints?: string;
  etcdPrefix: string;
  etcdCafile?: string;
  etcdCertfile?: string;
  etcdKeyfile?: string;
  logLevel: LogLevel;
  watchQueueSize: number;
  watchBookmarkInterval: number;
  watchWindow: number;
  watchWindowDuration: number;
  maxWatchers: number;
  maxMessageSize: number;
  maxConnections: number;
  maxStreamsPerConnection: number;
  connectionIdleTimeout: number;
  httpMaxConnections: number;
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
  leaseCheckpointInterval: number | undefined;
  leaseWriteInterval: number | undefined;
  cloudProvider?: string;
  cloudConfig?: string;
  leaderElect: boolean;
  leaderElectLeaseDuration: number;
  leaderElectRenewDeadline: number;
  leaderElectRetryPeriod: number;
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
  .option("--etcd-prefix <prefix>", "etcd key prefix of this cluster's data; clusters sharing an etcd need prefixes that are not prefixes of each other", DEFAULT_ETCD_PREFIX)
  .option("--etcd-cafile <file>", "PEM CA bundle that signed the etcd members' certificates (https endpoints)")
  .option("--etcd-certfile <file>", "PEM client certificate for etcd (with --etcd-keyfile)")
  .option("--etcd-keyfile <file>", "PEM private key of --etcd-certfile")
  .addOption(
    new Option("--log-level <level>", "log level").choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  )
  .option("--watch-queue-size <events>", "events a watcher may fall behind before it is cut off", parsePositiveInt, DEFAULTS.watchQueueLimit)
  .addOption(durationOption("--watch-bookmark-interval <duration>", "how often idle watchers get a BOOKMARK", DEFAULTS.bookmarkIntervalMs))
  .option("--watch-window <events>", "history kept for watchers to resume from: at least this many revisions", parsePositiveInt, DEFAULTS.watchWindowEvents)
  .addOption(durationOption("--watch-window-duration <duration>", "…and at least this much time", DEFAULTS.watchWindowMs))
  .option("--max-watchers <n>", "open Watch streams allowed at once", parsePositiveInt, DEFAULTS.maxWatchers)
  .option("--max-message-size <bytes>", "largest gRPC message accepted or sent (e.g. 4Mi; at least 64Ki); nodes are capped at 1.5Mi, less under a smaller size", parseBytes, DEFAULTS.maxMessageBytes)
  .option("--max-connections <n>", "gRPC connections open at once; more are closed at once (the default is the open-file limit minus 2000)", parsePositiveInt, defaultMaxConnections())
  .option("--max-streams-per-connection <n>", "concurrent calls and streams on one gRPC connection", parsePositiveInt, DEFAULTS.maxStreamsPerConnection)
  .addOption(durationOption("--connection-idle-timeout <duration>", "a gRPC connection with no call for this long is closed", DEFAULTS.connectionIdleMs))
  .option("--http-max-connections <n>", "connections open at once on the HTTP side", parsePositiveInt, DEFAULTS.httpMaxConnections)
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
  .addOption(
    new Option(
      "--lease-checkpoint-interval <duration>",
      "Lease renewals are answered at once and written this often (0s = each renewal is a durable write, answered after its commit); at most an eighth of --node-monitor-grace-period (default: 1s, or that if less)",
    ).argParser(parseDuration),
  )
  .addOption(
    new Option(
      "--lease-write-interval <duration>",
      "how far a Lease's stored renew time (what watches and other servers see) may trail the renewals answered for it: a checkpoint writes a Lease about once per this interval, at most half its duration (0s = every renewal written by the next checkpoint); at most half of --node-monitor-grace-period (default: that half, 20s)",
    ).argParser(parseDuration),
  )
  .addOption(new Option("--cloud-provider <name>", "cloud provider: inventory (a static inventory file)").choices(["inventory"]))
  .option("--cloud-config <file>", "the cloud provider's config: for inventory, a YAML or JSON list of instances")
  .option("--leader-elect [bool]", "with --store etcd: run the controllers only on the replica holding the leader Lease (false: on this server whatever the others do)", (v) => parseBool(v), true)
  .addOption(durationOption("--leader-elect-lease-duration <duration>", "how long other replicas wait on an unrenewed leader Lease before taking it (whole seconds)", LEADER_ELECTION_DEFAULTS.leaseDurationMs))
  .addOption(durationOption("--leader-elect-renew-deadline <duration>", "how long the leader keeps leading without a successful renewal", LEADER_ELECTION_DEFAULTS.renewDeadlineMs))
  .addOption(durationOption("--leader-elect-retry-period <duration>", "how often replicas read (or the leader renews) the leader Lease", LEADER_ELECTION_DEFAULTS.retryPeriodMs))
  .addOption(durationOption("--agent-timeout <duration>", "how long a call to a node's agent (nodectl top, logs, check) may take", 10_000))
  .option("--agent-preferred-address-types <types>", "which of a node's addresses to dial its agent at, first match wins", "InternalIP,Hostname,ExternalIP")
  .action(async (flags: ServeFlags) => {
    if (flags.store === "etcd" && !flags.etcdEndpoints) {
      throw new InvalidArgumentError("--store etcd needs --etcd-endpoints (e.g. --etcd-endpoints http://127.0.0.1:2379)");
    }
    if (flags.store !== "etcd" && (flags.etcdEndpoints ?? flags.etcdCafile ?? flags.etcdCertfile ?? flags.etcdKeyfile) !== undefined) {
      throw new InvalidArgumentError("--etcd-* flags take effect only with --store etcd");
    }
    const maskFlags = flags.nodeCidrMaskSize ?? flags.nodeCidrMaskSizeIpv4 ?? flags.nodeCidrMaskSizeIpv6;
    if (!flags.allocateNodeCidrs && (flags.clusterCidr !== undefined || maskFlags !== undefined)) {
      throw new InvalidArgumentError("--cluster-cidr and --node-cidr-mask-size* take effect only with --allocate-node-cidrs");
    }
    if ((flags.cloudProvider === undefined) !== (flags.cloudConfig === undefined)) {
      throw new InvalidArgumentError("--cloud-provider and --cloud-config go together (e.g. --cloud-provider=inventory --cloud-config=inventory.yaml)");
    }
    const leaderElection = flags.store === "etcd" && flags.leaderElect ? leaderElectionOf(flags) : undefined;
    const log = createLogger(flags.logLevel);
    if (flags.store === "sqlite") log.info("one process owns the SQLite store: this server runs the controllers (no leader election)");
    const store = flags.store === "etcd" ? await openEtcd(flags) : undefined;
    const server = await NodeplaneServer.start({
      store,
      cloud: flags.cloudConfig ? { provider: "inventory", configFile: flags.cloudConfig } : undefined,
      maxHeartbeatRate: flags.maxHeartbeatRate,
      leaseCheckpointMs: flags.leaseCheckpointInterval,
      leaseWriteIntervalMs: flags.leaseWriteInterval,
      ipam: flags.allocateNodeCidrs
        ? {
            clusterCidr: flags.clusterCidr ?? "",
            nodeCidrMaskSize: flags.nodeCidrMaskSize,
            nodeCidrMaskSizeIpv4: flags.nodeCidrMaskSizeIpv4,
            nodeCidrMaskSizeIpv6: flags.nodeCidrMaskSizeIpv6,
          }
        : undefined,
      leaderElection,
      listen: flags.listen,
      httpListen: flags.httpListen || null,
      security: securityOptionsFrom(flags),
      agentProxy: { timeoutMs: flags.agentTimeout, addressTypes: flags.agentPreferredAddressTypes.split(",").map((t) => t.trim()).filter(Boolean) },
      dataDir: flags.dataDir,
      logger: log,
      watchQueueLimit: flags.watchQueueSize,
      bookmarkIntervalMs: flags.watchBookmarkInterval,
      watchWindowEvents: flags.watchWindow,
      watchWindowMs: flags.watchWindowDuration,
      maxWatchers: flags.maxWatchers,
      maxMessageBytes: flags.maxMessageSize,
      maxConnections: flags.maxConnections,
      maxStreamsPerConnection: flags.maxStreamsPerConnection,
      connectionIdleMs: flags.connectionIdleTimeout,
      httpMaxConnections: flags.httpMaxConnections,
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
    // A store file that fails its check (which runs while reads are served) is refused: nothing
    // was written to it, and the server stops with the message and the repair path.
    if (server.store instanceof SqliteStore) {
      server.store.checked.catch(async (err: unknown) => {
        log.fatal({ err }, "the store failed its integrity check: stopping");
        process.stderr.write(`nodeplane: ${err instanceof Error ? err.message : String(err)}\n`);
        await server.shutdown().catch(() => {});
        process.exit(1);
      });
    }
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

/** The etcd store of `--store etcd`; bad flags and an unreachable etcd fail start-up with a message naming them. */
async function openEtcd(flags: ServeFlags): Promise<EtcdStore> {
  try {
    return await EtcdStore.open({
      endpoints: (flags.etcdEndpoints ?? "").split(",").map((u) => u.trim()).filter((u) => u !== ""),
      prefix: flags.etcdPrefix,
      tls: { caFile: flags.etcdCafile, certFile: flags.etcdCertfile, keyFile: flags.etcdKeyfile },
    });
  } catch (err) {
    // Its message names the flag: "etcd-endpoints: ...".
    if (err instanceof InvalidError) throw new InvalidArgumentError(`--${err.message}`);
    throw err;
  }
}

/** The --leader-elect-* durations, checked by Kubernetes' rules (a bad one names its flag). */
function leaderElectionOf(flags: ServeFlags): LeaderElectionSettings {
  const timings = { leaseDurationMs: flags.leaderElectLeaseDuration, renewDeadlineMs: flags.leaderElectRenewDeadline, retryPeriodMs: flags.leaderElectRetryPeriod };
  try {
    checkLeaderElection(timings);
  } catch (err) {
    if (err instanceof InvalidError) throw new InvalidArgumentError(`--${err.message}`);
    throw err;
  }
  return timings;
}

addAgentCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`nodeplane: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
