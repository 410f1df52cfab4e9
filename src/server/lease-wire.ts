/**
 * The wire of the renewal answers (RenewLeaseResponse, HeartbeatResponse): the server's
 * serializers for them (nodeServiceDefinition in watch-wire.ts) instead of the generated ones.
 * A renewal changes only the Lease's spec, and a checkpoint's write only its resource_version:
 * the metadata copies of one Lease's versions (withRevision) share its labels, annotations,
 * owner references and creation time. So the metadata — most of the bytes — is encoded once per
 * Lease, as the bytes before resource_version and the bytes after it (a WeakMap keyed by the
 * owner references array, checked against every other field on each use), and per answer only
 * resource_version and the spec are written.
 *
 * The bytes are exactly what the generated codecs write for the same message (field order,
 * presence): test/server/lease-wire.test.ts compares them.
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Duration } from "../gen/google/protobuf/duration.js";
import { type Lease, LeaseSpec } from "../gen/nodeplane/v1/lease.js";
import { ObjectMeta, type OwnerReference } from "../gen/nodeplane/v1/meta.js";
import type { HeartbeatResponse, RenewLeaseResponse } from "../gen/nodeplane/v1/service.js";

/** A Lease's metadata as encoded: the fields before resource_version, and those after it. */
interface MetaParts {
  /** The metadata these parts were encoded from (every field but resource_version must match). */
  from: ObjectMeta;
  head: Uint8Array;
  tail: Uint8Array;
}
const metaParts = new WeakMap<OwnerReference[], MetaParts>();
/** Encoded Durations by nanoseconds (a handful of distinct renewal intervals). */
const durations = new Map<number, Uint8Array>();

/** One writer for the small encodes (as in src/model/codec.ts); finish() copies out and resets it. */
let writer = new BinaryWriter();

function encoded(encode: (w: BinaryWriter) => BinaryWriter): Uint8Array {
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

/** The metadata to write: its cached parts, resource_version between them, and its encoded length. */
interface Meta {
  parts: MetaParts;
  rv: string;
  len: number;
}

function metadataOf(meta: ObjectMeta): Meta {
  const parts = partsOf(meta);
  const rv = meta.resourceVersion;
  return { parts, rv, len: parts.head.length + (rv === "" ? 0 : fieldSize(Buffer.byteLength(rv))) + parts.tail.length };
}

function durationBytes(d: Duration): Uint8Array {
  const ns = Number(d.seconds) * 1e9 + d.nanos;
  let bytes = durations.get(ns);
  if (!bytes) {
    bytes = encoded((w) => Duration.encode(d, w));
    if (durations.size < 1024 && Number.isSafeInteger(ns)) durations.set(ns, bytes);
  }
  return bytes;
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
const fieldSize = (len: number): number => 1 + varintSize(len) + len;

class Out {
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

/** A Lease's parts: its metadata and spec bytes, and its encoded length. */
function leaseParts(lease: Lease): { meta: Meta | undefined; spec: Uint8Array | undefined; len: number } {
  const meta = lease.metadata && metadataOf(lease.metadata);
  const spec = lease.spec && encoded((w) => LeaseSpec.encode(lease.spec!, w));
  return { meta, spec, len: (meta ? fieldSize(meta.len) : 0) + (spec ? fieldSize(spec.length) : 0) };
}

/** Field 1 of both answers: the Lease. */
function writeLease(out: Out, p: ReturnType<typeof leaseParts>): void {
  out.field(0x0a, p.len);
  if (p.meta) {
    out.field(0x0a, p.meta.len).bytes(p.meta.parts.head);
    if (p.meta.rv !== "") out.field(0x22, Buffer.byteLength(p.meta.rv)).text(p.meta.rv);
    out.bytes(p.meta.parts.tail);
  }
  if (p.spec) out.field(0x12, p.spec.length).bytes(p.spec);
}

export function renewLeaseResponseBytes(res: RenewLeaseResponse): Buffer {
  const p = res.lease && leaseParts(res.lease);
  const out = new Out(Buffer.allocUnsafe(p ? fieldSize(p.len) : 0));
  if (p) writeLease(out, p);
  return out.buf;
}

export function heartbeatResponseBytes(res: HeartbeatResponse): Buffer {
  const p = res.lease && leaseParts(res.lease);
  const d = res.nextRenewInterval && durationBytes(res.nextRenewInterval);
  const out = new Out(Buffer.allocUnsafe((p ? fieldSize(p.len) : 0) + (d ? fieldSize(d.length) : 0)));
  if (p) writeLease(out, p);
  if (d) out.field(0x12, d.length).bytes(d);
  return out.buf;
}
