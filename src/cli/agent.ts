/** `nodeplane agent`: the node agent, with the kubelet's flag names. */
import { homedir } from "node:os";
import { join } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { NodeAgent } from "../agent/agent.js";
import { parseEvictionHard } from "../agent/eviction.js";
import { defaultLabels, nodeNameOf, probeMachine } from "../agent/machine.js";
import { probeTopology, topologyLabels } from "../agent/topology.js";
import { type AgentConnectionFlags, connectAgent } from "../auth/agent-connection.js";
import { silenceIpServernameWarning } from "../auth/client-credentials.js";
import { NodeplaneError } from "../errors.js";
import type { LogLevel } from "../log.js";
import { agentLogger, LogRing } from "../agent/log-ring.js";
import { startReachable } from "./agent-reachable.js";
import { TOPOLOGY_MANAGER_POLICIES, TOPOLOGY_MANAGER_SCOPES } from "../validation/topology.js";
import { parseTaintSpec } from "./taints.js";
import { durationOption, parseBool, parsePositiveInt } from "./flags.js";

interface AgentFlags extends AgentConnectionFlags {
  registerNode: boolean;
  registerWithTaints: string;
  nodeIp: string;
  nodeLabels: string;
  nodeStatusUpdateFrequency: number;
  nodeStatusReportFrequency: number;
  nodeLeaseDurationSeconds: number;
  hostnameOverride?: string;
  providerId: string;
  evictionHard: string;
  rootDir: string;
  maxPods: number;
  topologyManagerPolicy: string;
  topologyManagerScope: string;
  sysfsRoot: string;
  address: string;
  port: number;
  reverseTunnel: boolean;
  logLevel: LogLevel;
}

const AGENT_VERSION = "nodeplane-agent/0.1.0";

/** A TCP port, 0 allowed (any free port). */
function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value) || n > 65535) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a port (0 to 65535; 0 = any free port)`);
  return n;
}

/** "k=v,k2=v2" as the kubelet's --node-labels. */
function parseLabels(spec: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new InvalidArgumentError(`--node-labels: ${JSON.stringify(item)} is not key=value`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export function addAgentCommand(program: Command): void {
  program
    .command("agent")
    .description("run the node agent: register this machine, heartbeat its Lease, report its status")
    .option("--server <address>", "the nodeplane server, host:port or https://host:port, or several replicas separated by commas to fail over between (default: from --kubeconfig, else 127.0.0.1:50051)")
    .option("--kubeconfig <file>", "kubeconfig-shaped file: server, certificate-authority, client-certificate/client-key or token (or just server: host:port)")
    .option("--bootstrap-token <token>", "a bootstrap token (nodectl token create) to get this node's certificate with, when --cert-dir has none")
    .option("--bootstrap-kubeconfig <file>", "kubeconfig-shaped file with the server, its CA and a bootstrap token")
    .option("--cert-dir <dir>", "where the node's key and certificate are kept", join(homedir(), ".nodeplane", "agent-pki"))
    .option("--certificate-authority <file>", "CA (PEM) to verify the server with")
    .option("--client-certificate <file>", "client certificate (PEM), with --client-key")
    .option("--client-key <file>", "the client certificate's key (PEM)")
    .option("--token <token>", "a bearer token to authenticate with")
    .option("--rotate-certificates <bool>", "renew the node certificate before it expires", parseBool, true)
    .option("--register-node <bool>", "register the node itself (false: wait for an operator to create it)", parseBool, true)
    .option("--register-with-taints <taints>", "taints to register with: key=value:Effect,…", "")
    .option("--node-ip <ips>", "comma-separated addresses to report as InternalIP (default: the first non-loopback IPv4)", "")
    .option("--node-labels <labels>", "labels to register with: key=value,…", "")
    .addOption(durationOption("--node-status-update-frequency <duration>", "how often the status is computed", 10_000))
    .addOption(durationOption("--node-status-report-frequency <duration>", "send an unchanged status at least this often", 5 * 60_000))
    .option("--node-lease-duration-seconds <seconds>", "the Lease's duration; renewed every quarter of it", parsePositiveInt, 40)
    .option("--hostname-override <name>", "the node name (default: the host name, lowercased)")
    .option("--provider-id <id>", "the cloud provider's id of this machine", "")
    .option("--eviction-hard <thresholds>", "pressure thresholds: memory.available<100Mi,nodefs.available<10%,pid.available<5%", "")
    .option("--root-dir <dir>", "the filesystem whose free space DiskPressure watches", "/")
    .option("--max-pods <n>", "pods capacity to report", parsePositiveInt, 110)
    .addOption(new Option("--topology-manager-policy <policy>", "the TopologyManager policy to report with the NUMA layout").choices(TOPOLOGY_MANAGER_POLICIES).default("none"))
    .addOption(new Option("--topology-manager-scope <scope>", "the TopologyManager scope to report with the NUMA layout").choices(TOPOLOGY_MANAGER_SCOPES).default("container"))
    .option("--sysfs-root <dir>", "where sysfs is mounted, to read the NUMA layout from (e.g. /host/sys in a container)", "/sys")
    .option("--address <ip>", "the address the agent's endpoint (usage, logs, checks for the control plane) listens on", "127.0.0.1")
    .option("--port <port>", "the agent endpoint's port, reported as status.daemon_endpoints.agent_endpoint.port (0 = any free port)", parsePort, 10250)
    .option("--reverse-tunnel <bool>", "also open a reverse tunnel to the server, for when the server cannot dial this node (NAT, firewall)", parseBool, false)
    .addOption(new Option("--log-level <level>", "log level").choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"))
    .action(async (flags: AgentFlags) => {
      const nodeName = nodeNameOf(flags.hostnameOverride);
      let thresholds;
      let taints;
      try {
        thresholds = parseEvictionHard(flags.evictionHard);
        taints = parseTaintSpec(flags.registerWithTaints, "--register-with-taints");
      } catch (err) {
        throw new InvalidArgumentError(err instanceof NodeplaneError ? err.message : String(err));
      }
      const nodeIPs = flags.nodeIp.split(",").map((s) => s.trim()).filter(Boolean);
      // Every log line also goes to a ring the control plane can read (nodectl logs node NAME).
      const ring = new LogRing();
      const log = agentLogger(flags.logLevel, ring);
      // Read once at start, as the kubelet does: the layout changes only with CPU hotplug.
      const topology = probeTopology({ sysfsRoot: flags.sysfsRoot, policy: flags.topologyManagerPolicy, scope: flags.topologyManagerScope, log });
      silenceIpServernameWarning();
      const stopping = new AbortController();
      const connection = await connectAgent(flags, nodeName, log, stopping.signal).catch((err: unknown) => {
        throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
      });
      const client = connection.client;
      let port = 0;
      let last: ReturnType<typeof probeMachine> | undefined;
      const probe = (): ReturnType<typeof probeMachine> => {
        last = probeMachine({ hostname: nodeName, nodeIPs, rootDir: flags.rootDir, maxPods: flags.maxPods, thresholds, agentVersion: AGENT_VERSION, topology });
        return port > 0 ? { ...last, daemonEndpoints: { agentEndpoint: { port } } } : last;
      };
      const agent = new NodeAgent({
        client,
        nodeName,
        registerNode: flags.registerNode,
        labels: { ...defaultLabels(nodeName), ...topologyLabels(topology), ...parseLabels(flags.nodeLabels) },
        taints,
        providerId: flags.providerId,
        leaseDurationSeconds: flags.nodeLeaseDurationSeconds,
        statusUpdateFrequencyMs: flags.nodeStatusUpdateFrequency,
        statusReportFrequencyMs: flags.nodeStatusReportFrequency,
        probe,
        log,
      });
      const reachable = await startReachable({
        nodeName,
        connection,
        client,
        host: flags.address,
        port: flags.port,
        reverseTunnel: flags.reverseTunnel,
        rootDir: flags.rootDir,
        ring,
        progress: agent.progress,
        timings: {
          leaseDurationMs: flags.nodeLeaseDurationSeconds * 1000,
          statusUpdateFrequencyMs: flags.nodeStatusUpdateFrequency,
          statusReportFrequencyMs: flags.nodeStatusReportFrequency,
          conditions: () => (last ?? probe()).conditions,
        },
        log,
        signal: stopping.signal,
      });
      port = reachable.port;
      log.info({ server: client.address, node: nodeName, auth: connection.auth, registerNode: flags.registerNode }, "nodeplane agent starting");
      agent.start();
      const stop = (signal: string): void => {
        log.info({ signal }, "stopping");
        stopping.abort();
        connection.stop();
        Promise.all([agent.stop(), reachable.stop()]).then(
          () => {
            client.close();
            process.exit(0);
          },
          () => process.exit(1),
        );
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
}
