/**
 * What the machine's CPUs did, from /proc: CPU time and memory of processes, the scheduler's view
 * of one thread, the machine's busy time and CPU pressure (PSI) — read at two instants, so that
 * what other jobs on this shared machine took can be told apart from ours. Every reader answers
 * undefined where /proc (or PSI) is not there.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { epochNow } from "./harness.js";

let clkTck: number | undefined;
function ticksToMs(ticks: number): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return (ticks * 1000) / clkTck;
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) of a process so far, or of one of its threads, ms. */
export function procCpuMs(pid: number | undefined, tid?: number): number | undefined {
  const stat = pid === undefined ? undefined : read(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
  return ticksToMs(Number(fields[11]) + Number(fields[12]));
}

/** A size from /proc/PID/status, bytes: "VmRSS" (resident now) or "VmHWM" (peak resident). */
export function procBytes(pid: number | undefined, field: "VmRSS" | "VmHWM" = "VmRSS"): number | undefined {
  const status = pid === undefined ? undefined : read(`/proc/${pid}/status`);
  const m = status === undefined ? null : new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Scheduler view of a process's main thread: time on a CPU and time runnable but waiting for one, ms. */
export function threadSchedMs(pid: number | undefined): { runMs: number; waitMs: number } | undefined {
  const [run, wait] = (pid === undefined ? undefined : read(`/proc/${pid}/task/${pid}/schedstat`))?.trim().split(/\s+/).map(Number) ?? [];
  return run === undefined || wait === undefined ? undefined : { runMs: run / 1e6, waitMs: wait / 1e6 };
}

/** Busy CPU time of the whole machine so far (all CPUs), ms. */
function machineBusyMs(): number | undefined {
  const line = read("/proc/stat")?.split("\n")[0];
  if (!line) return undefined;
  const v = line.trim().split(/\s+/).slice(1).map(Number); // user nice system idle iowait irq softirq steal …
  return ticksToMs(v.slice(0, 8).reduce((a, b) => a + b, 0) - v[3]! - v[4]!);
}

/** Total time some task waited for a CPU (PSI "some" total), µs. */
function cpuPressureUs(): number | undefined {
  const m = /^some .*total=(\d+)$/m.exec(read("/proc/pressure/cpu") ?? "");
  return m ? Number(m[1]) : undefined;
}

const FS_TYPES: Record<number, string> = { 0xef53: "ext4", 0x01021994: "tmpfs", 0x794c7630: "overlayfs", 0x58465342: "xfs", 0x9123683e: "btrfs", 0x2fc12fc1: "zfs" };

export function fsTypeOf(dir: string): string {
  try {
    const t = fs.statfsSync(dir).type;
    return FS_TYPES[t] ?? `0x${t.toString(16)}`;
  } catch {
    return "unknown";
  }
}

// ---------------------------------------------------------------------------------------
// CPU over a span

/** The processes a benchmark counts as its own, by name (this one included, usually as "bench"). */
export type Pids = Record<string, number | undefined>;

export interface CpuReading {
  at: number;
  pids: Pids;
  cpu: Record<string, number | undefined>;
  machine: number | undefined;
  psi: number | undefined;
}

export function readCpu(pids: Pids): CpuReading {
  const cpu: Record<string, number | undefined> = {};
  for (const [name, pid] of Object.entries(pids)) cpu[name] = procCpuMs(pid);
  return { at: epochNow(), pids, cpu, machine: machineBusyMs(), psi: cpuPressureUs() };
}

export interface CpuSpan {
  elapsedMs: number;
  /** % of one core over the span, by name. */
  pct: Record<string, number | undefined>;
  /** RSS at the end of the span, by name. */
  rss: Record<string, number | undefined>;
  /** Busy CPU of everything but the named processes, % of one core (other jobs on the machine). */
  otherPct: number | undefined;
  /** Share of the span in which some runnable task waited for a CPU (Linux PSI "some"), %. */
  pressurePct: number | undefined;
}

/**
 * From reading `a` to reading `b` (whose names are the ones counted). A process absent from `a`
 * (started within the span) counts from 0.
 */
export function cpuBetween(a: CpuReading, b: CpuReading): CpuSpan {
  const elapsedMs = b.at - a.at;
  const pctOf = (x: number | undefined, y: number | undefined): number | undefined =>
    x === undefined || y === undefined || elapsedMs <= 0 ? undefined : (100 * (y - x)) / elapsedMs;
  const pct: Record<string, number | undefined> = {};
  const rss: Record<string, number | undefined> = {};
  let ours: number | undefined = 0;
  for (const name of Object.keys(b.pids)) {
    pct[name] = pctOf(name in a.pids ? a.cpu[name] : 0, b.cpu[name]);
    rss[name] = procBytes(b.pids[name]);
    ours = ours === undefined || pct[name] === undefined ? undefined : ours + pct[name];
  }
  const machine = pctOf(a.machine, b.machine);
  const psi = pctOf(a.psi, b.psi);
  return {
    elapsedMs,
    pct,
    rss,
    otherPct: machine !== undefined && ours !== undefined ? Math.max(0, machine - ours) : undefined,
    pressurePct: psi === undefined ? undefined : psi / 1000,
  };
}

/** `cpuBetween` over [startAt, endAt) (epoch ms, in the future), read by timers at its edges. */
export function cpuWindow(pids: Pids, startAt: number, endAt: number): Promise<CpuSpan> {
  return new Promise((resolve) => {
    let first: CpuReading | undefined;
    setTimeout(() => (first = readCpu(pids)), startAt - epochNow());
    setTimeout(() => {
      const last = readCpu(pids);
      resolve(cpuBetween(first ?? last, last));
    }, endAt - epochNow());
  });
}

/**
 * On a shared machine: wait (at most `waitS`) until the CPU taken by processes other than `pids`
 * over one second is below `maxOtherPct` (% of one core). Never fails: a busy machine is
 * measured anyway, and said so.
 */
export async function waitForQuiet(pids: Pids, { waitS, maxOtherPct }: { waitS: number; maxOtherPct: number }, log: (s: string) => void): Promise<void> {
  const maxWaitMs = waitS * 1000;
  const until = epochNow() + maxWaitMs;
  for (let logged = false; ; logged = true) {
    const now = epochNow();
    const other = (await cpuWindow(pids, now, now + 1000)).otherPct;
    if (other === undefined || other <= maxOtherPct) return;
    if (epochNow() >= until) return log(`bench: other processes still take ${Math.round(other)}% of a core after waiting ${Math.round(maxWaitMs / 1000)} s: measuring anyway`);
    if (!logged) log(`bench: other processes take ${Math.round(other)}% of a core: waiting up to ${Math.round(maxWaitMs / 1000)} s for a quieter machine`);
  }
}
