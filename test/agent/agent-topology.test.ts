/**
 * The real `nodeplane agent` process reporting its node's topology, read from a fake sysfs
 * tree (--sysfs-root), with the TopologyManager flags; and carrying on without a layout when
 * the tree is malformed. Waits on watch events and log lines only.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { NUMA_ZONES_LABEL } from "../../src/agent/topology.js";
import type { NodeClient } from "../../src/client/client.js";
import type { Node } from "../../src/gen/nodeplane/v1/node.js";
import { type SpawnedAgent, spawnAgent } from "../support/process.js";
import { type Harness, startHarness } from "../support/server.js";
import { fakeSysfs, removeFakeSysfs, TWO_SOCKETS } from "../support/sysfs.js";

let h: Harness | undefined;
const agents: SpawnedAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await h?.close();
  h = undefined;
});
afterAll(removeFakeSysfs);

function agent(server: string, name: string, ...args: string[]): SpawnedAgent {
  const a = spawnAgent(["--server", server, "--hostname-override", name, "--node-lease-duration-seconds", "1", "--log-level", "info", ...args]);
  agents.push(a);
  return a;
}

/** The node as first registered. */
async function registered(client: NodeClient, name: string): Promise<Node> {
  for await (const ev of client.watch({ fieldSelector: `metadata.name=${name}`, sendInitialEvents: true })) if (ev.type === "ADDED") return ev.node;
  throw new Error("watch ended");
}

describe("nodeplane agent reports the node's topology", () => {
  it("zones, counts, policy and scope from the flags, and the numa-zones label", async () => {
    h = await startHarness();
    const root = fakeSysfs(TWO_SOCKETS);
    agent(`127.0.0.1:${h.server.port}`, "ag-numa", "--sysfs-root", root, "--topology-manager-policy", "single-numa-node", "--topology-manager-scope", "pod");
    const node = await registered(h.client, "ag-numa");
    expect(node.status?.topology).toEqual({
      topologyManagerPolicy: "single-numa-node",
      topologyManagerScope: "pod",
      zones: [
        { id: 0, cpus: "0-1,4-5", memory: "16318584Ki", distances: [10, 21], cpuCounts: { sockets: 1, cores: 2, threads: 4 } },
        { id: 1, cpus: "2-3,6-7", memory: "16777216Ki", distances: [21, 10], cpuCounts: { sockets: 1, cores: 2, threads: 4 } },
      ],
      cpuCounts: { sockets: 2, cores: 4, threads: 8 },
    });
    expect(node.metadata?.labels?.[NUMA_ZONES_LABEL]).toBe("2");
    const { nodes } = await h.client.listAllNodes({ labelSelector: `${NUMA_ZONES_LABEL}=2`, fieldSelector: "status.topology.topology_manager_scope=pod" });
    expect(nodes.map((n) => n.metadata?.name)).toEqual(["ag-numa"]);
  });

  it("defaults as the kubelet's: policy none, scope container; this machine's /sys", async () => {
    h = await startHarness();
    agent(`127.0.0.1:${h.server.port}`, "ag-real");
    const t = (await registered(h.client, "ag-real")).status?.topology;
    expect(t).toMatchObject({ topologyManagerPolicy: "none", topologyManagerScope: "container" });
    expect(t?.zones.length).toBeGreaterThanOrEqual(1);
  });

  it("a malformed tree: a warning naming the file, registration without zones", async () => {
    h = await startHarness();
    const root = fakeSysfs({ ...TWO_SOCKETS, files: { "devices/system/node/node1/cpulist": "2-3,x\n" } });
    const a = agent(`127.0.0.1:${h.server.port}`, "ag-bad", "--sysfs-root", root, "--topology-manager-policy", "restricted");
    const line = await a.logLine("node topology not reported");
    expect(line).toMatchObject({ level: 40, err: expect.stringContaining(`${root}/devices/system/node/node1/cpulist: "2-3,x": not a cpulist`) });
    const node = await registered(h.client, "ag-bad");
    expect(node.status?.topology).toEqual({ topologyManagerPolicy: "restricted", topologyManagerScope: "container", zones: [], cpuCounts: undefined });
    expect(node.metadata?.labels).not.toHaveProperty(NUMA_ZONES_LABEL);
  });
});
