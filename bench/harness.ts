/**
 * Shared plumbing for benchmarks that drive a real `nodeplane serve` child process: child
 * tracking (killed, temp dirs removed, on exit, error or signal), spawning and stopping the
 * server, reading its /metrics, and CPU time / RSS of processes from /proc.
 *
 * Importing this module installs process exit and signal handlers that clean up what was
 * tracked. Every benchmark under bench/ uses it.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
export const ROOT = path.resolve(HERE, "../..");
export const NODEPLANE_BIN = path.join(ROOT, "bin/nodeplane.js");

// ---------------------------------------------------------------------------------------
// Children and temp dirs: tracked, killed / removed on any exit

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Removed (recursively) when this process exits, whatever the reason. */
export function trackTempDir(dir: string): string {
  tempDirs.push(dir);
  return dir;
}

process.on("exit", () => {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(sig, () => {
    process.stderr.write(`\nbench: ${sig}: stopping\n`);
    process.exit(130);
  });
}

/**
 * Bound the whole run: after `ms`, say so and exit(1); the exit handler above then kills the
 * children and removes the temp dirs. Unref'd: it never keeps the process alive by itself.
 */
export function exitAfter(ms: number, what: string): NodeJS.Timeout {
  const timer = setTimeout(() => {
    process.stderr.write(`\nbench: ${what} did not finish within ${Math.round(ms / 1000)} s: stopping\n`);
    process.exit(1);
  }, ms);
  timer.unref();
  return timer;
}

export interface Served {
  child: ChildProcess;
  port: number;
  httpPort: number | undefined;
  /** Output beyond the serving line (stdout and stderr). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawn `node ARGS`, wait (bounded) for the line matching `serving` (groups: grpc port, http port). */
export async function spawnServing(name: string, args: string[], serving: RegExp): Promise<Served> {
  const child = track(spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } }));
  let out = "";
  let seenServing = false;
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const ports = await new Promise<{ port: number; httpPort: number | undefined }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start serving within 20 s:\n${out}`)), 20_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = seenServing ? null : serving.exec(line);
      if (m) {
        seenServing = true;
        clearTimeout(timer);
        resolve({ port: Number(m[1]), httpPort: m[2] && m[2] !== "-" ? Number(m[2]) : undefined });
      } else out += `${line}\n`;
    });
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${e.code ?? e.signal}) before serving:\n${out}`));
    });
  });
  return { child, port: ports.port, httpPort: ports.httpPort, output: () => out, exited };
}

/** `nodeplane serve` on loopback, any free ports, with `dataDir`, logging warn and above; `nodeFlags` go to node itself (e.g. --cpu-prof). */
export function spawnNodeplane(dataDir: string, extraArgs: string[] = [], nodeFlags: string[] = []): Promise<Served> {
  return spawnServing(
    "nodeplane",
    [...nodeFlags, NODEPLANE_BIN, "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn", ...extraArgs],
    /^nodeplane serving grpc=[^:]+:(\d+) http=(\d+|-)/,
  );
}

/** SIGTERM, wait (bounded) for the exit, SIGKILL if it does not come. */
export async function stopServer(s: Served, name: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return s.exited;
  s.child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      process.stderr.write(`bench: ${name} did not stop within 15 s of SIGTERM: killing it\n`);
      s.child.kill("SIGKILL");
      resolve();
    }, 15_000);
  });
  await Promise.race([s.exited, killed]);
  clearTimeout(timer);
  return s.exited;
}

// ---------------------------------------------------------------------------------------
// /metrics

/** Every sample of a Prometheus text exposition: series (name{labels}) → value. */
export type Samples = Map<string, number>;

export async function scrapeMetrics(httpPort: number): Promise<Samples> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  const samples: Samples = new Map();
  for (const line of (await res.text()).split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const cut = line.lastIndexOf(" ");
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

/** Sum of the samples of metric `name` whose labels include every `label="value"` given. */
export function sumOf(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const [series, value] of samples) {
    const brace = series.indexOf("{");
    const metric = brace < 0 ? series : series.slice(0, brace);
    if (metric !== name) continue;
    if (want.every((w) => series.includes(w))) sum += value;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------
// /proc

export const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system) of a process so far, ms; undefined where /proc is not there. */
export function procCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Resident set size of a process now, bytes; undefined without /proc. */
export function procRssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Scheduler view of one thread (default: the process's main thread, whose tid is its pid):
 * time on a CPU and time runnable but waiting for one, ms; undefined without /proc.
 */
export function threadSchedMs(pid: number | undefined, tid = pid): { runMs: number; waitMs: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const [run, wait] = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").trim().split(/\s+/).map(Number);
    return run === undefined || wait === undefined ? undefined : { runMs: run / 1e6, waitMs: wait / 1e6 };
  } catch {
    return undefined;
  }
}

/** Busy CPU time of the whole machine so far (all CPUs, /proc/stat), ms; undefined without /proc. */
export function machineBusyMs(): number | undefined {
  try {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number); // user nice system idle iowait irq softirq steal …
    const busy = v.slice(0, 8).reduce((a, b) => a + b, 0) - v[3]! - v[4]!;
    return (busy * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

const FS_TYPES: Record<number, string> = {
  0xef53: "ext4",
  0x01021994: "tmpfs",
  0x794c7630: "overlayfs",
  0x58465342: "xfs",
  0x9123683e: "btrfs",
  0x2fc12fc1: "zfs",
};

export function fsTypeOf(dir: string): string {
  try {
    const t = fs.statfsSync(dir).type;
    return FS_TYPES[t] ?? `0x${t.toString(16)}`;
  } catch {
    return "unknown";
  }
}

// ---------------------------------------------------------------------------------------
// Numbers

export const median = (xs: number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–");
export const fmtMs = (n: number): string => (!Number.isFinite(n) ? "–" : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
export const fmtPct = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? "–" : `${Math.round(n)}%`);
/** A ratio a / b as "0.62×" ("–" when either is missing or b is 0). */
export const fmtRatio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? "–" : `${(a / b).toFixed(2)}×`;
export const fmtMiB = (bytes: number | undefined): string => (bytes === undefined || !Number.isFinite(bytes) ? "–" : `${Math.round(bytes / 2 ** 20)} MiB`);
