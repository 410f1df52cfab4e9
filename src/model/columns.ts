/**
 * A node as Kubernetes prints it — kubectl's node columns (NAME, STATUS, ROLES, AGE, VERSION;
 * wide: addresses, OS image, kernel), roles from labels, taints and ages in kubectl's words —
 * as pure functions of the node and a `now` (ms since the epoch). Shared by nodectl, the REST
 * API's Table form and the dashboard, so all three say the same thing.
 */
import type { Node, Taint } from "../gen/nodeplane/v1/node.js";

const ROLE_PREFIX = "node-role.kubernetes.io/";
const ROLE_LABEL = "kubernetes.io/role";

export interface TableOptions {
  /** "" (default) or "wide". */
  output?: "" | "wide";
  showLabels?: boolean;
  noHeaders?: boolean;
}

/** Roles from node-role.kubernetes.io/<role> (and kubernetes.io/role=<role>) labels, sorted. */
export function nodeRoles(node: Node): string[] {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(node.metadata?.labels ?? {})) {
    if (k.startsWith(ROLE_PREFIX) && k.length > ROLE_PREFIX.length) roles.add(k.slice(ROLE_PREFIX.length));
    else if (k === ROLE_LABEL && v !== "") roles.add(v);
  }
  return [...roles].sort(compare);
}

/**
 * kubectl's STATUS: "Ready" when the Ready condition is True, "NotReady" when it is False or
 * Unknown, "Unknown" when the node has no Ready condition; ",SchedulingDisabled" when cordoned.
 */
export function nodeStatus(node: Node): string {
  const ready = node.status?.conditions.find((c) => c.type === "Ready");
  const parts = [ready === undefined ? "Unknown" : ready.status === "True" ? "Ready" : "NotReady"];
  if (node.spec?.unschedulable) parts.push("SchedulingDisabled");
  return parts.join(",");
}

/** k=v,… sorted by key, "<none>" when there are none (labels.FormatLabels). */
export function formatLabels(labels: Record<string, string> | undefined): string {
  const keys = Object.keys(labels ?? {}).sort(compare);
  return keys.length === 0 ? "<none>" : keys.map((k) => `${k}=${labels![k]}`).join(",");
}

/** key=value:Effect, or key:Effect for an empty value (Taint.ToString). */
export function formatTaint(t: Pick<Taint, "key" | "value" | "effect">): string {
  const effect = t.effect ? `:${t.effect}` : "";
  return t.value ? `${t.key}=${t.value}${effect}` : `${t.key}${effect}`;
}

function address(node: Node, type: string): string {
  return node.status?.addresses.find((a) => a.type === type)?.address || "<none>";
}

export function nodeHeader(opts: TableOptions = {}): string[] {
  const cols = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"];
  if (opts.output === "wide") cols.push("INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION");
  if (opts.showLabels) cols.push("LABELS");
  return cols;
}

/** One row of `get nodes` (kubectl's printNode). */
export function nodeRow(node: Node, now: number, opts: TableOptions = {}): string[] {
  const roles = nodeRoles(node);
  const info = node.status?.nodeInfo;
  const cells = [
    node.metadata?.name ?? "",
    nodeStatus(node),
    roles.length > 0 ? roles.join(",") : "<none>",
    since(node.metadata?.creationTimestamp, now),
    info?.agentVersion ?? "",
  ];
  if (opts.output === "wide") {
    cells.push(address(node, "InternalIP"), address(node, "ExternalIP"), info?.osImage || "<unknown>", info?.kernelVersion || "<unknown>");
  }
  if (opts.showLabels) cells.push(formatLabels(node.metadata?.labels));
  return cells;
}

/** kubectl's translateTimestampSince: the age of a timestamp, "<unknown>" when unset. */
export function since(time: Date | undefined, now: number): string {
  return time ? humanDuration(now - time.getTime()) : "<unknown>";
}

/**
 * Kubernetes' duration.HumanDuration: "45s", "5m", "3h", "2d", with a second unit while the
 * first is small ("1m30s" up to 10 minutes, "3h20m" up to 8 hours, "2d5h" up to 8 days).
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const days = Math.trunc(hours / 24);
    const dy = days % 365;
    return dy === 0 ? `${Math.trunc(days / 365)}y` : `${Math.trunc(days / 365)}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}


/** Byte-order comparison of names (kubectl sorts this way). */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
