/**
 * The renewal answers' serializers (src/server/lease-wire.ts), and a checkpoint's encoding of a
 * Lease (src/model/lease-bytes.ts), write exactly the bytes of the
 * generated codecs, for the same message, whether the Lease's metadata was encoded before (a
 * renewal sharing its stored Lease's metadata, a written version sharing all but its
 * resource_version) or not, and when a cached encoding no longer matches.
 */
import { describe, expect, it } from "vitest";
import { Lease } from "../../src/gen/nodeplane/v1/lease.js";
import { HeartbeatResponse, RenewLeaseResponse } from "../../src/gen/nodeplane/v1/service.js";
import { encodeLease } from "../../src/model/codec.js";
import { storedLeaseBytes } from "../../src/model/lease-bytes.js";
import { heartbeatResponseBytes, renewLeaseResponseBytes } from "../../src/server/lease-wire.js";

const stored = Lease.fromPartial({
  metadata: {
    name: "n-1",
    namespace: "kube-node-lease",
    uid: "0b0f6a43-8a4f-4c1b-9d7e-2c3a1e5f6d70",
    resourceVersion: "12345",
    creationTimestamp: new Date(Date.UTC(2026, 11, 6, 3, 0, 0, 123)),
    ownerReferences: [{ apiVersion: "nodeplane.io/v1", kind: "Node", name: "n-1", uid: "5c9d7f4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", controller: false }],
  },
  spec: { holderIdentity: "n-1", leaseDurationSeconds: 40, acquireTime: new Date(Date.UTC(2026, 11, 6, 3, 0, 0, 123)), renewTime: new Date(Date.UTC(2026, 11, 6, 3, 0, 10, 456)), leaseTransitions: 2 },
});
/** A renewal: the same metadata object, another spec. */
const renewal = (ms: number): Lease => ({ ...stored, spec: { ...stored.spec!, renewTime: new Date(ms) } });

const cases: [string, Lease | undefined][] = [
  ["a stored Lease", stored],
  ["a renewal sharing its metadata", renewal(Date.UTC(2026, 11, 6, 3, 0, 20, 789))],
  ["another renewal of it", renewal(Date.UTC(2027, 0, 1))],
  ["its next written version (a new metadata object, another resource_version)", { ...stored, metadata: { ...stored.metadata!, resourceVersion: "1234567" } }],
  ["a version without resource_version", { ...stored, metadata: { ...stored.metadata!, resourceVersion: "" } }],
  ["a Lease sharing its owner references but not its labels", { ...stored, metadata: { ...stored.metadata!, labels: { zone: "a" } } }],
  ["then the stored Lease again", stored],
  ["a Lease without spec", { metadata: stored.metadata }],
  ["a renewal at the epoch (an empty Timestamp)", renewal(0)],
  ["a renewal on a whole second (no nanos)", renewal(Date.UTC(2026, 11, 6, 3, 0, 20))],
  ["a renewal within the first second (no seconds)", renewal(999)],
  ["a renewal at a Date's last millisecond (seconds past 32 bits)", renewal(8.64e15)],
  ["a renewal before the epoch (the generated encoder's path)", renewal(-1_500)],
  ["a spec of defaults", { ...stored, spec: { holderIdentity: "", leaseDurationSeconds: 0, acquireTime: undefined, renewTime: undefined, leaseTransitions: 0 } }],
  ["a holder outside ASCII, the largest int32s", { ...stored, spec: { holderIdentity: "nœud-é-🚀", leaseDurationSeconds: 0x7fffffff, acquireTime: undefined, renewTime: new Date(1), leaseTransitions: 0x7fffffff } }],
  ["a holder with lone surrogates (both write U+FFFD)", { ...stored, spec: { ...stored.spec!, holderIdentity: "a\ud800b\udc00" } }],
  ["an acquire time before the epoch, a plain renew time (the generated encoder's path)", { ...stored, spec: { ...stored.spec!, acquireTime: new Date(-1) } }],
  ["a negative duration and transitions (the generated encoder's path)", { ...stored, spec: { ...stored.spec!, leaseDurationSeconds: -5, leaseTransitions: -1 } }],
  ["an empty Lease", Lease.fromPartial({})],
  ["no Lease", undefined],
];

describe("renewal answers on the wire", () => {
  it.each(cases)("RenewLeaseResponse: %s", (_, lease) => {
    expect(renewLeaseResponseBytes({ lease })).toEqual(Buffer.from(RenewLeaseResponse.encode({ lease }).finish()));
  });

  it.each(cases)("HeartbeatResponse: %s", (_, lease) => {
    for (const nextRenewInterval of [{ seconds: 10n, nanos: 0 }, { seconds: 1n, nanos: 500_000_000 }, { seconds: 0n, nanos: 0 }, undefined]) {
      const res = { lease, nextRenewInterval };
      expect(heartbeatResponseBytes(res)).toEqual(Buffer.from(HeartbeatResponse.encode(res).finish()));
    }
  });

  it.each(cases.filter((c): c is [string, Lease] => c[1] !== undefined))("the stored bytes of a checkpoint's write: %s", (_, lease) => {
    expect(Buffer.from(storedLeaseBytes(lease))).toEqual(Buffer.from(encodeLease(lease)));
  });

  it("a renewal at an invalid Date is refused, as the generated encoder refuses it", () => {
    const lease = renewal(Number.NaN);
    expect(() => RenewLeaseResponse.encode({ lease })).toThrow(RangeError);
    expect(() => renewLeaseResponseBytes({ lease })).toThrow(RangeError);
    expect(() => storedLeaseBytes(lease)).toThrow(RangeError);
  });

  it("a large Lease (lengths past one varint byte)", () => {
    const big: Lease = { ...stored, metadata: { ...stored.metadata!, annotations: { note: "x".repeat(20_000) } } };
    expect(renewLeaseResponseBytes({ lease: big })).toEqual(Buffer.from(RenewLeaseResponse.encode({ lease: big }).finish()));
    const res = { lease: big, nextRenewInterval: { seconds: 10n, nanos: 0 } };
    expect(heartbeatResponseBytes(res)).toEqual(Buffer.from(HeartbeatResponse.encode(res).finish()));
  });
});
