/**
 * The wire of the renewal answers (RenewLeaseResponse, HeartbeatResponse): the server's
 * serializers for them (nodeServiceDefinition in watch-wire.ts) instead of the generated ones.
 * A renewal changes only the Lease's spec, and a checkpoint's write only its resource_version:
 * the metadata copies of one Lease's versions (withRevision) share its labels, annotations,
 * owner references and creation time. So the metadata — most of the bytes — is encoded once per
 * Lease, as the bytes before resource_version and the bytes after it (a WeakMap keyed by the
 * owner references array, checked against every other field on each use), and per answer only
 * resource_version and the spec are written (src/model/lease-bytes.ts keeps the parts).
 *
 * The bytes are exactly what the generated codecs write for the same message (field order,
 * presence): test/server/lease-wire.test.ts compares them.
 */
import { Duration } from "../gen/google/protobuf/duration.js";
import type { HeartbeatResponse, RenewLeaseResponse } from "../gen/nodeplane/v1/service.js";
import { encoded, fieldSize, type LeaseParts, leaseParts, Out, writeLeaseFields } from "../model/lease-bytes.js";

/** Encoded Durations by nanoseconds (a handful of distinct renewal intervals). */
const durations = new Map<number, Uint8Array>();

function durationBytes(d: Duration): Uint8Array {
  const ns = Number(d.seconds) * 1e9 + d.nanos;
  let bytes = durations.get(ns);
  if (!bytes) {
    bytes = encoded((w) => Duration.encode(d, w));
    if (durations.size < 1024 && Number.isSafeInteger(ns)) durations.set(ns, bytes);
  }
  return bytes;
}

/** Field 1 of both answers: the Lease. */
function writeLease(out: Out, p: LeaseParts): void {
  writeLeaseFields(out.field(0x0a, p.len), p);
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
