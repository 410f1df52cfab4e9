/**
 * Answers in the form a request asked for (see `negotiate` in request.ts): the Kubernetes
 * objects themselves (`Node`, `NodeList`…), a Table (one row per object; in a watch, one
 * single-row Table per event), or PartialObjectMetadata. One `Kind` per served kind ties its
 * discovery entry, its JSON conversion and its table together.
 */
import type { Event } from "../gen/nodeplane/v1/event.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import { EVENTS, LEASES, NODES, type ResourceInfo } from "./discovery.js";
import { isObject, type JsonObject } from "./kube-json.js";
import { nodeToKube } from "./kube-node.js";
import { eventToKube, leaseToKube, listOf } from "./kube-objects.js";
import type { Want } from "./request.js";
import { EVENT_TABLE, LEASE_TABLE, NODE_TABLE, table, type TableColumn, type TableRow, type TableSpec } from "./table.js";

export interface Kind<T> {
  info: ResourceInfo;
  toKube(obj: T): JsonObject;
  table: TableSpec<T>;
}

export const NODE_KIND: Kind<Node> = { info: NODES, toKube: nodeToKube, table: NODE_TABLE };
export const LEASE_KIND: Kind<Lease> = { info: LEASES, toKube: leaseToKube, table: LEASE_TABLE };
export const EVENT_KIND: Kind<Event> = { info: EVENTS, toKube: eventToKube, table: EVENT_TABLE };

const apiVersionOf = (info: ResourceInfo): string => (info.group ? `${info.group}/${info.version}` : info.version);

function metadataOf(obj: JsonObject): JsonObject {
  return isObject(obj.metadata) ? obj.metadata : {};
}

function row<T>(kind: Kind<T>, obj: T, want: Want & { as: "Table" }, now: number): TableRow {
  const cells = kind.table.cells(obj, now);
  if (want.includeObject === "None") return { cells };
  const full = kind.toKube(obj);
  if (want.includeObject === "Object") return { cells, object: full };
  return { cells, object: { kind: "PartialObjectMetadata", apiVersion: want.apiVersion, metadata: metadataOf(full) } };
}

/** One object (GET of a name, and the object a write answers). */
export function formatOne<T>(kind: Kind<T>, obj: T, want: Want, now: number): object {
  const full = kind.toKube(obj);
  if (want.as === "Table") return table(want.apiVersion, kind.table.columns, [row(kind, obj, want, now)], String(metadataOf(full).resourceVersion ?? ""));
  if (want.as === "PartialObjectMetadata") return { kind: "PartialObjectMetadata", apiVersion: want.apiVersion, metadata: metadataOf(full) };
  return full;
}

/** A list (GET of a collection). */
export function formatList<T>(kind: Kind<T>, items: readonly T[], want: Want, now: number, resourceVersion: string, continueToken = ""): object {
  if (want.as === "Table") return table(want.apiVersion, kind.table.columns, items.map((o) => row(kind, o, want, now)), resourceVersion, continueToken);
  if (want.as === "PartialObjectMetadata") {
    const metas = items.map((o) => ({ kind: "PartialObjectMetadata", apiVersion: want.apiVersion, metadata: metadataOf(kind.toKube(o)) }));
    return { kind: "PartialObjectMetadataList", apiVersion: want.apiVersion, metadata: { resourceVersion, ...(continueToken && { continue: continueToken }) }, items: metas };
  }
  return listOf(kind.info.kind, apiVersionOf(kind.info), items.map((o) => kind.toKube(o)), resourceVersion, continueToken);
}

/** An empty list of a kind nodeplane does not hold (pods). */
export function formatEmptyList(info: ResourceInfo, columns: TableColumn[], want: Want, resourceVersion: string): object {
  if (want.as === "Table") return table(want.apiVersion, columns, [], resourceVersion);
  if (want.as === "PartialObjectMetadata") return { kind: "PartialObjectMetadataList", apiVersion: want.apiVersion, metadata: { resourceVersion }, items: [] };
  return listOf(info.kind, apiVersionOf(info), [], resourceVersion);
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";

/**
 * Encodes a watch stream's events. A DELETED object shows its last state at the deletion's
 * revision; a BOOKMARK carries only the revision (and, ending the initial events of a
 * `sendInitialEvents` watch, the `k8s.io/initial-events-end` annotation). In Table form the
 * column definitions go with the first event only: kubectl keeps the last ones it saw.
 */
export class WatchEncoder<T> {
  private first = true;

  constructor(
    private readonly kind: Kind<T>,
    private readonly want: Want,
    private readonly now: () => number,
  ) {}

  event(type: WatchEventType, obj: T | undefined, revision: number, initialEventsEnd = false): string {
    return `${JSON.stringify({ type, object: this.object(type, obj, revision, initialEventsEnd) })}\n`;
  }

  private object(type: WatchEventType, obj: T | undefined, revision: number, initialEventsEnd: boolean): object {
    const rv = String(revision);
    const { want, kind } = this;
    if (type === "BOOKMARK" || obj === undefined) {
      const metadata = { resourceVersion: rv, ...(initialEventsEnd && { annotations: { "k8s.io/initial-events-end": "true" } }) };
      if (want.as === "Table") return { ...table(want.apiVersion, undefined, [], rv), metadata };
      if (want.as === "PartialObjectMetadata") return { kind: "PartialObjectMetadata", apiVersion: want.apiVersion, metadata };
      return { kind: kind.info.kind, apiVersion: apiVersionOf(kind.info), metadata };
    }
    if (want.as === "Table") {
      const columns = this.first ? kind.table.columns : undefined;
      this.first = false;
      const r = row(kind, obj, want, this.now());
      if (type === "DELETED" && r.object) r.object = { ...r.object, metadata: { ...metadataOf(r.object), resourceVersion: rv } };
      return table(want.apiVersion, columns, [r], rv);
    }
    const out = formatOne(kind, obj, want, this.now()) as JsonObject;
    return type === "DELETED" ? { ...out, metadata: { ...metadataOf(out), resourceVersion: rv } } : out;
  }
}
