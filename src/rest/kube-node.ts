/**
 * A Node in Kubernetes' core/v1 JSON and back. The generated types are camelCase with Date
 * times and a bigint generation; Kubernetes' JSON has its own spellings (`podCIDRs`,
 * `providerID`, `machineID`, `daemonEndpoints.kubeletEndpoint.Port`), RFC 3339 times,
 * quantities as strings and omits empty fields. nodeplane's `nodeInfo.agentVersion` is
 * Kubernetes' `kubeletVersion` (kubectl's VERSION column and describe's "Kubelet Version").
 *
 * Reading is strict about types and reports unknown fields (see kube-json.ts); Kubernetes
 * fields nodeplane does not keep (finalizers, images, volumes…) are accepted and dropped.
 */
import type { ObjectMeta } from "../gen/nodeplane/v1/meta.js";
import type { Node, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Taint } from "../gen/nodeplane/v1/node.js";
import { compact, type DecodeReport, Fields, formatSeconds, formatTime, type JsonObject } from "./kube-json.js";

/** Kubernetes' metadata of a stored object (shared by Node, Lease and PartialObjectMetadata). */
export function metaToKube(meta: ObjectMeta | undefined): JsonObject {
  const m = meta;
  const out = compact({
    name: m?.name,
    namespace: m?.namespace,
    uid: m?.uid,
    resourceVersion: m?.resourceVersion,
    generation: m && m.generation > 0n ? Number(m.generation) : undefined,
    creationTimestamp: formatSeconds(m?.creationTimestamp),
    labels: m?.labels,
    annotations: m?.annotations,
    ownerReferences: m?.ownerReferences.map((o) =>
      // A node's Lease names its Node as Kubernetes does (core "v1"), so tools can follow it.
      compact({ apiVersion: o.kind === "Node" && o.apiVersion === "nodeplane.io/v1" ? "v1" : o.apiVersion, kind: o.kind, name: o.name, uid: o.uid, controller: o.controller }),
    ),
  });
  return out as JsonObject;
}

function taintToKube(t: Taint): JsonObject {
  return { key: t.key, ...(t.value && { value: t.value }), effect: t.effect, ...(t.timeAdded && { timeAdded: formatTime(t.timeAdded)! }) };
}

function conditionToKube(c: NodeCondition): JsonObject {
  return compact({
    type: c.type,
    status: c.status,
    lastHeartbeatTime: formatTime(c.lastHeartbeatTime),
    lastTransitionTime: formatTime(c.lastTransitionTime),
    reason: c.reason,
    message: c.message,
  }) as JsonObject;
}

function nodeInfoToKube(i: NodeSystemInfo | undefined): JsonObject {
  // Every field is present in Kubernetes' NodeSystemInfo (none is omitempty).
  return {
    machineID: i?.machineId ?? "",
    systemUUID: i?.systemUuid ?? "",
    bootID: i?.bootId ?? "",
    kernelVersion: i?.kernelVersion ?? "",
    osImage: i?.osImage ?? "",
    containerRuntimeVersion: i?.containerRuntimeVersion ?? "",
    kubeletVersion: i?.agentVersion ?? "",
    kubeProxyVersion: "",
    operatingSystem: i?.operatingSystem ?? "",
    architecture: i?.architecture ?? "",
  };
}

/** A Node as Kubernetes' JSON. */
export function nodeToKube(node: Node): JsonObject {
  const spec = node.spec;
  const status = node.status;
  return {
    kind: "Node",
    apiVersion: "v1",
    metadata: metaToKube(node.metadata),
    spec: compact({
      podCIDR: spec?.podCidr,
      podCIDRs: spec?.podCidrs,
      providerID: spec?.providerId,
      unschedulable: spec?.unschedulable,
      taints: spec?.taints.map(taintToKube),
    }) as JsonObject,
    status: compact({
      capacity: status?.capacity,
      allocatable: status?.allocatable,
      conditions: status?.conditions.map(conditionToKube),
      addresses: status?.addresses.map((a) => ({ type: a.type, address: a.address })),
      daemonEndpoints: { kubeletEndpoint: { Port: status?.daemonEndpoints?.agentEndpoint?.port ?? 0 } },
      nodeInfo: nodeInfoToKube(status?.nodeInfo),
    }) as JsonObject,
  };
}

/** Metadata a client sends. Server-set fields are read (resourceVersion is a precondition) or skipped. */
function metaFromKube(f: Fields): ObjectMeta & { generateName: string } {
  const meta = {
    name: f.string("name"),
    namespace: f.string("namespace"),
    uid: f.string("uid"),
    resourceVersion: f.string("resourceVersion"),
    generation: 0n,
    creationTimestamp: undefined,
    labels: f.stringMap("labels"),
    annotations: f.stringMap("annotations"),
    ownerReferences: [],
    generateName: f.string("generateName"),
  };
  f.serverSet("generation", "creationTimestamp", "selfLink", "managedFields");
  f.ignore("finalizers", "ownerReferences", "deletionTimestamp", "deletionGracePeriodSeconds");
  return meta;
}

function specFromKube(f: Fields): NodeSpec {
  const spec: NodeSpec = {
    podCidr: f.string("podCIDR"),
    podCidrs: f.strings("podCIDRs"),
    providerId: f.string("providerID"),
    unschedulable: f.boolean("unschedulable"),
    taints: f.objects("taints", (t) => ({ key: t.string("key"), value: t.string("value"), effect: t.string("effect"), timeAdded: t.time("timeAdded") })),
  };
  f.ignore("configSource", "externalID");
  return spec;
}

function statusFromKube(f: Fields): NodeStatus {
  const status: NodeStatus = {
    capacity: f.stringMap("capacity", true),
    allocatable: f.stringMap("allocatable", true),
    addresses: f.objects("addresses", (a) => ({ type: a.string("type"), address: a.string("address") })),
    conditions: f.objects("conditions", (c) => ({
      type: c.string("type"),
      status: c.string("status"),
      lastHeartbeatTime: c.time("lastHeartbeatTime"),
      lastTransitionTime: c.time("lastTransitionTime"),
      reason: c.string("reason"),
      message: c.string("message"),
    })),
    nodeInfo: f.object("nodeInfo", (i) => {
      const info: NodeSystemInfo = {
        machineId: i.string("machineID"),
        systemUuid: i.string("systemUUID"),
        bootId: i.string("bootID"),
        kernelVersion: i.string("kernelVersion"),
        osImage: i.string("osImage"),
        containerRuntimeVersion: i.string("containerRuntimeVersion"),
        agentVersion: i.string("kubeletVersion"),
        operatingSystem: i.string("operatingSystem"),
        architecture: i.string("architecture"),
      };
      i.ignore("kubeProxyVersion", "swap");
      return info;
    }),
    daemonEndpoints: f.object("daemonEndpoints", (d) => ({
      agentEndpoint: d.object("kubeletEndpoint", (k) => ({ port: k.integer("Port") })),
    })),
  };
  f.ignore("phase", "images", "volumesInUse", "volumesAttached", "config", "runtimeHandlers", "features");
  return status;
}

/** The parts of a client's Node document, with its kind and apiVersion as written. */
export interface KubeNodeInput {
  node: Node & { metadata: ObjectMeta };
  kind: string;
  apiVersion: string;
  /** metadata.generateName: a prefix for a name the server makes up (create only). */
  generateName: string;
}

/** Read a client's Node (from a create, an update or a patched document). */
export function nodeFromKube(doc: unknown, report: DecodeReport): KubeNodeInput {
  const f = new Fields(doc, "", report);
  const kind = f.string("kind");
  const apiVersion = f.string("apiVersion");
  const { generateName, ...metadata } = f.object("metadata", metaFromKube);
  const node = { metadata, spec: f.object("spec", specFromKube), status: f.object("status", statusFromKube) };
  f.done();
  return { node, kind, apiVersion, generateName };
}

/** `t`, or the stored time it is a second-precision copy of (what a Go client writes back). */
function sameSecond(t: Date | undefined, stored: Date | undefined): Date | undefined {
  if (t === undefined || stored === undefined || t.getUTCMilliseconds() !== 0) return t;
  return Math.floor(stored.getTime() / 1000) * 1000 === t.getTime() ? stored : t;
}

/**
 * Kubernetes clients written in Go hold times at second precision: kubectl's taint sends the
 * whole `spec.taints` list back with each `timeAdded` cut to the second. A time that is the
 * stored one cut to the second is taken as the stored one, so a taint or a condition a client
 * did not change keeps its time exactly.
 */
export function keepStoredTimes(requested: Node, stored: Node): void {
  for (const t of requested.spec?.taints ?? []) {
    const old = stored.spec?.taints.find((o) => o.key === t.key && o.effect === t.effect);
    t.timeAdded = sameSecond(t.timeAdded, old?.timeAdded);
  }
  for (const c of requested.status?.conditions ?? []) {
    const old = stored.status?.conditions.find((o) => o.type === c.type);
    c.lastHeartbeatTime = sameSecond(c.lastHeartbeatTime, old?.lastHeartbeatTime);
    c.lastTransitionTime = sameSecond(c.lastTransitionTime, old?.lastTransitionTime);
  }
}

/**
 * A status written through the REST view replaces what Kubernetes' NodeStatus can express;
 * status fields it has no place for (nodeplane's own, added to the proto beside Kubernetes'
 * ones) are kept as stored, so a `PUT` or `PATCH` of `nodes/status` never erases them.
 */
export function withStoredExtras(requested: NodeStatus | undefined, stored: NodeStatus | undefined): NodeStatus | undefined {
  return requested && stored ? { ...stored, ...requested } : requested;
}
