/**
 * Worker processes of the benchmarks in bench/watch-fanout.ts and bench/scale.ts, parent side:
 * `node SCRIPT` with an IPC channel (structured-clone serialisation, so typed arrays cross as
 * they are), tracked (killed on exit, see harness.ts), with bounded waits for its messages.
 * The worker side is bench/worker-side.ts (which does not load harness.ts and its handlers).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { track } from "./harness.js";
import type { Fatal } from "./worker-side.js";

/** The parent's handle on one worker process. */
export class WorkerProcess<In extends { type: string }, Out extends { type: string }> {
  private readonly waiters = new Set<(msg: Out | Fatal | Error) => void>();
  private readonly listeners = new Set<(msg: Out) => void>();
  private exitedWith: string | undefined;
  readonly child: ChildProcess;

  constructor(
    readonly name: string,
    script: string,
    args: string[] = [],
  ) {
    this.child = track(spawn(process.execPath, [script, ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" }));
    this.child.on("message", (raw: unknown) => {
      const msg = raw as Out | Fatal;
      if (msg.type !== "fatal") for (const l of [...this.listeners]) l(msg as Out);
      for (const w of [...this.waiters]) w(msg);
    });
    this.child.once("exit", (code, signal) => {
      this.exitedWith = `${name} exited (${code ?? signal})`;
      for (const w of [...this.waiters]) w(new Error(this.exitedWith));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(msg: In): void {
    if (this.exitedWith) throw new Error(this.exitedWith);
    this.child.send(msg);
  }

  /** Every message (not only awaited ones), e.g. progress reports. */
  onMessage(listener: (msg: Out) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The next message of type `type`; fails on a fatal message, the worker's exit or the timeout. */
  next<T extends Out["type"]>(type: T, timeoutMs: number): Promise<Extract<Out, { type: T }>> {
    if (this.exitedWith) return Promise.reject(new Error(this.exitedWith));
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter = (msg: Out | Fatal | Error): void => {
        if (msg instanceof Error) {
          done();
          reject(msg);
        } else if (msg.type === "fatal") {
          done();
          reject(new Error(`${this.name} failed: ${(msg as Fatal).message}`));
        } else if (msg.type === type) {
          done();
          resolve(msg as Extract<Out, { type: T }>);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.name}: no "${type}" message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Ask it to exit (it disconnects); SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    try {
      this.child.disconnect();
    } catch {
      // already disconnected
    }
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
