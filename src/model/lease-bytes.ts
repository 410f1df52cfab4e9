/**
 * A Lease's bytes in parts, for the renewal paths that encode one Lease many times over: the
 * answers (src/server/lease-wire.ts) and the checkpoints' writes (src/registry/lease-renewals.ts).
 * A renewal changes only the spec, and a checkpoint's write only resource_version: the metadata
 * copies of one Lease's versions (withRevision) share its labels, annotations, owner references
 * and creation time. So the metadata is encoded once per Lease, as the bytes before
 * resource_version and the bytes after it (a WeakMap keyed by the owner references array,
 * checked against every other field on each use).
 *
 * The bytes are exactly what the generated codecs write for the same message (field order,
 * presence): test/server/lease-wire.test.ts compares them.
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { type Lease, LeaseSpec } from "../gen/nodeplane/v1/lease.js";
import { ObjectMeta, type OwnerReference } from "../gen/nodeplane/v1/meta.js";

/** A Lease's metadata as encoded: the fields before resource_version, and those after it. */
export interface MetaParts {
  /** The metadata these parts were encoded from (every field but resource_version must match). */
  from: ObjectMeta;
  head: Uint8Array;
  tail: Uint8Array;
}
const metaParts = new WeakMap<OwnerReference[], MetaParts>();

/** One writer for the small encodes (as in codec.ts); finish() copies out and resets it. */
let writer = new BinaryWriter();

export function encoded(encode: (w: BinaryWriter) => BinaryWriter): Uint8Array {
  try {
    return encode(writer).finish();
  } catch (err) {
    writer = new BinaryWriter();
    throw err;
  }
}

/** Whether `a` and `b` encode alike but for resource_version (the objects withRevision shares compared by identity). */
function sameButRevision(a: ObjectMeta, b: ObjectMeta): boolean {
  return (
    a.name === b.name &&
    a.namespace === b.namespace &&
    a.uid === b.uid &&
    a.generation === b.generation &&
    a.creationTimestamp === b.creationTimestamp &&
    a.labels === b.labels &&
    a.annotations === b.annotations &&
    a.ownerReferences === b.ownerReferences
  );
}

/** The metadata's bytes around resource_version (ObjectMeta's fields 1–3, and 5 on). */
export function partsOf(meta: ObjectMeta): MetaParts {
  let p = metaParts.get(meta.ownerReferences);
  if (!p || !sameButRevision(p.from, meta)) {
    const head = encoded((w) => ObjectMeta.encode(ObjectMeta.fromPartial({ name: meta.name, namespace: meta.namespace, uid: meta.uid }), w));
    const tail = encoded((w) => ObjectMeta.encode({ ...meta, name: "", namespace: "", uid: "", resourceVersion: "" }, w));
    p = { from: meta, head, tail };
    metaParts.set(meta.ownerReferences, p);
  }
  return p;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n >>>= 7;
    size++;
  }
  return size;
}

/** A length-delimited field's size (tag, length, bytes). */
export const fieldSize = (len: number): number => 1 + varintSize(len) + len;

export class Out {
  private at = 0;
  constructor(readonly buf: Buffer) {}
  field(tag: number, len: number): this {
    this.buf[this.at++] = tag;
    let n = len;
    while (n >= 0x80) {
      this.buf[this.at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.at++] = n;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.at);
    this.at += b.length;
    return this;
  }
  text(s: string): this {
    this.at += this.buf.write(s, this.at, "utf8");
    return this;
  }
}

/**
 * The Lease as stored (encodeLease's bytes: resource_version left out), from its cached metadata
 * parts and its spec.
 */
export function storedLeaseBytes(lease: Lease): Uint8Array {
  const meta = lease.metadata && partsOf(lease.metadata);
  const spec = lease.spec && encoded((w) => LeaseSpec.encode(lease.spec!, w));
  const metaLen = meta ? meta.head.length + meta.tail.length : 0;
  const out = new Out(Buffer.allocUnsafe((meta ? fieldSize(metaLen) : 0) + (spec ? fieldSize(spec.length) : 0)));
  if (meta) out.field(0x0a, metaLen).bytes(meta.head).bytes(meta.tail);
  if (spec) out.field(0x12, spec.length).bytes(spec);
  return out.buf;
}
