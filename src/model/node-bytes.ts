/**
 * The bytes of a node a write answers. A write encodes the node to store it (resource_version
 * left out: see codec.ts) and answers it with resource_version set (withRevision); the answer
 * would then be encoded a second time, whole, to send it. Instead the write remembers the
 * stored bytes of the object it answers with (`writtenNode`, a WeakMap: they live as long as the
 * answer does), and the answer's serializer (src/server/node-wire.ts) copies them with
 * resource_version put in its place in the metadata (`answerFields`).
 *
 * The bytes are exactly what the generated codec writes for the answered node (field order,
 * presence): test/server/node-wire.test.ts compares them. An answer object must not be changed
 * after it is made (no code does: handlers return it as it is).
 */
import { BinaryReader } from "@bufbuild/protobuf/wire";
import type { Node } from "../gen/nodeplane/v1/node.js";
import type { KeyValue } from "../store/store.js";
import { withRevision } from "./codec.js";
import { fieldSize, Out } from "./lease-bytes.js";

const storedBytes = new WeakMap<Node, Uint8Array>();

/** The node a write of `node` (stored as `kv`, whose value is encodeNode(node)) answers with. */
export function writtenNode<T extends Node>(node: T, kv: KeyValue): T {
  const out = withRevision(node, kv);
  storedBytes.set(out, kv.value);
  return out;
}

/** A node's encoding, to write as a field: its length, and the writer of its bytes. */
interface NodeFields {
  len: number;
  write(out: Out): Out;
}

/**
 * The fields of `node` as the generated encoder writes them, from the bytes it was stored as;
 * undefined when it is not a write's answer (or its stored bytes are not as this server writes
 * them): encode it then.
 */
export function answerFields(node: Node): NodeFields | undefined {
  const stored = storedBytes.get(node);
  return stored && storedFields(stored, node.metadata?.resourceVersion ?? "");
}

/**
 * The fields of a node stored as `stored` (its own bytes as encodeNode wrote them), with
 * resource_version `rv`, as the generated encoder writes them for the node decoded from them
 * with `rv` set; undefined when the bytes are not laid out as this server writes a node: the
 * metadata (its fields 1-3 first, without resource_version), then spec, then status, each
 * present and nothing after. (A node stored without a spec or status decodes to one with an
 * empty one, which the generated encoder writes: such bytes are encoded again.)
 */
export function storedFields(stored: Uint8Array, rv: string): NodeFields | undefined {
  if (rv === "" || stored[0] !== 0x0a) return undefined;
  const r = new BinaryReader(stored);
  let meta: Span;
  let split: number;
  try {
    meta = contentsAt(r, 1);
    // resource_version is ObjectMeta's field 4: it goes after fields 1-3 (name, namespace, uid:
    // strings, each written once if set), before the rest.
    split = meta.start;
    while (split < meta.end && (stored[split] === 0x0a || stored[split] === 0x12 || stored[split] === 0x1a)) {
      split = contentsAt(r, split + 1).end;
      if (split > meta.end) return undefined;
    }
    if (split < meta.end && stored[split] === 0x22) return undefined;
    // Then exactly a spec field (2) and a status field (3).
    if (stored[meta.end] !== 0x12) return undefined;
    const spec = contentsAt(r, meta.end + 1);
    if (stored[spec.end] !== 0x1a || contentsAt(r, spec.end + 1).end !== stored.length) return undefined;
  } catch {
    return undefined; // a length past the end, or not a varint
  }
  const rvLen = Buffer.byteLength(rv);
  const metaLen = meta.end - meta.start + fieldSize(rvLen);
  return {
    len: fieldSize(metaLen) + stored.length - meta.end,
    write: (out) =>
      out
        .field(0x0a, metaLen)
        .bytes(stored.subarray(meta.start, split))
        .field(0x22, rvLen)
        .text(rv)
        .bytes(stored.subarray(split, meta.end))
        .bytes(stored.subarray(meta.end)),
  };
}

interface Span {
  start: number;
  end: number;
}

/** The contents of the length-delimited field whose length starts at `at`; throws past the end. */
function contentsAt(r: BinaryReader, at: number): Span {
  r.pos = at;
  const len = r.uint32();
  const end = r.pos + len;
  if (end > r.len) throw new RangeError("premature EOF");
  return { start: r.pos, end };
}
