/**
 * nodectl and node topology: `describe node` shows it (golden), `get nodes` selects on it with
 * --field-selector (policy, scope) and -l (the agent's numa-zones label).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NUMA_ZONES_LABEL } from "../../src/agent/topology.js";
import { FakeClock } from "../../src/clock.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";
import { flatTopology, twoSocketTopology } from "../support/topology.js";
import { NOW } from "./fixture.js";
import { nodectl } from "./support.js";

let h: Harness;
let server: string;
beforeAll(async () => {
  h = await startHarness({ clock: new FakeClock(NOW - 60_000) });
  server = `127.0.0.1:${h.server.port}`;
  await h.client.register(agentNode("numa-1", { metadata: { labels: { [NUMA_ZONES_LABEL]: "3" } }, status: { topology: twoSocketTopology() } }));
  await h.client.register(agentNode("flat-1", { metadata: { labels: { [NUMA_ZONES_LABEL]: "1" } }, status: { topology: flatTopology() } }));
  await h.client.register(
    agentNode("blind-1", { status: { topology: { topologyManagerPolicy: "best-effort", topologyManagerScope: "container", zones: [], cpuCounts: undefined } } }),
  );
  await h.client.register(agentNode("old-1"));
});
afterAll(async () => {
  await h.close();
});

const lines = (...l: string[]): string => l.join("\n") + "\n";

async function run(...args: string[]): Promise<string> {
  const r = await nodectl(["--server", server, ...args], { now: () => NOW });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return r.stdout;
}

/** The lines of a description from `from` up to (not including) `to`. */
function section(text: string, from: string, to: string): string {
  const all = text.split("\n");
  return lines(...all.slice(all.indexOf(from), all.indexOf(to)));
}

describe("nodectl describe node: the Topology section (golden)", () => {
  it("zones with CPUs, memory, counts and distances; sockets, cores, threads; policy and scope", async () => {
    const out = await run("describe", "node", "numa-1");
    expect(section(out, "Topology:", "System Info:")).toBe(
      lines(
        "Topology:",
        "  Topology Manager Policy:  single-numa-node",
        "  Topology Manager Scope:   pod",
        "  Sockets:                  2",
        "  Cores:                    4",
        "  Threads:                  8",
        "  NUMA Zones:",
        "    ID  CPUs     Memory      Sockets  Cores  Threads  Distances",
        "    --  ----     ------      -------  -----  -------  ---------",
        "    0   0-1,4-5  16318584Ki  1        2      4        10 21 30",
        "    1   2-3,6-7  16777216Ki  1        2      4        21 10 30",
        "    2   <none>   67108864Ki  0        0      0        30 30 10",
      ),
    );
    // The section sits between Allocatable and System Info; the rest is laid out as before.
    expect(out).toContain(lines("  pods:    110", "Topology:"));
    expect(out).toContain(lines("    2   <none>   67108864Ki  0        0      0        30 30 10", "System Info:", "  Machine ID:                 "));
  });

  it("a layout the agent could not read: policy and scope, zones <unknown>", async () => {
    const out = await run("describe", "node", "blind-1");
    expect(section(out, "Topology:", "System Info:")).toBe(
      lines("Topology:", "  Topology Manager Policy:  best-effort", "  Topology Manager Scope:   container", "  NUMA Zones:               <unknown>"),
    );
  });

  it("a node that reports no topology has no Topology section", async () => {
    expect(await run("describe", "node", "old-1")).not.toContain("Topology");
  });
});

describe("nodectl get nodes selects on topology", () => {
  it("--field-selector on the policy and the scope", async () => {
    expect(await run("get", "nodes", "--field-selector", "status.topology.topology_manager_policy=single-numa-node", "--no-headers")).toBe(
      lines("numa-1   Ready   <none>   60s   0.1.0"),
    );
    expect(await run("get", "nodes", "--field-selector", "status.topology.topology_manager_scope=container", "-o", "name")).toBe(
      lines("node/blind-1", "node/flat-1"),
    );
    // The empty value: nodes that report no topology.
    expect(await run("get", "nodes", "--field-selector", "status.topology.topology_manager_policy=", "-o", "name")).toBe(lines("node/old-1"));
  });

  it("-l on the agent's NUMA zone count label", async () => {
    expect(await run("get", "nodes", "-l", `${NUMA_ZONES_LABEL}!=1,${NUMA_ZONES_LABEL}`, "-o", "name")).toBe(lines("node/numa-1"));
    expect(await run("get", "nodes", "-l", `${NUMA_ZONES_LABEL} in (1,2,3)`, "--field-selector", "status.topology.topology_manager_policy!=none", "-o", "name")).toBe(
      lines("node/numa-1"),
    );
  });

  it("a bad field selector: the server's INVALID_ARGUMENT naming the field, the value and the rule", async () => {
    const r = await nodectl(["--server", server, "get", "nodes", "--field-selector", "status.topology.topology_manager_policy=strict"], { now: () => NOW });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(
      'field_selector: "status.topology.topology_manager_policy=strict": at position 40: status.topology.topology_manager_policy must be "none", "best-effort", "restricted", "single-numa-node" or "", found "strict"',
    );
  });

  it("leases have no fields to select on", async () => {
    const r = await nodectl(["--server", server, "get", "leases", "--field-selector", "metadata.name=numa-1"], { now: () => NOW });
    expect(r).toMatchObject({ code: 1, stdout: "", stderr: expect.stringContaining("--field-selector is only supported for nodes") });
  });
});
