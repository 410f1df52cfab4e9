/**
 * Discovery, as kubectl walks it before anything else: `/version`, then `/api` and `/apis`
 * (legacy JSON discovery: kubectl asks for the aggregated form first and accepts plain
 * `application/json`; a 404 on either breaks it), then the resource lists of `/api/v1` and
 * `/apis/coordination.k8s.io/v1` with kinds, verbs and short names (`kubectl get no`).
 *
 * `/version` reports a Kubernetes-shaped version: major "1" and a numeric minor. kubectl on
 * these machines is a dispatcher that runs the kubectl binary matching the server's minor
 * version (1.27–1.33 are installed), and every kubectl compares it with its own for the skew
 * warning; nodeplane serves the node API of Kubernetes 1.32.
 */
import type { RestResource, RestVerb } from "./access.js";

/** The Kubernetes release whose node API nodeplane serves. */
export const KUBE_MAJOR = "1";
export const KUBE_MINOR = "32";

function versionInfo(): object {
  return {
    major: KUBE_MAJOR,
    minor: KUBE_MINOR,
    gitVersion: `v${KUBE_MAJOR}.${KUBE_MINOR}.0-nodeplane`,
    gitCommit: "",
    gitTreeState: "clean",
    buildDate: "1970-01-01T00:00:00Z",
    goVersion: "",
    compiler: "nodeplane",
    platform: `${process.platform}/${process.arch === "x64" ? "amd64" : process.arch}`,
  };
}

/** One served resource: how discovery lists it and how the router finds it. */
export interface ResourceInfo {
  /** The resource (and subresource) as authorization names it. */
  resource: RestResource;
  /** The plural name in URLs ("nodes/status" for the subresource). */
  name: string;
  singularName: string;
  namespaced: boolean;
  kind: string;
  group: string;
  version: string;
  verbs: RestVerb[];
  shortNames?: string[];
}

export const NODES: ResourceInfo = {
  resource: "nodes",
  name: "nodes",
  singularName: "node",
  namespaced: false,
  kind: "Node",
  group: "",
  version: "v1",
  verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  shortNames: ["no"],
};

export const NODE_STATUS: ResourceInfo = { ...NODES, resource: "nodes/status", name: "nodes/status", singularName: "", verbs: ["get", "patch", "update"], shortNames: undefined };

export const EVENTS: ResourceInfo = {
  resource: "events",
  name: "events",
  singularName: "event",
  namespaced: true,
  kind: "Event",
  group: "",
  version: "v1",
  verbs: ["get", "list", "watch"],
  shortNames: ["ev"],
};

export const PODS: ResourceInfo = {
  resource: "pods",
  name: "pods",
  singularName: "pod",
  namespaced: true,
  kind: "Pod",
  group: "",
  version: "v1",
  verbs: ["get", "list"],
  shortNames: ["po"],
};

export const LEASES: ResourceInfo = {
  resource: "leases",
  name: "leases",
  singularName: "lease",
  namespaced: true,
  kind: "Lease",
  group: "coordination.k8s.io",
  version: "v1",
  verbs: ["get", "list", "watch"],
};

const COORDINATION = "coordination.k8s.io";

function resourceList(groupVersion: string, resources: ResourceInfo[]): object {
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion,
    resources: resources.map((r) => ({
      name: r.name,
      singularName: r.singularName,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: r.verbs,
      ...(r.shortNames && { shortNames: r.shortNames }),
    })),
  };
}

const coordinationGroup = {
  name: COORDINATION,
  versions: [{ groupVersion: `${COORDINATION}/v1`, version: "v1" }],
  preferredVersion: { groupVersion: `${COORDINATION}/v1`, version: "v1" },
};

/** The discovery document at `path`, or undefined when the path is not a discovery path. */
export function discovery(path: string, host: string): object | undefined {
  switch (path) {
    case "/version":
      return versionInfo();
    case "/api":
      return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: host }] };
    case "/api/v1":
      return resourceList("v1", [EVENTS, NODES, NODE_STATUS, PODS]);
    case "/apis":
      return { kind: "APIGroupList", apiVersion: "v1", groups: [coordinationGroup] };
    case `/apis/${COORDINATION}`:
      return { kind: "APIGroup", apiVersion: "v1", ...coordinationGroup };
    case `/apis/${COORDINATION}/v1`:
      return resourceList(`${COORDINATION}/v1`, [LEASES]);
    default:
      return undefined;
  }
}
