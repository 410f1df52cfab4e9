/**
 * Spawn the real `nodeplane serve` (compiled, from dist/, with node directly so that a kill
 * reaches the server itself and not an npm wrapper) and wait for its "serving" line.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const NODEPLANE_BIN = fileURLToPath(new URL("../../bin/nodeplane.js", import.meta.url));

export interface Spawned {
  child: ChildProcess;
  grpcPort: number;
  httpPort: number | undefined;
  /** Everything the process wrote to stderr so far (for failure messages). */
  stderr(): string;
  /**
   * Resolves with the first log line (pino JSON on stderr) whose msg contains `match` (or that
   * `match` accepts), already seen or to come — only to come when `seen` is false.
   */
  logLine(match: string | LineMatch, seen?: boolean): Promise<Record<string, unknown>>;
  /** Resolves with the exit code or signal once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function spawnServer(args: string[]): Promise<Spawned> {
  const child = spawn(process.execPath, [NODEPLANE_BIN, "serve", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const logLine = jsonLines(child.stderr!);
  const exited = once(child, "exit").then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const lines = createInterface({ input: child.stdout! });
  const serving = new Promise<{ grpc: number; http: number | undefined }>((resolve, reject) => {
    lines.on("line", (line) => {
      const m = /^nodeplane serving grpc=[^:]+:(\d+) http=(\d+|-)/.exec(line);
      if (m) resolve({ grpc: Number(m[1]), http: m[2] === "-" ? undefined : Number(m[2]) });
    });
    void exited.then((e) => reject(new Error(`server exited (${e.code ?? e.signal}) before serving:\n${err}`)));
  });
  const ports = await serving;
  return { child, grpcPort: ports.grpc, httpPort: ports.http, stderr: () => err, logLine, exited };
}

type LineMatch = (line: Record<string, unknown>) => boolean;

/** Every JSON log line of a stream, and a wait for the first that matches (seen, unless `seen` is false, or to come). */
function jsonLines(input: NodeJS.ReadableStream): (match: string | LineMatch, seen?: boolean) => Promise<Record<string, unknown>> {
  const lines: Record<string, unknown>[] = [];
  let waiters: { match: LineMatch; resolve: (line: Record<string, unknown>) => void }[] = [];
  createInterface({ input }).on("line", (line) => {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch {
      obj = { msg: line };
    }
    lines.push(obj);
    waiters = waiters.filter((w) => (w.match(obj) ? (w.resolve(obj), false) : true));
  });
  return (m, seen = true) => {
    const match: LineMatch = typeof m === "string" ? (o) => String(o.msg).includes(m) : m;
    const hit = seen ? lines.find(match) : undefined;
    return hit ? Promise.resolve(hit) : new Promise((resolve) => waiters.push({ match, resolve }));
  };
}

export interface SpawnedAgent {
  child: ChildProcess;
  /** Resolves with the first log line (pino JSON on stderr) whose msg contains `text`. */
  logLine(text: string): Promise<Record<string, unknown>>;
  /** Resolves with the first log line, seen or to come, that `match` accepts. */
  logLineMatching(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** SIGTERM, and resolve with the exit code. */
  stop(): Promise<number | null>;
}

/** Spawn the real `nodeplane agent` with these flags. */
export function spawnAgent(args: string[]): SpawnedAgent {
  const child = spawn(process.execPath, [NODEPLANE_BIN, "agent", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const lines = jsonLines(child.stderr!);
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return {
    child,
    logLine: (text) => lines(text),
    logLineMatching: lines,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
