/**
 * The node's resource usage, as the kubelet's resource metrics report it (the node part of its
 * stats summary, which `kubectl top nodes` shows through metrics-server):
 *
 * - CPU: busy time (user + nice + system + irq, from os.cpus(), i.e. /proc/stat) since boot, and
 *   its rate in nano-cores averaged over a window: from the last sample taken at least a second
 *   before the request (samples every 10 s, as the kubelet's housekeeping), else from the one
 *   before, else from start-up;
 * - memory: the working set as MemTotal − MemAvailable (/proc/meminfo: what the kernel could not
 *   easily reclaim; the kubelet's is the root cgroup's usage minus inactive file pages, close to
 *   it), available and capacity;
 * - the filesystem of --root-dir: capacity, used, available, inodes (statfs).
 *
 * Readers are injectable so tests give exact numbers.
 */
import { readFileSync, statfsSync } from "node:fs";
import os from "node:os";
import { type Clock, every, systemClock } from "../clock.js";
import type { ResourceUsage } from "../gen/nodeplane/v1/agent.js";

export interface UsageReaders {
  /** CPU time spent busy since boot, summed over CPUs, in ms. */
  cpuBusyMs(): number;
  memory(): { totalBytes: number; availableBytes: number };
  filesystem(path: string): { capacityBytes: number; usedBytes: number; availableBytes: number; inodes: number; inodesFree: number };
}

export interface UsageSamplerOptions {
  /** The filesystem measured (the agent's --root-dir). */
  rootDir: string;
  clock?: Clock;
  /** How often CPU time is sampled (default 10 s). */
  periodMs?: number;
  readers?: Partial<UsageReaders>;
}

interface Sample {
  at: number;
  busyMs: number;
}

/** A request this close after the last sample measures from the one before it. */
const MIN_WINDOW_MS = 1000;

export class UsageSampler {
  private readonly clock: Clock;
  private readonly read: UsageReaders;
  private previous: Sample | undefined;
  private last: Sample;
  private stopTimer: (() => void) | undefined;

  constructor(private readonly o: UsageSamplerOptions) {
    this.clock = o.clock ?? systemClock;
    this.read = { ...systemReaders, ...o.readers };
    this.last = this.sample();
  }

  /** Sample every period until stop(). */
  start(): void {
    this.stopTimer ??= every(this.clock, this.o.periodMs ?? 10_000, () => {
      this.previous = this.last;
      this.last = this.sample();
    });
  }

  stop(): void {
    this.stopTimer?.();
    this.stopTimer = undefined;
  }

  /** Usage now (CPU averaged over the window described above). */
  usage(): ResourceUsage {
    const now = this.sample();
    const base = now.at - this.last.at >= MIN_WINDOW_MS || !this.previous ? this.last : this.previous;
    const windowMs = Math.max(0, now.at - base.at);
    const busyMs = Math.max(0, now.busyMs - base.busyMs);
    const memory = this.read.memory();
    const fs = this.read.filesystem(this.o.rootDir);
    return {
      timestamp: new Date(now.at),
      window: { seconds: BigInt(Math.floor(windowMs / 1000)), nanos: (windowMs % 1000) * 1e6 },
      cpu: {
        usageNanoCores: windowMs > 0 ? BigInt(Math.round((busyMs / windowMs) * 1e9)) : 0n,
        usageCoreNanoSeconds: BigInt(Math.round(now.busyMs)) * 1_000_000n,
      },
      memory: {
        workingSetBytes: big(memory.totalBytes - memory.availableBytes),
        availableBytes: big(memory.availableBytes),
        capacityBytes: big(memory.totalBytes),
      },
      filesystem: {
        path: this.o.rootDir,
        capacityBytes: big(fs.capacityBytes),
        usedBytes: big(fs.usedBytes),
        availableBytes: big(fs.availableBytes),
        inodes: big(fs.inodes),
        inodesFree: big(fs.inodesFree),
      },
    };
  }

  private sample(): Sample {
    return { at: this.clock.now(), busyMs: this.read.cpuBusyMs() };
  }
}

const big = (n: number): bigint => BigInt(Math.max(0, Math.round(n)));

const systemReaders: UsageReaders = {
  cpuBusyMs: () => os.cpus().reduce((sum, c) => sum + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0),
  memory: () => {
    const info = meminfo();
    const total = info.MemTotal ?? os.totalmem();
    return { totalBytes: total, availableBytes: info.MemAvailable ?? os.freemem() };
  },
  filesystem: (path) => {
    const s = statfsSync(path);
    return {
      capacityBytes: s.blocks * s.bsize,
      usedBytes: (s.blocks - s.bfree) * s.bsize,
      availableBytes: s.bavail * s.bsize,
      inodes: s.files,
      inodesFree: s.ffree,
    };
  },
};

/** /proc/meminfo's "kB" lines in bytes ({} where there is no /proc). */
function meminfo(): Record<string, number> {
  let text = "";
  try {
    text = readFileSync("/proc/meminfo", "utf8");
  } catch {
    return {};
  }
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[m[1]!] = Number(m[2]) * 1024;
  return out;
}
