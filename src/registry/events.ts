/**
 * Events about nodes: what the control plane did (NodeNotReady, TaintAdded, …). Repeats of one
 * reason on one node fold into one event with a count, as Kubernetes' event recorder does.
 * Stored like every object (durable, visible to every replica) and kept for `ttlMs` after their
 * last occurrence.
 */
import type { Clock } from "../clock.js";
import { systemClock } from "../clock.js";
import { Event } from "../gen/nodeplane/v1/event.js";
import { ObjectMeta } from "../gen/nodeplane/v1/meta.js";
import { pages } from "../store/pages.js";
import type { KeyValue, Store } from "../store/store.js";
import { EVENT_PREFIX } from "../model/keys.js";
import { formatRevision } from "../model/revision.js";
import { InvalidError } from "../errors.js";
import { dns1123SubdomainViolations } from "../validation/names.js";

/** Events about the cluster as a whole (zones) live under a name no node can have. */
const CLUSTER = "_cluster";

export interface EventInput {
  /** "" for an event about the cluster (a zone). */
  nodeName: string;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  /** Distinguishes events of one reason (e.g. the zone of a ZoneStateChanged); default none. */
  about?: string;
}

export interface EventRecorderOptions {
  store: Store;
  source: string;
  clock?: Clock;
  /** How long an event is kept after its last occurrence (default 1 h). */
  ttlMs?: number;
}

export class EventRecorder {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly source: string;
  private readonly ttlMs: number;

  constructor(opts: EventRecorderOptions) {
    this.store = opts.store;
    this.clock = opts.clock ?? systemClock;
    this.source = opts.source;
    this.ttlMs = opts.ttlMs ?? 3_600_000;
  }

  /** Record one occurrence (create, or bump count, last time and message). Retries on conflict. */
  async record(input: EventInput): Promise<Event> {
    const name = `${input.nodeName || CLUSTER}.${input.reason}${input.about ? `.${input.about}` : ""}`;
    const key = `${EVENT_PREFIX}${input.nodeName || CLUSTER}/${name}`;
    for (let attempt = 0; attempt < 16; attempt++) {
      const now = new Date(this.clock.now());
      const kv = await this.store.get(key);
      const old = kv ? Event.decode(kv.value) : undefined;
      const next = Event.fromPartial({
        metadata: { name, uid: old?.metadata?.uid ?? crypto.randomUUID(), creationTimestamp: old?.metadata?.creationTimestamp ?? now },
        nodeName: input.nodeName,
        type: input.type,
        reason: input.reason,
        message: input.message,
        source: this.source,
        firstTimestamp: old?.firstTimestamp ?? now,
        lastTimestamp: now,
        count: (old?.count ?? 0) + 1,
      });
      const res = await this.store.txn({
        compare: [{ key, modRevision: kv?.modRevision ?? 0 }],
        ops: [{ type: "put", key, value: Event.encode(next).finish() }],
      });
      if (res.succeeded) {
        next.metadata!.resourceVersion = formatRevision(res.revision);
        return next;
      }
    }
    throw new Error(`event ${name}: too much contention`);
  }

  /** A node's events (or every event), oldest occurrence first. */
  async list(nodeName: string): Promise<Event[]> {
    const rules = nodeName === "" ? [] : dns1123SubdomainViolations(nodeName);
    if (rules.length > 0) throw new InvalidError(rules.map((rule) => ({ field: "node_name", value: nodeName, rule })));
    const prefix = nodeName ? `${EVENT_PREFIX}${nodeName}/` : EVENT_PREFIX;
    const events: Event[] = [];
    for await (const page of pages(this.store, prefix, { limit: 1000, pinned: true })) for (const kv of page.kvs) events.push(decodeEvent(kv));
    return events.sort((a, b) => (a.lastTimestamp?.getTime() ?? 0) - (b.lastTimestamp?.getTime() ?? 0));
  }

  /** Delete events whose last occurrence is older than the TTL; answers how many. */
  async expire(): Promise<number> {
    const cutoff = this.clock.now() - this.ttlMs;
    let removed = 0;
    for (const ev of await this.list("")) {
      if ((ev.lastTimestamp?.getTime() ?? 0) >= cutoff) continue;
      const key = `${EVENT_PREFIX}${ev.nodeName || CLUSTER}/${ev.metadata?.name}`;
      const res = await this.store.txn({
        compare: [{ key, modRevision: Number(ev.metadata?.resourceVersion) }],
        ops: [{ type: "delete", key }],
      });
      if (res.succeeded) removed++;
    }
    return removed;
  }
}

/** A stored event, with its resource_version (the revision of its last change). */
export function decodeEvent(kv: KeyValue): Event {
  const ev = Event.decode(kv.value);
  ev.metadata = { ...(ev.metadata ?? ObjectMeta.fromPartial({})), resourceVersion: formatRevision(kv.modRevision) };
  return ev;
}
