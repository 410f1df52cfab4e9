/**
 * Fuzz body generators: a seeded PRNG, hostile values, and the two kinds of bodies the suite
 * sends — random bytes, and valid messages mutated at the wire level (protowire.ts) with
 * knowledge of their schema (schema.ts).
 *
 * Contract: every body is a pure function of (seed, RPC name, body index) — `rngFor` — so one
 * body can be regenerated from a failure message without generating the ones before it.
 */
import { encodeMessage, parseMessage, type WireField, type WireMessage, Writer, WT } from "./protowire.js";
import type { FieldShape, Shape } from "./schema.js";

// --- the PRNG ------------------------------------------------------------------------------

/** mulberry32: a tiny 32-bit generator, good enough to pick fuzz cases, same on every machine. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** [0, 1) */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** A length, mostly small, sometimes large: 0..max with a bias to the low end. */
  size(max: number): number {
    return Math.floor(max ** this.next()) - (this.chance(0.1) ? 1 : 0);
  }
}

/** FNV-1a over the parts: one independent generator per (seed, RPC, body). */
export function rngFor(seed: number, ...parts: (string | number)[]): Rng {
  let h = 0x811c9dc5 ^ seed;
  for (const ch of parts.join("\u0000")) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  return new Rng(h);
}

// --- hostile values ------------------------------------------------------------------------

const utf8 = new TextEncoder();

/** Strings that broke, or could break, something somewhere: encodings, syntax, sizes. */
const HOSTILE_STRINGS: readonly string[] = [
  "", " ", "ü", "café", "naïve", "🦄", "👩‍👩‍👧", "日本語", "Ω", "\u0000", "a\u0000b", "\u202Eevil\u202C", "\u200B", "\uFEFF",
  "\u0001\u0002\u001f\u007f", "\u0085", "\r\n", "\t", "line\nbreak", "\\", '"', "'", "%s%n%x", "${jndi:ldap://x}",
  "<script>", "../../../etc/passwd", "-a", "a-", "A", ".", "..", "x/y/z", "example.com/ü", "ü.example.com/k",
  "kubernetes.io/hostname", "node.kubernetes.io/unschedulable", "=", "!", "!=", "a in (", "a notin ()", "a in (b,", ",,,",
  "a=b,c", "a==b", "(", ")", "metadata.name=", "metadata.name==x", "spec.unschedulable=maybe", "status.phase=x",
  "-1", "0", "1", "00", "18446744073709551616", "9007199254740993", "999999999999999", "1e309", "NaN", "Infinity",
  "16Gi", "-4", "1.5", "0x10", "500m", "1Ei", "1E", "9999999999999999999Ki", "::1", "256.256.256.256", "1.2.3",
  "10.0.0.0/33", "fe80::/129", "10.0.0.0/8,10.1.0.0/16", "NoSchedule", "NoExecute", "Ready", "True", "Unknown",
  "InternalIP", "Hostname", "kube-node-lease", "\uD800", "\uDFFF", "e\u0301", "İ", "ß", "ǅ", "\u00A0",
];

/** Code point ranges to draw random characters from (ASCII, controls, Latin-1, BMP, RTL, astral). */
const CODE_POINT_RANGES: readonly [number, number][] = [
  [0x20, 0x7e], [0x20, 0x7e], [0x00, 0x1f], [0x7f, 0xff], [0x100, 0x17f], [0x590, 0x6ff], [0x200b, 0x202e],
  [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xd800, 0xdfff], [0xfff0, 0xffff], [0x1f300, 0x1faff], [0x10000, 0x10ffff],
];

/** Valid-looking tokens that a hostile character is then slipped into. */
const TOKENS: readonly string[] = ["node-1", "kubernetes.io/os", "example.com/team", "cpu", "memory", "Ready", "10.0.0.7", "10.244.0.0/24", "linux"];

/** n characters of filler for long strings (`ascii`: n bytes too). */
function filler(rng: Rng, n: number, ascii = false): string {
  const unit = rng.pick(ascii ? ["a", "ab-", "x.", "0"] : ["a", "ab-", "x.", "0", "é", "🦄"]);
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
}

/** The server's receive (and send) limit for one message: grpc-js' default, nodeplane's too. */
const MESSAGE_LIMIT = 4 * 1024 * 1024;
/** Bodies stop a little past the limit: the limit itself is tested, without sending tens of MB. */
const MAX_BODY_BYTES = MESSAGE_LIMIT + 65_536;

/** `long`: may be thousands of characters (else at most a few hundred bytes). */
function hostileString(rng: Rng, long: boolean): string {
  const roll = rng.next();
  if (roll < 0.45) return rng.pick(HOSTILE_STRINGS);
  if (roll < 0.65) {
    let s = "";
    for (let i = rng.size(40); i > 0; i--) {
      const [lo, hi] = rng.pick(CODE_POINT_RANGES);
      s += String.fromCodePoint(lo + rng.int(hi - lo + 1));
    }
    return s;
  }
  if (roll < 0.85) {
    const token = rng.pick(TOKENS);
    const at = rng.int(token.length + 1);
    return token.slice(0, at) + rng.pick(HOSTILE_STRINGS) + token.slice(at);
  }
  // Sizes at the limits: label names (63), names (253), annotations (256 KiB), messages (4 MiB).
  if (!long || roll < 0.98) return filler(rng, rng.pick([63, 64, 253, 254, 1024]));
  if (roll < 0.995) return filler(rng, 65_536);
  if (roll < 0.9995) return filler(rng, 262_145);
  return filler(rng, MESSAGE_LIMIT - 5000, true);
}

/** Byte strings that are not UTF-8 (lone continuation bytes, overlong forms, surrogates, > U+10FFFF). */
const INVALID_UTF8: readonly number[][] = [
  [0xff], [0xfe], [0x80], [0xc3], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xc0, 0x80], [0xe0, 0x80, 0xaf],
  [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80],
];

function invalidUtf8(rng: Rng): Uint8Array {
  const prefix = utf8.encode(rng.chance(0.5) ? rng.pick(TOKENS) : "");
  const bad = rng.pick(INVALID_UTF8);
  return Uint8Array.from([...prefix, ...bad, ...utf8.encode(rng.chance(0.5) ? "x" : "")]);
}

/** Varint values at the edges of int32, int64, uint64 and JavaScript's safe integers. */
const HOSTILE_VARINTS: readonly bigint[] = [
  0n, 1n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n,
  2n ** 64n - 1n /* -1 */, 2n ** 64n - 2n ** 31n /* int32 min */, 2n ** 64n - 2n ** 63n /* int64 min */, 40n, 3600n,
];

/** Varint encodings no encoder writes: zero padded out, 10 bytes past 64 bits, 11 bytes. */
const ODD_VARINTS: readonly number[][] = [
  [0x80, 0x00],
  [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
];

function hostileVarint(rng: Rng): bigint {
  return rng.chance(0.8) ? rng.pick(HOSTILE_VARINTS) : BigInt(rng.int(2 ** 31)) * BigInt(rng.int(2 ** 31));
}

// --- random bodies (a) -----------------------------------------------------------------------

/** Random bytes: pure noise, or noise shaped like protobuf (plausible tags, lengths, varints). */
export function randomBody(rng: Rng): Uint8Array {
  if (rng.chance(0.5)) return rng.bytes(rng.size(rng.chance(0.02) ? 65_536 : 2048));
  const w = new Writer();
  for (let n = rng.size(30); n > 0; n--) {
    const wt = rng.pick([0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 7]);
    w.tag(rng.chance(0.8) ? 1 + rng.int(20) : rng.int(2 ** 29), wt);
    if (wt === WT.varint) w.varint(hostileVarint(rng));
    else if (wt === WT.len) {
      const body = rng.bytes(rng.size(200));
      w.varint(rng.chance(0.8) ? body.length : rng.int(2 ** 32)).bytes(body);
    } else w.bytes(rng.bytes(wt === WT.fixed64 ? 8 : wt === WT.fixed32 ? 4 : rng.int(4)));
  }
  return w.finish();
}

// --- schema-mutated bodies (b) ---------------------------------------------------------------

/** A value of the field's own kind, hostile where the kind allows it (`long`: see hostileString). */
function hostileValueFor(rng: Rng, shape: FieldShape, depth: number, long: boolean): Pick<WireField, "wt" | "data" | "message"> {
  switch (shape.kind) {
    case "string":
      return { wt: WT.len, data: rng.chance(0.15) ? invalidUtf8(rng) : utf8.encode(hostileString(rng, long)) };
    case "bytes":
      return { wt: WT.len, data: rng.bytes(rng.size(300)) };
    case "varint":
    case "bool":
    case "enum":
      // Sometimes a varint no encoder writes: padded with 0x80 bytes, or past 64 bits / 10 bytes.
      return { wt: WT.varint, data: rng.chance(0.15) ? Uint8Array.from(rng.pick(ODD_VARINTS)) : hostileVarint(rng) };
    case "fixed32":
      return { wt: WT.fixed32, data: rng.bytes(4) };
    case "fixed64":
      return { wt: WT.fixed64, data: rng.bytes(8) };
    case "message": {
      const inner = shape.message!();
      return { wt: WT.len, data: new Uint8Array(0), message: randomMessage(rng, inner, depth + 1) };
    }
  }
}

/** A message of `shape` with random fields set to hostile values (depth-limited). */
function randomMessage(rng: Rng, shape: Shape, depth = 0): WireMessage {
  const fields: WireField[] = [];
  if (depth > 6) return { fields, shape };
  for (const f of shape.fields.values()) {
    if (!rng.chance(depth === 0 ? 0.7 : 0.4)) continue;
    for (let n = f.repeated ? 1 + rng.size(4) : 1; n > 0; n--) fields.push({ no: f.no, shape: f, ...hostileValueFor(rng, f, depth, false) });
  }
  return { fields, shape };
}

/** Every field occurrence in the tree, with the message that holds it. */
function allFields(msg: WireMessage, out: { holder: WireMessage; index: number }[] = []): { holder: WireMessage; index: number }[] {
  msg.fields.forEach((f, index) => {
    out.push({ holder: msg, index });
    if (f.message) allFields(f.message, out);
  });
  return out;
}

/** Every message in the tree (to add fields to). */
function allMessages(msg: WireMessage, out: WireMessage[] = []): WireMessage[] {
  out.push(msg);
  for (const f of msg.fields) if (f.message) allMessages(f.message, out);
  return out;
}

/** A field the schema does not know: any number, any wire type, sometimes deeply nested groups. */
function unknownField(rng: Rng): WireField {
  const no = rng.pick([19_000, 2 ** 29 - 1, 1000 + rng.int(100_000), 50 + rng.int(50)]);
  const roll = rng.int(5);
  if (roll === 0) return { no, wt: WT.varint, data: hostileVarint(rng) };
  if (roll === 1) return { no, wt: WT.fixed64, data: rng.bytes(8) };
  if (roll === 2) return { no, wt: WT.fixed32, data: rng.bytes(4) };
  if (roll === 3) return { no, wt: WT.len, data: rng.bytes(rng.size(500)) };
  // Nested groups: a decoder that skips them by recursion runs out of stack.
  const depth = rng.pick([2, 100, 10_000, rng.chance(0.3) ? 100_000 : 1000]);
  const open = new Writer().tag(no, WT.startGroup).finish();
  const close = new Writer().tag(no, WT.endGroup).finish();
  // The field's own tag opens the outermost group; `data` holds the rest.
  const inner = new Uint8Array((depth - 1) * open.length + depth * close.length);
  for (let i = 0; i < depth - 1; i++) inner.set(open, i * open.length);
  for (let i = 0; i < depth; i++) inner.set(close, (depth - 1) * open.length + i * close.length);
  return { no, wt: WT.startGroup, data: inner };
}

type Mutation = (rng: Rng, root: WireMessage) => void;

/** The mutations, each with a short name (failure messages list the ones a body went through). */
const MUTATIONS: Record<string, Mutation> = {
  /** A field's value replaced by a hostile value of its own kind. */
  hostileValue(rng, root) {
    const all = allFields(root).filter(({ holder, index }) => holder.fields[index]!.shape);
    if (all.length === 0) return;
    const { holder, index } = rng.pick(all);
    const f = holder.fields[index]!;
    holder.fields[index] = { no: f.no, shape: f.shape, ...hostileValueFor(rng, f.shape!, 3, true) };
  },
  /** A string field's bytes made invalid UTF-8. */
  invalidUtf8(rng, root) {
    const all = allFields(root).filter(({ holder, index }) => holder.fields[index]!.shape?.kind === "string");
    if (all.length === 0) return;
    const { holder, index } = rng.pick(all);
    holder.fields[index] = { ...holder.fields[index]!, data: invalidUtf8(rng), message: undefined };
  },
  /** A schema field added (again) with a hostile value: reaches fields the base did not set. */
  addField(rng, root) {
    const msg = rng.pick(allMessages(root).filter((m) => m.shape && m.shape.fields.size > 0));
    if (!msg?.shape) return;
    const f = rng.pick([...msg.shape.fields.values()]);
    msg.fields.splice(rng.int(msg.fields.length + 1), 0, { no: f.no, shape: f, ...hostileValueFor(rng, f, 2, rng.chance(0.3)) });
  },
  /** A field repeated: twice (last one wins, or merge), or thousands of times. */
  duplicate(rng, root) {
    const all = allFields(root);
    if (all.length === 0) return;
    const { holder, index } = rng.pick(all);
    const f = holder.fields[index]!;
    const small = typeof f.data === "bigint" || (f.data.length < 1024 && !f.message);
    const copies = small && rng.chance(0.3) ? rng.pick([100, 1000, 5000]) : 1;
    holder.fields.splice(index + 1, 0, ...Array.from({ length: copies }, () => ({ ...f })));
  },
  /** Many distinct entries of a repeated or map field, each hostile. */
  manyEntries(rng, root) {
    const msg = rng.pick(allMessages(root).filter((m) => m.shape && [...m.shape.fields.values()].some((f) => f.repeated)));
    if (!msg?.shape) return;
    const f = rng.pick([...msg.shape.fields.values()].filter((x) => x.repeated));
    const n = rng.pick([20, 200, 200, 1000]);
    for (let i = 0; i < n; i++) msg.fields.push({ no: f.no, shape: f, ...hostileValueFor(rng, f, 5, false) });
  },
  /** A field sent with another wire type than its schema's. */
  wrongWireType(rng, root) {
    const all = allFields(root);
    if (all.length === 0) return;
    const { holder, index } = rng.pick(all);
    const f = holder.fields[index]!;
    const wt = rng.pick([WT.varint, WT.fixed64, WT.len, WT.fixed32, WT.startGroup, WT.endGroup, 6, 7].filter((w) => w !== f.wt));
    const data = wt === WT.varint ? hostileVarint(rng) : rng.bytes(wt === WT.fixed64 ? 8 : wt === WT.fixed32 ? 4 : rng.size(20));
    holder.fields[index] = { no: f.no, wt, data };
  },
  /** A field removed. */
  drop(rng, root) {
    const all = allFields(root);
    if (all.length === 0) return;
    const { holder, index } = rng.pick(all);
    holder.fields.splice(index, 1);
  },
  /** A nested message emptied, or its length prefix made to lie. */
  badLength(rng, root) {
    const all = allFields(root).filter(({ holder, index }) => holder.fields[index]!.wt === WT.len);
    if (all.length === 0) return;
    const { holder, index } = rng.pick(all);
    const f = holder.fields[index]!;
    if (rng.chance(0.3)) holder.fields[index] = { ...f, data: new Uint8Array(0), message: undefined };
    else f.lenDelta = rng.pick([-1, 1, 7, 1 << 20, 2 ** 31, -(2 ** 10)]);
  },
  /** A field the schema does not have. */
  unknownField(rng, root) {
    const msg = rng.pick(allMessages(root));
    msg.fields.splice(rng.int(msg.fields.length + 1), 0, unknownField(rng));
  },
  /** Field number 0, or one past the largest legal field number. */
  illegalFieldNumber(rng, root) {
    const msg = rng.pick(allMessages(root));
    msg.fields.push({ no: rng.pick([0, 2 ** 29, 2 ** 32 - 1]), wt: WT.varint, data: 1n });
  },
};

const MUTATION_NAMES = Object.keys(MUTATIONS);

/**
 * One string field of a valid base grown until the message is a few hundred bytes under the
 * receive limit, and nothing else changed: where the field is free text the request is valid,
 * and its answer (the object plus what the server adds) is larger than the send limit — which
 * the server must refuse before it commits, not after.
 */
function growToLimit(rng: Rng, root: WireMessage): void {
  const all = allFields(root).filter(({ holder, index }) => holder.fields[index]!.shape?.kind === "string");
  if (all.length === 0) return;
  const { holder, index } = rng.pick(all);
  const field = holder.fields[index]!;
  const others = encodeMessage(root).length - (field.data instanceof Uint8Array ? field.data.length : 0);
  // Less 16 for the length prefixes that grow with it, and up to 256 under the limit.
  const size = Math.max(1, MESSAGE_LIMIT - others - 16 - rng.int(256));
  holder.fields[index] = { ...field, data: utf8.encode(filler(rng, size, true)), message: undefined };
}

/** Byte-level damage applied after encoding. */
function damageBytes(rng: Rng, body: Uint8Array): Uint8Array {
  const roll = rng.int(3);
  if (roll === 0) return body.subarray(0, rng.int(body.length + 1)); // truncated
  const out = Uint8Array.from(body);
  if (roll === 1) for (let n = 1 + rng.int(4); n > 0 && out.length > 0; n--) out[rng.int(out.length)] ^= 1 << rng.int(8);
  else if (out.length > 0) out[rng.int(out.length)] = rng.pick([0x00, 0x7f, 0x80, 0xff]);
  return out;
}

interface MutatedBody {
  body: Uint8Array;
  /** What was done, e.g. "base 2: hostileValue, duplicate, truncated" (for failure messages). */
  recipe: string;
}

/**
 * A valid base (or, sometimes, a random message of the schema) put through 1–4 mutations,
 * and sometimes damaged at the byte level.
 */
export function mutatedBody(rng: Rng, shape: Shape, bases: readonly Uint8Array[]): MutatedBody {
  const useBase = bases.length > 0 && rng.chance(0.85);
  const baseIndex = useBase ? rng.int(bases.length) : -1;
  const root = useBase ? parseMessage(bases[baseIndex]!, shape) : randomMessage(rng, shape);
  // Rare (each costs 4 MiB on the wire), and alone, so that the rest stays valid.
  if (useBase && rng.chance(0.004)) {
    growToLimit(rng, root);
    return { body: encodeMessage(root), recipe: `base ${baseIndex}: one string grown to just under the 4 MiB limit` };
  }
  const steps: string[] = [];
  for (let n = 1 + rng.int(rng.chance(0.3) ? 4 : 2); n > 0; n--) {
    const name = rng.pick(MUTATION_NAMES);
    MUTATIONS[name]!(rng, root);
    steps.push(name);
  }
  let body: Uint8Array = encodeMessage(root);
  if (rng.chance(0.1)) {
    body = damageBytes(rng, body);
    steps.push("damaged bytes");
  }
  if (body.length > MAX_BODY_BYTES) {
    body = body.subarray(0, MAX_BODY_BYTES);
    steps.push("cut to the size cap");
  }
  return { body, recipe: `${useBase ? `base ${baseIndex}` : "random message"}: ${steps.join(", ")}` };
}
