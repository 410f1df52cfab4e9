/**
 * Objects are stored as protobuf bytes. resource_version is not stored: it is the store's
 * revision of the key's last change, set on every read (and on the object a write answers).
 */
import type { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { Lease } from "../gen/nodeplane/v1/lease.js";
import { ObjectMeta } from "../gen/nodeplane/v1/meta.js";
import { Node } from "../gen/nodeplane/v1/node.js";
import type { KeyValue } from "../store/store.js";

export const NODE_PREFIX = "/registry/nodes/";
export const LEASE_NAMESPACE = "kube-node-lease";
export const LEASE_PREFIX = `/registry/leases/${LEASE_NAMESPACE}/`;

export const nodeKey = (name: string): string => NODE_PREFIX + name;
export const leaseKey = (name: string): string => LEASE_PREFIX + name;

/** A revision as clients see it. */
export const formatRevision = (rev: number): string => String(rev);

interface Stored {
  metadata?: ObjectMeta | undefined;
}
interface Codec<T extends Stored> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
}

function encodeWith<T extends Stored>(codec: Codec<T>, obj: T): Uint8Array {
  const meta = obj.metadata;
  if (!meta || meta.resourceVersion === "") return codec.encode(obj).finish();
  return codec.encode({ ...obj, metadata: { ...meta, resourceVersion: "" } }).finish();
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
export function withRevision<T extends Stored>(obj: T, kv: KeyValue): T {
  return { ...obj, metadata: { ...(obj.metadata ?? ObjectMeta.fromPartial({})), resourceVersion: formatRevision(kv.modRevision) } };
}

export const encodeNode = (node: Node): Uint8Array => encodeWith(Node, node);
export const decodeNode = (kv: KeyValue): Node => decodeWith(Node, kv);
export const encodeLease = (lease: Lease): Uint8Array => encodeWith(Lease, lease);
export const decodeLease = (kv: KeyValue): Lease => decodeWith(Lease, kv);
