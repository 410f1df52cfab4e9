/**
 * How SqliteStore reaches its Writer (sqlite-writer.ts): in a worker thread (the default), or
 * inline on the store's own thread. Either way requests go out one at a time and each reply
 * comes back on a later event-loop turn of the store's thread.
 *
 * The thread's entry module: compiled JS runs dist/src/store/sqlite-writer-thread.js, built by
 * the same `tsc` run as this file (never older than it). Running the TypeScript sources (vitest)
 * there is no .js beside this file and Node 20 cannot load .ts in a worker, so the entry and the
 * two local modules it imports are transpiled with `typescript` (a devDependency, loaded only
 * then) into node_modules/.cache/nodeplane/, in a folder named by the hash of their sources:
 * an edit makes a new folder, so a stale build is never run; unchanged sources cost one hash.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { failedReply, type FaultInjector, Writer, type WriterConfig, type WriterReply, type WriterRequest } from "./sqlite-writer.js";

export interface WriterHandlers {
  reply(reply: WriterReply): void;
  /** The writer stopped without being asked to (its thread died). Nothing follows. */
  stopped(err: Error): void;
}

export interface WriterLink {
  /** Called once, before the first post. */
  attach(handlers: WriterHandlers): void;
  /** Send a request (not `close`); its reply comes through `handlers.reply`. */
  post(req: WriterRequest): void;
  /** Close the writer's connection and end it; resolves once it is gone. Call with nothing in flight. */
  close(): Promise<void>;
}

/** Why a writer did not start: `refused` when the file failed its check (see Writer.open). */
export class WriterStartError extends Error {
  constructor(
    message: string,
    readonly refused: boolean,
  ) {
    super(message);
  }
}

/**
 * Start a writer: in a worker thread, or inline (only an inline writer takes a fault injector).
 * Rejects with WriterStartError if it cannot open the file, else a plain Error.
 */
export async function startWriter(
  config: WriterConfig,
  thread: boolean,
  onThread?: (worker: Worker) => void,
  fault?: FaultInjector,
): Promise<{ link: WriterLink; ready: WriterReply }> {
  if (!thread) {
    let writer: Writer;
    try {
      writer = Writer.open(config, fault);
    } catch (err) {
      const failed = failedReply(err);
      throw new WriterStartError(failed.type === "failed" ? failed.message : String(err), failed.type === "failed" && failed.refused);
    }
    return { link: new InlineLink(writer), ready: writer.ready() };
  }
  const worker = new Worker(await writerThreadEntry(), { workerData: config });
  const ready = await new Promise<WriterReply>((resolve, reject) => {
    const exit = (code: number): void => reject(new Error(`the writer thread exited with code ${code} before it was ready`));
    worker.once("message", (reply: WriterReply) => {
      worker.off("error", reject).off("exit", exit);
      resolve(reply);
    });
    worker.once("error", reject).once("exit", exit);
  });
  if (ready.type === "failed") {
    await worker.terminate();
    throw new WriterStartError(ready.message, ready.refused);
  }
  onThread?.(worker);
  return { link: new ThreadLink(worker), ready };
}

class ThreadLink implements WriterLink {
  private handlers: WriterHandlers | undefined;
  private closing = false;
  private inFlight = 0;
  private lastError: Error | undefined;
  private readonly exited: Promise<void>;

  constructor(private readonly worker: Worker) {
    worker.on("message", (reply: WriterReply) => {
      // The thread keeps the process alive only while a request is out, or while it closes.
      if (--this.inFlight === 0 && !this.closing) worker.unref();
      if (reply.type !== "closed") this.handlers!.reply(reply);
    });
    worker.on("error", (err) => (this.lastError = err));
    this.exited = new Promise((resolve) => {
      worker.once("exit", (code) => {
        resolve();
        if (!this.closing) this.handlers?.stopped(this.lastError ?? new Error(`the writer thread exited with code ${code}`));
      });
    });
    worker.unref();
  }

  attach(handlers: WriterHandlers): void {
    this.handlers = handlers;
  }

  post(req: WriterRequest): void {
    if (this.inFlight++ === 0) this.worker.ref();
    this.worker.postMessage(req);
  }

  async close(): Promise<void> {
    if (this.closing) return this.exited;
    this.closing = true;
    if (this.worker.threadId >= 0) this.post({ type: "close" });
    return this.exited;
  }
}

class InlineLink implements WriterLink {
  private handlers: WriterHandlers | undefined;

  constructor(private readonly writer: Writer) {}

  attach(handlers: WriterHandlers): void {
    this.handlers = handlers;
  }

  post(req: WriterRequest): void {
    setImmediate(() => this.handlers!.reply(this.writer.handle(req)));
  }

  async close(): Promise<void> {
    this.writer.handle({ type: "close" });
  }
}

/** The writer thread's entry module and the local modules it imports (see the header). */
const THREAD_SOURCES = ["sqlite-writer-thread", "sqlite-writer", "sqlite-sql", "sqlite-migrate"];

let fromSources: Promise<URL> | undefined;

function writerThreadEntry(): Promise<URL> {
  if (!import.meta.url.endsWith(".ts")) return Promise.resolve(new URL("./sqlite-writer-thread.js", import.meta.url));
  fromSources ??= transpileThreadSources();
  return fromSources;
}

async function transpileThreadSources(): Promise<URL> {
  const sources = THREAD_SOURCES.map((name) => ({ name, text: fs.readFileSync(new URL(`./${name}.ts`, import.meta.url), "utf8") }));
  const hash = createHash("sha256");
  for (const s of sources) hash.update(s.name).update("\0").update(s.text).update("\0");
  const dir = new URL(`../../node_modules/.cache/nodeplane/store-writer-${hash.digest("hex").slice(0, 16)}/`, import.meta.url);
  const entry = new URL(`${THREAD_SOURCES[0]}.js`, dir);
  if (fs.existsSync(entry)) return entry;
  const { default: ts } = await import("typescript");
  fs.mkdirSync(dir, { recursive: true });
  // Each file appears whole (rename), the entry last: a concurrent process sees all or nothing.
  const write = (name: string, text: string): void => {
    const file = fileURLToPath(new URL(name, dir));
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  };
  write("package.json", '{ "type": "module" }\n');
  for (const s of [...sources].reverse()) {
    const out = ts.transpileModule(s.text, {
      fileName: `${s.name}.ts`,
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    write(`${s.name}.js`, out.outputText);
  }
  return entry;
}
