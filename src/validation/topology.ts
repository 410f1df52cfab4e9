/**
 * Validation of a node's reported topology (NodeStatus.topology): the TopologyManager policy
 * and scope from the kubelet's sets; zones with unique ids, well-formed CPU lists that no two
 * zones share, memory quantities, a square distance matrix whose diagonal is each row's
 * smallest entry, and CPU counts that agree with the CPU lists. Sizes are capped before any
 * per-item work, so a hostile agent sending a million zones costs one violation, not a million.
 */
import type { FieldViolation } from "../errors.js";
import type { CpuCounts, NodeTopology } from "../gen/nodeplane/v1/node.js";
import { canonicalViolation, countCpus, type CpuRange, MAX_CPU_ID, parseCpuList } from "./cpulist.js";
import { quantityViolations } from "./quantity.js";

/** The kubelet's --topology-manager-policy values. */
export const TOPOLOGY_MANAGER_POLICIES = ["none", "best-effort", "restricted", "single-numa-node"] as const;
/** The kubelet's --topology-manager-scope values. */
export const TOPOLOGY_MANAGER_SCOPES = ["container", "pod"] as const;

/** Linux's MAX_NUMNODES at its largest (NODES_SHIFT 10): node ids are 0 to 1023. */
const MAX_ZONES = 1024;
/** Longest cpulist per zone: room for thousands of scattered CPUs, not for megabytes. */
const MAX_CPU_LIST_LENGTH = 32 * 1024;
/** No valid layout has more ranges than CPU ids; past this the overlap check is skipped. */
const MAX_CPU_RANGES = MAX_CPU_ID + 1;
/** The ACPI SLIT scale: 10 is local, 255 unreachable. */
const MAX_DISTANCE = 255;

/** Counts must nest: sockets <= cores <= threads, and some CPUs mean at least one socket. */
function countViolations(c: CpuCounts | undefined, at: string): FieldViolation[] {
  const { sockets = 0, cores = 0, threads = 0 } = c ?? {};
  const out: FieldViolation[] = [];
  if (cores > threads) out.push({ field: `${at}.cores`, value: String(cores), rule: `must not exceed threads (${threads})` });
  if (sockets > cores) out.push({ field: `${at}.sockets`, value: String(sockets), rule: `must not exceed cores (${cores})` });
  if (threads > 0 && sockets === 0) out.push({ field: `${at}.sockets`, value: "0", rule: `must be at least 1 when there are threads (${threads})` });
  return out;
}

interface Claimed {
  range: CpuRange;
  zone: number;
}

/** The first CPU two zones share, reported once per zone that claims it second. */
function overlapViolations(claimed: Claimed[], cpusField: (zone: number) => string, cpusOf: (zone: number) => string): FieldViolation[] {
  const out: FieldViolation[] = [];
  const reported = new Set<number>();
  const sorted = [...claimed].sort((a, b) => a.range[0] - b.range[0]);
  let reach: Claimed | undefined; // the claim reaching furthest so far
  for (const c of sorted) {
    if (reach !== undefined && c.range[0] <= reach.range[1] && !reported.has(c.zone)) {
      const [a, b] = reach.zone < c.zone ? [reach.zone, c.zone] : [c.zone, reach.zone];
      reported.add(b);
      out.push({ field: cpusField(b), value: cpusOf(b), rule: `shares CPU ${c.range[0]} with ${cpusField(a)}: a CPU belongs to one zone` });
    }
    if (reach === undefined || c.range[1] > reach.range[1]) reach = c;
  }
  return out;
}

/** Every violation in a topology at `at` (e.g. "status.topology"); none for an absent one. */
export function topologyViolations(t: NodeTopology | undefined, at: string): FieldViolation[] {
  if (!t) return [];
  const out: FieldViolation[] = [];
  const policies: readonly string[] = TOPOLOGY_MANAGER_POLICIES;
  const scopes: readonly string[] = TOPOLOGY_MANAGER_SCOPES;
  if (!policies.includes(t.topologyManagerPolicy)) {
    out.push({ field: `${at}.topology_manager_policy`, value: t.topologyManagerPolicy, rule: `must be one of ${policies.join(", ")}` });
  }
  if (!scopes.includes(t.topologyManagerScope)) {
    out.push({ field: `${at}.topology_manager_scope`, value: t.topologyManagerScope, rule: `must be one of ${scopes.join(", ")}` });
  }
  const zones = t.zones;
  if (zones.length > MAX_ZONES) {
    out.push({ field: `${at}.zones`, value: `${zones.length} zones`, rule: `must have no more than ${MAX_ZONES} zones (Linux's largest NUMA node count)` });
    return out;
  }
  const zoneAt = (i: number): string => `${at}.zones[${i}]`;
  const firstWithId = new Map<number, number>();
  const claimed: Claimed[] = [];
  let threadSum = 0;
  zones.forEach((z, i) => {
    const first = firstWithId.get(z.id);
    if (first !== undefined) out.push({ field: `${zoneAt(i)}.id`, value: String(z.id), rule: `duplicate of ${zoneAt(first)}.id: zone ids must be unique` });
    else firstWithId.set(z.id, i);
    if (z.id >= MAX_ZONES) out.push({ field: `${zoneAt(i)}.id`, value: String(z.id), rule: `must be from 0 to ${MAX_ZONES - 1}` });

    const cpusField = `${zoneAt(i)}.cpus`;
    const ranges = z.cpus.length > MAX_CPU_LIST_LENGTH ? `must be no more than ${MAX_CPU_LIST_LENGTH} characters` : parseCpuList(z.cpus);
    if (typeof ranges === "string") out.push({ field: cpusField, value: z.cpus, rule: ranges });
    else {
      const notCanonical = canonicalViolation(ranges);
      if (notCanonical) out.push({ field: cpusField, value: z.cpus, rule: notCanonical });
      else {
        for (const range of ranges) claimed.push({ range, zone: i });
        const cpus = countCpus(ranges);
        const threads = z.cpuCounts?.threads ?? 0;
        if (threads !== cpus) out.push({ field: `${zoneAt(i)}.cpu_counts.threads`, value: String(threads), rule: `must equal the number of CPUs in ${cpusField} (${cpus})` });
      }
    }
    threadSum += z.cpuCounts?.threads ?? 0;
    out.push(...countViolations(z.cpuCounts, `${zoneAt(i)}.cpu_counts`));
    for (const rule of quantityViolations(z.memory)) out.push({ field: `${zoneAt(i)}.memory`, value: z.memory, rule });

    const d = z.distances;
    if (d.length !== zones.length) {
      out.push({ field: `${zoneAt(i)}.distances`, value: `${d.length} entries`, rule: `must have one entry per zone (${zones.length}), in the order of ${at}.zones` });
    } else {
      const bad = d.findIndex((v) => !Number.isInteger(v) || v < 1 || v > MAX_DISTANCE);
      if (bad >= 0) out.push({ field: `${zoneAt(i)}.distances[${bad}]`, value: String(d[bad]), rule: `must be from 1 to ${MAX_DISTANCE} (10 = local)` });
      else {
        const nearer = d.findIndex((v) => v < d[i]!);
        if (nearer >= 0) {
          out.push({ field: `${zoneAt(i)}.distances[${i}]`, value: String(d[i]), rule: `a zone's distance to itself must be the smallest of its row, but distances[${nearer}] is ${d[nearer]}` });
        }
      }
    }
  });
  if (claimed.length > MAX_CPU_RANGES) {
    out.push({ field: `${at}.zones`, value: `${claimed.length} CPU ranges`, rule: `must list no more than ${MAX_CPU_RANGES} CPU ranges in all` });
  } else {
    out.push(...overlapViolations(claimed, (z) => `${zoneAt(z)}.cpus`, (z) => zones[z]!.cpus));
  }
  if (zones.length > 0) {
    const threads = t.cpuCounts?.threads ?? 0;
    if (threads !== threadSum) out.push({ field: `${at}.cpu_counts.threads`, value: String(threads), rule: `must equal the sum of the zones' threads (${threadSum})` });
  }
  out.push(...countViolations(t.cpuCounts, `${at}.cpu_counts`));
  return out;
}
