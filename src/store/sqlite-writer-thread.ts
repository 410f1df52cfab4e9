/**
 * Entry of SqliteStore's writer thread (worker_threads; see sqlite-writer-link.ts): opens the
 * Writer on the file named in workerData, says `ready` (or `failed`), then answers each request
 * in order with one reply. After answering `close` it closes its port and the thread ends.
 *
 * When running the TypeScript sources (vitest), this file and the local modules it imports are
 * transpiled by sqlite-writer-link.ts: import only sqlite-writer.ts, sqlite-sql.ts and packages.
 */
import { parentPort, workerData } from "node:worker_threads";
import { failedReply, Writer, type WriterConfig, type WriterRequest } from "./sqlite-writer.js";

function serve(): void {
  const port = parentPort;
  if (!port) throw new Error("sqlite-writer-thread.js runs only as a worker thread");
  let writer: Writer;
  try {
    writer = Writer.open(workerData as WriterConfig);
  } catch (err) {
    port.postMessage(failedReply(err));
    port.close();
    return;
  }
  port.postMessage(writer.ready());
  port.on("message", (req: WriterRequest) => {
    port.postMessage(writer.handle(req));
    if (req.type === "close") port.close();
  });
}

serve();
