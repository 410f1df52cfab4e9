/**
 * The taints the node lifecycle controller keeps in step with a node's conditions
 * (Kubernetes' taint-nodes-by-condition and taint-based eviction), as pure functions.
 */
import type { NodeCondition, Taint } from "../gen/nodeplane/v1/node.js";
import type { FullNode } from "../model/node.js";

const TAINT_NOT_READY = "node.kubernetes.io/not-ready";
const TAINT_UNREACHABLE = "node.kubernetes.io/unreachable";
const TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable";

/** The NoSchedule taint key for a condition's status, if any (a switch: this runs per node per pass). */
function conditionTaint(type: string, status: string): string | undefined {
  switch (type) {
    case "Ready":
      return status === "False" ? TAINT_NOT_READY : status === "Unknown" ? TAINT_UNREACHABLE : undefined;
    case "MemoryPressure":
      return status === "True" ? "node.kubernetes.io/memory-pressure" : undefined;
    case "DiskPressure":
      return status === "True" ? "node.kubernetes.io/disk-pressure" : undefined;
    case "PIDPressure":
      return status === "True" ? "node.kubernetes.io/pid-pressure" : undefined;
    case "NetworkUnavailable":
      return status === "True" ? "node.kubernetes.io/network-unavailable" : undefined;
    default:
      return undefined;
  }
}

/** Every NoSchedule taint key this controller owns. */
const NO_SCHEDULE_KEYS = new Set([
  TAINT_NOT_READY,
  TAINT_UNREACHABLE,
  "node.kubernetes.io/memory-pressure",
  "node.kubernetes.io/disk-pressure",
  "node.kubernetes.io/pid-pressure",
  "node.kubernetes.io/network-unavailable",
  TAINT_UNSCHEDULABLE,
]);

export function readyCondition(node: FullNode): NodeCondition | undefined {
  const conditions = node.status.conditions;
  for (let i = 0; i < conditions.length; i++) if (conditions[i]!.type === "Ready") return conditions[i];
  return undefined;
}

/** The NoSchedule taint keys a node should carry, from its conditions and spec.unschedulable. */
export function desiredNoScheduleKeys(node: FullNode): Set<string> {
  const keys = new Set<string>();
  for (const c of node.status.conditions) {
    const key = conditionTaint(c.type, c.status);
    if (key) keys.add(key);
  }
  if (node.spec.unschedulable) keys.add(TAINT_UNSCHEDULABLE);
  return keys;
}

/*
 * The checks every monitor pass makes of every node use indexed loops: the informer's nodes are
 * frozen (src/model/shared-node.ts), and V8 neither optimises a for-of over a frozen array nor
 * drops the closure handed to its some() or find(), so each of those allocated on every node of
 * every pass (at 100,000 nodes, tens of MB a second).
 */

function hasTaint(taints: readonly Taint[], key: string, effect: string): boolean {
  for (let i = 0; i < taints.length; i++) if (taints[i]!.key === key && taints[i]!.effect === effect) return true;
  return false;
}

/**
 * The fast check of every pass: are the node's controller-owned NoSchedule taints already what
 * its conditions and spec ask for? (No allocation in the common, healthy case.)
 */
export function noScheduleInStep(node: FullNode): boolean {
  let wanted = 0;
  const conditions = node.status.conditions;
  const taints = node.spec.taints;
  for (let i = 0; i < conditions.length; i++) {
    const key = conditionTaint(conditions[i]!.type, conditions[i]!.status);
    if (key === undefined) continue;
    wanted++;
    if (!hasTaint(taints, key, "NoSchedule")) return false;
  }
  if (node.spec.unschedulable) {
    wanted++;
    if (!hasTaint(taints, TAINT_UNSCHEDULABLE, "NoSchedule")) return false;
  }
  let owned = 0;
  for (let i = 0; i < taints.length; i++) if (taints[i]!.effect === "NoSchedule" && NO_SCHEDULE_KEYS.has(taints[i]!.key)) owned++;
  return owned === wanted;
}

/** The NoExecute taint a node should carry: not-ready for Ready False, unreachable for Unknown. */
export function desiredNoExecuteKey(node: FullNode): string | undefined {
  const ready = readyCondition(node);
  if (ready?.status === "False") return TAINT_NOT_READY;
  if (ready?.status === "Unknown") return TAINT_UNREACHABLE;
  return undefined;
}

export function noExecuteKeyOf(node: FullNode): string | undefined {
  const taints = node.spec.taints;
  for (let i = 0; i < taints.length; i++) {
    const t = taints[i]!;
    if (t.effect === "NoExecute" && (t.key === TAINT_NOT_READY || t.key === TAINT_UNREACHABLE)) return t.key;
  }
  return undefined;
}

export interface TaintChange {
  taints: Taint[];
  added: string[];
  removed: string[];
}

/**
 * The node's taints with the controller-owned NoSchedule taints made equal to `want`; other
 * taints untouched, in their order. Undefined when nothing changes.
 */
export function reconcileNoSchedule(node: FullNode, want: Set<string>): TaintChange | undefined {
  const removed: string[] = [];
  const present = new Set<string>();
  const taints = node.spec.taints.filter((t) => {
    if (t.effect !== "NoSchedule" || !NO_SCHEDULE_KEYS.has(t.key)) return true;
    if (want.has(t.key) && !present.has(t.key)) {
      present.add(t.key);
      return true;
    }
    removed.push(`${t.key}:NoSchedule`);
    return false;
  });
  const added = [...want].filter((k) => !present.has(k)).sort();
  if (added.length === 0 && removed.length === 0) return undefined;
  for (const key of added) taints.push({ key, value: "", effect: "NoSchedule", timeAdded: undefined });
  return { taints, added: added.map((k) => `${k}:NoSchedule`), removed };
}

/** The node's taints with its not-ready/unreachable NoExecute taint set to `want` (or none). */
export function withNoExecute(node: FullNode, want: string | undefined, now: Date): TaintChange | undefined {
  const current = noExecuteKeyOf(node);
  if (current === want) return undefined;
  const taints = node.spec.taints.filter(
    (t) => !(t.effect === "NoExecute" && (t.key === TAINT_NOT_READY || t.key === TAINT_UNREACHABLE)),
  );
  if (want) taints.push({ key: want, value: "", effect: "NoExecute", timeAdded: now });
  return {
    taints,
    added: want ? [`${want}:NoExecute`] : [],
    removed: current ? [`${current}:NoExecute`] : [],
  };
}
