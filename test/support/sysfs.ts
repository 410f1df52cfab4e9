/**
 * Fake sysfs trees in temp dirs, laid out as the kernel lays out /sys/devices/system/{cpu,node},
 * for the topology reader and for real agent processes (`--sysfs-root`).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { formatCpuList } from "../../src/validation/cpulist.js";

export interface FakeMachine {
  /** CPU id (the index) → [socket, core id within the socket]. */
  cpus: [socket: number, core: number][];
  /** CPUs the kernel has offlined: out of cpu/online, no topology directory, cpuN/online = 0. */
  offline?: number[];
  /** NUMA nodes; absent: no devices/system/node at all. */
  nodes?: { id?: number; cpus: string; memKb: number; distances: number[] }[];
  /** Files to write over (relative to the root) or, with null, to remove. */
  files?: Record<string, string | null>;
}

const made: string[] = [];

/** Build the tree; answers its root (removed by `removeFakeSysfs`). */
export function fakeSysfs(m: FakeMachine): string {
  const root = mkdtempSync(join(tmpdir(), "nodeplane-sysfs-"));
  made.push(root);
  const write = (path: string, text: string): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  const offline = new Set(m.offline ?? []);
  const online = m.cpus.map((_, id) => id).filter((id) => !offline.has(id));
  write("devices/system/cpu/online", `${formatCpuList(online)}\n`);
  write("devices/system/cpu/possible", `${formatCpuList(m.cpus.map((_, id) => id))}\n`);
  m.cpus.forEach(([socket, core], id) => {
    const dir = `devices/system/cpu/cpu${id}`;
    if (id > 0) write(`${dir}/online`, offline.has(id) ? "0\n" : "1\n");
    if (offline.has(id)) return;
    const siblings = formatCpuList(online.filter((o) => m.cpus[o]![0] === socket && m.cpus[o]![1] === core));
    write(`${dir}/topology/physical_package_id`, `${socket}\n`);
    write(`${dir}/topology/core_id`, `${core}\n`);
    write(`${dir}/topology/core_cpus_list`, `${siblings}\n`);
    write(`${dir}/topology/thread_siblings_list`, `${siblings}\n`);
  });
  m.nodes?.forEach((n, i) => {
    const id = n.id ?? i;
    const dir = `devices/system/node/node${id}`;
    write(`${dir}/cpulist`, `${n.cpus}\n`);
    write(`${dir}/meminfo`, `Node ${id} MemTotal:       ${n.memKb} kB\nNode ${id} MemFree:        ${Math.floor(n.memKb / 2)} kB\n`);
    write(`${dir}/distance`, `${n.distances.join(" ")}\n`);
  });
  if (m.nodes) write("devices/system/node/online", `${formatCpuList(m.nodes.map((n, i) => n.id ?? i))}\n`);
  for (const [path, text] of Object.entries(m.files ?? {})) {
    if (text === null) rmSync(join(root, path), { recursive: true, force: true });
    else write(path, text);
  }
  return root;
}

/** Remove every tree built so far. */
export function removeFakeSysfs(): void {
  for (const root of made.splice(0)) rmSync(root, { recursive: true, force: true });
}

/** n sockets × c cores × t threads, numbered as x86 does: all first threads, then all second threads. */
export function cpuGrid(sockets: number, cores: number, threads: number): [number, number][] {
  const out: [number, number][] = [];
  for (let t = 0; t < threads; t++) for (let s = 0; s < sockets; s++) for (let c = 0; c < cores; c++) out.push([s, c]);
  return out;
}

/** 2 sockets × 2 cores × 2 threads, one NUMA node per socket: CPUs 0-1,4-5 and 2-3,6-7. */
export const TWO_SOCKETS: FakeMachine = {
  cpus: cpuGrid(2, 2, 2),
  nodes: [
    { cpus: "0-1,4-5", memKb: 16318584, distances: [10, 21] },
    { cpus: "2-3,6-7", memKb: 16777216, distances: [21, 10] },
  ],
};
