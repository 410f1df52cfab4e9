/** Node topologies as agents report them, for server and nodectl tests. */
import type { NodeTopology } from "../../src/gen/nodeplane/v1/node.js";

/**
 * Two sockets, one NUMA zone each (2 cores × 2 threads: CPUs 0-1,4-5 and 2-3,6-7), and a third
 * zone with memory only (CXL-style), under the single-numa-node policy at pod scope.
 */
export function twoSocketTopology(): NodeTopology {
  return {
    topologyManagerPolicy: "single-numa-node",
    topologyManagerScope: "pod",
    zones: [
      { id: 0, cpus: "0-1,4-5", memory: "16318584Ki", distances: [10, 21, 30], cpuCounts: { sockets: 1, cores: 2, threads: 4 } },
      { id: 1, cpus: "2-3,6-7", memory: "16777216Ki", distances: [21, 10, 30], cpuCounts: { sockets: 1, cores: 2, threads: 4 } },
      { id: 2, cpus: "", memory: "67108864Ki", distances: [30, 30, 10], cpuCounts: { sockets: 0, cores: 0, threads: 0 } },
    ],
    cpuCounts: { sockets: 2, cores: 4, threads: 8 },
  };
}

/** One implicit zone (no NUMA information), the kubelet's default policy and scope. */
export function flatTopology(): NodeTopology {
  return {
    topologyManagerPolicy: "none",
    topologyManagerScope: "container",
    zones: [{ id: 0, cpus: "0-3", memory: "16777216Ki", distances: [10], cpuCounts: { sockets: 1, cores: 4, threads: 4 } }],
    cpuCounts: { sockets: 1, cores: 4, threads: 4 },
  };
}
