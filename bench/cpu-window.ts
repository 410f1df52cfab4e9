/**
 * CPU time of named processes over a window in the future (from /proc, read by timers at the
 * window's edges), with the machine's busy time over the same window, so that what other jobs on
 * the machine took can be told apart from ours.
 */
import fs from "node:fs";
import { machineBusyMs, procCpuMs, procRssBytes } from "./harness.js";
import { epochNow } from "./worker-side.js";

export interface CpuWindow {
  /** The window as measured, ms. */
  elapsedMs: number;
  /** % of one core over the window, by name (undefined without /proc). */
  pct: Record<string, number | undefined>;
  /** RSS at the end of the window, by name. */
  rss: Record<string, number | undefined>;
  /** Busy CPU of the machine, % of one core. */
  machinePct: number | undefined;
  /** Busy CPU of everything but the named processes, % of one core (other jobs on the machine). */
  otherPct: number | undefined;
  /** Share of the window in which some runnable task waited for a CPU (Linux PSI, /proc/pressure/cpu "some"), %. */
  cpuPressurePct: number | undefined;
}

/** Total time some task waited for a CPU (PSI "some" total), µs; undefined without PSI. */
export function cpuPressureUs(): number | undefined {
  try {
    const m = /^some .*total=(\d+)$/m.exec(fs.readFileSync("/proc/pressure/cpu", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Measure over [startAt, endAt) (epoch ms). `pids` should include this process. */
export function cpuWindow(pids: Record<string, number | undefined>, startAt: number, endAt: number): Promise<CpuWindow> {
  const read = (): { at: number; cpu: Record<string, number | undefined>; machine: number | undefined; psi: number | undefined } => {
    const cpu: Record<string, number | undefined> = {};
    for (const [name, pid] of Object.entries(pids)) cpu[name] = procCpuMs(pid);
    return { at: epochNow(), cpu, machine: machineBusyMs(), psi: cpuPressureUs() };
  };
  return new Promise((resolve) => {
    let first: ReturnType<typeof read> | undefined;
    setTimeout(() => (first = read()), Math.max(0, startAt - epochNow()));
    setTimeout(() => {
      const last = read();
      const f = first ?? last;
      const elapsedMs = last.at - f.at;
      const pct: Record<string, number | undefined> = {};
      const rss: Record<string, number | undefined> = {};
      let ours: number | undefined = 0;
      for (const name of Object.keys(pids)) {
        const a = f.cpu[name];
        const b = last.cpu[name];
        pct[name] = a !== undefined && b !== undefined && elapsedMs > 0 ? (100 * (b - a)) / elapsedMs : undefined;
        rss[name] = procRssBytes(pids[name]);
        ours = ours === undefined || pct[name] === undefined ? undefined : ours + pct[name];
      }
      const machinePct =
        f.machine !== undefined && last.machine !== undefined && elapsedMs > 0 ? (100 * (last.machine - f.machine)) / elapsedMs : undefined;
      resolve({
        elapsedMs,
        pct,
        rss,
        machinePct,
        otherPct: machinePct !== undefined && ours !== undefined ? Math.max(0, machinePct - ours) : undefined,
        cpuPressurePct: f.psi !== undefined && last.psi !== undefined && elapsedMs > 0 ? (100 * (last.psi - f.psi)) / 1000 / elapsedMs : undefined,
      });
    }, Math.max(0, endAt - epochNow()));
  });
}

/**
 * On a shared machine: wait (at most `maxWaitMs`) until the CPU taken by processes other than
 * `pids` over one second is below `maxOtherPct` (% of one core). Resolves with the last reading
 * (undefined without /proc) so the caller can report it; never fails.
 */
export async function waitForQuiet(
  pids: Record<string, number | undefined>,
  maxOtherPct: number,
  maxWaitMs: number,
  log: (s: string) => void,
): Promise<number | undefined> {
  const until = epochNow() + maxWaitMs;
  let logged = false;
  for (;;) {
    const now = epochNow();
    const w = await cpuWindow(pids, now, now + 1000);
    if (w.otherPct === undefined || w.otherPct <= maxOtherPct) return w.otherPct;
    if (epochNow() >= until) {
      log(`bench: other processes still take ${Math.round(w.otherPct)}% of a core after waiting ${Math.round(maxWaitMs / 1000)} s: measuring anyway`);
      return w.otherPct;
    }
    if (!logged) {
      log(`bench: other processes take ${Math.round(w.otherPct)}% of a core: waiting up to ${Math.round(maxWaitMs / 1000)} s for a quieter machine`);
      logged = true;
    }
  }
}
