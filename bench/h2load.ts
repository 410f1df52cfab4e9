/**
 * h2load (Debian `nghttp2-client`) as the load generator for gRPC: pre-framed request bodies
 * (0x00, 4-byte big-endian length, message bytes; several frames make a client stream), one
 * body per h2load process, many processes at once. h2load counts a gRPC error as success (the
 * HTTP status is 200 and the gRPC status comes in trailers it does not read), so callers check
 * the servers' own counters; `grpcCall` (node:http2) checks a body once by hand, trailers and all.
 *
 * Each process writes a per-request log (start µs since the epoch, HTTP status, µs to the end
 * of the response); requests that ended inside the measured window make the calls/s and the
 * latency histogram. All processes are tracked (killed on exit, error or signal by harness.ts)
 * and bounded by a watchdog.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import http2 from "node:http2";
import path from "node:path";
import { createInterface } from "node:readline";
import { findTool, type Tool } from "./etcd.js";
import { epochNow, track } from "./harness.js";
import type { WindowHooks } from "./heartbeat-load.js";
import { procCpuMs } from "./proc.js";
import { Histogram } from "./tally.js";

export const H2LOAD_PACKAGE = "nghttp2-client";

export const findH2load = (): Tool | { missing: string } => findTool(process.env.H2LOAD_BIN || "h2load", /nghttp2\/(\S+)/);

/** One gRPC length-prefixed message: 0x00 (not compressed), length (u32 BE), bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The messages of a gRPC body; throws on a truncated or compressed frame. */
export function grpcUnframe(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    if (body.length - at < 5) throw new Error(`truncated gRPC frame header at ${at} of ${body.length}`);
    if (body[at] !== 0) throw new Error(`compressed gRPC frame at ${at}`);
    const len = body.readUInt32BE(at + 1);
    if (at + 5 + len > body.length) throw new Error(`truncated gRPC message at ${at} (${len} bytes) of ${body.length}`);
    out.push(body.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  return out;
}

export interface GrpcCallResult {
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  messages: Buffer[];
}

/** One gRPC call of a pre-framed body over node:http2 (what h2load sends), read to the trailers. */
export function grpcCall(origin: string, urlPath: string, body: Buffer, timeoutMs = 10_000): Promise<GrpcCallResult> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`${origin}${urlPath}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    session.once("error", fail);
    const req = session.request({ ":method": "POST", ":path": urlPath, "content-type": "application/grpc", te: "trailers" });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message: string | undefined;
    const take = (h: http2.IncomingHttpHeaders): void => {
      const s = h["grpc-status"];
      if (s !== undefined) status = String(s);
      const m = h["grpc-message"];
      if (m !== undefined) message = decodeURIComponent(String(m));
    };
    req.on("response", take);
    req.on("trailers", take);
    req.on("data", (d: Buffer) => chunks.push(d));
    req.once("error", fail);
    req.on("end", () => {
      clearTimeout(timer);
      session.close();
      try {
        resolve({ grpcStatus: status, grpcMessage: message, messages: grpcUnframe(Buffer.concat(chunks)) });
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------
// A measured run of many h2load processes

export interface H2loadJob {
  /** The pre-framed request body (one message for a unary call, several for a client stream). */
  bodyFile: string;
  /** Connections this process opens, and concurrent calls (HTTP/2 streams) per connection. */
  clients: number;
  streams: number;
}

export interface H2loadRunOptions {
  url: string;
  jobs: H2loadJob[];
  warmupMs: number;
  durationMs: number;
  /** Directory under which each run keeps its per-process logs (removed after the run). */
  workDir: string;
  /** Read the per-request logs (unary calls); off for long client streams, whose "request" is a whole stream. */
  perRequestLog: boolean;
}

export interface H2loadRunResult {
  /** Calls that ended inside the window with HTTP 200 (gRPC status unknown to h2load), and with another status. */
  windowOk: number;
  windowBadStatus: number;
  hist: Histogram;
  windowMs: number;
  /** h2load's own totals over the whole run of every process; DATA bytes are the answers' gRPC frames. */
  succeeded: number;
  non2xx: number;
  dataBytes: number;
  /** All h2load processes' CPU over the window, ms (undefined without /proc). */
  clientCpuMs: number | undefined;
  /** Unary runs: ms from the last process start until every process had had an answer (all connections admitted). */
  allServedAfterMs?: number;
}

/** Run time after the window closes: calls still in flight are not cut inside it. */
const TAIL_MS = 200;

function parseStats(out: string): { succeeded: number; non2xx: number; dataBytes: number } {
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded/.exec(out);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const traffic = /traffic: .*\((\d+)\) data/.exec(out);
  if (!req || !codes || !traffic) throw new Error(`cannot read h2load's summary:\n${out.slice(-2000)}`);
  return { succeeded: Number(req[4]), non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]), dataBytes: Number(traffic[1]) };
}

/** Spawn cost per h2load process seen so far (ms): sizes the start-skew budget of the next run. */
let spawnMsEstimate = 1;
/** Warm-up added for a (url, process count) whose connections were admitted slowly before. */
const extraWarmupMs = new Map<string, number>();
let runSeq = 0;

/** Process groups of launchers still running: killed (with every h2load in them) on any exit. */
const liveGroups = new Set<number>();
const killGroup = (pgid: number | undefined): void => {
  try {
    if (pgid !== undefined) process.kill(-pgid, "SIGKILL");
  } catch {
    // already gone
  }
};
process.on("exit", () => liveGroups.forEach(killGroup));

const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A run worth another try: starting the processes overran its budget (a load spike), or connections were admitted late (`lagMs`: try a longer warm-up). */
class Retry extends Error {
  constructor(
    message: string,
    readonly lagMs = 0,
  ) {
    super(message);
  }
}

/**
 * Run the processes and measure one window. When starting them overran the start-skew budget
 * (a load spike on a shared machine), the processes are killed before the window opened and the
 * run is tried again with a budget sized from what was seen; when some connection had no answer
 * until well into the window (slow admission of new connections), it is tried again with a longer
 * warm-up, kept for later runs against the same server at the same concurrency. At most 3 tries.
 */
export async function runH2load(bin: Tool, o: H2loadRunOptions, hooks: WindowHooks): Promise<H2loadRunResult> {
  const key = `${o.url} ${o.jobs.length}`;
  let run = { ...o, warmupMs: o.warmupMs + (extraWarmupMs.get(key) ?? 0) };
  for (let attempt = 1; ; attempt++) {
    try {
      return await runOnce(bin, run, hooks);
    } catch (err) {
      if (!(err instanceof Retry) || attempt >= 3) throw err;
      if (err.lagMs > 0) {
        run = { ...run, warmupMs: run.warmupMs + err.lagMs + 500 };
        extraWarmupMs.set(key, run.warmupMs - o.warmupMs);
      }
      process.stderr.write(`bench: ${err.message}; trying again${err.lagMs > 0 ? ` with ${Math.round(run.warmupMs)} ms of warm-up` : ""}\n`);
    }
  }
}

/** The launcher script: every process started in the background by one small shell (a fork of `sh` costs far less than a spawn from node). */
function script(bin: Tool, o: H2loadRunOptions, runMs: number, logOf: (i: number) => string, outOf: (i: number) => string): string {
  const lines = ["#!/bin/sh"];
  o.jobs.forEach((job, i) => {
    const args = [bin.path, "-c", String(job.clients), "-m", String(job.streams), "-t", "1", "-D", `${runMs}ms`, "-d", job.bodyFile];
    args.push("-H", "content-type: application/grpc", "-H", "te: trailers", ...(o.perRequestLog ? ["--log-file", logOf(i)] : []), o.url);
    lines.push(`${args.map(shQuote).join(" ")} >${shQuote(outOf(i))} 2>&1 </dev/null &`, `p${i}=$!`, `echo "pid $p${i}"`);
  });
  lines.push("echo started", ...o.jobs.map((_, i) => `wait $p${i}; echo "exit ${i} $?"`));
  return `${lines.join("\n")}\n`;
}

async function runOnce(bin: Tool, base: H2loadRunOptions, hooks: WindowHooks): Promise<H2loadRunResult> {
  // A directory of its own per run: processes killed in an earlier try may still be creating files.
  const o = { ...base, workDir: path.join(base.workDir, `run-${++runSeq}`) };
  fs.mkdirSync(o.workDir, { recursive: true });
  // All processes run for the same duration, which covers a start-skew budget: the window opens
  // a warm-up after the last one started and closes before the first one stops.
  const budgetMs = Math.max(150, 1.5 * spawnMsEstimate * o.jobs.length);
  const runMs = Math.ceil(budgetMs + o.warmupMs + o.durationMs + TAIL_MS);
  const logOf = (i: number): string => path.join(o.workDir, `${i}.log`);
  const outOf = (i: number): string => path.join(o.workDir, `${i}.out`);
  fs.writeFileSync(path.join(o.workDir, "run.sh"), script(bin, o, runMs, logOf, outOf));

  const spawnedAt = epochNow();
  const launcher = track(spawn("/bin/sh", [path.join(o.workDir, "run.sh")], { stdio: ["ignore", "pipe", "pipe"], detached: true }));
  if (launcher.pid !== undefined) liveGroups.add(launcher.pid);
  const pids: number[] = [];
  const exitCodes = new Map<number, number>();
  let launcherErr = "";
  launcher.stderr!.on("data", (d: Buffer) => (launcherErr += d.toString()));
  const started = new Promise<number>((resolve, reject) => {
    createInterface({ input: launcher.stdout! }).on("line", (line) => {
      const [word, a, b] = line.split(" ");
      if (word === "pid") pids.push(Number(a));
      else if (word === "started") resolve(epochNow());
      else if (word === "exit") exitCodes.set(Number(a), Number(b));
    });
    launcher.once("error", reject);
    launcher.once("close", (code) => reject(new Error(`the h2load launcher exited (${code}) before starting every process: ${launcherErr.slice(-1000)}`)));
  });
  let launcherClosed = false;
  const launcherDone = new Promise<number | null>((resolve) => {
    launcher.once("close", (code) => resolve(((launcherClosed = true), code)));
    launcher.once("error", () => resolve(-1));
  });
  let watchdog: NodeJS.Timeout | undefined;
  const limitMs = runMs + budgetMs + 15_000;
  const timedOut = new Promise<never>((_, reject) => {
    watchdog = setTimeout(() => {
      killGroup(launcher.pid);
      reject(new Error(`h2load processes still running ${Math.round(limitMs / 1000)} s after they were started: killed`));
    }, limitMs);
  });

  const timers: NodeJS.Timeout[] = [];
  let [windowStart, windowEnd, lastStart] = [0, 0, 0];
  let clientCpuMs: number | undefined;
  try {
    lastStart = await Promise.race([started, timedOut]);
    const perProcess = (lastStart - spawnedAt) / o.jobs.length;
    spawnMsEstimate = Math.max(0.2, perProcess > spawnMsEstimate ? perProcess : 0.7 * spawnMsEstimate + 0.3 * perProcess);
    const openAt = lastStart + o.warmupMs;
    const closeAt = Math.min(openAt + o.durationMs, spawnedAt + runMs - TAIL_MS);
    if (closeAt - openAt < o.durationMs / 2) {
      killGroup(launcher.pid);
      await Promise.race([launcherDone, timedOut]);
      throw new Retry(`starting ${o.jobs.length} h2load processes took ${Math.round(lastStart - spawnedAt)} ms (budget ${Math.round(budgetMs)} ms): the machine is too loaded`);
    }
    const cpuOf = (): number | undefined => {
      const ms = pids.map((pid) => procCpuMs(pid));
      return ms.some((x) => x === undefined) ? undefined : ms.reduce<number>((a, b) => a + b!, 0);
    };
    let cpuAtOpen: number | undefined;
    timers.push(
      setTimeout(() => {
        windowStart = epochNow();
        cpuAtOpen = cpuOf();
        hooks.open([...pids]);
      }, openAt - epochNow()),
    );
    const closed = new Promise<void>((resolve) =>
      timers.push(
        setTimeout(() => {
          windowEnd = epochNow();
          const now = cpuOf();
          if (now !== undefined && cpuAtOpen !== undefined) clientCpuMs = now - cpuAtOpen;
          hooks.close([...pids]);
          resolve();
        }, closeAt - epochNow()),
      ),
    );
    const code = await Promise.race([launcherDone, timedOut]);
    await closed;
    if (code !== 0) throw new Error(`the h2load launcher exited with ${code}: ${launcherErr.slice(-1000)}`);
  } finally {
    timers.forEach(clearTimeout);
    clearTimeout(watchdog);
    if (!launcherClosed) killGroup(launcher.pid); // an error on the way: no h2load outlives this run
    if (launcher.pid !== undefined) liveGroups.delete(launcher.pid);
  }
  for (let i = 0; i < o.jobs.length; i++) {
    if (exitCodes.get(i) === 0) continue;
    const out = fs.existsSync(outOf(i)) ? fs.readFileSync(outOf(i), "utf8") : "(no output)";
    throw new Error(`h2load #${i} exited with ${exitCodes.get(i) ?? "?"}:\n${out.slice(-2000)}`);
  }

  const res: H2loadRunResult = { windowOk: 0, windowBadStatus: 0, hist: new Histogram(), windowMs: windowEnd - windowStart, clientCpuMs, succeeded: 0, non2xx: 0, dataBytes: 0 };
  // Every process (connection) must have been answered once before its calls count: a server can
  // be slow to admit hundreds of new connections, and that ramp is not its steady state. The
  // window starts at the latest first answer if that came after the warm-up.
  const calls: Array<{ end: number; durUs: number; status: number }> = [];
  let allServedAt = 0;
  for (let i = 0; i < o.jobs.length; i++) {
    const s = parseStats(fs.readFileSync(outOf(i), "utf8"));
    res.succeeded += s.succeeded;
    res.non2xx += s.non2xx;
    res.dataBytes += s.dataBytes;
    if (!o.perRequestLog) continue;
    let firstEnd = Number.POSITIVE_INFINITY;
    // Each line: start (µs since the epoch), HTTP status, µs to the end of the response.
    for await (const line of createInterface({ input: fs.createReadStream(logOf(i), { encoding: "utf8" }), crlfDelay: Infinity })) {
      const [start, status, durUs] = line.split("\t").map(Number);
      if (durUs === undefined || start === undefined || status === undefined) continue;
      firstEnd = Math.min(firstEnd, start + durUs);
      calls.push({ end: start + durUs, durUs, status });
    }
    allServedAt = Math.max(allServedAt, firstEnd / 1000);
  }
  fs.rmSync(o.workDir, { recursive: true, force: true, maxRetries: 3 });
  if (!o.perRequestLog) return res;
  res.allServedAfterMs = allServedAt - lastStart;
  if (allServedAt > windowStart) {
    if (windowEnd - allServedAt < o.durationMs / 2) {
      const lag = allServedAt - windowStart;
      throw new Retry(`not every h2load connection had an answer ${Math.round(lag)} ms into the window (the server admits new connections slowly)`, lag);
    }
    windowStart = allServedAt;
    res.windowMs = windowEnd - allServedAt;
  }
  for (const c of calls) {
    if (c.end < windowStart * 1000 || c.end >= windowEnd * 1000) continue;
    if (c.status === 200) {
      res.windowOk++;
      res.hist.record(c.durUs);
    } else res.windowBadStatus++;
  }
  return res;
}
