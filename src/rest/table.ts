/**
 * Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for with
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. The columns and cells are
 * Kubernetes' own (pkg/printers/internalversion): for nodes Name, Status, Roles, Age, Version
 * and, at priority 1 (`-o wide`), Internal-IP, External-IP, OS-Image, Kernel-Version,
 * Container-Runtime. Cells are computed here, at the server's `now`; kubectl only lays them
 * out. The cell rules are src/model/columns.ts (nodectl prints with them too), which follow kubectl's.
 */
import type { Event } from "../gen/nodeplane/v1/event.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import { nodeRow } from "../model/columns.js";
import { since } from "../model/columns.js";
import type { JsonObject } from "./kube-json.js";

export interface TableColumn {
  name: string;
  type: "string" | "integer";
  format: string;
  description: string;
  priority: number;
}

type Cell = string | number;

/** How a kind prints: its columns and one row's cells. */
export interface TableSpec<T> {
  columns: TableColumn[];
  cells(obj: T, now: number): Cell[];
}

const col = (name: string, description: string, priority = 0, format = "", type: TableColumn["type"] = "string"): TableColumn => ({
  name,
  type,
  format,
  description,
  priority,
});

const NAME = col("Name", "Name must be unique within a namespace.", 0, "name");
const AGE = col("Age", "CreationTimestamp is a timestamp representing the server time when this object was created.");

export const NODE_TABLE: TableSpec<Node> = {
  columns: [
    NAME,
    col("Status", "The status of the node"),
    col("Roles", "The roles of the node"),
    AGE,
    col("Version", "Kubelet Version reported by the node."),
    col("Internal-IP", "List of addresses reachable to the node.", 1),
    col("External-IP", "List of addresses reachable to the node.", 1),
    col("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
    col("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    col("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1),
  ],
  // nodectl's wide row is kubectl's without the container runtime.
  cells: (node, now) => [...nodeRow(node, now, { output: "wide" }), node.status?.nodeInfo?.containerRuntimeVersion || "<unknown>"],
};

export const LEASE_TABLE: TableSpec<Lease> = {
  columns: [NAME, col("Holder", "holderIdentity contains the identity of the holder of a current lease."), AGE],
  cells: (lease, now) => [lease.metadata?.name ?? "", lease.spec?.holderIdentity ?? "", since(lease.metadata?.creationTimestamp, now)],
};

export const EVENT_TABLE: TableSpec<Event> = {
  columns: [
    col("Last Seen", "The last time the event was seen"),
    col("Type", "The type of the event"),
    col("Reason", "The reason of the event"),
    col("Object", "The object the event is about"),
    col("Subobject", "The subobject the event is about", 1),
    col("Source", "The source of the event", 1),
    col("Message", "The message of the event"),
    col("First Seen", "The first time the event was seen", 1),
    col("Count", "The number of times the event was seen", 1, "", "integer"),
    col("Name", "The name of the event", 1, "name"),
  ],
  cells: (ev, now) => [
    since(ev.lastTimestamp, now),
    ev.type,
    ev.reason,
    ev.nodeName ? `node/${ev.nodeName}` : "cluster/cluster",
    "",
    ev.source,
    ev.message,
    since(ev.firstTimestamp, now),
    ev.count,
    ev.metadata?.name ?? "",
  ],
};

/** Pods: only the columns (nodeplane holds no pods, so the table has no rows). */
export const POD_COLUMNS: TableColumn[] = [
  NAME,
  col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
  col("Status", "The aggregate status of the containers in this pod."),
  col("Restarts", "The number of times the containers in this pod have been restarted.", 0, "", "integer"),
  AGE,
];

/** What each row carries besides its cells (the request's `includeObject`). */
export type IncludeObject = "None" | "Metadata" | "Object";

export interface TableRow {
  cells: Cell[];
  object?: JsonObject;
}

/** A Table; `columns` is omitted in watch events after the first (kubectl reuses the last ones). */
export function table(apiVersion: string, columns: TableColumn[] | undefined, rows: TableRow[], resourceVersion: string, continueToken = ""): object {
  return {
    kind: "Table",
    apiVersion,
    metadata: { resourceVersion, ...(continueToken && { continue: continueToken }) },
    ...(columns && { columnDefinitions: columns }),
    rows,
  };
}
