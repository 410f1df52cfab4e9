/**
 * The standard rich error of gRPC: a `google.rpc.Status` carrying a `google.rpc.BadRequest` of
 * field violations, sent as the `grpc-status-details-bin` trailer. grpcurl prints it, Python's
 * grpc_status.rpc_status.from_call and Go's status.FromError decode it, and the SDK reads it back
 * into RpcError.fieldViolations. A binary trailer carries any field path safely: an ASCII
 * metadata value cannot hold a label key like "café" (grpc-js throws on one, issue 11).
 *
 * The two messages are encoded here by hand with the protobuf wire writer rather than generated
 * from google/rpc/*.proto: buf has no Google API protos without the Buf Schema Registry, and the
 * field numbers are fixed by Google's published protos:
 *
 *   message Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
 *   message Any { string type_url = 1; bytes value = 2; }
 *   message BadRequest { repeated FieldViolation field_violations = 1; }
 *   message FieldViolation { string field = 1; string description = 2; }
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** The metadata key of the trailer (binary: grpc-js base64-encodes it on the wire). */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

const BAD_REQUEST_TYPE_URL = "type.googleapis.com/google.rpc.BadRequest";

export interface FieldViolationDetail {
  /** The field path, e.g. `metadata.labels["café"]`. */
  field: string;
  /** What is wrong with it: the value and the rule. */
  description: string;
}

export interface StatusDetails {
  code: number;
  message: string;
  fieldViolations: FieldViolationDetail[];
}

/** google.rpc.Status bytes: `code`, `message` and, if there are any, a BadRequest of `violations`. */
export function encodeStatusDetails(details: StatusDetails): Buffer {
  const w = new BinaryWriter();
  if (details.code !== 0) w.uint32(8).int32(details.code);
  if (details.message !== "") w.uint32(18).string(details.message);
  if (details.fieldViolations.length > 0) {
    const badRequest = new BinaryWriter();
    for (const v of details.fieldViolations) {
      badRequest.uint32(10).fork().uint32(10).string(v.field).uint32(18).string(v.description).join();
    }
    w.uint32(26).fork().uint32(10).string(BAD_REQUEST_TYPE_URL).uint32(18).bytes(badRequest.finish()).join();
  }
  const u8 = w.finish();
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/**
 * Decode google.rpc.Status bytes; details other than BadRequest are skipped.
 * @throws Error when the bytes are not a Status.
 */
export function decodeStatusDetails(bytes: Uint8Array): StatusDetails {
  const out: StatusDetails = { code: 0, message: "", fieldViolations: [] };
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === 1 && wireType === WireType.Varint) out.code = r.int32();
    else if (field === 2 && wireType === WireType.LengthDelimited) out.message = r.string();
    else if (field === 3 && wireType === WireType.LengthDelimited) {
      const any = readAny(r.bytes());
      if (any.typeUrl === BAD_REQUEST_TYPE_URL) out.fieldViolations.push(...readBadRequest(any.value));
    } else r.skip(wireType);
  }
  return out;
}

function readAny(bytes: Uint8Array): { typeUrl: string; value: Uint8Array } {
  const r = new BinaryReader(bytes);
  const out: { typeUrl: string; value: Uint8Array } = { typeUrl: "", value: new Uint8Array(0) };
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) out.typeUrl = r.string();
    else if (field === 2 && wireType === WireType.LengthDelimited) out.value = r.bytes();
    else r.skip(wireType);
  }
  return out;
}

function readBadRequest(bytes: Uint8Array): FieldViolationDetail[] {
  const r = new BinaryReader(bytes);
  const out: FieldViolationDetail[] = [];
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field !== 1 || wireType !== WireType.LengthDelimited) {
      r.skip(wireType);
      continue;
    }
    const v = new BinaryReader(r.bytes());
    const violation: FieldViolationDetail = { field: "", description: "" };
    while (v.pos < v.len) {
      const [f, t] = v.tag();
      if (f === 1 && t === WireType.LengthDelimited) violation.field = v.string();
      else if (f === 2 && t === WireType.LengthDelimited) violation.description = v.string();
      else v.skip(t);
    }
    out.push(violation);
  }
  return out;
}
