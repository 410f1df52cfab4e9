/**
 * The topology reader on fake sysfs trees (one NUMA node, two, asymmetric, none, offline CPUs,
 * malformed files) and on this machine's real /sys, and what the agent makes of a bad one.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { afterAll, describe, expect, it } from "vitest";
import { NUMA_ZONES_LABEL, probeTopology, readTopology, TopologyError, topologyLabels } from "../../src/agent/topology.js";
import { countCpus, parseCpuList } from "../../src/validation/cpulist.js";
import { topologyViolations } from "../../src/validation/topology.js";
import { cpuGrid, type FakeMachine, fakeSysfs, removeFakeSysfs, TWO_SOCKETS } from "../support/sysfs.js";

afterAll(removeFakeSysfs);

const GiB_KB = 1024 * 1024;

/** A logger that keeps what it is told. */
function recorder(): { lines: { obj: object; msg: string }[]; info: (obj: object, msg: string) => void; warn: (obj: object, msg: string) => void } {
  const lines: { obj: object; msg: string }[] = [];
  return { lines, info: (obj, msg) => lines.push({ obj, msg }), warn: (obj, msg) => lines.push({ obj, msg }) };
}

describe("readTopology on fake sysfs trees", () => {
  it("one NUMA node: 1 socket, 4 cores, 8 threads", () => {
    const root = fakeSysfs({ cpus: cpuGrid(1, 4, 2), nodes: [{ cpus: "0-7", memKb: 16318584, distances: [10] }] });
    expect(readTopology({ sysfsRoot: root })).toEqual({
      zones: [{ id: 0, cpus: "0-7", memory: "16318584Ki", distances: [10], cpuCounts: { sockets: 1, cores: 4, threads: 8 } }],
      cpuCounts: { sockets: 1, cores: 4, threads: 8 },
      warnings: [],
    });
  });

  it("two NUMA nodes, one per socket, with their distances", () => {
    expect(readTopology({ sysfsRoot: fakeSysfs(TWO_SOCKETS) })).toEqual({
      zones: [
        { id: 0, cpus: "0-1,4-5", memory: "16318584Ki", distances: [10, 21], cpuCounts: { sockets: 1, cores: 2, threads: 4 } },
        { id: 1, cpus: "2-3,6-7", memory: "16777216Ki", distances: [21, 10], cpuCounts: { sockets: 1, cores: 2, threads: 4 } },
      ],
      cpuCounts: { sockets: 2, cores: 4, threads: 8 },
      warnings: [],
    });
  });

  it("two NUMA nodes on one socket (sub-NUMA clustering): the socket counts in each zone and once in all", () => {
    const root = fakeSysfs({
      cpus: cpuGrid(1, 4, 1),
      nodes: [
        { cpus: "0-1", memKb: 8 * GiB_KB, distances: [10, 11] },
        { cpus: "2-3", memKb: 8 * GiB_KB, distances: [11, 10] },
      ],
    });
    const t = readTopology({ sysfsRoot: root });
    expect(t.zones.map((z) => z.cpuCounts)).toEqual([{ sockets: 1, cores: 2, threads: 2 }, { sockets: 1, cores: 2, threads: 2 }]);
    expect(t.cpuCounts).toEqual({ sockets: 1, cores: 4, threads: 4 });
  });

  it("asymmetric zones: memory without CPUs, CPUs without memory, ids with a gap", () => {
    const root = fakeSysfs({
      cpus: cpuGrid(1, 4, 1),
      nodes: [
        { id: 0, cpus: "0-1", memKb: 8 * GiB_KB, distances: [10, 20, 40] },
        { id: 1, cpus: "2-3", memKb: 0, distances: [20, 10, 40] },
        { id: 4, cpus: "", memKb: 64 * GiB_KB, distances: [40, 40, 10] },
      ],
    });
    const t = readTopology({ sysfsRoot: root });
    expect(t.zones).toEqual([
      { id: 0, cpus: "0-1", memory: "8388608Ki", distances: [10, 20, 40], cpuCounts: { sockets: 1, cores: 2, threads: 2 } },
      { id: 1, cpus: "2-3", memory: "0Ki", distances: [20, 10, 40], cpuCounts: { sockets: 1, cores: 2, threads: 2 } },
      { id: 4, cpus: "", memory: "67108864Ki", distances: [40, 40, 10], cpuCounts: { sockets: 0, cores: 0, threads: 0 } },
    ]);
    // What the reader produces, the server accepts.
    expect(topologyViolations({ topologyManagerPolicy: "none", topologyManagerScope: "container", zones: t.zones, cpuCounts: t.cpuCounts }, "t")).toEqual([]);
  });

  it("no devices/system/node: one implicit zone with every online CPU and the machine's memory", () => {
    const root = fakeSysfs({ cpus: cpuGrid(1, 2, 2) });
    expect(readTopology({ sysfsRoot: root, totalMemoryBytes: 4 * 1024 ** 3 + 512 })).toEqual({
      zones: [{ id: 0, cpus: "0-3", memory: "4194304Ki", distances: [10], cpuCounts: { sockets: 1, cores: 2, threads: 4 } }],
      cpuCounts: { sockets: 1, cores: 2, threads: 4 },
      warnings: [],
    });
  });

  it("offline CPUs are left out, even when a node's cpulist still names them", () => {
    const root = fakeSysfs({ ...TWO_SOCKETS, offline: [5, 6, 7] });
    const t = readTopology({ sysfsRoot: root });
    expect(t.zones.map((z) => [z.cpus, z.cpuCounts])).toEqual([
      ["0-1,4", { sockets: 1, cores: 2, threads: 3 }],
      ["2-3", { sockets: 1, cores: 2, threads: 2 }],
    ]);
    expect(t.cpuCounts).toEqual({ sockets: 2, cores: 4, threads: 5 });
  });

  it("without cpu/online, each cpuN/online flag says (cpu0 has none and is online)", () => {
    const root = fakeSysfs({ ...TWO_SOCKETS, offline: [7], files: { "devices/system/cpu/online": null } });
    expect(readTopology({ sysfsRoot: root }).cpuCounts).toEqual({ sockets: 2, cores: 4, threads: 7 });
  });

  it("without core_cpus_list, thread_siblings_list; without either, the package and core_id", () => {
    const files: Record<string, null> = {};
    for (let id = 0; id < 8; id++) files[`devices/system/cpu/cpu${id}/topology/core_cpus_list`] = null;
    expect(readTopology({ sysfsRoot: fakeSysfs({ ...TWO_SOCKETS, files }) }).cpuCounts).toEqual({ sockets: 2, cores: 4, threads: 8 });
    for (let id = 0; id < 8; id++) files[`devices/system/cpu/cpu${id}/topology/thread_siblings_list`] = null;
    const t = readTopology({ sysfsRoot: fakeSysfs({ ...TWO_SOCKETS, files }) });
    // core_id repeats across packages (both sockets have cores 0 and 1): still 4 cores.
    expect(t.cpuCounts).toEqual({ sockets: 2, cores: 4, threads: 8 });
    expect(t.zones.map((z) => z.cpuCounts)).toEqual([{ sockets: 1, cores: 2, threads: 4 }, { sockets: 1, cores: 2, threads: 4 }]);
  });

  it("a CPU without a topology directory: its own core, a warning", () => {
    const root = fakeSysfs({ cpus: cpuGrid(1, 2, 2), files: { "devices/system/cpu/cpu3/topology": null } });
    const t = readTopology({ sysfsRoot: root });
    expect(t.cpuCounts).toEqual({ sockets: 2, cores: 3, threads: 4 });
    expect(t.warnings).toEqual([`no ${root}/devices/system/cpu/cpu<N>/topology for CPUs 3: each counts as its own core, all of them as one socket`]);
  });
});

describe("readTopology refuses a malformed or contradictory tree, naming the file, the content and the rule", () => {
  const node = "devices/system/node";
  const rows: { name: string; machine: FakeMachine; error: (root: string) => string }[] = [
    {
      name: "a cpulist that is not one",
      machine: { ...TWO_SOCKETS, files: { [`${node}/node1/cpulist`]: "2-3;6-7\n" } },
      error: (r) => `${r}/${node}/node1/cpulist: "2-3;6-7": not a cpulist: entry "2-3;6-7" is not a CPU id or a range first-last (e.g. "0-3,8-11")`,
    },
    {
      name: "meminfo without MemTotal",
      machine: { ...TWO_SOCKETS, files: { [`${node}/node0/meminfo`]: "Node 0 MemFree: 1 kB\n" } },
      error: (r) => `${r}/${node}/node0/meminfo: "Node 0 MemFree: 1 kB": has no "Node <id> MemTotal: <n> kB" line`,
    },
    {
      name: "a distance row of the wrong length",
      machine: { ...TWO_SOCKETS, files: { [`${node}/node1/distance`]: "21 10 30\n" } },
      error: (r) => `${r}/${node}/node1/distance: "21 10 30": has 3 distances for 2 NUMA nodes`,
    },
    {
      name: "a distance that is not a number",
      machine: { ...TWO_SOCKETS, files: { [`${node}/node0/distance`]: "10 far\n" } },
      error: (r) => `${r}/${node}/node0/distance: "far": not a whole number`,
    },
    {
      name: "a missing distance file",
      machine: { ...TWO_SOCKETS, files: { [`${node}/node0/distance`]: null } },
      error: (r) => `${r}/${node}/node0/distance: "": is missing`,
    },
    {
      name: "a CPU in two nodes",
      machine: { ...TWO_SOCKETS, files: { [`${node}/node1/cpulist`]: "2-7\n" } },
      error: (r) => `${r}/${node}/node1/cpulist: "2-7": cpu4 is also in node0`,
    },
    {
      name: "an online CPU in no node",
      machine: { ...TWO_SOCKETS, files: { [`${node}/node1/cpulist`]: "2-3\n" } },
      error: (r) => `${r}/${node}: "": online CPUs 6-7 are in no NUMA node's cpulist`,
    },
    {
      name: "a package id that is not a number",
      machine: { ...TWO_SOCKETS, files: { "devices/system/cpu/cpu2/topology/physical_package_id": "one\n" } },
      error: (r) => `${r}/devices/system/cpu/cpu2/topology/physical_package_id: "one": not a whole number`,
    },
    {
      name: "a sibling list without the CPU itself",
      machine: { ...TWO_SOCKETS, files: { "devices/system/cpu/cpu2/topology/core_cpus_list": "6\n" } },
      error: (r) => `${r}/devices/system/cpu/cpu2/topology/core_cpus_list: "6": does not list cpu2 itself`,
    },
    {
      name: "no CPUs at all (an empty sysfs)",
      machine: { cpus: [], files: { "devices/system/cpu/online": null } },
      error: (r) => `${r}/devices/system/cpu: "": no online CPU found`,
    },
  ];
  it.each(rows)("$name", ({ machine, error }) => {
    const root = fakeSysfs(machine);
    let thrown: unknown;
    try {
      readTopology({ sysfsRoot: root });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(TopologyError);
    expect((thrown as Error).message).toBe(error(root));
  });
});

describe("probeTopology: what the agent reports", () => {
  it("the layout with the policy and scope, and the zone-count label", () => {
    const log = recorder();
    const t = probeTopology({ sysfsRoot: fakeSysfs(TWO_SOCKETS), policy: "single-numa-node", scope: "pod", log });
    expect(t).toMatchObject({ topologyManagerPolicy: "single-numa-node", topologyManagerScope: "pod", cpuCounts: { sockets: 2, cores: 4, threads: 8 } });
    expect(t.zones.map((z) => z.id)).toEqual([0, 1]);
    expect(topologyLabels(t)).toEqual({ [NUMA_ZONES_LABEL]: "2" });
    expect(log.lines).toEqual([]);
  });

  it("a malformed tree: a warning naming the file, no zones, no label; policy and scope still reported", () => {
    const log = recorder();
    const root = fakeSysfs({ ...TWO_SOCKETS, files: { "devices/system/node/node0/distance": "10 x\n" } });
    const t = probeTopology({ sysfsRoot: root, policy: "restricted", scope: "container", log });
    expect(t).toEqual({ topologyManagerPolicy: "restricted", topologyManagerScope: "container", zones: [], cpuCounts: undefined });
    expect(topologyLabels(t)).toEqual({});
    expect(log.lines).toEqual([
      { obj: { sysfsRoot: root, err: `${root}/devices/system/node/node0/distance: "x": not a whole number` }, msg: "node topology not reported: the NUMA layout could not be read" },
    ]);
  });

  it("a layout the server would refuse (a node nearer to another than to itself): a warning, no zones", () => {
    const log = recorder();
    const root = fakeSysfs({ ...TWO_SOCKETS, files: { "devices/system/node/node1/distance": "10 21\n" } });
    expect(probeTopology({ sysfsRoot: root, policy: "none", scope: "container", log }).zones).toEqual([]);
    expect(log.lines).toEqual([
      {
        obj: { sysfsRoot: root, err: `topology.zones[1].distances[1]: "21": a zone's distance to itself must be the smallest of its row, but distances[0] is 10` },
        msg: "node topology not reported: it breaks the server's rules",
      },
    ]);
  });

  it("assumptions are logged as warnings, the layout still reported", () => {
    const log = recorder();
    const root = fakeSysfs({ cpus: cpuGrid(1, 2, 1), files: { "devices/system/cpu/cpu1/topology": null } });
    expect(probeTopology({ sysfsRoot: root, policy: "none", scope: "container", log }).zones).toHaveLength(1);
    expect(log.lines.map((l) => l.msg)).toEqual([expect.stringContaining("node topology: no ")]);
  });
});

describe("readTopology on this machine's /sys", () => {
  it("at least one zone; every online CPU in exactly one zone; what the server accepts", () => {
    const t = readTopology();
    expect(t.zones.length).toBeGreaterThanOrEqual(1);
    const online = parseCpuList(readFileSync("/sys/devices/system/cpu/online", "utf8").trim());
    if (typeof online === "string") throw new Error(online);
    expect(t.cpuCounts.threads).toBe(countCpus(online));
    // Affinity or a cgroup can only narrow what this process may use.
    expect(t.cpuCounts.threads).toBeGreaterThanOrEqual(os.availableParallelism());
    expect(t.cpuCounts.sockets).toBeGreaterThanOrEqual(1);
    expect(t.zones.reduce((n, z) => n + z.cpuCounts!.threads, 0)).toBe(t.cpuCounts.threads);
    expect(topologyViolations({ topologyManagerPolicy: "none", topologyManagerScope: "container", zones: t.zones, cpuCounts: t.cpuCounts }, "t")).toEqual([]);
  });
});
