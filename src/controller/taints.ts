/**
 * The taints the node lifecycle controller keeps in step with a node's conditions
 * (Kubernetes' taint-nodes-by-condition and taint-based eviction), as pure functions.
 */
import type { NodeCondition, Taint } from "../gen/nodeplane/v1/node.js";
import type { FullNode } from "../registry/reconcile.js";

export const TAINT_NOT_READY = "node.kubernetes.io/not-ready";
export const TAINT_UNREACHABLE = "node.kubernetes.io/unreachable";
const TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable";

/** condition type → status → NoSchedule taint key. */
const CONDITION_TAINTS: Record<string, Record<string, string>> = {
  Ready: { False: TAINT_NOT_READY, Unknown: TAINT_UNREACHABLE },
  MemoryPressure: { True: "node.kubernetes.io/memory-pressure" },
  DiskPressure: { True: "node.kubernetes.io/disk-pressure" },
  PIDPressure: { True: "node.kubernetes.io/pid-pressure" },
  NetworkUnavailable: { True: "node.kubernetes.io/network-unavailable" },
};

/** Every NoSchedule taint key this controller owns. */
const NO_SCHEDULE_KEYS = new Set([
  ...Object.values(CONDITION_TAINTS).flatMap((byStatus) => Object.values(byStatus)),
  TAINT_UNSCHEDULABLE,
]);

export function readyCondition(node: FullNode): NodeCondition | undefined {
  return node.status.conditions.find((c) => c.type === "Ready");
}

/** The NoSchedule taint keys a node should carry, from its conditions and spec.unschedulable. */
export function desiredNoScheduleKeys(node: FullNode): Set<string> {
  const keys = new Set<string>();
  for (const c of node.status.conditions) {
    const key = CONDITION_TAINTS[c.type]?.[c.status];
    if (key) keys.add(key);
  }
  if (node.spec.unschedulable) keys.add(TAINT_UNSCHEDULABLE);
  return keys;
}

/** The NoExecute taint a node should carry: not-ready for Ready False, unreachable for Unknown. */
export function desiredNoExecuteKey(node: FullNode): string | undefined {
  const ready = readyCondition(node);
  if (ready?.status === "False") return TAINT_NOT_READY;
  if (ready?.status === "Unknown") return TAINT_UNREACHABLE;
  return undefined;
}

export function noExecuteKeyOf(node: FullNode): string | undefined {
  return node.spec.taints.find((t) => t.effect === "NoExecute" && (t.key === TAINT_NOT_READY || t.key === TAINT_UNREACHABLE))?.key;
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
