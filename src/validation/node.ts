/**
 * Validation of whole requests: a Node (Register, CreateNode, UpdateNode), a NodeStatus
 * (UpdateStatus) and a lease renewal (RenewLease, Heartbeat). Each function collects every
 * broken rule and throws one InvalidError carrying them all, each naming the field path
 * (snake_case, as in the proto and grpcurl: `spec.taints[1].effect`), the value and the rule.
 */
import { type FieldViolation, InvalidError } from "../errors.js";
import type { Node, NodeAddress, NodeStatus, Taint } from "../gen/nodeplane/v1/node.js";
import { annotationsViolations, labelKeyViolations, labelsViolations, labelValueViolations } from "./labels.js";
import { dns1123SubdomainViolations } from "./names.js";
import { cidrViolations, isIPAddress, podCIDRsViolations } from "./net.js";
import { resourceListViolations } from "./quantity.js";
import { topologyViolations } from "./topology.js";

const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
const ADDRESS_TYPES = ["Hostname", "InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS"];
const IP_ADDRESS_TYPES = ["InternalIP", "ExternalIP"];
const CONDITION_STATUSES = ["True", "False", "Unknown"];
const MAX_PORT = 65535;
const MAX_HOLDER_IDENTITY = 253;
const MAX_LEASE_DURATION_SECONDS = 3600;

/** One violation per rule that `value` breaks at `field`. */
function each(field: string, value: string, rules: string[]): FieldViolation[] {
  return rules.map((rule) => ({ field, value, rule }));
}

function oneOf(allowed: readonly string[]): string {
  return `must be one of ${allowed.join(", ")}`;
}

/** google.protobuf.Timestamp's range (RFC 3339 years 0001 to 9999), in ms since the epoch. */
const MIN_TIMESTAMP_MS = Date.parse("0001-01-01T00:00:00Z");
const MAX_TIMESTAMP_MS = Date.parse("9999-12-31T23:59:59.999Z");

/**
 * A timestamp a client sent: within google.protobuf.Timestamp's range. One outside it decodes
 * to an invalid Date (seconds beyond JavaScript's range) that could be neither stored nor sent.
 */
function timestampViolations(value: Date | undefined, field: string): FieldViolation[] {
  if (value === undefined) return [];
  const ms = value.getTime();
  if (ms >= MIN_TIMESTAMP_MS && ms <= MAX_TIMESTAMP_MS) return [];
  return [{ field, value: Number.isNaN(ms) ? "out of range" : value.toISOString(), rule: "must be a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z" }];
}

function throwIfAny(violations: FieldViolation[]): void {
  if (violations.length > 0) throw new InvalidError(violations);
}

function taintViolations(taints: readonly Taint[], field: string): FieldViolation[] {
  const out: FieldViolation[] = [];
  const seen = new Map<string, number>();
  taints.forEach((t, i) => {
    const at = `${field}[${i}]`;
    out.push(...each(`${at}.key`, t.key, labelKeyViolations(t.key)));
    out.push(...each(`${at}.value`, t.value, labelValueViolations(t.value)));
    if (!TAINT_EFFECTS.includes(t.effect)) out.push({ field: `${at}.effect`, value: t.effect, rule: oneOf(TAINT_EFFECTS) });
    out.push(...timestampViolations(t.timeAdded, `${at}.time_added`));
    // Kubernetes: taints must be unique by key and effect pair.
    const pair = JSON.stringify([t.key, t.effect]);
    const first = seen.get(pair);
    if (first === undefined) seen.set(pair, i);
    else {
      out.push({
        field: at,
        value: `${t.key}=${t.value}:${t.effect}`,
        rule: `duplicate of ${field}[${first}]: taints must be unique by key and effect`,
      });
    }
  });
  return out;
}

/** A node address: type one of the five; InternalIP/ExternalIP must parse as an IP. */
export function addressViolations(a: NodeAddress, at: string): FieldViolation[] {
  const out: FieldViolation[] = [];
  if (!ADDRESS_TYPES.includes(a.type)) out.push({ field: `${at}.type`, value: a.type, rule: oneOf(ADDRESS_TYPES) });
  if (a.address.length === 0) out.push({ field: `${at}.address`, value: a.address, rule: "must not be empty" });
  else if (IP_ADDRESS_TYPES.includes(a.type) && !isIPAddress(a.address)) {
    out.push({ field: `${at}.address`, value: a.address, rule: `must be a valid IPv4 or IPv6 address for type ${a.type}` });
  }
  return out;
}

function statusViolations(status: NodeStatus | undefined, prefix: string): FieldViolation[] {
  if (!status) return [];
  const out: FieldViolation[] = [];
  out.push(...resourceListViolations(status.capacity, `${prefix}.capacity`));
  out.push(...resourceListViolations(status.allocatable, `${prefix}.allocatable`));
  status.addresses.forEach((a, i) => out.push(...addressViolations(a, `${prefix}.addresses[${i}]`)));
  const firstOfType = new Map<string, number>();
  status.conditions.forEach((c, i) => {
    const at = `${prefix}.conditions[${i}]`;
    out.push(...each(`${at}.type`, c.type, labelKeyViolations(c.type)));
    if (!CONDITION_STATUSES.includes(c.status)) {
      out.push({ field: `${at}.status`, value: c.status, rule: oneOf(CONDITION_STATUSES) });
    }
    out.push(...timestampViolations(c.lastHeartbeatTime, `${at}.last_heartbeat_time`));
    out.push(...timestampViolations(c.lastTransitionTime, `${at}.last_transition_time`));
    const first = firstOfType.get(c.type);
    if (first === undefined) firstOfType.set(c.type, i);
    else {
      out.push({
        field: `${at}.type`,
        value: c.type,
        rule: `duplicate of ${prefix}.conditions[${first}].type: condition types must be unique`,
      });
    }
  });
  const port = status.daemonEndpoints?.agentEndpoint?.port;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= MAX_PORT)) {
    out.push({
      field: `${prefix}.daemon_endpoints.agent_endpoint.port`,
      value: String(port),
      rule: `must be a whole number from 0 to ${MAX_PORT}`,
    });
  }
  out.push(...topologyViolations(status.topology, `${prefix}.topology`));
  return out;
}

/**
 * Validates a Node from a request. `mode`: "create" (CreateNode) and "register" (Register)
 * validate everything; "update" (UpdateNode) skips the status, which UpdateNode ignores.
 * Server-set fields (uid, resource_version, generation, timestamps) are not checked here.
 * @throws InvalidError carrying every violation.
 */
export function validateNode(node: Node, mode: "create" | "update" | "register"): void {
  const out: FieldViolation[] = [];
  const meta = node.metadata;
  const name = meta?.name ?? "";
  out.push(...each("metadata.name", name, dns1123SubdomainViolations(name)));
  if (meta) {
    if (meta.namespace !== "") {
      out.push({ field: "metadata.namespace", value: meta.namespace, rule: "must be empty: nodes are not namespaced" });
    }
    out.push(...labelsViolations(meta.labels, "metadata.labels"));
    out.push(...annotationsViolations(meta.annotations, "metadata.annotations"));
  }
  const spec = node.spec;
  if (spec) {
    out.push(...taintViolations(spec.taints, "spec.taints"));
    if (spec.podCidr !== "") out.push(...each("spec.pod_cidr", spec.podCidr, cidrViolations(spec.podCidr)));
    out.push(...podCIDRsViolations(spec.podCidrs, "spec.pod_cidrs"));
    const first = spec.podCidrs[0];
    if (spec.podCidr !== "" && first !== undefined && spec.podCidr !== first) {
      out.push({
        field: "spec.pod_cidr",
        value: spec.podCidr,
        rule: `must equal spec.pod_cidrs[0] (${JSON.stringify(first)}) when both are set`,
      });
    }
  }
  if (mode !== "update") out.push(...statusViolations(node.status, "status"));
  throwIfAny(out);
}

/**
 * Validates a NodeStatus; field paths start with `fieldPrefix` (e.g. "status").
 * @throws InvalidError carrying every violation.
 */
export function validateNodeStatus(status: NodeStatus | undefined, fieldPrefix: string): void {
  throwIfAny(statusViolations(status, fieldPrefix));
}

/**
 * Validates a lease renewal: `node_name` a DNS-1123 subdomain, `holder_identity` at most 253
 * characters, `lease_duration_seconds` a whole number from 0 (keep the current duration) to 3600.
 * @throws InvalidError carrying every violation.
 */
export function validateLeaseRequest(nodeName: string, holderIdentity: string, leaseDurationSeconds: number): void {
  const out: FieldViolation[] = [];
  out.push(...each("node_name", nodeName, dns1123SubdomainViolations(nodeName)));
  if (holderIdentity.length > MAX_HOLDER_IDENTITY) {
    out.push({ field: "holder_identity", value: holderIdentity, rule: `must be no more than ${MAX_HOLDER_IDENTITY} characters` });
  }
  if (
    !Number.isInteger(leaseDurationSeconds) ||
    leaseDurationSeconds < 0 ||
    leaseDurationSeconds > MAX_LEASE_DURATION_SECONDS
  ) {
    out.push({
      field: "lease_duration_seconds",
      value: String(leaseDurationSeconds),
      rule: `must be a whole number from 0 (keep the current duration) to ${MAX_LEASE_DURATION_SECONDS}`,
    });
  }
  throwIfAny(out);
}
