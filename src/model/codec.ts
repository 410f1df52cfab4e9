/**
 * Objects are stored as protobuf bytes. resource_version is not stored: it is the store's
 * revision of the key's last change, set on every read (and on the object a write answers).
 */
import { type BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { Lease } from "../gen/nodeplane/v1/lease.js";
import { ObjectMeta } from "../gen/nodeplane/v1/meta.js";
import { Node } from "../gen/nodeplane/v1/node.js";
import type { KeyValue } from "../store/store.js";
import { formatRevision } from "./revision.js";

interface Stored {
  metadata?: ObjectMeta | undefined;
}
interface Codec<T extends Stored> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
}

/**
 * One writer for every encode, so that its buffer grows once, not on every object (a fresh
 * writer starts at 128 bytes and doubles its way to a node's few KB: half the cost of encoding
 * one). finish() copies the bytes out and resets it. Encoding is synchronous, so encodes never
 * interleave; a writer left mid-message by a throwing encode, or grown by a huge object, is
 * replaced.
 */
let writer = new BinaryWriter();
const KEEP_WRITER_BYTES = 64 * 1024;

function encodeWith<T extends Stored>(codec: Codec<T>, obj: T): Uint8Array {
  const meta = obj.metadata;
  const stored = !meta || meta.resourceVersion === "" ? obj : { ...obj, metadata: { ...meta, resourceVersion: "" } };
  let bytes: Uint8Array;
  try {
    bytes = codec.encode(stored, writer).finish();
  } catch (err) {
    writer = new BinaryWriter();
    throw err;
  }
  if (bytes.length > KEEP_WRITER_BYTES) writer = new BinaryWriter();
  return bytes;
}

function decodeWith<T extends Stored>(codec: Codec<T>, kv: KeyValue): T {
  const obj = codec.decode(kv.value);
  const meta = obj.metadata ?? ObjectMeta.fromPartial({});
  meta.resourceVersion = formatRevision(kv.modRevision);
  obj.metadata = meta;
  return obj;
}

/**
 * `obj` as a read of `kv` would decode it, when `kv` is the result of writing `encode(obj)`:
 * the same object with resource_version set, so a write can answer without decoding what it
 * just encoded. Copies the metadata only; everything else is shared with `obj`.
 */
export function withRevision<T extends Stored>(obj: T, kv: Pick<KeyValue, "modRevision">): T {
  return { ...obj, metadata: { ...(obj.metadata ?? ObjectMeta.fromPartial({})), resourceVersion: formatRevision(kv.modRevision) } };
}

export const encodeNode = (node: Node): Uint8Array => encodeWith(Node, node);
export const decodeNode = (kv: KeyValue): Node => decodeWith(Node, kv);
export const encodeLease = (lease: Lease): Uint8Array => encodeWith(Lease, lease);
export const decodeLease = (kv: KeyValue): Lease => decodeWith(Lease, kv);
