/**
 * The one IPC layer between a benchmark and its worker processes: the worker serves an API
 * object (async methods of one structured-clone argument), the parent calls it by name with a
 * bound on each call and gets the method's answer, typed from the worker's own `typeof api`
 * (imported with `import type`, so the parent never loads the worker's code).
 *
 * A method that throws is fatal: the error goes back to the pending call and the worker exits
 * (its state is no longer known). A worker may also send notes (e.g. progress) between answers.
 * Workers exit when their parent goes away; the parent's side is tracked (killed on any exit).
 */
import * as grpc from "@grpc/grpc-js";
import { type ChildProcess, spawn } from "node:child_process";
import { errText, track } from "./harness.js";

/** What a worker serves: async methods taking at most one (structured-clone) argument. */
export type Api = Record<string, (arg: never) => Promise<unknown>>;

type Call = { id: number; method: string; arg: unknown };
type Reply = { id: number; result?: unknown; error?: string } | { note: unknown };

/** The parent's handle on one worker process. */
export class Worker<A extends Api, Note = never> {
  readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly noteListeners = new Set<(note: Note) => void>();
  private nextId = 0;
  private exitedWith: string | undefined;

  /** `nodeFlags`: node (V8) flags for the worker process, before its script. */
  constructor(
    readonly name: string,
    script: string,
    args: string[] = [],
    nodeFlags: string[] = [],
  ) {
    this.child = track(spawn(process.execPath, [...nodeFlags, script, ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" }));
    this.child.on("message", (raw: unknown) => {
      const msg = raw as Reply;
      if ("note" in msg) {
        for (const l of this.noteListeners) l(msg.note as Note);
        return;
      }
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p?.reject(new Error(`${name} failed: ${msg.error}`));
      else p?.resolve(msg.result);
    });
    this.child.once("exit", (code, signal) => {
      this.exitedWith = `${name} exited (${code ?? signal})`;
      for (const p of this.pending.values()) p.reject(new Error(this.exitedWith));
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Call `method`; fails on the worker's error, its exit, or no answer within `timeoutMs`. */
  call<K extends keyof A & string>(method: K, timeoutMs: number, ...arg: Parameters<A[K]>): Promise<Awaited<ReturnType<A[K]>>> {
    if (this.exitedWith) return Promise.reject(new Error(this.exitedWith));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no answer to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = <T>(f: (v: T) => void) => (v: T): void => {
        clearTimeout(timer);
        f(v);
      };
      this.pending.set(id, { resolve: settle((v) => resolve(v as Awaited<ReturnType<A[K]>>)), reject: settle(reject) });
      this.child.send({ id, method, arg: arg[0] } satisfies Call);
    });
  }

  /** Every note the worker sends; returns the unsubscribe. */
  onNote(listener: (note: Note) => void): () => void {
    this.noteListeners.add(listener);
    return () => this.noteListeners.delete(listener);
  }

  /** Ask it to exit (it disconnects); SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

/** `count` workers of one script. */
export const workers = <A extends Api, Note = never>(count: number, name: string, script: string, args: string[] = []): Worker<A, Note>[] =>
  Array.from({ length: count }, (_, i) => new Worker<A, Note>(`${name} ${i}`, script, args));

/** Stop them all (ignoring the ones gone already). */
export const stopAll = (ws: Array<{ stop(): Promise<void> }>): Promise<unknown> => Promise.all(ws.map((w) => w.stop()));

// ---------------------------------------------------------------------------------------
// The worker's side

/** Serve `api` to the parent until it goes away (then `onExit` and exit). */
export function serve<A extends Api>(what: string, api: A, onExit: () => void = () => {}): void {
  if (!process.send) {
    process.stderr.write(`${what}: must be spawned by its benchmark with an IPC channel\n`);
    process.exit(2);
  }
  process.on("disconnect", () => {
    onExit();
    process.exit(process.exitCode ?? 0);
  });
  process.on("message", (raw: unknown) => {
    const { id, method, arg } = raw as Call;
    const fn = api[method] as ((a: unknown) => Promise<unknown>) | undefined;
    (fn ? fn(arg) : Promise.reject(new Error(`no method ${method}`))).then(
      (result) => reply({ id, result }),
      (err: unknown) => {
        reply({ id, error: errText(err) });
        process.exitCode = 1;
        process.disconnect();
      },
    );
  });
}

function reply(r: Reply): void {
  if (process.connected) process.send!(r);
}

/** A note to the parent, between answers (see Worker.onNote). */
export const notify = (note: unknown): void => reply({ note });

/** Workers only call servers on this machine. */
export function loopbackOnly(address: string): string {
  if (!address.startsWith("127.0.0.1:")) throw new Error(`refusing non-loopback address ${address}`);
  return address;
}

/** A raw grpc-js client of a loopback `address` (load workers send pre-encoded bytes), once connected (bounded). */
export async function rawClient(address: string, options: grpc.ChannelOptions = {}): Promise<grpc.Client> {
  const client = new grpc.Client(loopbackOnly(address), grpc.credentials.createInsecure(), options);
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(new Error(`connecting to ${address}: ${err.message}`)) : resolve())),
  );
  return client;
}

const identity = (b: Buffer): Buffer => b;

/** One unary call of pre-encoded request bytes on a raw client; the answer's bytes. */
export function rawUnary(client: grpc.Client, path: string, request: Buffer, deadlineMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest<Buffer, Buffer>(path, identity, identity, request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) =>
      err ? reject(err) : resolve(res ?? Buffer.alloc(0)),
    ),
  );
}

/** A bidi stream of pre-encoded messages on a raw client. */
export const rawStream = (client: grpc.Client, path: string, options: grpc.CallOptions = {}): grpc.ClientDuplexStream<Buffer, Buffer> =>
  client.makeBidiStreamRequest<Buffer, Buffer>(path, identity, identity, new grpc.Metadata(), options);
