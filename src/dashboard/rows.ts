/**
 * What the dashboard sends the browser: nodes, leases and events cut down to what the fleet
 * view, the table and the event feed show (the detail view fetches the whole node). Each row
 * carries the store revision of its object's last change, so the browser can apply a change
 * only once whatever path it came by (snapshot, live frame, replay after a reconnect).
 *
 * Rows are plain JSON data. Every string in them is whatever a client sent: the page puts
 * them into the document as text only (see assets/dom.js).
 */
import type { Event } from "../gen/nodeplane/v1/event.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import { formatTaint, nodeRoles } from "../model/columns.js";
import { zoneName, zoneOf } from "../controller/zones.js";
import { fullNode } from "../model/node.js";

export interface NodeRow {
  name: string;
  rev: number;
  /** The Ready condition's status ("True", "False", "Unknown"), "" when never posted. */
  ready: string;
  /** The Ready condition's reason (AgentReady, NodeStatusUnknown, …). */
  reason: string;
  roles: string[];
  /** region/zone as the lifecycle controller names it ("(no zone)" for neither label). */
  zone: string;
  version: string;
  internalIP: string;
  podCIDRs: string[];
  /** key=value:Effect */
  taints: string[];
  cordoned: boolean;
  labels: Record<string, string>;
  /** Creation time, ms since the epoch (0 = unknown). */
  created: number;
}

export interface LeaseRow {
  name: string;
  rev: number;
  /** renew_time, ms since the epoch on the server's clock (0 = never). */
  renew: number;
  holder: string;
  durationSeconds: number;
}

export interface EventRow {
  /** The event's own name: unique, stable across repeats (the count grows). */
  key: string;
  rev: number;
  /** "" for an event about the cluster (a zone). */
  node: string;
  type: string;
  reason: string;
  message: string;
  count: number;
  /** First and last occurrence, ms since the epoch. */
  first: number;
  last: number;
}

export function nodeRow(node: Node): NodeRow {
  const n = fullNode(node);
  const ready = n.status.conditions.find((c) => c.type === "Ready");
  return {
    name: n.metadata.name,
    rev: Number(n.metadata.resourceVersion),
    ready: ready?.status ?? "",
    reason: ready?.reason ?? "",
    roles: nodeRoles(n),
    zone: zoneName(zoneOf(n)),
    version: n.status.nodeInfo?.agentVersion ?? "",
    internalIP: n.status.addresses.find((a) => a.type === "InternalIP")?.address ?? "",
    podCIDRs: n.spec.podCidrs.length > 0 ? n.spec.podCidrs : n.spec.podCidr ? [n.spec.podCidr] : [],
    taints: n.spec.taints.map(formatTaint),
    cordoned: n.spec.unschedulable,
    labels: n.metadata.labels,
    created: n.metadata.creationTimestamp?.getTime() ?? 0,
  };
}

export function leaseRow(lease: Lease): LeaseRow {
  return {
    name: lease.metadata?.name ?? "",
    rev: Number(lease.metadata?.resourceVersion ?? 0),
    renew: lease.spec?.renewTime?.getTime() ?? 0,
    holder: lease.spec?.holderIdentity ?? "",
    durationSeconds: lease.spec?.leaseDurationSeconds ?? 0,
  };
}

export function eventRow(ev: Event): EventRow {
  return {
    key: ev.metadata?.name ?? "",
    rev: Number(ev.metadata?.resourceVersion ?? 0),
    node: ev.nodeName,
    type: ev.type,
    reason: ev.reason,
    message: ev.message,
    count: ev.count,
    first: ev.firstTimestamp?.getTime() ?? 0,
    last: ev.lastTimestamp?.getTime() ?? 0,
  };
}
