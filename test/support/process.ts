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
  return { child, grpcPort: ports.grpc, httpPort: ports.http, stderr: () => err, exited };
}
