/**
 * The one decoded copy of a stored node that the watch cache keeps and shares with every
 * watcher and every controller (one decode, one copy per node, however many readers):
 *
 * - a FullNode (metadata, spec and status present), as the controllers read it;
 * - strings that repeat from node to node — label and annotation values, resource quantities,
 *   condition types, statuses, reasons and messages, node info, taints — interned, so 100,000
 *   nodes hold one copy of "eu-west-1a" or of a kubelet's condition message, not 100,000;
 * - maps (labels, annotations, capacity, allocatable) of more than 12 keys rebuilt with
 *   Object.fromEntries: the decoder adds their keys one by one, and past 12 keys added that way
 *   V8 turns the object into a hash table (~1 KB for 20 labels) where a rebuilt one is a plain
 *   object sharing its shape with every node that has the same keys;
 * - equal times within the node (an agent posts every condition with one heartbeat time; a
 *   new node's transition times are its creation time) one Date: a Date costs ~100 bytes;
 * - deeply frozen: it is shared, so nobody may change it. A controller that wants a change
 *   builds a new object and writes it through the registry; the cache then holds the new one;
 * - given the node's previous copy, every part equal to the previous one's is that part (labels,
 *   capacity, addresses, node info, unchanged conditions…): a status update that changes the
 *   conditions keeps ~1 KB new instead of the whole node (~2.4 KB), so less outlives V8's young
 *   generation and full collections come less often; readers comparing the two (sameMessage)
 *   find the shared parts at once.
 */
import { ObjectMeta } from "../gen/nodeplane/v1/meta.js";
import { NodeSpec, NodeStatus } from "../gen/nodeplane/v1/node.js";
import { decodeNode } from "./codec.js";
import type { FullNode } from "./node.js";
import type { KeyValue } from "../store/store.js";

/** Strings longer than this are not worth a lookup (they rarely repeat). */
const MAX_INTERNED = 4096;

/**
 * Interned strings in two generations: a string found in the older one moves to the newer, and
 * when the newer is full the older is dropped. Strings that repeat stay; strings seen once (a
 * node's own hostname) fall out, so the pool stays small however many nodes pass through it.
 */
class StringPool {
  private current = new Map<string, string>();
  private previous = new Map<string, string>();

  constructor(private readonly generationSize = 16_384) {}

  intern(s: string): string {
    if (s.length === 0 || s.length > MAX_INTERNED) return s;
    const hit = this.current.get(s);
    if (hit !== undefined) return hit;
    const kept = this.previous.get(s) ?? s;
    if (this.current.size >= this.generationSize) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(kept, kept);
    return kept;
  }
}

/** Decodes stored nodes into frozen FullNodes whose repeated strings come from one pool. */
export class SharedNodeDecoder {
  private readonly pool = new StringPool();

  /** `previous`: this decoder's copy of the node's previous version, whose equal parts the new copy takes. */
  decode(kv: KeyValue, previous?: FullNode): FullNode {
    const decoded = decodeNode(kv);
    const node: FullNode = {
      metadata: decoded.metadata ?? ObjectMeta.fromPartial({}),
      spec: decoded.spec ?? NodeSpec.fromPartial({}),
      status: decoded.status ?? NodeStatus.fromPartial({}),
    };
    if (previous !== undefined) {
      node.metadata = reuse(node.metadata, previous.metadata);
      node.spec = reuse(node.spec, previous.spec);
      node.status = reuse(node.status, previous.status);
    }
    internStrings(node, this.pool);
    shareDates(node);
    return deepFreeze(node);
  }
}

function internStrings(node: FullNode, pool: StringPool): void {
  const name = node.metadata.name;
  // A node's own name recurs in its hostname label and address: share the name, keep it out of the pool.
  const s = (v: string): string => (v === name ? name : pool.intern(v));
  const map = (m: Record<string, string>): Record<string, string> => {
    if (Object.isFrozen(m)) return m;
    const keys = Object.keys(m);
    if (keys.length > 12) return Object.fromEntries(keys.map((k) => [k, s(m[k]!)]));
    for (const k of keys) m[k] = s(m[k]!);
    return m;
  };
  // Parts shared with the previous copy (frozen) were interned then.
  const meta = node.metadata;
  if (!Object.isFrozen(meta)) {
    meta.namespace = s(meta.namespace);
    meta.labels = map(meta.labels);
    meta.annotations = map(meta.annotations);
    for (const ref of meta.ownerReferences) {
      if (Object.isFrozen(ref)) continue;
      ref.apiVersion = s(ref.apiVersion);
      ref.kind = s(ref.kind);
    }
  }
  for (const t of node.spec.taints) {
    if (Object.isFrozen(t)) continue;
    t.key = s(t.key);
    t.value = s(t.value);
    t.effect = s(t.effect);
  }
  const status = node.status;
  if (Object.isFrozen(status)) return;
  status.capacity = map(status.capacity);
  status.allocatable = map(status.allocatable);
  for (const a of status.addresses) {
    if (Object.isFrozen(a)) continue;
    a.type = s(a.type);
    if (a.address === name) a.address = name;
  }
  for (const c of status.conditions) {
    if (Object.isFrozen(c)) continue;
    c.type = s(c.type);
    c.status = s(c.status);
    c.reason = s(c.reason);
    c.message = s(c.message);
  }
  const info = status.nodeInfo;
  if (info && !Object.isFrozen(info)) {
    info.kernelVersion = s(info.kernelVersion);
    info.osImage = s(info.osImage);
    info.containerRuntimeVersion = s(info.containerRuntimeVersion);
    info.agentVersion = s(info.agentVersion);
    info.operatingSystem = s(info.operatingSystem);
    info.architecture = s(info.architecture);
  }
}

/** One Date object per distinct time within the node (nothing changes a Date in place). */
function shareDates(node: FullNode): void {
  const seen: Date[] = [];
  const d = (v: Date | undefined): Date | undefined => {
    if (v === undefined) return v;
    const t = v.getTime();
    for (const x of seen) if (x.getTime() === t) return x;
    seen.push(v);
    return v;
  };
  // Parts shared with the previous copy are frozen: their Dates are seen first, so that a new
  // part with the same time takes one of them, and are not replaced.
  const meta = node.metadata;
  const { conditions } = node.status;
  const { taints } = node.spec;
  if (Object.isFrozen(meta)) d(meta.creationTimestamp);
  for (const c of conditions) {
    if (!Object.isFrozen(c)) continue;
    d(c.lastHeartbeatTime);
    d(c.lastTransitionTime);
  }
  for (const t of taints) if (Object.isFrozen(t)) d(t.timeAdded);
  if (!Object.isFrozen(meta)) meta.creationTimestamp = d(meta.creationTimestamp);
  for (const c of conditions) {
    if (Object.isFrozen(c)) continue;
    c.lastHeartbeatTime = d(c.lastHeartbeatTime);
    c.lastTransitionTime = d(c.lastTransitionTime);
  }
  for (const t of taints) if (!Object.isFrozen(t)) t.timeAdded = d(t.timeAdded);
}

/**
 * `fresh` with every part equal to `old`'s replaced by `old`'s (frozen) part, or `old` itself
 * when all of it is equal: objects with the same keys in the same order (a map's order is kept),
 * arrays, Dates by time, primitives by ===. `old` is never changed; `fresh`'s containers are.
 * Stricter than sameMessage (same-message.ts), which takes a map's keys in any order: a shared
 * part is what readers see, so it must be the new version's exactly.
 */
function reuse<T>(fresh: T, old: T): T {
  if (fresh === old || typeof fresh !== "object" || fresh === null || typeof old !== "object" || old === null) return fresh;
  if (fresh instanceof Date) return old instanceof Date && old.getTime() === fresh.getTime() ? old : fresh;
  if (old instanceof Date) return fresh;
  if (Array.isArray(fresh)) {
    if (!Array.isArray(old)) return fresh;
    let same = fresh.length === old.length;
    for (let i = 0; i < fresh.length; i++) {
      const part: unknown = reuse(fresh[i], old[i]);
      if (part !== old[i]) same = false;
      fresh[i] = part;
    }
    return same ? old : fresh;
  }
  if (Array.isArray(old)) return fresh;
  const f = fresh as Record<string, unknown>;
  const o = old as Record<string, unknown>;
  const keys = Object.keys(f);
  const oldKeys = Object.keys(o);
  let same = keys.length === oldKeys.length;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (same && oldKeys[i] !== k) same = false;
    if (!Object.prototype.hasOwnProperty.call(o, k)) {
      same = false;
      continue;
    }
    const part = reuse(f[k], o[k]);
    if (part !== o[k]) same = false;
    f[k] = part;
  }
  return same ? old : fresh;
}

/** Freeze `obj` and everything it holds (nothing in a Node is binary; a Date holds nothing); frozen parts are shared, already done. */
function deepFreeze<T extends object>(obj: T): T {
  if (Object.isFrozen(obj)) return obj;
  if (Array.isArray(obj)) {
    for (const v of obj) if (typeof v === "object" && v !== null) deepFreeze(v as object);
  } else if (!(obj instanceof Date)) {
    const record = obj as Record<string, unknown>;
    for (const k in record) {
      const v = record[k];
      if (typeof v === "object" && v !== null) deepFreeze(v);
    }
  }
  return Object.freeze(obj);
}
