/**
 * The Lease informer reads a Lease's renew time off its bytes (leaseRenewMs) instead of decoding
 * it: for every well-formed Lease, and for well-formed bytes the generated decoder reads in its
 * own ways (a field given twice, a spec whose last copy has no renew time, fields of the wrong
 * wire type, unknown fields, a tag 0, times outside a Date's range), the scan gives what the
 * decode gives. (Inside fields it skips, it checks only their length: see its comment.)
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import { Lease } from "../../src/gen/nodeplane/v1/lease.js";
import { decodeLease } from "../../src/model/codec.js";
import { leaseRenewMs } from "../../src/model/lease-bytes.js";

const decoded = (bytes: Uint8Array): number => decodeLease({ key: "k", value: bytes, modRevision: 1, createRevision: 1 }).spec?.renewTime?.getTime() ?? -1;

const stored = Lease.fromPartial({
  metadata: {
    name: "n-1",
    namespace: "kube-node-lease",
    uid: "0b0f6a43-8a4f-4c1b-9d7e-2c3a1e5f6d70",
    labels: { zone: "a" },
    ownerReferences: [{ apiVersion: "nodeplane.io/v1", kind: "Node", name: "n-1", uid: "5c9d", controller: false }],
  },
  spec: { holderIdentity: "n-1", leaseDurationSeconds: 40, acquireTime: new Date(1_700_000_000_123), renewTime: new Date(1_765_000_000_456), leaseTransitions: 2 },
});

const enc = (l: Lease): Uint8Array => Lease.encode(l).finish();
/** Raw bytes: a callback writes fields on a writer. */
const raw = (f: (w: BinaryWriter) => void): Uint8Array => {
  const w = new BinaryWriter();
  f(w);
  return w.finish();
};
/** A Timestamp's bytes. */
const ts = (seconds: bigint, nanos: number): Uint8Array => raw((w) => w.uint32(8).int64(seconds).uint32(16).int32(nanos));

const cases: [string, Uint8Array][] = [
  ["a stored Lease", enc(stored)],
  ["a Lease without spec", enc({ metadata: stored.metadata })],
  ["a spec without renew time", enc({ ...stored, spec: { ...stored.spec!, renewTime: undefined } })],
  ["a renew time at the epoch", enc({ ...stored, spec: { ...stored.spec!, renewTime: new Date(0) } })],
  ["a renew time before the epoch", enc({ ...stored, spec: { ...stored.spec!, renewTime: new Date(-86_400_123) } })],
  ["an empty Lease", enc(Lease.fromPartial({}))],
  ["no bytes", new Uint8Array()],
  ["sub-millisecond nanos", raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(34).bytes(ts(1_765_000_000n, 999_999)))))],
  ["nanos alone", raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(34).bytes(raw((t) => t.uint32(16).int32(5_000_000))))))],
  ["an empty renew time", raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(34).bytes(new Uint8Array()))))],
  ["seconds beyond a Date's range", raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(34).bytes(ts(9_000_000_000_000n, 0)))))],
  ["the largest int64 seconds", raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(34).bytes(ts(9_223_372_036_854_775_807n, 0)))))],
  ["the smallest int64 seconds", raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(34).bytes(ts(-9_223_372_036_854_775_808n, 0)))))],
  ["a renew time given twice (the later one wins whole)", raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(34).bytes(ts(100n, 7_000_000)).uint32(34).bytes(raw((t) => t.uint32(8).int64(200n))))))],
  ["a spec given twice, the later without renew time", new Uint8Array([...enc(stored), ...raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(10).string("other"))))])],
  ["a spec given twice, the later with another renew time", new Uint8Array([...enc(stored), ...raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(34).bytes(ts(300n, 0)))))])],
  ["spec as a varint (wrong wire type: skipped)", raw((w) => w.uint32(16).uint32(5))],
  ["renew time as a varint (skipped)", raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(32).uint32(5))))],
  ["seconds as a fixed64 (skipped)", raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(34).bytes(raw((t) => t.uint32(9).fixed64(5n).uint32(16).int32(1_000_000))))))],
  ["unknown fields everywhere", raw((w) => w.uint32(98).string("x").uint32(18).bytes(raw((s) => s.uint32(56).uint32(1).uint32(34).bytes(raw((t) => t.uint32(29).fixed32(1).uint32(8).int64(42n))))).uint32(120).uint32(1))],
  ["a tag 0 ends the Lease", raw((w) => w.uint32(0).uint32(18).bytes(raw((s) => s.uint32(34).bytes(ts(5n, 0)))))],
  ["a tag 0 inside the spec", raw((w) => w.uint32(18).bytes(raw((s) => s.uint32(34).bytes(ts(5n, 0)).uint32(0))))],
];

describe("leaseRenewMs", () => {
  for (const [name, bytes] of cases) {
    it(`reads what decodeLease reads: ${name}`, () => {
      expect(leaseRenewMs(bytes)).toStrictEqual(decoded(bytes));
    });
  }

  it("reads the stored Lease's renew time", () => {
    expect(leaseRenewMs(enc(stored))).toBe(1_765_000_000_456);
  });

  it("fails where the decode fails: bytes cut short", () => {
    const bytes = enc(stored).subarray(0, enc(stored).length - 3);
    expect(() => decoded(bytes)).toThrow();
    expect(() => leaseRenewMs(bytes)).toThrow();
  });

  it("fails where the decode fails: a field longer than the bytes", () => {
    const bytes = new Uint8Array([0x0a, 0x7f, 0x0a, 0x01, 0x61]);
    expect(() => decoded(bytes)).toThrow(RangeError);
    expect(() => leaseRenewMs(bytes)).toThrow(RangeError);
  });
});
