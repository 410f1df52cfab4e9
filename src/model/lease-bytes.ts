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
interface MetaParts {
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
function partsOf(meta: ObjectMeta): MetaParts {
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

/** A Lease ready to write: its metadata (cached parts, resource_version between them) and spec bytes, and its encoded length. */
export interface LeaseParts {
  meta: { parts: MetaParts; rv: string; len: number } | undefined;
  spec: Uint8Array | undefined;
  len: number;
}

/** The Lease's parts, with resource_version `rv` (default: its own; "" as stored). */
export function leaseParts(lease: Lease, rv = lease.metadata?.resourceVersion ?? ""): LeaseParts {
  const parts = lease.metadata && partsOf(lease.metadata);
  const meta = parts && { parts, rv, len: parts.head.length + (rv === "" ? 0 : fieldSize(Buffer.byteLength(rv))) + parts.tail.length };
  const spec = lease.spec && encoded((w) => LeaseSpec.encode(lease.spec!, w));
  return { meta, spec, len: (meta ? fieldSize(meta.len) : 0) + (spec ? fieldSize(spec.length) : 0) };
}

/** The Lease's fields (metadata, spec): `p.len` bytes. */
export function writeLeaseFields(out: Out, p: LeaseParts): Out {
  if (p.meta) {
    out.field(0x0a, p.meta.len).bytes(p.meta.parts.head);
    if (p.meta.rv !== "") out.field(0x22, Buffer.byteLength(p.meta.rv)).text(p.meta.rv);
    out.bytes(p.meta.parts.tail);
  }
  if (p.spec) out.field(0x12, p.spec.length).bytes(p.spec);
  return out;
}

/** The Lease as stored (encodeLease's bytes: resource_version left out). */
export function storedLeaseBytes(lease: Lease): Uint8Array {
  const p = leaseParts(lease, "");
  return writeLeaseFields(new Out(Buffer.allocUnsafe(p.len)), p).buf;
}
