/**
 * A realistic node as an agent registers it, for tests (test/registry/) and for the benchmarks
 * that write many nodes (bench/scale.ts, bench/watch-fanout.ts, bench/register-micro.ts, which
 * import it from here: tsconfig.build.json compiles this file with them): 20 labels (the
 * well-known Kubernetes ones plus a few of an operator's own), 4 addresses, full capacity and
 * allocatable (cpu, memory, pods, ephemeral-storage, hugepages), 5 conditions, full node info and
 * the agent endpoint — about the size of a kubelet's Node without images. Stored (encoded, with
 * server-set metadata) it is ~2.5 KB; decoded, ~6.4 KB of V8 heap.
 */
import type { DeepPartial, NodeStatus } from "../../src/gen/nodeplane/v1/node.js";
import type { NodeInput } from "../../src/client/client.js";

/** `scale-node-000042`: six digits, so names sort in index order up to a million. */
export function scaleNodeName(i: number): string {
  return `scale-node-${String(i).padStart(6, "0")}`;
}

const ZONES = ["a", "b", "c"] as const;
const TYPES = ["m6i.xlarge", "m6i.2xlarge", "c6i.4xlarge", "r6i.2xlarge"] as const;

function ipv4(base: number, i: number): string {
  return `${base}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

/** The 20 labels of node `i` (hostname, os/arch, instance type, topology, roles, pools…). */
export function realisticLabels(i: number, name: string): Record<string, string> {
  const zone = `eu-west-1${ZONES[i % ZONES.length]!}`;
  const type = TYPES[i % TYPES.length]!;
  return {
    "kubernetes.io/hostname": name,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "beta.kubernetes.io/os": "linux",
    "beta.kubernetes.io/arch": "amd64",
    "node.kubernetes.io/instance-type": type,
    "beta.kubernetes.io/instance-type": type,
    "topology.kubernetes.io/region": "eu-west-1",
    "topology.kubernetes.io/zone": zone,
    "failure-domain.beta.kubernetes.io/region": "eu-west-1",
    "failure-domain.beta.kubernetes.io/zone": zone,
    "node-role.kubernetes.io/worker": "",
    "node.kubernetes.io/lifecycle": i % 5 === 0 ? "spot" : "on-demand",
    "nodeplane.io/pool": `pool-${i % 16}`,
    "nodeplane.io/rack": `rack-${Math.floor(i / 40) % 1000}`,
    "nodeplane.io/row": `row-${Math.floor(i / 4000) % 100}`,
    "example.com/team": ["payments", "search", "ml", "platform"][i % 4]!,
    "example.com/env": i % 10 === 0 ? "staging" : "production",
    "example.com/cost-center": `cc-${1000 + (i % 37)}`,
    "example.com/image-version": "2024.06.1",
  };
}

/** A full status for node `i`; `readyMessage` is the Ready condition's message (benchmarks stamp it). */
export function realisticStatus(i: number, name: string, readyMessage = "agent is posting ready status"): DeepPartial<NodeStatus> {
  return {
    capacity: {
      cpu: "16",
      memory: "65849420Ki",
      pods: "110",
      "ephemeral-storage": "203056560Ki",
      "hugepages-1Gi": "0",
      "hugepages-2Mi": "0",
    },
    allocatable: {
      cpu: "15890m",
      memory: "64698444Ki",
      pods: "110",
      "ephemeral-storage": "187136925387",
      "hugepages-1Gi": "0",
      "hugepages-2Mi": "0",
    },
    addresses: [
      { type: "InternalIP", address: ipv4(10, i) },
      { type: "ExternalIP", address: ipv4(34, i) },
      { type: "Hostname", address: name },
      { type: "InternalDNS", address: `${name}.eu-west-1.compute.internal` },
    ],
    conditions: [
      { type: "MemoryPressure", status: "False", reason: "AgentHasSufficientMemory", message: "agent has sufficient memory available" },
      { type: "DiskPressure", status: "False", reason: "AgentHasNoDiskPressure", message: "agent has no disk pressure" },
      { type: "PIDPressure", status: "False", reason: "AgentHasSufficientPID", message: "agent has sufficient PID available" },
      { type: "NetworkUnavailable", status: "False", reason: "RouteCreated", message: "route controller created a route" },
      { type: "Ready", status: "True", reason: "AgentReady", message: readyMessage },
    ],
    nodeInfo: {
      machineId: (0x5eed0000 + i).toString(16).padStart(32, "0"),
      systemUuid: `ec2${(0xabc00000 + i).toString(16)}-0000-4000-8000-${String(i).padStart(12, "0")}`,
      bootId: `b00t${(0xabc00000 + i).toString(16)}-1111-4000-8000-${String(i).padStart(12, "0")}`,
      kernelVersion: "6.1.0-21-cloud-amd64",
      osImage: "Debian GNU/Linux 12 (bookworm)",
      containerRuntimeVersion: "containerd://1.7.13",
      agentVersion: "0.1.0",
      operatingSystem: "linux",
      architecture: "amd64",
    },
    daemonEndpoints: { agentEndpoint: { port: 10250 } },
  };
}

/** What Register sends for node `i`. */
export function realisticNode(i: number, name = scaleNodeName(i)): NodeInput {
  return { metadata: { name, labels: realisticLabels(i, name) }, status: realisticStatus(i, name) };
}
