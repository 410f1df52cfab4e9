/**
 * gRPC unary calls of pre-encoded bytes over a bare node:http2 session: what a load generator
 * that must stamp every request (so cannot use h2load's fixed body) sends when it should leave
 * the CPU to the server. The server sees the same requests a grpc-js client sends — the same
 * headers that matter (:path, content-type, te, grpc-timeout), the same length-prefixed message —
 * while the generator skips grpc-js's per-call machinery (call stream, interceptors, metadata
 * objects, a deadline timer per call): on a 2-core machine at 1,000 calls/s that machinery took
 * ~40 % of a core, a fifth of the machine, from the server it measures.
 *
 * Contract of call(): resolves with the answer's message bytes when the trailers say grpc-status
 * 0; rejects with an Error whose `code` is the grpc-status (or 4, DEADLINE_EXCEEDED, when no
 * answer came within the deadline and a second, or 14, UNAVAILABLE, when the stream failed).
 */
import http2 from "node:http2";
import { grpcFrame, grpcUnframe } from "./h2load.js";
import { loopbackOnly } from "./ipc.js";

export class CallError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const DEADLINE_EXCEEDED = 4;
const UNAVAILABLE = 14;

/** The one message of a unary answer's body (empty body: an empty message). */
function unframe(body: Buffer): Buffer {
  let messages: Buffer[];
  try {
    messages = grpcUnframe(body);
  } catch (err) {
    throw new CallError(13, `malformed answer body: ${(err as Error).message}`);
  }
  if (messages.length > 1) throw new CallError(13, `${messages.length} messages in a unary answer`);
  return messages[0] ?? body;
}

export class H2Unary {
  private constructor(private readonly session: http2.ClientHttp2Session) {}

  /** Connect (bounded, 10 s) to a loopback gRPC server at `address` ("127.0.0.1:PORT"). */
  static connect(address: string): Promise<H2Unary> {
    const session = http2.connect(`http://${loopbackOnly(address)}`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        session.destroy();
        reject(new Error(`connecting to ${address}: no HTTP/2 session within 10 s`));
      }, 10_000);
      session.once("connect", () => {
        clearTimeout(timer);
        session.removeAllListeners("error");
        // Failures after the connect reach the calls (each stream fails); the session's own event is not fatal here.
        session.on("error", () => undefined);
        resolve(new H2Unary(session));
      });
      session.once("error", (err) => {
        clearTimeout(timer);
        reject(new Error(`connecting to ${address}: ${err.message}`));
      });
    });
  }

  call(path: string, message: Uint8Array, deadlineMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: CallError | undefined, body?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(body!);
      };
      const stream = this.session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": `${Math.max(1, Math.ceil(deadlineMs))}m`,
      });
      // The server ends the call at its deadline; this bounds a server that never answers.
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        settle(new CallError(DEADLINE_EXCEEDED, `no answer within ${deadlineMs} ms + 1 s`));
      }, deadlineMs + 1000);
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let statusMessage = "";
      const readStatus = (h: http2.IncomingHttpHeaders): void => {
        const s = h["grpc-status"];
        if (s !== undefined) {
          status = String(s);
          statusMessage = decodeURIComponent(String(h["grpc-message"] ?? ""));
        }
      };
      stream.on("response", readStatus); // a trailers-only answer carries its status here
      stream.on("trailers", readStatus);
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("error", (err) => settle(new CallError(UNAVAILABLE, `stream failed: ${err.message}`)));
      stream.on("close", () => {
        if (status === undefined) return settle(new CallError(UNAVAILABLE, `stream closed (HTTP/2 code ${stream.rstCode}) without a grpc-status`));
        if (status !== "0") return settle(new CallError(Number(status), statusMessage));
        try {
          settle(undefined, unframe(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
        } catch (err) {
          settle(err as CallError);
        }
      });
      stream.end(grpcFrame(message));
    });
  }

  close(): void {
    this.session.close();
  }
}
