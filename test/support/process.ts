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
  /** Resolves with the first log line (pino JSON on stderr) whose msg contains `text`, from now on or already seen if `seen`. */
  logLine(text: string, seen?: boolean): Promise<Record<string, unknown>>;
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
  const logs = logReader(child.stderr!);
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
  return { child, grpcPort: ports.grpc, httpPort: ports.http, stderr: () => err, logLine: logs, exited };
}

/** Log lines (pino JSON) as they come: `logLine(text)` resolves on the first whose msg contains text. */
function logReader(stream: NodeJS.ReadableStream): (text: string, seen?: boolean) => Promise<Record<string, unknown>> {
  const lines: Record<string, unknown>[] = [];
  const waiters: { text: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  createInterface({ input: stream }).on("line", (line) => {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch {
      obj = { msg: line };
    }
    lines.push(obj);
    for (const w of waiters.splice(0)) {
      if (String(obj.msg).includes(w.text)) w.resolve(obj);
      else waiters.push(w);
    }
  });
  return (text, seen = true) => {
    const hit = seen ? lines.find((o) => String(o.msg).includes(text)) : undefined;
    return hit ? Promise.resolve(hit) : new Promise((resolve) => waiters.push({ text, resolve }));
  };
}

export interface SpawnedAgent {
  child: ChildProcess;
  /** Resolves with the first log line (pino JSON on stderr) whose msg contains `text`. */
  logLine(text: string): Promise<Record<string, unknown>>;
  /** SIGTERM, and resolve with the exit code. */
  stop(): Promise<number | null>;
}

/** Spawn the real `nodeplane agent` with these flags. */
export function spawnAgent(args: string[]): SpawnedAgent {
  const child = spawn(process.execPath, [NODEPLANE_BIN, "agent", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const logLine = logReader(child.stderr!);
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return {
    child,
    logLine: (text) => logLine(text),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
