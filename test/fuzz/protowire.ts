/**
 * The protobuf wire format as the fuzz mutator needs it: a message is a list of field
 * occurrences kept as they are on the wire (so duplicates, unknown and illegal fields, wrong wire
 * types, odd varints and lying lengths survive a parse/encode round trip), nested messages parsed
 * where the schema says a field holds one.
 */
import type { FieldShape, Shape } from "./schema.js";

export const WT = { varint: 0, fixed64: 1, len: 2, startGroup: 3, endGroup: 4, fixed32: 5 } as const;

/** One field occurrence. `data` is what follows the tag; `message` is `data` parsed, when known. */
export interface WireField {
  no: number;
  wt: number;
  /** varint: the value (or raw bytes: an odd encoding); fixed/len: the payload; groups: raw inner bytes. */
  data: bigint | Uint8Array;
  message?: WireMessage;
  shape?: FieldShape;
  /** Added to a len field's declared length when encoding (a lying length prefix). */
  lenDelta?: number;
}

export interface WireMessage {
  fields: WireField[];
  shape?: Shape;
}

/** A growable byte buffer: varints (any 64-bit value, or more for a bad tag) and raw bytes. */
export class Writer {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(value: number | bigint): this {
    this.ensure(11);
    if (typeof value === "number" && value >= 0 && value <= 0xffff_ffff) {
      let v = value;
      while (v > 0x7f) {
        this.buf[this.pos++] = (v & 0x7f) | 0x80;
        v = Math.floor(v / 128);
      }
      this.buf[this.pos++] = v;
      return this;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    do {
      const byte = Number(v & 0x7fn);
      v >>= 7n;
      this.buf[this.pos++] = v > 0n ? byte | 0x80 : byte;
    } while (v > 0n);
    return this;
  }

  /** A tag: field numbers past 2^29 - 1 are illegal, and written anyway. */
  tag(no: number, wt: number): this {
    return this.varint(no < 2 ** 29 ? no * 8 + wt : (BigInt(no) << 3n) | BigInt(wt));
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function readVarint(buf: Uint8Array, pos: number): [bigint, number] {
  let v = 0n;
  for (let shift = 0n; pos < buf.length && shift < 70n; shift += 7n) {
    const b = buf[pos++]!;
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [v, pos];
  }
  throw new Error("bad varint");
}

/** Parse a well-formed message (the suite's own valid bases); nested messages by `shape`. */
export function parseMessage(buf: Uint8Array, shape?: Shape): WireMessage {
  const fields: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, afterTag] = readVarint(buf, pos);
    pos = afterTag;
    const no = Number(tag >> 3n);
    const wt = Number(tag & 7n);
    const fieldShape = shape?.fields.get(no);
    let data: bigint | Uint8Array;
    if (wt === WT.varint) [data, pos] = readVarint(buf, pos);
    else if (wt === WT.fixed64 || wt === WT.fixed32) {
      const n = wt === WT.fixed64 ? 8 : 4;
      data = buf.subarray(pos, pos + n);
      pos += n;
    } else if (wt === WT.len) {
      const [n, at] = readVarint(buf, pos);
      data = buf.subarray(at, at + Number(n));
      pos = at + Number(n);
    } else throw new Error(`parseMessage: wire type ${wt} in a base message`);
    const field: WireField = { no, wt, data, shape: fieldShape };
    const inner = fieldShape?.message?.();
    if (wt === WT.len && inner && data instanceof Uint8Array) field.message = parseMessage(data, inner);
    fields.push(field);
  }
  return { fields, shape };
}

export function encodeMessage(msg: WireMessage, w = new Writer()): Buffer {
  for (const f of msg.fields) {
    w.tag(f.no, f.wt);
    if (typeof f.data === "bigint") w.varint(f.data);
    else if (f.wt !== WT.len) w.bytes(f.data);
    else {
      const payload = f.message ? encodeMessage(f.message) : f.data;
      w.varint(Math.max(0, payload.length + (f.lenDelta ?? 0))).bytes(payload);
    }
  }
  return w.finish();
}
