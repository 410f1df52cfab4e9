/**
 * The read-only kinds of the REST view in Kubernetes JSON: a node's Lease
 * (coordination.k8s.io/v1, renew and acquire times as MicroTime), the node Events the
 * controllers record (core/v1 Event: `involvedObject` is the Node, with the node's name as its
 * uid as the kubelet does, so `kubectl describe node`'s event query finds them), lists, and
 * PartialObjectMetadata for clients that ask only for metadata.
 */
import type { Event } from "../gen/nodeplane/v1/event.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import { compact, formatMicroTime, formatSeconds, type JsonObject } from "./kube-json.js";
import { metaToKube } from "./kube-node.js";

/** Events live in this namespace, as node events do in Kubernetes. */
export const EVENT_NAMESPACE = "default";

export function leaseToKube(lease: Lease): JsonObject {
  const s = lease.spec;
  return {
    kind: "Lease",
    apiVersion: "coordination.k8s.io/v1",
    metadata: metaToKube(lease.metadata),
    spec: compact({
      holderIdentity: s?.holderIdentity,
      leaseDurationSeconds: s?.leaseDurationSeconds || undefined,
      acquireTime: formatMicroTime(s?.acquireTime),
      renewTime: formatMicroTime(s?.renewTime),
      leaseTransitions: s?.leaseTransitions,
    }) as JsonObject,
  };
}

/** The object an event is about: its node, or the cluster for events about zones. */
function involvedObject(ev: Event): JsonObject {
  if (!ev.nodeName) return { kind: "Cluster", apiVersion: "nodeplane.io/v1", name: "cluster" };
  return { kind: "Node", apiVersion: "v1", name: ev.nodeName, uid: ev.nodeName };
}

export function eventToKube(ev: Event): JsonObject {
  const meta = metaToKube(ev.metadata);
  return {
    kind: "Event",
    apiVersion: "v1",
    metadata: { ...meta, namespace: EVENT_NAMESPACE },
    involvedObject: involvedObject(ev),
    reason: ev.reason,
    message: ev.message,
    source: { component: ev.source },
    ...(ev.firstTimestamp && { firstTimestamp: formatSeconds(ev.firstTimestamp)! }),
    ...(ev.lastTimestamp && { lastTimestamp: formatSeconds(ev.lastTimestamp)! }),
    count: ev.count,
    type: ev.type,
    eventTime: null,
    reportingComponent: ev.source,
    reportingInstance: "",
  };
}

/** The fields an event's field selector can test (Kubernetes' event field set). */
export const EVENT_FIELD_NAMES = [
  "metadata.name",
  "metadata.namespace",
  "involvedObject.kind",
  "involvedObject.namespace",
  "involvedObject.name",
  "involvedObject.uid",
  "involvedObject.apiVersion",
  "involvedObject.resourceVersion",
  "involvedObject.fieldPath",
  "reason",
  "reportingComponent",
  "source",
  "type",
] as const;

/** The values of EVENT_FIELD_NAMES for one event (as Kubernetes JSON). */
export function eventFields(ev: JsonObject): Record<(typeof EVENT_FIELD_NAMES)[number], string> {
  const meta = ev.metadata as JsonObject;
  const inv = ev.involvedObject as JsonObject;
  const str = (v: unknown): string => (typeof v === "string" ? v : "");
  return {
    "metadata.name": str(meta.name),
    "metadata.namespace": str(meta.namespace),
    "involvedObject.kind": str(inv.kind),
    "involvedObject.namespace": str(inv.namespace),
    "involvedObject.name": str(inv.name),
    "involvedObject.uid": str(inv.uid),
    "involvedObject.apiVersion": str(inv.apiVersion),
    "involvedObject.resourceVersion": str(inv.resourceVersion),
    "involvedObject.fieldPath": str(inv.fieldPath),
    reason: str(ev.reason),
    reportingComponent: str(ev.reportingComponent),
    source: str((ev.source as JsonObject).component),
    type: str(ev.type),
  };
}

/** The values a lease's field selector can test. */
export function leaseFields(lease: Lease): Record<string, string> {
  return { "metadata.name": lease.metadata?.name ?? "", "metadata.namespace": lease.metadata?.namespace ?? "" };
}

/** A `<Kind>List`. */
export function listOf(kind: string, apiVersion: string, items: JsonObject[], resourceVersion: string, continueToken = ""): JsonObject {
  return { kind: `${kind}List`, apiVersion, metadata: { resourceVersion, ...(continueToken && { continue: continueToken }) }, items };
}
