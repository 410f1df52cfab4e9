/**
 * Node topology through a real server: stored and returned as sent, refused with
 * INVALID_ARGUMENT naming the field, the value and the rule (and nothing changes), selected by
 * field selector in ListNodes and in Watch (a node entering and leaving the selection).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { WatchEvent } from "../../src/client/client.js";
import { InvalidArgumentError, NotFoundError } from "../../src/client/errors.js";
import { NodeStatus } from "../../src/gen/nodeplane/v1/node.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";
import { flatTopology, twoSocketTopology } from "../support/topology.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function harness(): Promise<Harness> {
  h = await startHarness();
  return h;
}

describe("node topology on the server", () => {
  it("Register and UpdateStatus store it as sent; GetNode returns it", async () => {
    const { client } = await harness();
    await client.register(agentNode("numa-1", { status: { topology: twoSocketTopology() } }));
    expect((await client.getNode("numa-1")).status?.topology).toEqual(twoSocketTopology());
    await client.updateStatus("numa-1", { ...agentNode("numa-1").status, topology: flatTopology() });
    expect((await client.getNode("numa-1")).status?.topology).toEqual(flatTopology());
  });

  it("Register with a bad topology: INVALID_ARGUMENT naming every broken rule, and no node", async () => {
    const { client } = await harness();
    const topology = twoSocketTopology();
    topology.topologyManagerScope = "node";
    topology.zones[1]!.cpus = "2-5";
    const err = await client.register(agentNode("numa-2", { status: { topology } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain('status.topology.topology_manager_scope: "node": must be one of container, pod');
    expect((err as Error).message).toContain('status.topology.zones[1].cpus: "2-5": shares CPU 4 with status.topology.zones[0].cpus: a CPU belongs to one zone');
    await expect(client.getNode("numa-2")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("UpdateStatus with a hostile topology (100,000 zones): one capped violation, the stored status unchanged", async () => {
    const { client } = await harness();
    const before = (await client.register(agentNode("numa-3", { status: { topology: twoSocketTopology() } }))).node!;
    const status = NodeStatus.fromPartial({ topology: { topologyManagerPolicy: "none", topologyManagerScope: "container" } });
    // An empty zone is 2 bytes on the wire: a million would fit in the 4 MiB message limit
    // (test/validation/topology.test.ts sends the validator a million; here 100,000 keeps the test quick).
    status.topology!.zones = Array.from({ length: 100_000 }, () => ({ id: 0, cpus: "", memory: "", distances: [], cpuCounts: undefined }));
    const err = await client.updateStatus("numa-3", status).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe(`INVALID_ARGUMENT: status.topology.zones: "100000 zones": must have no more than 1024 zones (Linux's largest NUMA node count)`);
    const after = await client.getNode("numa-3");
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.status?.topology).toEqual(twoSocketTopology());
  });

  it("ListNodes selects on the policy and the scope; a bad value is INVALID_ARGUMENT on field_selector", async () => {
    const { client } = await harness();
    await client.register(agentNode("numa-1", { status: { topology: twoSocketTopology() } }));
    await client.register(agentNode("flat-1", { status: { topology: flatTopology() } }));
    await client.register(agentNode("old-1"));
    const names = async (fieldSelector: string): Promise<string[]> => (await client.listAllNodes({ fieldSelector })).nodes.map((n) => n.metadata!.name);
    expect(await names("status.topology.topology_manager_policy=single-numa-node")).toEqual(["numa-1"]);
    expect(await names("status.topology.topology_manager_policy!=single-numa-node")).toEqual(["flat-1", "old-1"]);
    expect(await names("status.topology.topology_manager_scope=container")).toEqual(["flat-1"]);
    expect(await names("status.topology.topology_manager_scope=")).toEqual(["old-1"]);
    const err = await client.listNodes({ fieldSelector: "status.topology.topology_manager_scope=node" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain('field_selector: "status.topology.topology_manager_scope=node": at position 39');
  });

  it("Watch with a policy selector: a node whose policy changes enters (ADDED) and leaves (DELETED)", async () => {
    const { client } = await harness();
    const { node } = await client.register(agentNode("numa-1", { status: { topology: flatTopology() } }));
    const watch = client.watch({ fieldSelector: "status.topology.topology_manager_policy=single-numa-node", resourceVersion: node!.metadata!.resourceVersion });
    const seen: WatchEvent[] = [];
    const done = (async () => {
      for await (const ev of watch) {
        seen.push(ev);
        if (seen.length === 2) return;
      }
    })();
    const status = agentNode("numa-1").status;
    await client.updateStatus("numa-1", { ...status, topology: twoSocketTopology() });
    await client.updateStatus("numa-1", { ...status, topology: { ...twoSocketTopology(), topologyManagerPolicy: "restricted" } });
    await done;
    expect(seen.map((e) => [e.type, e.node.status?.topology?.topologyManagerPolicy])).toEqual([
      ["ADDED", "single-numa-node"],
      ["DELETED", "single-numa-node"],
    ]);
  });
});
