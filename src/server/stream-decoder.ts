/**
 * grpc-js (1.14) splits each call's incoming bytes into messages with a StreamDecoder, which keeps
 * views of the last message's first chunk (`readCompressFlag`, `readPartialMessage`) until the
 * next message starts. On a Heartbeat stream that is a whole renewal interval: at 100,000 streams
 * renewing every 10 s, every renewal left two Buffer views and an array (and the chunk they view)
 * alive for 10 s, past the young generation: a heap profile of the steady fleet put 45 % of what
 * outlived it there, and the old generation's collections that follow make the renewals' tail.
 *
 * `releaseDecodedChunks` lets go of them once a message is complete. It only drops references the
 * decoder reassigns before it reads them again (the start of the next message sets both), so
 * what it decodes does not change. It checks the decoder's shape first and patches nothing when
 * grpc-js has changed it (test/server/stream-decoder.test.ts fails then, so an upgrade is noticed).
 */
import { createRequire } from "node:module";

/** The decoder's fields this relies on (grpc-js build/src/stream-decoder.js). */
interface DecoderState {
  readState: number;
  readCompressFlag: Buffer;
  readPartialMessage: Buffer[];
}

interface DecoderClass {
  new (maxReadMessageLength: number): DecoderState;
  prototype: { write(this: DecoderState, data: Buffer): Buffer[] };
}

/** ReadState.NO_DATA: between two messages. */
const NO_DATA = 0;
const NO_CHUNKS: Buffer[] = Object.freeze([]) as unknown as Buffer[];
const NO_FLAG = Buffer.alloc(1);
const PATCHED = Symbol("nodeplane.releaseDecodedChunks");

function decoderClass(): DecoderClass | undefined {
  try {
    const mod = createRequire(import.meta.url)("@grpc/grpc-js/build/src/stream-decoder.js") as { StreamDecoder?: unknown };
    return typeof mod.StreamDecoder === "function" ? (mod.StreamDecoder as DecoderClass) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a fresh decoder has the fields and state this relies on. */
function shapeKnown(Decoder: DecoderClass): boolean {
  if (typeof Decoder.prototype.write !== "function") return false;
  const d = new Decoder(-1);
  return d.readState === NO_DATA && Array.isArray(d.readPartialMessage) && Buffer.isBuffer(d.readCompressFlag);
}

/** Patch grpc-js's StreamDecoder (once per process); false when its shape is not the one known. */
export function releaseDecodedChunks(): boolean {
  const Decoder = decoderClass();
  if (!Decoder) return false;
  const proto = Decoder.prototype as DecoderClass["prototype"] & { [PATCHED]?: true };
  if (proto[PATCHED]) return true;
  if (!shapeKnown(Decoder)) return false;
  const write = proto.write;
  proto.write = function (this: DecoderState, data: Buffer): Buffer[] {
    const messages = write.call(this, data);
    if (this.readState === NO_DATA) {
      this.readPartialMessage = NO_CHUNKS;
      this.readCompressFlag = NO_FLAG;
    }
    return messages;
  };
  proto[PATCHED] = true;
  return true;
}
