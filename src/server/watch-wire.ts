/**
 * The Watch stream's wire: each watch event is encoded to WatchResponse bytes once, however
 * many watchers it goes to (the watch cache hands every watcher that sees a change the same
 * event object for the same type: see eventFor in src/watch/catchup.ts). grpc-js would
 * otherwise encode the whole Node once per watcher per change.
 *
 * The bytes are kept in a WeakMap keyed by the event, so they live exactly as long as some
 * watcher's queue still holds the event; nothing is added to the nodes the watch cache keeps.
 * An event whose node came with its stored bytes (a watched change: NodeWatchEvent.stored) is
 * not encoded at all: the stored bytes are copied, resource_version put in. Either way the bytes
 * are exactly what the generated codec writes for the same WatchResponse
 * (test/server/watch-wire.test.ts compares them).
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { NodeServiceService, WatchResponse } from "../gen/nodeplane/v1/service.js";
import type { NodeWatchEvent } from "../watch/watcher.js";
import { fieldSize, Out } from "../model/lease-bytes.js";
import { storedFields } from "../model/node-bytes.js";
import { heartbeatResponseBytes, renewLeaseResponseBytes } from "./lease-wire.js";
import { nodeAnswerSerializers } from "./node-wire.js";

const encoded = new WeakMap<NodeWatchEvent, Buffer>();

/**
 * One writer for every event (as for stored objects in src/model/codec.ts): a fresh one
 * starts at 128 bytes and doubles its way to a node's few KB on every encode. finish() copies
 * the bytes out and resets it; one left mid-message by a throwing encode, or grown by a huge
 * node, is replaced.
 */
let writer = new BinaryWriter();
const KEEP_WRITER_BYTES = 64 * 1024;

/** The WatchResponse bytes of `ev`: made on first use, then shared. */
export function watchResponseBytes(ev: NodeWatchEvent): Buffer {
  let bytes = encoded.get(ev);
  if (bytes === undefined) {
    bytes = (ev.stored && fromStored(ev, ev.stored)) ?? encode(ev);
    encoded.set(ev, bytes);
    // The event (kept while a watcher's queue or the window of recent changes holds it) keeps
    // these bytes, not both.
    ev.stored = undefined;
  }
  return bytes;
}

/**
 * An event of a node in hand as stored: its bytes copied, resource_version put in
 * (src/model/node-bytes.ts). In memory of their own, not a slice of Node's shared 8 KiB Buffer
 * pool: the window of recent changes keeps them for seconds, long enough to reach V8's old
 * generation, and a kept slice would keep its whole slab, with the short-lived requests and
 * answers carved from it, until the next full collection (8 KiB of external memory per change,
 * which brought one every ~6 s with 10,000 watchers).
 */
function fromStored(ev: NodeWatchEvent, stored: Uint8Array): Buffer | undefined {
  const rv = String(ev.revision);
  const node = ev.node.metadata?.resourceVersion === rv ? storedFields(stored, rv) : undefined;
  if (!node) return undefined;
  const out = new Out(Buffer.allocUnsafeSlow(fieldSize(Buffer.byteLength(ev.type)) + fieldSize(node.len) + fieldSize(rv.length)));
  out.field(0x0a, Buffer.byteLength(ev.type)).text(ev.type);
  node.write(out.field(0x12, node.len));
  return out.field(0x1a, rv.length).text(rv).buf;
}

function encode(ev: NodeWatchEvent): Buffer {
  let u8: Uint8Array;
  try {
    u8 = WatchResponse.encode({ type: ev.type, node: ev.node, resourceVersion: String(ev.revision) }, writer).finish();
  } catch (err) {
    writer = new BinaryWriter();
    throw err;
  }
  if (u8.length > KEEP_WRITER_BYTES) writer = new BinaryWriter();
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** Watch with a response serializer that passes pre-encoded WatchResponse bytes through (and encodes a WatchResponse object). */
export const encodedWatch: typeof NodeServiceService.watch = {
  ...NodeServiceService.watch,
  responseSerialize: (value: WatchResponse | Buffer): Buffer => (Buffer.isBuffer(value) ? value : NodeServiceService.watch.responseSerialize(value)),
};

/**
 * NodeService's definition as the server adds it: the same methods, with a Watch response
 * serializer that passes pre-encoded bytes through (and encodes a WatchResponse object as
 * before), the renewal answers' serializers of lease-wire.ts and the written nodes' answers of
 * node-wire.ts. Only the server serializes
 * responses; the generated definition clients use is left as it is.
 */
export const nodeServiceDefinition: typeof NodeServiceService = {
  ...NodeServiceService,
  watch: encodedWatch,
  renewLease: { ...NodeServiceService.renewLease, responseSerialize: renewLeaseResponseBytes },
  heartbeat: { ...NodeServiceService.heartbeat, responseSerialize: heartbeatResponseBytes },
  ...nodeAnswerSerializers,
};
