/**
 * Pure rules for how stored nodes change: condition transition times, the fields an agent
 * owns on re-registration, taint stamping. No I/O; the registry applies them under CAS.
 */
import type { NodeAddress, NodeCondition, NodeStatus, Taint } from "../gen/nodeplane/v1/node.js";
import type { FullNode } from "../model/node.js";

/** Label keys the agent set at its last registration (comma separated). */
const AGENT_LABELS_ANNOTATION = "nodeplane.io/agent-labels";
/** Taints (key:effect) the agent set at its last registration (comma separated). */
const AGENT_TAINTS_ANNOTATION = "nodeplane.io/agent-taints";
/** Address types the cloud provider set (comma separated): an agent's report does not replace them. */
const PROVIDER_ADDRESS_TYPES_ANNOTATION = "nodeplane.io/provider-address-types";

/**
 * The server keeps last_transition_time right: a condition whose status is unchanged keeps
 * the stored time; a new or changed one gets `now`. A missing heartbeat time is `now`.
 */
export function stampConditions(
  next: NodeCondition[],
  previous: NodeCondition[],
  now: Date,
): NodeCondition[] {
  const before = new Map(previous.map((c) => [c.type, c]));
  return next.map((c) => {
    const old = before.get(c.type);
    const unchanged = old !== undefined && old.status === c.status && old.lastTransitionTime;
    return {
      ...c,
      lastHeartbeatTime: c.lastHeartbeatTime ?? now,
      lastTransitionTime: unchanged ? old.lastTransitionTime : now,
    };
  });
}

/** NoExecute taints record when they were added (Kubernetes does the same). */
export function stampTaints(next: Taint[], previous: Taint[], now: Date): Taint[] {
  const before = new Map(previous.map((t) => [taintId(t), t]));
  return next.map((t) => {
    if (t.timeAdded) return t;
    const old = before.get(taintId(t));
    if (old?.timeAdded) return { ...t, timeAdded: old.timeAdded };
    return t.effect === "NoExecute" ? { ...t, timeAdded: now } : t;
  });
}

const taintId = (t: Taint): string => `${t.key}:${t.effect}`;

const MANAGED_ANNOTATIONS = [AGENT_LABELS_ANNOTATION, AGENT_TAINTS_ANNOTATION, PROVIDER_ADDRESS_TYPES_ANNOTATION];

/** Client-supplied annotations without the ones the server manages. */
export function withoutManaged(annotations: Record<string, string>): Record<string, string> {
  const out = { ...annotations };
  for (const key of MANAGED_ANNOTATIONS) delete out[key];
  return out;
}

/**
 * An operator's annotations, with the server-managed ones kept as stored: clients cannot
 * erase or forge the record of what the agent owns.
 */
export function keepManaged(requested: Record<string, string>, stored: Record<string, string>): Record<string, string> {
  const out = withoutManaged(requested);
  for (const key of MANAGED_ANNOTATIONS) if (Object.hasOwn(stored, key)) out[key] = stored[key]!;
  return out;
}

const splitList = (s: string | undefined): string[] => (s ? s.split(",").filter(Boolean) : []);

/** Record which labels and taints the agent owns, so a later registration can take them back. */
export function recordAgentOwnership(node: FullNode, agentLabels: string[], agentTaints: Taint[]): void {
  const meta = node.metadata;
  meta.annotations = {
    ...meta.annotations,
    [AGENT_LABELS_ANNOTATION]: [...agentLabels].sort().join(","),
    [AGENT_TAINTS_ANNOTATION]: agentTaints.map(taintId).sort().join(","),
  };
  if (agentLabels.length === 0) delete meta.annotations[AGENT_LABELS_ANNOTATION];
  if (agentTaints.length === 0) delete meta.annotations[AGENT_TAINTS_ANNOTATION];
}

/**
 * Re-registration of an existing node: the agent's labels, register-with taints, provider id
 * and status fields replace what it set before; what operators set (other labels,
 * unschedulable, other taints, annotations) stays. Conditions merge by type.
 */
export function reconcileRegistration(stored: FullNode, requested: FullNode, now: Date): FullNode {
  const meta = stored.metadata;
  const reqMeta = requested.metadata;
  const reqSpec = requested.spec;
  const spec = stored.spec;

  // Keep the stored order, so an unchanged registration rewrites nothing.
  const formerAgentLabels = new Set(splitList(meta.annotations[AGENT_LABELS_ANNOTATION]));
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(meta.labels)) {
    if (Object.hasOwn(reqMeta.labels, key)) labels[key] = reqMeta.labels[key]!;
    else if (!formerAgentLabels.has(key)) labels[key] = value;
  }
  for (const [key, value] of Object.entries(reqMeta.labels)) if (!Object.hasOwn(labels, key)) labels[key] = value;

  const formerAgentTaints = new Set(splitList(meta.annotations[AGENT_TAINTS_ANNOTATION]));
  const requestedTaints = new Map(stampTaints(reqSpec.taints, spec.taints, now).map((t) => [taintId(t), t]));
  const taints: Taint[] = [];
  for (const t of spec.taints) {
    const id = taintId(t);
    const wanted = requestedTaints.get(id);
    if (wanted) {
      taints.push(wanted);
      requestedTaints.delete(id);
    } else if (!formerAgentTaints.has(id)) {
      taints.push(t);
    }
  }
  taints.push(...requestedTaints.values());

  const out: FullNode = {
    metadata: { ...meta, labels, annotations: { ...withoutManaged(reqMeta.annotations), ...meta.annotations } },
    spec: {
      ...spec,
      providerId: reqSpec.providerId || spec.providerId,
      taints,
    },
    status: { ...mergeAgentStatus(stored.status, requested.status, now), addresses: keepProviderAddresses(requested.status.addresses, stored) },
  };
  recordAgentOwnership(out, Object.keys(reqMeta.labels), reqSpec.taints);
  return out;
}

function mergeAgentStatus(stored: NodeStatus, requested: NodeStatus, now: Date): NodeStatus {
  const previous = stored.conditions;
  const reported = stampConditions(requested.conditions, previous, now);
  const reportedTypes = new Set(reported.map((c) => c.type));
  return {
    ...requested,
    conditions: [...previous.filter((c) => !reportedTypes.has(c.type)), ...reported],
  };
}

/**
 * Addresses a cloud provider owns, as the kubelet leaves addresses an external cloud provider set:
 * the provider's addresses own their types (recorded in a managed annotation); a status report
 * (Register, UpdateStatus) keeps the stored addresses of those types and takes the reporter's of
 * the others. So an agent that reports only its InternalIP never drops the provider's ExternalIP,
 * and the node is not rewritten twice per report (issue 11, defect 9).
 */
export function keepProviderAddresses(reported: NodeAddress[], stored: FullNode): NodeAddress[] {
  const owned = new Set(splitList(stored.metadata.annotations[PROVIDER_ADDRESS_TYPES_ANNOTATION]));
  if (owned.size === 0) return reported;
  return [...stored.status.addresses.filter((a) => owned.has(a.type)), ...reported.filter((a) => !owned.has(a.type))];
}

/**
 * The node with the cloud provider's addresses: first, replacing every address of their types
 * and of the types the provider set before; then the node's own addresses of other types. The
 * provider's types are recorded for keepProviderAddresses.
 */
export function withProviderAddresses(stored: FullNode, provider: NodeAddress[]): FullNode {
  const meta = stored.metadata;
  const types = [...new Set(provider.map((a) => a.type))].sort();
  const replaced = new Set([...types, ...splitList(meta.annotations[PROVIDER_ADDRESS_TYPES_ANNOTATION])]);
  const annotations: Record<string, string> = { ...meta.annotations, [PROVIDER_ADDRESS_TYPES_ANNOTATION]: types.join(",") };
  if (types.length === 0) delete annotations[PROVIDER_ADDRESS_TYPES_ANNOTATION];
  return {
    metadata: { ...meta, annotations },
    spec: stored.spec,
    status: { ...stored.status, addresses: [...provider.map((a) => ({ ...a })), ...stored.status.addresses.filter((a) => !replaced.has(a.type))] },
  };
}

/** Whether setting the provider's addresses would change the node (cloud sync writes only then). */
export function providerAddressesDiffer(stored: FullNode, provider: NodeAddress[]): boolean {
  const next = withProviderAddresses(stored, provider);
  return (
    JSON.stringify(next.status.addresses) !== JSON.stringify(stored.status.addresses) ||
    next.metadata.annotations[PROVIDER_ADDRESS_TYPES_ANNOTATION] !== stored.metadata.annotations[PROVIDER_ADDRESS_TYPES_ANNOTATION]
  );
}
