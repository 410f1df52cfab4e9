/**
 * Plumbing every benchmark shares: child processes and temp dirs that never outlive the run,
 * `nodeplane serve` (and other servers) spawned and stopped, /metrics read, the main() wrapper.
 *
 * Tracking is installed on first use: once something is tracked, exit, error or signal kills
 * the tracked children and removes the tracked dirs. Workers that track nothing install nothing.
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** dist/bench, where the compiled benchmarks and their workers are. */
export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, "../..");
export const NODEPLANE_BIN = path.join(ROOT, "bin/nodeplane.js");
export const benchScript = (file: string): string => path.join(BENCH_DIR, file);

export const epochNow = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
export const errText = (err: unknown): string => (err instanceof Error ? (err.stack ?? err.message) : String(err));

/** A small seeded PRNG (mulberry32), so runs pick the same "random" nodes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------
// Children and temp dirs: tracked, killed / removed on any exit

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];
let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", () => {
    for (const c of children) c.kill("SIGKILL");
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}: stopping\n`);
      process.exit(130);
    });
  }
}

export function track(child: ChildProcess): ChildProcess {
  installCleanup();
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** A fresh dir under the system temp dir, removed (recursively) when this process exits. */
export function tempDir(prefix: string): string {
  installCleanup();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Bound the whole run: after `ms`, say so and exit(1) (the exit handler cleans up). Never keeps the process alive. */
export function exitAfter(ms: number, what: string): void {
  setTimeout(() => {
    process.stderr.write(`\nbench: ${what} did not finish within ${Math.round(ms / 1000)} s: stopping\n`);
    process.exit(1);
  }, ms).unref();
}

/** Run a benchmark's main(): exit 0 when it resolves, 1 (with the stack) when it throws. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      process.stderr.write(`\n${name} FAILED: ${errText(err)}\n`);
      process.exit(1);
    },
  );
}

// ---------------------------------------------------------------------------------------
// Servers

export interface Served {
  child: ChildProcess;
  port: number;
  httpPort: number | undefined;
  /** Output beyond the serving line (stdout and stderr). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawn `node ARGS`, wait (bounded) for the line matching `serving` (groups: grpc port, http port). */
export async function spawnServing(name: string, args: string[], serving: RegExp, timeoutMs = 20_000): Promise<Served> {
  const child = track(spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } }));
  let out = "";
  let seenServing = false;
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const ports = await new Promise<{ port: number; httpPort: number | undefined }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start serving within ${timeoutMs} ms:\n${out}`)), timeoutMs);
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

export interface NodeplaneOptions {
  dataDir: string;
  /** The gRPC port (default 0: any free one). */
  port?: number;
  /** More `nodeplane serve` flags. */
  args?: string[];
  /** Profile it (node --cpu-prof) into `dir` as `name`.cpuprofile. */
  profile?: { dir: string; name: string };
  timeoutMs?: number;
}

/**
 * Flags for a lifecycle controller that runs (its informers are part of what is measured) with
 * grace periods longer than any run, so that it adds no writes of its own to nodes that renew nothing.
 */
export const QUIET_CONTROLLER = ["--node-monitor-grace-period", "1h", "--node-startup-grace-period", "1h"];

/** The V8 flags `npm start` and bin/nodeplane.js run the server with: 64 MiB semi-spaces, no allocation-site pretenuring. */
export const NODEPLANE_V8_FLAGS = ["--max-semi-space-size=64", "--no-allocation-site-pretenuring"];

/** `nodeplane serve` on loopback, logging warn and above; /metrics served (benchmarks read the server's own counters). */
export async function spawnNodeplane(o: NodeplaneOptions): Promise<Served & { httpPort: number }> {
  const prof = o.profile ? ["--cpu-prof", `--cpu-prof-dir=${o.profile.dir}`, `--cpu-prof-name=${o.profile.name}.cpuprofile`] : [];
  const served = await spawnServing(
    "nodeplane",
    [
      ...prof,
      // As `npm start` runs it (package.json; bin/nodeplane.js says why).
      ...NODEPLANE_V8_FLAGS,
      NODEPLANE_BIN,
      "serve",
      ...["--listen", `127.0.0.1:${o.port ?? 0}`, "--http-listen", "127.0.0.1:0", "--data-dir", o.dataDir, "--log-level", "warn"],
      ...(o.args ?? []),
    ],
    /^nodeplane serving grpc=[^:]+:(\d+) http=(\d+|-)/,
    o.timeoutMs,
  );
  const httpPort = served.httpPort;
  if (httpPort === undefined) throw new Error("nodeplane did not report its HTTP port (needed for /metrics)");
  return { ...served, httpPort };
}

/** The baseline server (bench/trivial-server.ts); `lease` is what it answers (encoded Lease, base64). */
export function spawnTrivial(nodeFlags: string[] = [], lease?: string): Promise<Served> {
  return spawnServing("trivial server", [...nodeFlags, benchScript("trivial-server.js"), ...(lease ? [lease] : [])], /^trivial serving grpc=[^:]+:(\d+) http=(\d+)/);
}

/** SIGTERM, wait (bounded) for the exit, SIGKILL if it does not come. */
export async function stopServer(s: Served, name: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return s.exited;
  s.child.kill("SIGTERM");
  const timer = setTimeout(() => {
    process.stderr.write(`bench: ${name} did not stop within 15 s of SIGTERM: killing it\n`);
    s.child.kill("SIGKILL");
  }, 15_000);
  const exit = await s.exited;
  clearTimeout(timer);
  return exit;
}

/** Stop a server; its failure to exit cleanly, and what it logged, go to `failures` and the log. */
export async function stopChecked(s: Served, name: string, failures: string[]): Promise<void> {
  const exit = await stopServer(s, name);
  if (exit.code !== 0) failures.push(`${name} exited with ${exit.code ?? exit.signal} on SIGTERM`);
  if (s.output().trim()) process.stderr.write(`bench: ${name} said (warn and above):\n${s.output()}\n`);
}

// ---------------------------------------------------------------------------------------
// /metrics

/** Every sample of a Prometheus text exposition: series (name{labels}) → value. */
export type Samples = Map<string, number>;

export async function scrapeMetrics(httpPort: number): Promise<Samples> {
  // Generous: a server taking 100,000 new streams at once answers /metrics late, not never.
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(30_000) });
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
    if ((brace < 0 ? series : series.slice(0, brace)) === name && want.every((w) => series.includes(w))) sum += value;
  }
  return sum;
}

/** How much `name` (summed over `labels`) grew from scrape `a` to scrape `b`. */
export const grew = (a: Samples, b: Samples, name: string, labels: Record<string, string> = {}): number => sumOf(b, name, labels) - sumOf(a, name, labels);

/** gRPC calls of `method` the server handled between two scrapes: OK, and the others. */
export function handled(a: Samples, b: Samples, method: string): { ok: number; notOk: number } {
  const ok = grew(a, b, "nodeplane_grpc_server_handled_total", { method, code: "OK" });
  return { ok, notOk: grew(a, b, "nodeplane_grpc_server_handled_total", { method }) - ok };
}
