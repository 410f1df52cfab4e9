/**
 * NodeRestriction: what a node may change about its own Node, after the authorizer has let it
 * write that Node at all (Kubernetes' NodeRestriction admission plugin, plus `unschedulable`).
 * A node may not
 * - set or change labels under `node-restriction.kubernetes.io/`, nor `kubernetes.io` / `k8s.io`
 *   labels outside the kubelet's own set (hostname, os, arch, instance type, zone, region,
 *   and anything under `kubelet.kubernetes.io/` or `node.kubernetes.io/`);
 * - change its taints once the Node exists (it may register with taints);
 * - set `spec.unschedulable` (cordoning is an operator's act), change its pod CIDRs, or
 *   change a provider id once set.
 *
 * The check compares the Node as stored with the Node the write would produce; for Register
 * that is the registry's own reconciliation (reconcileRegistration), so what is judged is
 * exactly what would be written.
 */
import { PermissionDeniedError } from "../errors.js";
import type { Node, Taint } from "../gen/nodeplane/v1/node.js";
import { type FullNode, fullNode } from "../model/node.js";
import { reconcileRegistration } from "../registry/reconcile.js";
import { describeIdentity, type Identity } from "./identity.js";

/** Labels a node may set on itself in the kubernetes.io / k8s.io namespaces (the kubelet's set). */
const KUBELET_LABELS = new Set([
  "kubernetes.io/hostname",
  "kubernetes.io/os",
  "kubernetes.io/arch",
  "beta.kubernetes.io/os",
  "beta.kubernetes.io/arch",
  "beta.kubernetes.io/instance-type",
  "node.kubernetes.io/instance-type",
  "topology.kubernetes.io/zone",
  "topology.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
  "failure-domain.beta.kubernetes.io/region",
]);
const KUBELET_LABEL_NAMESPACES = ["kubelet.kubernetes.io", "node.kubernetes.io"];

const namespaceOf = (key: string): string => (key.includes("/") ? key.slice(0, key.indexOf("/")) : "");
const inNamespace = (ns: string, base: string): boolean => ns === base || ns.endsWith(`.${base}`);

/** Why a node may not set this label key, or undefined when it may. */
function forbiddenNodeLabel(key: string): string | undefined {
  const ns = namespaceOf(key);
  if (inNamespace(ns, "node-restriction.kubernetes.io")) return "node-restriction.kubernetes.io labels are set by operators only";
  const kubernetes = inNamespace(ns, "kubernetes.io") || inNamespace(ns, "k8s.io");
  if (kubernetes && !KUBELET_LABELS.has(key) && !KUBELET_LABEL_NAMESPACES.some((allowed) => inNamespace(ns, allowed))) {
    return "kubernetes.io and k8s.io labels outside the kubelet's set are set by operators only";
  }
  return undefined;
}

export type NodeWrite = "Register" | "CreateNode" | "UpdateNode";

/**
 * May node `identity` make this write to its own Node? Undefined when it may (or when the write
 * will fail for another reason the registry reports: CreateNode of an existing node, UpdateNode
 * of a missing one), else the PermissionDeniedError to answer with.
 */
export function admitNodeWrite(identity: Identity, write: NodeWrite, request: Node | undefined, stored: Node | undefined, now: Date): PermissionDeniedError | undefined {
  const requested = fullNode(request);
  const before = stored === undefined ? undefined : fullNode(stored);
  if ((write === "CreateNode" && before) || (write === "UpdateNode" && !before)) return undefined;
  const problems: string[] = [];
  if (!before) {
    for (const key of Object.keys(requested.metadata.labels)) {
      const why = forbiddenNodeLabel(key);
      if (why) problems.push(`may not set label ${JSON.stringify(key)} (${why})`);
    }
    if (requested.spec.unschedulable) problems.push("may not register itself unschedulable (cordoning is for operators)");
  } else {
    const after: FullNode =
      write === "Register" ? reconcileRegistration(before, requested, now) : { ...before, metadata: { ...before.metadata, labels: requested.metadata.labels }, spec: requested.spec };
    for (const key of changedKeys(before.metadata.labels, after.metadata.labels)) {
      const why = forbiddenNodeLabel(key);
      if (why) problems.push(`may not change label ${JSON.stringify(key)} (${why})`);
    }
    if (taintSet(before.spec.taints) !== taintSet(after.spec.taints)) problems.push("may not change its taints once it exists (taints are for operators and controllers)");
    if (before.spec.unschedulable !== after.spec.unschedulable) problems.push("may not change spec.unschedulable (cordoning is for operators)");
    if (before.spec.podCidrs.join(",") !== after.spec.podCidrs.join(",") || before.spec.podCidr !== after.spec.podCidr) problems.push("may not change its pod CIDRs");
    if (before.spec.providerId !== "" && before.spec.providerId !== after.spec.providerId) problems.push("may not change spec.provider_id once set");
  }
  if (problems.length === 0) return undefined;
  const verb = before ? "update" : "create";
  return new PermissionDeniedError(`${describeIdentity(identity)} cannot ${verb} node ${JSON.stringify(requested.metadata.name)}: NodeRestriction: ${problems.join("; ")}`);
}

function changedKeys(a: Record<string, string>, b: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const get = (m: Record<string, string>, k: string): string | undefined => (Object.hasOwn(m, k) ? m[k] : undefined);
  return [...keys].filter((k) => get(a, k) !== get(b, k)).sort();
}

/** Taints compared by key, value and effect (not their time stamps). */
const taintSet = (taints: readonly Taint[]): string =>
  taints
    .map((t) => `${t.key}=${t.value}:${t.effect}`)
    .sort()
    .join(",");
