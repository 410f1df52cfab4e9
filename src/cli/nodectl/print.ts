/**
 * What nodectl prints, as pure functions of the objects and a `now` (ms since the epoch):
 * kubectl's node table (default, wide, --show-labels), `describe node`, the lease table, and
 * the API-shaped JSON and YAML. No I/O and no clock here, so the output can be golden-tested.
 */
import { stringify as toYaml } from "yaml";
import type { Event } from "../../gen/nodeplane/v1/event.js";
import { Lease } from "../../gen/nodeplane/v1/lease.js";
import { Node, type NodeTopology, type Taint } from "../../gen/nodeplane/v1/node.js";
import { DESCRIBE, formatTable, rfc1123, tabwrite } from "./table.js";
import { compare, formatTaint, nodeHeader, nodeRoles, nodeRow, since, type TableOptions } from "../../model/columns.js";

/** The annotation `apply` keeps its last manifest in (describe hides it, as kubectl does). */
export const LAST_APPLIED_ANNOTATION = "nodectl.nodeplane.io/last-applied-configuration";

export type OutputFormat = "" | "wide" | "json" | "yaml" | "name";

/** `get nodes` as a table. */
export function printNodeTable(nodes: readonly Node[], now: number, opts: TableOptions = {}): string {
  const rows = nodes.map((n) => nodeRow(n, now, opts));
  return formatTable(opts.noHeaders ? rows : [nodeHeader(opts), ...rows]);
}

/** `get leases`: NAME, HOLDER, AGE (since the last renewal). */
export function printLeaseTable(leases: readonly Lease[], now: number, opts: { noHeaders?: boolean } = {}): string {
  const rows = leases.map((l) => [l.metadata?.name ?? "", l.spec?.holderIdentity || "<none>", since(l.spec?.renewTime, now)]);
  return formatTable(opts.noHeaders ? rows : [["NAME", "HOLDER", "AGE"], ...rows]);
}

/** A node in API shape: the proto's canonical JSON (lowerCamelCase names, as grpcurl shows them). */
export function nodeToJSON(node: Node): unknown {
  return Node.toJSON(node);
}

/** Objects as JSON (kubectl's 4-space indent): one object alone, or a `<kind>List` of them. */
function printJSON(items: readonly unknown[], list: { kind: string } | undefined): string {
  const doc = list ? { kind: list.kind, items } : items[0];
  return JSON.stringify(doc, null, 4) + "\n";
}

/** The same as YAML (sequences not indented, no line folding: kubectl's style). */
export function printYAML(items: readonly unknown[], list: { kind: string } | undefined): string {
  const doc = list ? { kind: list.kind, items } : items[0];
  return toYaml(doc, { indentSeq: false, lineWidth: 0 });
}

/** Nodes as `-o json|yaml|name`: several as a NodeList, one as itself when `single`. */
export function printNodes(nodes: readonly Node[], format: "json" | "yaml" | "name", single: boolean): string {
  if (format === "name") return nodes.map((n) => `node/${n.metadata?.name ?? ""}\n`).join("");
  const items = nodes.map(nodeToJSON);
  const list = single && items.length === 1 ? undefined : { kind: "NodeList" };
  return format === "json" ? printJSON(items, list) : printYAML(items, list);
}

/** Leases as `-o json|yaml|name`. */
export function printLeases(leases: readonly Lease[], format: "json" | "yaml" | "name", single: boolean): string {
  if (format === "name") return leases.map((l) => `lease/${l.metadata?.name ?? ""}\n`).join("");
  const items = leases.map((l) => Lease.toJSON(l));
  const list = single && items.length === 1 ? undefined : { kind: "LeaseList" };
  return format === "json" ? printJSON(items, list) : printYAML(items, list);
}

const MAX_ANNOTATION_LEN = 140;

function shorten(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/** "Title:\tk=v" then "\tk2=v2" lines (printLabelsMultiline). */
function labelsBlock(title: string, labels: Record<string, string> | undefined): string {
  const keys = Object.keys(labels ?? {}).sort(compare);
  if (keys.length === 0) return `${title}:\t<none>\n`;
  return keys.map((k, i) => `${i === 0 ? `${title}:` : ""}\t${k}=${labels![k]}\n`).join("");
}

/** "Annotations:\tk: v" lines; long or multi-line values below their key (printAnnotationsMultiline). */
function annotationsBlock(annotations: Record<string, string> | undefined): string {
  const keys = Object.keys(annotations ?? {})
    .filter((k) => k !== LAST_APPLIED_ANNOTATION)
    .sort(compare);
  if (keys.length === 0) return "Annotations:\t<none>\n";
  let out = "Annotations:\t";
  keys.forEach((key, i) => {
    if (i > 0) out += "\t";
    const value = annotations![key]!.replace(/\n$/, "");
    if (value.length + key.length + 2 > MAX_ANNOTATION_LEN || value.includes("\n")) {
      out += `${key}:\n`;
      for (const s of value.split("\n")) out += `\t  ${shorten(s, MAX_ANNOTATION_LEN - 2)}\n`;
    } else {
      out += `${key}: ${value}\n`;
    }
  });
  return out;
}

/** Taints sorted by effect then key, one a line (printTaintsMultiline). */
function taintsBlock(taints: readonly Taint[]): string {
  if (taints.length === 0) return "Taints:\t<none>\n";
  const sorted = [...taints].sort((a, b) => compare(`${a.effect},${a.key}`, `${b.effect},${b.key}`));
  return sorted.map((t, i) => `${i === 0 ? "Taints:" : ""}\t${formatTaint(t)}\n`).join("");
}

function resourcesBlock(title: string, resources: Record<string, string> | undefined): string {
  const names = Object.keys(resources ?? {}).sort(compare);
  if (names.length === 0) return "";
  return `${title}:\n` + names.map((n) => `  ${n}:\t${resources![n]}\n`).join("");
}

/**
 * The Topology section (nodeplane's own; kubectl has none): the TopologyManager's policy and
 * scope, the machine's sockets, cores and threads, and a table of its NUMA zones with their
 * distances in zone order (as numactl --hardware prints them). No zones: the layout is unknown.
 */
function topologyBlock(t: NodeTopology): string {
  let out = "Topology:\n";
  out += `  Topology Manager Policy:\t${t.topologyManagerPolicy}\n`;
  out += `  Topology Manager Scope:\t${t.topologyManagerScope}\n`;
  if (t.cpuCounts) {
    out += `  Sockets:\t${t.cpuCounts.sockets}\n`;
    out += `  Cores:\t${t.cpuCounts.cores}\n`;
    out += `  Threads:\t${t.cpuCounts.threads}\n`;
  }
  if (t.zones.length === 0) return out + "  NUMA Zones:\t<unknown>\n";
  out += "  NUMA Zones:\n    ID\tCPUs\tMemory\tSockets\tCores\tThreads\tDistances\n";
  out += "    --\t----\t------\t-------\t-----\t-------\t---------\n";
  for (const z of t.zones) {
    const c = z.cpuCounts;
    out += `    ${z.id}\t${z.cpus || "<none>"}\t${z.memory}\t${c?.sockets ?? 0}\t${c?.cores ?? 0}\t${c?.threads ?? 0}\t${z.distances.join(" ")}\n`;
  }
  return out;
}

/** The Events section (DescribeEvents): "<none>", or a table of Type, Reason, Age, From, Message. */
function eventsBlock(events: readonly Event[], now: number): string {
  if (events.length === 0) return "Events:\t<none>\n";
  const sorted = [...events].sort((a, b) => (a.lastTimestamp?.getTime() ?? 0) - (b.lastTimestamp?.getTime() ?? 0));
  let out = "Events:\n  Type\tReason\tAge\tFrom\tMessage\n";
  out += "  ----\t------\t----\t----\t-------\n";
  for (const e of sorted) {
    const first = since(e.firstTimestamp, now);
    const age = e.count > 1 ? `${since(e.lastTimestamp, now)} (x${e.count} over ${first})` : first;
    out += `  ${e.type}\t${e.reason}\t${age}\t${e.source}\t${e.message.trim()}\n`;
  }
  return out;
}

/**
 * `describe node`, laid out as kubectl's describeNode (one tabwriter over the whole text,
 * flushed before the events table). Times in UTC. `lease` undefined: the section is left out.
 */
export function describeNode(node: Node, lease: Lease | undefined, events: readonly Event[], now: number): string {
  const meta = node.metadata;
  const spec = node.spec;
  const status = node.status;
  const info = status?.nodeInfo;
  const roles = nodeRoles(node);
  let out = `Name:\t${meta?.name ?? ""}\n`;
  out += `Roles:\t${roles.length > 0 ? roles.join(",") : "<none>"}\n`;
  out += labelsBlock("Labels", meta?.labels);
  out += annotationsBlock(meta?.annotations);
  out += `CreationTimestamp:\t${rfc1123(meta?.creationTimestamp)}\n`;
  out += taintsBlock(spec?.taints ?? []);
  out += `Unschedulable:\t${spec?.unschedulable ?? false}\n`;
  if (lease) {
    out += "Lease:\n";
    out += `  HolderIdentity:\t${lease.spec?.holderIdentity || "<unset>"}\n`;
    out += `  AcquireTime:\t${rfc1123(lease.spec?.acquireTime)}\n`;
    out += `  RenewTime:\t${rfc1123(lease.spec?.renewTime)}\n`;
  }
  const conditions = status?.conditions ?? [];
  if (conditions.length > 0) {
    out += "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n";
    out += "  ----\t------\t-----------------\t------------------\t------\t-------\n";
    for (const c of conditions) {
      out += `  ${c.type} \t${c.status} \t${rfc1123(c.lastHeartbeatTime)} \t${rfc1123(c.lastTransitionTime)} \t${c.reason} \t${c.message}\n`;
    }
  }
  out += "Addresses:\n";
  for (const a of status?.addresses ?? []) out += `  ${a.type}:\t${a.address}\n`;
  out += resourcesBlock("Capacity", status?.capacity);
  out += resourcesBlock("Allocatable", status?.allocatable);
  if (status?.topology) out += topologyBlock(status.topology);
  out += "System Info:\n";
  out += `  Machine ID:\t${info?.machineId ?? ""}\n`;
  out += `  System UUID:\t${info?.systemUuid ?? ""}\n`;
  out += `  Boot ID:\t${info?.bootId ?? ""}\n`;
  out += `  Kernel Version:\t${info?.kernelVersion ?? ""}\n`;
  out += `  OS Image:\t${info?.osImage ?? ""}\n`;
  out += `  Operating System:\t${info?.operatingSystem ?? ""}\n`;
  out += `  Architecture:\t${info?.architecture ?? ""}\n`;
  out += `  Container Runtime Version:\t${info?.containerRuntimeVersion ?? ""}\n`;
  out += `  Agent Version:\t${info?.agentVersion ?? ""}\n`;
  if (spec?.podCidr) out += `PodCIDR:\t${spec.podCidr}\n`;
  if (spec?.podCidrs.length) out += `PodCIDRs:\t${spec.podCidrs.join(",")}\n`;
  if (spec?.providerId) out += `ProviderID:\t${spec.providerId}\n`;
  if (events.length === 0) return tabwrite(out + eventsBlock(events, now), DESCRIBE);
  // kubectl flushes its tabwriter before the events table: it is aligned on its own.
  return tabwrite(out, DESCRIBE) + tabwrite(eventsBlock(events, now), DESCRIBE);
}

/** Several descriptions, separated as kubectl separates them. */
export function joinDescriptions(parts: readonly string[]): string {
  return parts.join("\n\n");
}

/** Keys sorted by code unit, as Go's sort.Strings. */
