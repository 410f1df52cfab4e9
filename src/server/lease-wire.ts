/**
 * The wire of the renewal answers (RenewLeaseResponse, HeartbeatResponse): the server's
 * serializers for them (nodeServiceDefinition in watch-wire.ts) instead of the generated ones. A renewal changes only the Lease's spec, and its Lease
 * shares the metadata object of the stored Lease it renews (src/registry/lease-renewals.ts), so
 * the metadata — most of the bytes — is encoded once per stored version (a WeakMap keyed by the
 * metadata object: the bytes live as long as that Lease does) and only the spec per answer.
 *
 * The bytes are exactly what the generated codecs write for the same message (field order,
 * presence): test/server/lease-wire.test.ts compares them.
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Duration } from "../gen/google/protobuf/duration.js";
import { type Lease, LeaseSpec } from "../gen/nodeplane/v1/lease.js";
import { ObjectMeta } from "../gen/nodeplane/v1/meta.js";
import type { HeartbeatResponse, RenewLeaseResponse } from "../gen/nodeplane/v1/service.js";

const metaBytes = new WeakMap<ObjectMeta, Uint8Array>();
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

function metadataBytes(meta: ObjectMeta): Uint8Array {
  let bytes = metaBytes.get(meta);
  if (!bytes) {
    bytes = encoded((w) => ObjectMeta.encode(meta, w));
    metaBytes.set(meta, bytes);
  }
  return bytes;
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
}

/** A Lease's parts: its metadata and spec bytes, and its encoded length. */
function leaseParts(lease: Lease): { meta: Uint8Array | undefined; spec: Uint8Array | undefined; len: number } {
  const meta = lease.metadata && metadataBytes(lease.metadata);
  const spec = lease.spec && encoded((w) => LeaseSpec.encode(lease.spec!, w));
  return { meta, spec, len: (meta ? fieldSize(meta.length) : 0) + (spec ? fieldSize(spec.length) : 0) };
}

/** Field 1 of both answers: the Lease. */
function writeLease(out: Out, p: ReturnType<typeof leaseParts>): void {
  out.field(0x0a, p.len);
  if (p.meta) out.field(0x0a, p.meta.length).bytes(p.meta);
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
