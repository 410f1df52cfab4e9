/**
 * The machine's NUMA layout, read from sysfs (the files the kernel documents in
 * Documentation/ABI/stable/sysfs-devices-node and sysfs-devices-system-cpu):
 *
 *   <root>/devices/system/node/node<N>/{cpulist, meminfo, distance}
 *   <root>/devices/system/cpu/online
 *   <root>/devices/system/cpu/cpu<N>/topology/{physical_package_id, core_cpus_list | thread_siblings_list | core_id}
 *
 * Contract of `readTopology`:
 * - Zones come sorted by id; each lists its online CPUs (canonical cpulist), its MemTotal (as
 *   "<kB>Ki"), its distance to every zone in that order, and its sockets/cores/threads.
 * - No <root>/devices/system/node (a kernel without NUMA, a trimmed container sysfs): one
 *   implicit zone 0 holding every online CPU and `totalMemoryBytes`, distance [10].
 * - Offline CPUs appear nowhere (cpu/online, or cpu<N>/online = 0 when that list is missing).
 * - A zone with memory and no CPUs (or CPUs and no memory) is a zone like any other.
 * - A CPU without a topology directory counts as its own core; all such CPUs count as one
 *   socket; `warnings` says so.
 * - A file that is present but malformed, or a layout that contradicts itself (a CPU in two
 *   zones, an online CPU in none, a distance row of the wrong length) throws TopologyError
 *   naming the file, what it held and the rule. A layout that is partly guessed would be acted
 *   on by schedulers; none at all is safer, and the agent reports no zones (`probeTopology`).
 */
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { InvalidError } from "../errors.js";
import type { CpuCounts, NodeTopology, NumaZone } from "../gen/nodeplane/v1/node.js";
import { expandCpuRanges, formatCpuList, parseCpuList } from "../validation/cpulist.js";
import { topologyViolations } from "../validation/topology.js";
import type { AgentLogger } from "./agent.js";

/** The agent label carrying the number of NUMA zones, so that label selectors (and watches) can use it. */
export const NUMA_ZONES_LABEL = "topology.nodeplane.io/numa-zones";

/** A sysfs file that is there but says something the reader cannot use. */
export class TopologyError extends Error {
  constructor(path: string, content: string, rule: string) {
    super(`${path}: ${JSON.stringify(content.length > 80 ? `${content.slice(0, 80)}…` : content)}: ${rule}`);
    this.name = "TopologyError";
  }
}

export interface TopologyReading {
  zones: NumaZone[];
  cpuCounts: CpuCounts;
  /** Things the reader had to assume (logged by the agent). */
  warnings: string[];
}

export interface ReadTopologyOptions {
  /** Where sysfs is mounted (default /sys). */
  sysfsRoot?: string;
  /** Memory of the implicit zone when there is no NUMA information (default os.totalmem()). */
  totalMemoryBytes?: number;
}

/** The file's text, or undefined when it does not exist. */
function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new TopologyError(path, "", `cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function readRequired(path: string): string {
  const text = readOptional(path);
  if (text === undefined) throw new TopologyError(path, "", "is missing");
  return text;
}

function listDir(path: string): string[] | undefined {
  try {
    return readdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new TopologyError(path, "", `cannot be listed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function cpuSet(path: string, text: string): Set<number> {
  const ranges = parseCpuList(text.trim());
  if (typeof ranges === "string") throw new TopologyError(path, text.trim(), `not a cpulist: ${ranges}`);
  return new Set(expandCpuRanges(ranges));
}

function integer(path: string, text: string, pattern: RegExp): string {
  const value = text.trim();
  if (!pattern.test(value)) throw new TopologyError(path, value, "not a whole number");
  return value;
}

/** Numbered entries of a directory ("node0", "cpu12") as ascending ids. */
function numbered(names: readonly string[], prefix: string): number[] {
  const re = new RegExp(`^${prefix}(0|[1-9][0-9]*)$`);
  return names.flatMap((n) => re.exec(n)?.[1] ?? []).map(Number).sort((a, b) => a - b);
}

function onlineCpus(cpuDir: string): Set<number> {
  const listed = readOptional(join(cpuDir, "online"));
  if (listed !== undefined) return cpuSet(join(cpuDir, "online"), listed);
  // No online list: every cpuN directory whose own online flag is absent (cpu0 often has none) or 1.
  const online = new Set<number>();
  for (const id of numbered(listDir(cpuDir) ?? [], "cpu")) {
    const path = join(cpuDir, `cpu${id}`, "online");
    const flag = readOptional(path);
    if (flag === undefined || integer(path, flag, /^[01]$/) === "1") online.add(id);
  }
  return online;
}

/** Where a CPU sits: a socket key and a core key (unique machine-wide), or undefined when unknown. */
function placeOf(cpuDir: string, id: number): { socket: string; core: string } | undefined {
  const dir = join(cpuDir, `cpu${id}`, "topology");
  const pkgPath = join(dir, "physical_package_id");
  const pkgText = readOptional(pkgPath);
  if (pkgText === undefined) return undefined;
  const socket = integer(pkgPath, pkgText, /^-?[0-9]+$/); // -1: the platform does not say
  // The CPUs sharing this core name it best; core_id alone is unique only within a package.
  for (const name of ["core_cpus_list", "thread_siblings_list"]) {
    const path = join(dir, name);
    const text = readOptional(path);
    if (text === undefined) continue;
    const siblings = cpuSet(path, text);
    if (!siblings.has(id)) throw new TopologyError(path, text.trim(), `does not list cpu${id} itself`);
    return { socket, core: `${socket}/${formatCpuList(siblings)}` };
  }
  const corePath = join(dir, "core_id");
  const core = readOptional(corePath);
  return { socket, core: `${socket}/id:${core === undefined ? `cpu${id}` : integer(corePath, core, /^[0-9]+$/)}` };
}

function countsOf(cpus: Iterable<number>, places: ReadonlyMap<number, { socket: string; core: string }>): CpuCounts {
  const sockets = new Set<string>();
  const cores = new Set<string>();
  let threads = 0;
  for (const id of cpus) {
    const p = places.get(id)!;
    sockets.add(p.socket);
    cores.add(p.core);
    threads++;
  }
  return { sockets: sockets.size, cores: cores.size, threads };
}

interface RawZone {
  id: number;
  cpus: Set<number>;
  memoryKi: number;
  distances: number[];
}

function readZones(nodeDir: string, ids: readonly number[], online: ReadonlySet<number>): RawZone[] {
  const owner = new Map<number, number>();
  return ids.map((id) => {
    const dir = join(nodeDir, `node${id}`);
    const cpus = new Set([...cpuSet(join(dir, "cpulist"), readRequired(join(dir, "cpulist")))].filter((c) => online.has(c)));
    for (const c of cpus) {
      const other = owner.get(c);
      if (other !== undefined) throw new TopologyError(join(dir, "cpulist"), formatCpuList(cpus), `cpu${c} is also in node${other}`);
      owner.set(c, id);
    }
    const meminfoPath = join(dir, "meminfo");
    const meminfo = readRequired(meminfoPath);
    const mem = /^Node\s+\d+\s+MemTotal:\s+(\d+) kB$/m.exec(meminfo);
    if (!mem) throw new TopologyError(meminfoPath, meminfo.split("\n")[0] ?? "", 'has no "Node <id> MemTotal: <n> kB" line');
    const distancePath = join(dir, "distance");
    const distanceText = readRequired(distancePath).trim();
    const distances = distanceText === "" ? [] : distanceText.split(/\s+/).map((d) => Number(integer(distancePath, d, /^[0-9]+$/)));
    if (distances.length !== ids.length) {
      throw new TopologyError(distancePath, distanceText, `has ${distances.length} distances for ${ids.length} NUMA nodes`);
    }
    return { id, cpus, memoryKi: Number(mem[1]), distances };
  });
}

/** Read the layout under `sysfsRoot`. @throws TopologyError (see the contract above). */
export function readTopology(opts: ReadTopologyOptions = {}): TopologyReading {
  const root = opts.sysfsRoot ?? "/sys";
  const cpuDir = join(root, "devices/system/cpu");
  const nodeDir = join(root, "devices/system/node");
  const warnings: string[] = [];

  const online = onlineCpus(cpuDir);
  if (online.size === 0) throw new TopologyError(cpuDir, "", "no online CPU found");
  const places = new Map<number, { socket: string; core: string }>();
  const unplaced: number[] = [];
  for (const id of online) {
    const p = placeOf(cpuDir, id);
    if (p) places.set(id, p);
    else {
      unplaced.push(id);
      places.set(id, { socket: "unknown", core: `unknown/${id}` });
    }
  }
  if (unplaced.length > 0) {
    warnings.push(`no ${join(cpuDir, "cpu<N>/topology")} for CPUs ${formatCpuList(unplaced)}: each counts as its own core, all of them as one socket`);
  }

  const ids = numbered(listDir(nodeDir) ?? [], "node");
  const raw: RawZone[] =
    ids.length === 0
      ? [{ id: 0, cpus: online, memoryKi: Math.floor((opts.totalMemoryBytes ?? os.totalmem()) / 1024), distances: [10] }]
      : readZones(nodeDir, ids, online);
  const zoned = new Set(raw.flatMap((z) => [...z.cpus]));
  const stray = [...online].filter((c) => !zoned.has(c));
  if (stray.length > 0) throw new TopologyError(nodeDir, "", `online CPUs ${formatCpuList(stray)} are in no NUMA node's cpulist`);

  return {
    zones: raw.map((z) => ({ id: z.id, cpus: formatCpuList(z.cpus), memory: `${z.memoryKi}Ki`, distances: z.distances, cpuCounts: countsOf(z.cpus, places) })),
    cpuCounts: countsOf(online, places),
    warnings,
  };
}

export interface ProbeTopologyOptions extends ReadTopologyOptions {
  /** --topology-manager-policy. */
  policy: string;
  /** --topology-manager-scope. */
  scope: string;
  log: AgentLogger;
}

/**
 * What the agent reports: the layout plus its TopologyManager settings. Assumptions are logged
 * as warnings. A layout that cannot be read, or that the server would refuse (checked here with
 * the server's own rules, e.g. a zone nearer to another than to itself), is logged and reported
 * as no zones (the policy and scope still are): a strange sysfs never stops the agent, nor
 * makes its registration fail.
 */
export function probeTopology(o: ProbeTopologyOptions): NodeTopology {
  const settings = { topologyManagerPolicy: o.policy, topologyManagerScope: o.scope };
  const sysfsRoot = o.sysfsRoot ?? "/sys";
  let reading: TopologyReading;
  try {
    reading = readTopology(o);
  } catch (err) {
    if (!(err instanceof TopologyError)) throw err;
    o.log.warn({ sysfsRoot, err: err.message }, "node topology not reported: the NUMA layout could not be read");
    return { ...settings, zones: [], cpuCounts: undefined };
  }
  for (const w of reading.warnings) o.log.warn({ sysfsRoot }, `node topology: ${w}`);
  const topology = { ...settings, zones: reading.zones, cpuCounts: reading.cpuCounts };
  const refused = topologyViolations(topology, "topology");
  if (refused.length === 0) return topology;
  o.log.warn({ sysfsRoot, err: new InvalidError(refused).message }, "node topology not reported: it breaks the server's rules");
  return { ...settings, zones: [], cpuCounts: undefined };
}

/** The agent's labels for a topology: the NUMA zone count, when the layout is known. */
export function topologyLabels(t: NodeTopology): Record<string, string> {
  return t.zones.length > 0 ? { [NUMA_ZONES_LABEL]: String(t.zones.length) } : {};
}
