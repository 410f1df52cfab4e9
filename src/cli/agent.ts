/** `nodeplane agent`: the node agent, with the kubelet's flag names. */
import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError, Option } from "commander";
import { parse as parseYaml } from "yaml";
import { NodeAgent } from "../agent/agent.js";
import { parseEvictionHard } from "../agent/eviction.js";
import { defaultLabels, nodeNameOf, probeMachine } from "../agent/machine.js";
import { probeTopology, topologyLabels } from "../agent/topology.js";
import { NodeClient } from "../client/client.js";
import { NodeplaneError } from "../errors.js";
import { createLogger, type LogLevel } from "../log.js";
import { TOPOLOGY_MANAGER_POLICIES, TOPOLOGY_MANAGER_SCOPES } from "../validation/topology.js";
import { parseTaintSpec } from "./taints.js";
import { durationOption, parseAddresses, parseBool, parsePositiveInt } from "./flags.js";

interface AgentFlags {
  server?: string;
  kubeconfig?: string;
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
  logLevel: LogLevel;
}

const AGENT_VERSION = "nodeplane-agent/0.1.0";

/** The agent's config file: `server: host:port` (TLS and token settings come later). */
function readKubeconfig(path: string): { server?: string } {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, "utf8"));
  } catch (err) {
    throw new InvalidArgumentError(`--kubeconfig ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof doc !== "object" || doc === null) throw new InvalidArgumentError(`--kubeconfig ${path}: expected a YAML mapping with a "server" key`);
  const { server, ...rest } = doc as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new InvalidArgumentError(`--kubeconfig ${path}: unknown keys ${unknown.join(", ")} (known: server)`);
  if (server !== undefined && typeof server !== "string") throw new InvalidArgumentError(`--kubeconfig ${path}: server must be host:port (or several, comma-separated)`);
  return { server: server === undefined ? undefined : parseAddresses(server) };
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
    .option("--server <host:port,…>", "the nodeplane server, or several replicas to fail over between (default: from --kubeconfig, else 127.0.0.1:50051)", parseAddresses)
    .option("--kubeconfig <file>", "YAML config file with the server address (server: host:port)")
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
    .addOption(new Option("--log-level <level>", "log level").choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"))
    .action(async (flags: AgentFlags) => {
      const config = flags.kubeconfig ? readKubeconfig(flags.kubeconfig) : {};
      const server = flags.server ?? config.server ?? "127.0.0.1:50051";
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
      const log = createLogger(flags.logLevel);
      // Read once at start, as the kubelet does: the layout changes only with CPU hotplug.
      const topology = probeTopology({ sysfsRoot: flags.sysfsRoot, policy: flags.topologyManagerPolicy, scope: flags.topologyManagerScope, log });
      const client = new NodeClient(server);
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
        probe: () => probeMachine({ hostname: nodeName, nodeIPs, rootDir: flags.rootDir, maxPods: flags.maxPods, thresholds, agentVersion: AGENT_VERSION, topology }),
        log,
      });
      log.info({ server, node: nodeName, registerNode: flags.registerNode }, "nodeplane agent starting");
      agent.start();
      const stop = (signal: string): void => {
        log.info({ signal }, "stopping");
        agent.stop().then(
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
