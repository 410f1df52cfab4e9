/**
 * Kubernetes JSON and nodeplane's generated types (src/rest/kube-node.ts, kube-objects.ts,
 * kube-json.ts, field-names.ts): Kubernetes' spellings, RFC 3339 times, a lossless round trip,
 * unknown and dropped fields, and validation field paths in Kubernetes' names.
 */
import { describe, expect, it } from "vitest";
import { Event } from "../../src/gen/nodeplane/v1/event.js";
import { Lease } from "../../src/gen/nodeplane/v1/lease.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { kubeFieldPath } from "../../src/rest/field-names.js";
import { DecodeReport, formatMicroTime, formatSeconds, formatTime } from "../../src/rest/kube-json.js";
import { keepStoredTimes, nodeFromKube, nodeToKube, withStoredExtras } from "../../src/rest/kube-node.js";
import { eventToKube, leaseToKube } from "../../src/rest/kube-objects.js";

const t = (iso: string): Date => new Date(iso);

const NODE = Node.fromPartial({
  metadata: {
    name: "n1",
    uid: "u-1",
    resourceVersion: "42",
    generation: 3n,
    creationTimestamp: t("2024-05-01T12:00:00.250Z"),
    labels: { "kubernetes.io/os": "linux" },
    annotations: { note: "x" },
  },
  spec: {
    podCidr: "10.244.1.0/24",
    podCidrs: ["10.244.1.0/24", "fd00::/64"],
    providerId: "inventory://rack1/m1",
    unschedulable: true,
    taints: [
      { key: "dedicated", value: "gpu", effect: "NoSchedule" },
      { key: "node.kubernetes.io/unreachable", value: "", effect: "NoExecute", timeAdded: t("2024-05-01T12:00:01.123Z") },
    ],
  },
  status: {
    capacity: { cpu: "4", memory: "16Gi" },
    allocatable: { cpu: "3800m" },
    addresses: [{ type: "InternalIP", address: "10.0.0.7" }],
    conditions: [{ type: "Ready", status: "True", reason: "AgentReady", message: "ok", lastHeartbeatTime: t("2024-05-01T12:00:02.999Z"), lastTransitionTime: t("2024-05-01T12:00:00Z") }],
    nodeInfo: { machineId: "m", systemUuid: "s", bootId: "b", kernelVersion: "6.1", osImage: "Debian", containerRuntimeVersion: "none", agentVersion: "nodeplane-agent/0.1.0", operatingSystem: "linux", architecture: "amd64" },
    daemonEndpoints: { agentEndpoint: { port: 10250 } },
  },
});

describe("Node as Kubernetes JSON", () => {
  it("uses Kubernetes' field names, RFC 3339 times and omits what is empty", () => {
    expect(nodeToKube(NODE)).toEqual({
      kind: "Node",
      apiVersion: "v1",
      metadata: {
        name: "n1",
        uid: "u-1",
        resourceVersion: "42",
        generation: 3,
        creationTimestamp: "2024-05-01T12:00:00Z",
        labels: { "kubernetes.io/os": "linux" },
        annotations: { note: "x" },
      },
      spec: {
        podCIDR: "10.244.1.0/24",
        podCIDRs: ["10.244.1.0/24", "fd00::/64"],
        providerID: "inventory://rack1/m1",
        unschedulable: true,
        taints: [
          { key: "dedicated", value: "gpu", effect: "NoSchedule" },
          { key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: "2024-05-01T12:00:01.123Z" },
        ],
      },
      status: {
        capacity: { cpu: "4", memory: "16Gi" },
        allocatable: { cpu: "3800m" },
        conditions: [{ type: "Ready", status: "True", reason: "AgentReady", message: "ok", lastHeartbeatTime: "2024-05-01T12:00:02.999Z", lastTransitionTime: "2024-05-01T12:00:00Z" }],
        addresses: [{ type: "InternalIP", address: "10.0.0.7" }],
        daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
        nodeInfo: {
          machineID: "m",
          systemUUID: "s",
          bootID: "b",
          kernelVersion: "6.1",
          osImage: "Debian",
          containerRuntimeVersion: "none",
          kubeletVersion: "nodeplane-agent/0.1.0",
          kubeProxyVersion: "",
          operatingSystem: "linux",
          architecture: "amd64",
        },
      },
    });
  });

  it("reads back exactly what it wrote (spec, status, labels, annotations, precondition)", () => {
    const report = new DecodeReport("Strict");
    const { node, kind, apiVersion } = nodeFromKube(JSON.parse(JSON.stringify(nodeToKube(NODE))), report);
    expect(report.finish()).toEqual([]);
    expect({ kind, apiVersion }).toEqual({ kind: "Node", apiVersion: "v1" });
    expect(node.spec).toEqual(NODE.spec);
    expect(node.status).toEqual(NODE.status);
    expect(node.metadata).toMatchObject({ name: "n1", uid: "u-1", resourceVersion: "42", labels: NODE.metadata!.labels, annotations: NODE.metadata!.annotations });
  });

  it("reports unknown fields (Strict: an error), drops Kubernetes fields nodeplane does not keep, refuses wrong types", () => {
    const doc = { metadata: { name: "n", finalizers: ["f"], managedFields: [{}] }, spec: { unschedulabel: true }, status: { images: [{ names: ["x"] }], capacity: { cpu: 4 } } };
    const warn = new DecodeReport("Warn");
    expect(nodeFromKube(doc, warn).node.status?.capacity).toEqual({ cpu: "4" });
    expect(warn.finish()).toEqual(['unknown field "spec.unschedulabel"', "metadata.finalizers is not kept by nodeplane and was ignored", "status.images is not kept by nodeplane and was ignored"]);
    const strict = new DecodeReport("Strict");
    nodeFromKube(doc, strict);
    expect(() => strict.finish()).toThrow('strict decoding error: unknown field "spec.unschedulabel"');
    const ignore = new DecodeReport("Ignore");
    nodeFromKube(doc, ignore);
    expect(ignore.finish()).toEqual(["metadata.finalizers is not kept by nodeplane and was ignored", "status.images is not kept by nodeplane and was ignored"]);

    expect(() => nodeFromKube({ spec: { unschedulable: "yes" } }, new DecodeReport("Warn"))).toThrow('spec.unschedulable: expected a boolean, found string "yes"');
    expect(() => nodeFromKube({ spec: { taints: {} } }, new DecodeReport("Warn"))).toThrow("spec.taints: expected a list, found object");
    expect(() => nodeFromKube({ status: { conditions: [{ lastHeartbeatTime: "2024-13-45" }] } }, new DecodeReport("Warn"))).toThrow("status.conditions[0].lastHeartbeatTime: expected an RFC 3339 time");
    expect(() => nodeFromKube("a node", new DecodeReport("Warn"))).toThrow("the body: expected an object, found string");
  });

  it("a status written through REST keeps the stored fields Kubernetes' NodeStatus has no place for", () => {
    const stored = { ...NODE.status!, nodeplaneOnly: { zones: 2 } };
    const requested = nodeFromKube({ status: { capacity: { cpu: "8" } } }, new DecodeReport("Warn")).node.status;
    expect(withStoredExtras(requested, stored)).toEqual({ ...requested, nodeplaneOnly: { zones: 2 } });
    expect(withStoredExtras(requested, undefined)).toBe(requested);
  });

  it("a time a Go client cut to the second is taken as the stored one", () => {
    const stored = NODE;
    const fromGo = nodeFromKube({ spec: { taints: [{ key: "node.kubernetes.io/unreachable", effect: "NoExecute", timeAdded: "2024-05-01T12:00:01Z" }, { key: "new", effect: "NoExecute", timeAdded: "2024-05-01T12:00:01Z" }] } }, new DecodeReport("Warn")).node;
    keepStoredTimes(fromGo, stored);
    expect(fromGo.spec!.taints.map((x) => x.timeAdded?.toISOString())).toEqual(["2024-05-01T12:00:01.123Z", "2024-05-01T12:00:01.000Z"]);
  });
});

describe("Lease and Event as Kubernetes JSON", () => {
  it("a Lease: coordination.k8s.io/v1, MicroTime renew and acquire times, owned by its Node (core v1)", () => {
    const lease = Lease.fromPartial({
      metadata: { name: "n1", namespace: "kube-node-lease", resourceVersion: "7", ownerReferences: [{ apiVersion: "nodeplane.io/v1", kind: "Node", name: "n1", uid: "u-1" }] },
      spec: { holderIdentity: "n1", leaseDurationSeconds: 40, acquireTime: t("2024-05-01T12:00:00.5Z"), renewTime: t("2024-05-01T12:00:10.123Z"), leaseTransitions: 0 },
    });
    expect(leaseToKube(lease)).toEqual({
      kind: "Lease",
      apiVersion: "coordination.k8s.io/v1",
      metadata: { name: "n1", namespace: "kube-node-lease", resourceVersion: "7", ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "n1", uid: "u-1" }] },
      spec: { holderIdentity: "n1", leaseDurationSeconds: 40, acquireTime: "2024-05-01T12:00:00.500000Z", renewTime: "2024-05-01T12:00:10.123000Z", leaseTransitions: 0 },
    });
  });

  it("an Event: about its Node with the node's name as uid (what describe node searches for)", () => {
    const ev = Event.fromPartial({ metadata: { name: "n1.NodeNotReady", resourceVersion: "9" }, nodeName: "n1", type: "Warning", reason: "NodeNotReady", message: "m", source: "node-lifecycle-controller", firstTimestamp: t("2024-05-01T12:00:00.7Z"), lastTimestamp: t("2024-05-01T12:05:00Z"), count: 3 });
    expect(eventToKube(ev)).toMatchObject({
      kind: "Event",
      metadata: { name: "n1.NodeNotReady", namespace: "default", resourceVersion: "9" },
      involvedObject: { kind: "Node", apiVersion: "v1", name: "n1", uid: "n1" },
      source: { component: "node-lifecycle-controller" },
      firstTimestamp: "2024-05-01T12:00:00Z",
      lastTimestamp: "2024-05-01T12:05:00Z",
      count: 3,
      type: "Warning",
    });
  });
});

describe("times and field names", () => {
  it("formats Time, seconds-only Time and MicroTime", () => {
    expect(formatTime(t("2024-05-01T12:00:00Z"))).toBe("2024-05-01T12:00:00Z");
    expect(formatTime(t("2024-05-01T12:00:00.010Z"))).toBe("2024-05-01T12:00:00.010Z");
    expect(formatSeconds(t("2024-05-01T12:00:00.999Z"))).toBe("2024-05-01T12:00:00Z");
    expect(formatMicroTime(t("2024-05-01T12:00:00Z"))).toBe("2024-05-01T12:00:00.000000Z");
    expect(formatTime(undefined)).toBeUndefined();
  });

  it.each([
    ["metadata.name", "metadata.name"],
    ["spec.pod_cidrs[1]", "spec.podCIDRs[1]"],
    ["spec.provider_id", "spec.providerID"],
    ["spec.taints[0].time_added", "spec.taints[0].timeAdded"],
    ["status.node_info.agent_version", "status.nodeInfo.kubeletVersion"],
    ["status.daemon_endpoints.agent_endpoint.port", "status.daemonEndpoints.kubeletEndpoint.Port"],
    ['metadata.labels["a_b.c"]', 'metadata.labels["a_b.c"]'],
    ["node.metadata.resource_version", "metadata.resourceVersion"],
    ["resource_version", "metadata.resourceVersion"],
    ["label_selector", "labelSelector"],
  ])("%s is %s", (proto, kube) => {
    expect(kubeFieldPath(proto)).toBe(kube);
  });
});
