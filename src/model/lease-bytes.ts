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
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
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

/** A varint's size for a non-negative integer up to 2^53. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
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
    return this.varint(len);
  }
  /** A varint field: its tag, then `n`. */
  int(tag: number, n: number): this {
    this.buf[this.at++] = tag;
    return this.varint(n);
  }
  /** A non-negative integer up to 2^53. */
  varint(n: number): this {
    while (n >= 0x80) {
      this.buf[this.at++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
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

/** A Lease ready to write: its metadata (cached parts, resource_version between them) and spec, and its encoded length. */
export interface LeaseParts {
  meta: { parts: MetaParts; rv: string; len: number } | undefined;
  /** The spec, written field by field (plainSpecSize), or the generated encoder's bytes of it. */
  spec: LeaseSpec | Uint8Array | undefined;
  specLen: number;
  len: number;
}

/** The Lease's parts, with resource_version `rv` (default: its own; "" as stored). */
export function leaseParts(lease: Lease, rv = lease.metadata?.resourceVersion ?? ""): LeaseParts {
  const parts = lease.metadata && partsOf(lease.metadata);
  const meta = parts && { parts, rv, len: parts.head.length + (rv === "" ? 0 : fieldSize(Buffer.byteLength(rv))) + parts.tail.length };
  const plain = lease.spec ? plainSpecSize(lease.spec) : -1;
  const spec = !lease.spec || plain >= 0 ? lease.spec : encoded((w) => LeaseSpec.encode(lease.spec!, w));
  const specLen = spec instanceof Uint8Array ? spec.length : plain;
  return { meta, spec, specLen, len: (meta ? fieldSize(meta.len) : 0) + (spec ? fieldSize(specLen) : 0) };
}

/** The Lease's fields (metadata, spec): `p.len` bytes. */
export function writeLeaseFields(out: Out, p: LeaseParts): Out {
  if (p.meta) {
    out.field(0x0a, p.meta.len).bytes(p.meta.parts.head);
    if (p.meta.rv !== "") out.field(0x22, Buffer.byteLength(p.meta.rv)).text(p.meta.rv);
    out.bytes(p.meta.parts.tail);
  }
  if (p.spec) {
    out.field(0x12, p.specLen);
    if (p.spec instanceof Uint8Array) out.bytes(p.spec);
    else writePlainSpec(out, p.spec);
  }
  return out;
}

/*
 * A renewal's answer and a checkpoint's write each encode a spec, and the generated encoder
 * allocates a writer's chunks, a Timestamp and a BigInt per time, and a copy of the bytes: with
 * 10,000 renewals a second, a tenth of what the server allocated. A spec whose numbers are all
 * plain (non-negative int32s, times at or after the epoch) is written here, straight into the
 * answer, byte for byte as LeaseSpec.encode writes it (test/server/lease-wire.test.ts); any
 * other goes through the generated encoder (which also refuses what it cannot encode).
 */

const plainInt = (n: number): boolean => Number.isInteger(n) && n > 0 && n <= 0x7fffffff;

/** A Timestamp's size for a Date at `ms` (toTimestamp: seconds, then the remaining ms as nanos); -1 before the epoch or invalid. */
function timestampSize(ms: number): number {
  if (!(ms >= 0)) return -1;
  const seconds = Math.trunc(ms / 1_000);
  const nanos = (ms % 1_000) * 1_000_000;
  return (seconds !== 0 ? 1 + varintSize(seconds) : 0) + (nanos !== 0 ? 1 + varintSize(nanos) : 0);
}

function writeTimestamp(out: Out, tag: number, ms: number): void {
  out.field(tag, timestampSize(ms));
  const seconds = Math.trunc(ms / 1_000);
  const nanos = (ms % 1_000) * 1_000_000;
  if (seconds !== 0) out.int(0x08, seconds);
  if (nanos !== 0) out.int(0x10, nanos);
}

/** The spec's encoded size when it is plain; else -1. */
function plainSpecSize(s: LeaseSpec): number {
  let len = 0;
  if (s.holderIdentity !== "") len += fieldSize(Buffer.byteLength(s.holderIdentity));
  if (s.leaseDurationSeconds !== 0) {
    if (!plainInt(s.leaseDurationSeconds)) return -1;
    len += 1 + varintSize(s.leaseDurationSeconds);
  }
  const acquire = s.acquireTime === undefined ? 0 : timestampSize(s.acquireTime.getTime());
  const renew = s.renewTime === undefined ? 0 : timestampSize(s.renewTime.getTime());
  if (acquire < 0 || renew < 0) return -1;
  if (s.acquireTime !== undefined) len += fieldSize(acquire);
  if (s.renewTime !== undefined) len += fieldSize(renew);
  if (s.leaseTransitions !== 0) {
    if (!plainInt(s.leaseTransitions)) return -1;
    len += 1 + varintSize(s.leaseTransitions);
  }
  return len;
}

/** LeaseSpec.encode's fields, in its order, for a plain spec. */
function writePlainSpec(out: Out, s: LeaseSpec): void {
  if (s.holderIdentity !== "") out.field(0x0a, Buffer.byteLength(s.holderIdentity)).text(s.holderIdentity);
  if (s.leaseDurationSeconds !== 0) out.int(0x10, s.leaseDurationSeconds);
  if (s.acquireTime !== undefined) writeTimestamp(out, 0x1a, s.acquireTime.getTime());
  if (s.renewTime !== undefined) writeTimestamp(out, 0x22, s.renewTime.getTime());
  if (s.leaseTransitions !== 0) out.int(0x28, s.leaseTransitions);
}

/** The Lease as stored (encodeLease's bytes: resource_version left out). */
export function storedLeaseBytes(lease: Lease): Uint8Array {
  const p = leaseParts(lease, "");
  return writeLeaseFields(new Out(Buffer.allocUnsafe(p.len)), p).buf;
}

/**
 * The renew time (ms since the epoch; -1 when the Lease has none) of a Lease's bytes, as
 * `decodeLease(kv).spec?.renewTime?.getTime() ?? -1` reads it from any well-formed Lease (a
 * later field replaces an earlier one; a tag 0 or an end-group ends a message; a field of the
 * wrong wire type is skipped), without decoding the rest. The Lease informer reads only this: at
 * 100,000 nodes it takes every checkpoint's Leases, and a whole decode of each (metadata
 * strings, owner references, Dates) was a fifth of what the server allocated, all of it garbage
 * at once. The other fields are skipped by their length, not decoded: in malformed bytes (a
 * metadata field whose content is broken, a tag 0 inside the metadata or acquire_time) the two
 * can differ, one failing where the other does not. Stored Leases are written by this server's
 * encoders, and a Lease the informer cannot read fails its list or watch either way.
 */
export function leaseRenewMs(bytes: Uint8Array): number {
  const r = new BinaryReader(bytes);
  // Lease.spec (field 2), and in it renew_time (field 4).
  const renew = lastOf(r, r.len, 18, specRenewTime);
  if (!renew) return -1;
  // fromTimestamp's Date, then getTime() (NaN out of a Date's range, as the Date gives).
  return new Date((Number(renew.seconds.toString()) || 0) * 1_000 + (renew.nanos || 0) / 1_000_000).getTime();
}

/** r.skip(wireType), without the copy of a length-delimited field's bytes it returns (the metadata, for every Lease). */
function skip(r: BinaryReader, wireType: number): void {
  if (wireType !== 2) {
    r.skip(wireType);
    return;
  }
  const len = r.uint32();
  r.pos += len;
  if (r.pos > r.len) throw new RangeError("premature EOF");
}

/**
 * A generated decoder's loop over one message's fields up to `end`, keeping the field tagged
 * `tag` alone: `read` decodes each copy of it (given its length), the last one wins; a tag 0 or
 * an end-group ends the message; every other field is skipped.
 */
function lastOf<T>(r: BinaryReader, end: number, tag: number, read: (r: BinaryReader, length: number) => T): T | undefined {
  let last: T | undefined;
  while (r.pos < end) {
    const t = r.uint32();
    if (t === tag) {
      last = read(r, r.uint32());
      continue;
    }
    if ((t & 7) === 4 || t === 0) break;
    skip(r, t & 7);
  }
  return last;
}

/** A LeaseSpec's renew_time (field 4). */
function specRenewTime(r: BinaryReader, length: number): { seconds: bigint; nanos: number } | undefined {
  return lastOf(r, r.pos + length, 34, timestamp);
}

/** Timestamp.decode's loop. */
function timestamp(r: BinaryReader, length: number): { seconds: bigint; nanos: number } {
  const end = r.pos + length;
  const t = { seconds: 0n, nanos: 0 };
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 8) {
      t.seconds = BigInt(r.int64());
      continue;
    }
    if (tag === 16) {
      t.nanos = r.int32();
      continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    skip(r, tag & 7);
  }
  return t;
}
