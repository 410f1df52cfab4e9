/**
 * Facts of the machine the agent runs on, read from the OS (Linux /proc and /etc, Node's os
 * module), and the pressure conditions measured against the eviction thresholds.
 */
import { readdirSync, readFileSync, statfsSync } from "node:fs";
import os from "node:os";
import type { NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSystemInfo, NodeTopology } from "../gen/nodeplane/v1/node.js";
import { amountOf, type EvictionThresholds, under } from "./eviction.js";

export interface MachineStatus {
  capacity: Record<string, string>;
  allocatable: Record<string, string>;
  addresses: NodeAddress[];
  nodeInfo: NodeSystemInfo;
  /** Ready, MemoryPressure, DiskPressure, PIDPressure (heartbeat times are set when sent). */
  conditions: NodeCondition[];
  /** The NUMA layout and TopologyManager settings (read once at start: see topology.ts). */
  topology?: NodeTopology;
  /** The agent endpoint's port (set by the agent once it listens; src/agent/endpoint.ts). */
  daemonEndpoints?: NodeDaemonEndpoints;
}

export interface MachineOptions {
  hostname: string;
  /** --node-ip: addresses to report as InternalIP (default: the first non-loopback IPv4). */
  nodeIPs: string[];
  /** The filesystem whose free space DiskPressure watches (the kubelet's root dir). */
  rootDir: string;
  maxPods: number;
  thresholds: EvictionThresholds;
  agentVersion: string;
  topology?: NodeTopology;
}

const read = (path: string): string => {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "";
  }
};

const ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x" };

function osImage(): string {
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(read("/etc/os-release"));
  return pretty?.[1] ?? `${os.type()} ${os.release()}`;
}

function memAvailableBytes(): number {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(read("/proc/meminfo"));
  return m ? Number(m[1]) * 1024 : os.freemem();
}

function pidsInUse(): number {
  try {
    return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).length;
  } catch {
    return 0;
  }
}

function defaultAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

const ki = (bytes: number): string => `${Math.max(0, Math.floor(bytes / 1024))}Ki`;

/** Read everything once (static facts) and measure pressure now. */
export function probeMachine(o: MachineOptions): MachineStatus {
  const memTotal = os.totalmem();
  const fs = statfsSync(o.rootDir);
  const diskTotal = fs.blocks * fs.bsize;
  const diskAvailable = fs.bavail * fs.bsize;
  const pidMax = Number(read("/proc/sys/kernel/pid_max")) || 32768;
  const cpus = os.availableParallelism();

  const memPressure = under(o.thresholds.memoryAvailable, memAvailableBytes(), memTotal);
  const diskPressure = under(o.thresholds.nodefsAvailable, diskAvailable, diskTotal);
  const pidPressure = under(o.thresholds.pidAvailable, pidMax - pidsInUse(), pidMax);
  const condition = (type: string, status: boolean, yes: [string, string], no: [string, string]): NodeCondition => ({
    type,
    status: status ? "True" : "False",
    reason: (status ? yes : no)[0],
    message: (status ? yes : no)[1],
    lastHeartbeatTime: undefined,
    lastTransitionTime: undefined,
  });

  const ips = o.nodeIPs.length > 0 ? o.nodeIPs : [defaultAddress()].filter((a): a is string => a !== undefined);
  return {
    capacity: { cpu: String(cpus), memory: ki(memTotal), pods: String(o.maxPods), "ephemeral-storage": ki(diskTotal) },
    allocatable: {
      cpu: String(cpus),
      memory: ki(memTotal - amountOf(o.thresholds.memoryAvailable, memTotal)),
      pods: String(o.maxPods),
      "ephemeral-storage": ki(diskTotal - amountOf(o.thresholds.nodefsAvailable, diskTotal)),
    },
    addresses: [...ips.map((address) => ({ type: "InternalIP", address })), { type: "Hostname", address: o.hostname }],
    nodeInfo: {
      machineId: read("/etc/machine-id"),
      systemUuid: read("/sys/class/dmi/id/product_uuid"),
      bootId: read("/proc/sys/kernel/random/boot_id"),
      kernelVersion: os.release(),
      osImage: osImage(),
      containerRuntimeVersion: "",
      agentVersion: o.agentVersion,
      operatingSystem: os.platform(),
      architecture: ARCH[os.arch()] ?? os.arch(),
    },
    conditions: [
      condition("MemoryPressure", memPressure, ["AgentHasInsufficientMemory", "available memory is under the eviction threshold"], ["AgentHasSufficientMemory", "agent has sufficient memory available"]),
      condition("DiskPressure", diskPressure, ["AgentHasDiskPressure", `free space on ${o.rootDir} is under the eviction threshold`], ["AgentHasNoDiskPressure", "agent has no disk pressure"]),
      condition("PIDPressure", pidPressure, ["AgentHasInsufficientPID", "free process ids are under the eviction threshold"], ["AgentHasSufficientPID", "agent has sufficient PID available"]),
      condition("Ready", true, ["AgentReady", "agent is posting ready status"], ["", ""]),
    ],
    topology: o.topology,
  };
}

/** Kubernetes' default node labels for this machine. */
export function defaultLabels(hostname: string): Record<string, string> {
  return { "kubernetes.io/hostname": hostname, "kubernetes.io/os": os.platform(), "kubernetes.io/arch": ARCH[os.arch()] ?? os.arch() };
}

/** The node name: --hostname-override or the host name, lowercased (as the kubelet does). */
export function nodeNameOf(override: string | undefined): string {
  return (override || os.hostname()).toLowerCase();
}
