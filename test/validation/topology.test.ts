import { describe, expect, it } from "vitest";
import type { FieldViolation } from "../../src/errors.js";
import { NodeStatus, type NodeTopology } from "../../src/gen/nodeplane/v1/node.js";
import { canonicalViolation, countCpus, formatCpuList, parseCpuList } from "../../src/validation/cpulist.js";
import { validateNodeStatus } from "../../src/validation/node.js";
import { invalidErrorOf, violationsOf } from "./helpers.js";

/**
 * Two sockets, two NUMA zones of 2 cores × 2 threads each (CPUs 0-1,4-5 and 2-3,6-7), and a
 * third zone with memory only (CXL-style): every rule accepts it; rows change one thing.
 */
function validStatus(): NodeStatus {
  return NodeStatus.fromPartial({
    topology: {
      topologyManagerPolicy: "single-numa-node",
      topologyManagerScope: "pod",
      zones: [
        { id: 0, cpus: "0-1,4-5", memory: "16318584Ki", distances: [10, 21, 30], cpuCounts: { sockets: 1, cores: 2, threads: 4 } },
        { id: 1, cpus: "2-3,6-7", memory: "16Gi", distances: [21, 10, 30], cpuCounts: { sockets: 1, cores: 2, threads: 4 } },
        { id: 2, cpus: "", memory: "64Gi", distances: [30, 30, 10], cpuCounts: {} },
      ],
      cpuCounts: { sockets: 2, cores: 4, threads: 8 },
    },
  });
}

type Edit = (t: NodeTopology) => void;
const T = "status.topology";

describe("node topology validation accepts", () => {
  const rows: { name: string; edit: Edit }[] = [
    { name: "the valid topology", edit: () => {} },
    { name: "no zones (layout unknown), policy and scope only", edit: (t) => Object.assign(t, { zones: [], cpuCounts: undefined }) },
    { name: "every policy", edit: (t) => (t.topologyManagerPolicy = "best-effort") },
    { name: "policy restricted", edit: (t) => (t.topologyManagerPolicy = "restricted") },
    { name: "policy none, scope container", edit: (t) => Object.assign(t, { topologyManagerPolicy: "none", topologyManagerScope: "container" }) },
    { name: "zones listed out of id order", edit: (t) => (t.zones[0]!.id = 7) },
    { name: "asymmetric distances (ACPI SLIT allows them)", edit: (t) => (t.zones[0]!.distances = [10, 11, 255]) },
    { name: "a CPU-only zone with memory 0", edit: (t) => (t.zones[1]!.memory = "0") },
    { name: "zone id 1023 (boundary)", edit: (t) => (t.zones[2]!.id = 1023) },
    { name: "CPU id 65535 (boundary)", edit: (t) => {
        Object.assign(t.zones[1]!, { cpus: "2-3,6-7,65535", cpuCounts: { sockets: 1, cores: 3, threads: 5 } });
        t.cpuCounts!.threads = 9;
      },
    },
  ];
  it.each(rows)("$name", ({ edit }) => {
    const s = validStatus();
    edit(s.topology!);
    expect(() => validateNodeStatus(s, "status")).not.toThrow();
  });
});

describe("node topology validation rejects, naming the field, the value and the rule", () => {
  const rows: { name: string; edit: Edit; violation: FieldViolation }[] = [
    {
      name: "an unknown policy",
      edit: (t) => (t.topologyManagerPolicy = "single-numa"),
      violation: { field: `${T}.topology_manager_policy`, value: "single-numa", rule: "must be one of none, best-effort, restricted, single-numa-node" },
    },
    {
      name: "an empty scope",
      edit: (t) => (t.topologyManagerScope = ""),
      violation: { field: `${T}.topology_manager_scope`, value: "", rule: "must be one of container, pod" },
    },
    {
      name: "duplicate zone ids",
      edit: (t) => (t.zones[2]!.id = 0),
      violation: { field: `${T}.zones[2].id`, value: "0", rule: `duplicate of ${T}.zones[0].id: zone ids must be unique` },
    },
    {
      name: "zone id 1024 (boundary)",
      edit: (t) => (t.zones[2]!.id = 1024),
      violation: { field: `${T}.zones[2].id`, value: "1024", rule: "must be from 0 to 1023" },
    },
    {
      name: "a CPU list that is not a list",
      edit: (t) => (t.zones[0]!.cpus = "0-1;4-5"),
      violation: { field: `${T}.zones[0].cpus`, value: "0-1;4-5", rule: 'entry "0-1;4-5" is not a CPU id or a range first-last (e.g. "0-3,8-11")' },
    },
    {
      name: "a range running backwards",
      edit: (t) => (t.zones[0]!.cpus = "1-0,4-5"),
      violation: { field: `${T}.zones[0].cpus`, value: "1-0,4-5", rule: "range 1-0 runs backwards" },
    },
    {
      name: "a CPU id above 65535 (boundary 65536)",
      edit: (t) => (t.zones[0]!.cpus = "0-65536"),
      violation: { field: `${T}.zones[0].cpus`, value: "0-65536", rule: "CPU id 65536 is above 65535" },
    },
    {
      name: "whitespace in a CPU list",
      edit: (t) => (t.zones[0]!.cpus = "0-1, 4-5"),
      violation: { field: `${T}.zones[0].cpus`, value: "0-1, 4-5", rule: 'entry " 4-5" is not a CPU id or a range first-last (e.g. "0-3,8-11")' },
    },
    {
      name: "entries out of order",
      edit: (t) => (t.zones[0]!.cpus = "4-5,0-1"),
      violation: { field: `${T}.zones[0].cpus`, value: "4-5,0-1", rule: "entries must ascend without overlapping: 0 comes after 5" },
    },
    {
      name: "adjacent entries not joined",
      edit: (t) => (t.zones[0]!.cpus = "0,1,4-5"),
      violation: { field: `${T}.zones[0].cpus`, value: "0,1,4-5", rule: "adjacent entries must be joined into one range: 0 and 1" },
    },
    {
      name: "a CPU list longer than 32 KiB",
      edit: (t) => (t.zones[0]!.cpus = "1,".repeat(16384) + "1"),
      violation: { field: `${T}.zones[0].cpus`, value: "1,".repeat(16384) + "1", rule: "must be no more than 32768 characters" },
    },
    {
      name: "two zones sharing a CPU",
      edit: (t) => (t.zones[1]!.cpus = "2-3,5,7"),
      violation: { field: `${T}.zones[1].cpus`, value: "2-3,5,7", rule: `shares CPU 5 with ${T}.zones[0].cpus: a CPU belongs to one zone` },
    },
    {
      name: "a zone claiming another's CPUs inside one of its ranges",
      edit: (t) => {
        Object.assign(t.zones[0]!, { cpus: "0-7", cpuCounts: { sockets: 2, cores: 4, threads: 8 } });
        t.cpuCounts!.threads = 12;
      },
      violation: { field: `${T}.zones[1].cpus`, value: "2-3,6-7", rule: `shares CPU 2 with ${T}.zones[0].cpus: a CPU belongs to one zone` },
    },
    {
      name: "threads not matching the CPU list",
      edit: (t) => {
        t.zones[0]!.cpuCounts!.threads = 3;
        t.cpuCounts!.threads = 7;
      },
      violation: { field: `${T}.zones[0].cpu_counts.threads`, value: "3", rule: `must equal the number of CPUs in ${T}.zones[0].cpus (4)` },
    },
    {
      name: "more cores than threads",
      edit: (t) => (t.zones[0]!.cpuCounts!.cores = 5),
      violation: { field: `${T}.zones[0].cpu_counts.cores`, value: "5", rule: "must not exceed threads (4)" },
    },
    {
      name: "more sockets than cores",
      edit: (t) => (t.cpuCounts!.sockets = 5),
      violation: { field: `${T}.cpu_counts.sockets`, value: "5", rule: "must not exceed cores (4)" },
    },
    {
      name: "CPUs on no socket",
      edit: (t) => (t.zones[1]!.cpuCounts!.sockets = 0),
      violation: { field: `${T}.zones[1].cpu_counts.sockets`, value: "0", rule: "must be at least 1 when there are threads (4)" },
    },
    {
      name: "total threads not the sum of the zones'",
      edit: (t) => (t.cpuCounts!.threads = 16),
      violation: { field: `${T}.cpu_counts.threads`, value: "16", rule: "must equal the sum of the zones' threads (8)" },
    },
    {
      name: "a memory that is not a quantity",
      edit: (t) => (t.zones[2]!.memory = "64GB"),
      violation: { field: `${T}.zones[2].memory`, value: "64GB", rule: expect.stringContaining('has unknown suffix "GB"') as unknown as string },
    },
    {
      name: "an empty memory",
      edit: (t) => (t.zones[2]!.memory = ""),
      violation: { field: `${T}.zones[2].memory`, value: "", rule: expect.stringContaining("must not be empty") as unknown as string },
    },
    {
      name: "a distance row shorter than the zone count (not square)",
      edit: (t) => (t.zones[1]!.distances = [21, 10]),
      violation: { field: `${T}.zones[1].distances`, value: "2 entries", rule: `must have one entry per zone (3), in the order of ${T}.zones` },
    },
    {
      name: "a distance of 0",
      edit: (t) => (t.zones[2]!.distances = [30, 0, 10]),
      violation: { field: `${T}.zones[2].distances[1]`, value: "0", rule: "must be from 1 to 255 (10 = local)" },
    },
    {
      name: "a distance of 256 (boundary)",
      edit: (t) => (t.zones[2]!.distances = [30, 256, 10]),
      violation: { field: `${T}.zones[2].distances[1]`, value: "256", rule: "must be from 1 to 255 (10 = local)" },
    },
    {
      name: "a zone nearer to another than to itself",
      edit: (t) => (t.zones[0]!.distances = [21, 10, 30]),
      violation: { field: `${T}.zones[0].distances[0]`, value: "21", rule: "a zone's distance to itself must be the smallest of its row, but distances[1] is 10" },
    },
  ];
  it.each(rows)("$name", ({ edit, violation }) => {
    const s = validStatus();
    edit(s.topology!);
    expect(violationsOf(() => validateNodeStatus(s, "status"))).toEqual([violation]);
  });
});

describe("node topology validation bounds its work", () => {
  it("a million zones: one violation naming the count and the cap", () => {
    const s = NodeStatus.fromPartial({ topology: { topologyManagerPolicy: "none", topologyManagerScope: "container" } });
    s.topology!.zones = Array.from({ length: 1_000_000 }, (_, id) => ({ id, cpus: "", memory: "0", distances: [], cpuCounts: undefined }));
    const err = invalidErrorOf(() => validateNodeStatus(s, "status"));
    expect(err.violations).toEqual([{ field: `${T}.zones`, value: "1000000 zones", rule: "must have no more than 1024 zones (Linux's largest NUMA node count)" }]);
    expect(err.message).toBe(`${T}.zones: "1000000 zones": must have no more than 1024 zones (Linux's largest NUMA node count)`);
  });

  it("1025 zones is over the cap, 1024 is not (boundary)", () => {
    const zones = (n: number): NodeStatus =>
      NodeStatus.fromPartial({
        topology: {
          topologyManagerPolicy: "none",
          topologyManagerScope: "container",
          zones: Array.from({ length: n }, (_, id) => ({ id, memory: "1Gi", distances: Array.from({ length: n }, (_, j) => (j === id ? 10 : 20)) })),
        },
      });
    expect(() => validateNodeStatus(zones(1024), "status")).not.toThrow();
    expect(violationsOf(() => validateNodeStatus(zones(1025), "status")).map((v) => v.field)).toEqual([`${T}.zones`]);
  });

  it("a distance row of a million entries is one violation, not a million", () => {
    const s = validStatus();
    s.topology!.zones[0]!.distances = new Array<number>(1_000_000).fill(10);
    expect(violationsOf(() => validateNodeStatus(s, "status"))).toEqual([
      { field: `${T}.zones[0].distances`, value: "1000000 entries", rule: `must have one entry per zone (3), in the order of ${T}.zones` },
    ]);
  });

  it("reports every broken rule at once, and each shared CPU once per zone", () => {
    const s = validStatus();
    const t = s.topology!;
    t.topologyManagerPolicy = "strict";
    t.zones[1]!.cpus = "0-1,4-5"; // all of zone 0's CPUs
    t.zones[2]!.distances = [10];
    expect(violationsOf(() => validateNodeStatus(s, "status")).map((v) => v.field)).toEqual([
      `${T}.topology_manager_policy`,
      `${T}.zones[2].distances`,
      `${T}.zones[1].cpus`,
    ]);
  });
});

describe("cpulist", () => {
  it("parses, counts and formats the kernel's syntax", () => {
    expect(parseCpuList("")).toEqual([]);
    expect(parseCpuList("0-3,8-11,16")).toEqual([[0, 3], [8, 11], [16, 16]]);
    expect(countCpus([[0, 3], [8, 11], [16, 16]])).toBe(9);
    expect(formatCpuList([16, 9, 8, 0, 1, 2, 3, 10, 11, 3])).toBe("0-3,8-11,16");
    expect(formatCpuList([])).toBe("");
  });

  it("never expands a range to parse or count it", () => {
    expect(countCpus(parseCpuList("0-65535") as [number, number][])).toBe(65536);
  });

  it("rejects leading zeros, signs and empty entries", () => {
    for (const bad of ["01", "-1", "0,", ",0", "0--3", "0-3-5", "+1", "0x1"]) expect(typeof parseCpuList(bad), bad).toBe("string");
  });

  it("says what is not canonical", () => {
    expect(canonicalViolation([[0, 3], [8, 11]])).toBeUndefined();
    expect(canonicalViolation([[0, 3], [3, 4]])).toBe("entries must ascend without overlapping: 3 comes after 3");
    expect(canonicalViolation([[0, 3], [4, 4]])).toBe("adjacent entries must be joined into one range: 3 and 4");
  });
});
