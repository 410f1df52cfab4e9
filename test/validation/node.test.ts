import { describe, expect, it } from "vitest";
import type { FieldViolation } from "../../src/errors.js";
import { Node, NodeStatus } from "../../src/gen/nodeplane/v1/node.js";
import { validateLeaseRequest, validateNode, validateNodeStatus } from "../../src/validation/node.js";
import { invalidErrorOf, violationsOf } from "./helpers.js";

/** A node every rule accepts; rows change one thing. */
function validNode(): Node {
  return Node.fromPartial({
    metadata: {
      name: "node-1.rack-2",
      labels: { "kubernetes.io/os": "linux", "kubernetes.io/hostname": "node-1", empty: "" },
      annotations: { "example.com/note": "free text, any characters: ü / = ," },
    },
    spec: {
      podCidr: "10.244.1.0/24",
      podCidrs: ["10.244.1.0/24", "fd00:10:244:1::/64"],
      providerId: "inventory://rack2/m1",
      taints: [
        { key: "node.kubernetes.io/unreachable", value: "", effect: "NoExecute" },
        { key: "dedicated", value: "gpu", effect: "NoSchedule" },
        { key: "dedicated", value: "gpu", effect: "PreferNoSchedule" },
      ],
    },
    status: {
      capacity: { cpu: "4", memory: "16Gi", pods: "110", "example.com/gpu": "1" },
      allocatable: { cpu: "3500m", memory: "15Gi", pods: "110" },
      addresses: [
        { type: "Hostname", address: "node-1" },
        { type: "InternalIP", address: "10.0.0.11" },
        { type: "ExternalIP", address: "2001:db8::11" },
        { type: "InternalDNS", address: "node-1.internal" },
        { type: "ExternalDNS", address: "node-1.example.com" },
      ],
      conditions: [
        { type: "Ready", status: "True" },
        { type: "MemoryPressure", status: "False" },
        { type: "example.com/FilesystemCorrupt", status: "Unknown" },
      ],
      daemonEndpoints: { agentEndpoint: { port: 10250 } },
    },
  });
}

type Edit = (n: Node) => void;
const meta = (n: Node) => n.metadata!;
const spec = (n: Node) => n.spec!;
const status = (n: Node) => n.status!;

describe("validateNode accepts", () => {
  const rows: { name: string; edit: Edit }[] = [
    { name: "the valid node", edit: () => {} },
    { name: "a node with only a name", edit: (n) => Object.assign(n, { spec: undefined, status: undefined }) },
    { name: "a 253-character name (boundary)", edit: (n) => (meta(n).name = "a".repeat(253)) },
    { name: "pod_cidr alone", edit: (n) => (spec(n).podCidrs = []) },
    { name: "pod_cidrs alone", edit: (n) => (spec(n).podCidr = "") },
    { name: "daemon port 0 (boundary)", edit: (n) => (status(n).daemonEndpoints!.agentEndpoint!.port = 0) },
    { name: "daemon port 65535 (boundary)", edit: (n) => (status(n).daemonEndpoints!.agentEndpoint!.port = 65535) },
    {
      name: "the same taint key with different effects",
      edit: (n) =>
        (spec(n).taints = ["NoSchedule", "PreferNoSchedule", "NoExecute"].map((effect) => ({ key: "k", value: "v", effect }))),
    },
    { name: "annotations of exactly 256 KiB (boundary)", edit: (n) => (meta(n).annotations = { k: "v".repeat(262143) }) },
  ];
  it.each(rows)("$name", ({ edit }) => {
    const n = validNode();
    edit(n);
    for (const mode of ["create", "update", "register"] as const) expect(() => validateNode(n, mode)).not.toThrow();
  });
});

describe("validateNode rejects, naming the field, the value and the rule", () => {
  const rows: { name: string; edit: Edit; violation: FieldViolation }[] = [
    // The seed's four node-name rules, and the empty name.
    {
      name: "name longer than 253 characters (boundary 254)",
      edit: (n) => (meta(n).name = "a".repeat(254)),
      violation: { field: "metadata.name", value: "a".repeat(254), rule: "must be no more than 253 characters" },
    },
    {
      name: "name with upper case",
      edit: (n) => (meta(n).name = "Node1"),
      violation: { field: "metadata.name", value: "Node1", rule: "must consist of lower case alphanumeric characters, '-' or '.'" },
    },
    {
      name: "name starting with '-'",
      edit: (n) => (meta(n).name = "-node"),
      violation: { field: "metadata.name", value: "-node", rule: "must start with an alphanumeric character" },
    },
    {
      name: "name ending with '.'",
      edit: (n) => (meta(n).name = "node."),
      violation: { field: "metadata.name", value: "node.", rule: "must end with an alphanumeric character" },
    },
    {
      name: "empty name",
      edit: (n) => (meta(n).name = ""),
      violation: { field: "metadata.name", value: "", rule: "must not be empty" },
    },
    {
      name: "no metadata at all",
      edit: (n) => (n.metadata = undefined),
      violation: { field: "metadata.name", value: "", rule: "must not be empty" },
    },
    {
      name: "a namespace",
      edit: (n) => (meta(n).namespace = "default"),
      violation: { field: "metadata.namespace", value: "default", rule: "must be empty: nodes are not namespaced" },
    },
    // Labels and annotations.
    {
      name: "label key name part of 64 characters",
      edit: (n) => (meta(n).labels = { [`example.com/${"k".repeat(64)}`]: "v" }),
      violation: {
        field: `metadata.labels["example.com/${"k".repeat(64)}"]`,
        value: `example.com/${"k".repeat(64)}`,
        rule: "key name part must be no more than 63 characters",
      },
    },
    {
      name: "label value of 64 characters",
      edit: (n) => (meta(n).labels = { "kubernetes.io/os": "v".repeat(64) }),
      violation: { field: 'metadata.labels["kubernetes.io/os"]', value: "v".repeat(64), rule: "must be no more than 63 characters" },
    },
    {
      name: "annotations over 256 KiB",
      edit: (n) => (meta(n).annotations = { k: "v".repeat(262144) }),
      violation: {
        field: "metadata.annotations",
        value: "262145 bytes",
        rule: "total size of keys and values must be no more than 262144 bytes (256 KiB)",
      },
    },
    {
      name: "annotation key that is no label key",
      edit: (n) => (meta(n).annotations = { "a b": "x" }),
      violation: { field: 'metadata.annotations["a b"]', value: "a b", rule: "key must consist of alphanumeric characters, '-', '_' or '.'" },
    },
    // Taints.
    {
      name: "taint key that is no label key",
      edit: (n) => (spec(n).taints[1]!.key = "-dedicated"),
      violation: { field: "spec.taints[1].key", value: "-dedicated", rule: "must start with an alphanumeric character" },
    },
    {
      name: "empty taint key",
      edit: (n) => (spec(n).taints[1]!.key = ""),
      violation: { field: "spec.taints[1].key", value: "", rule: "must not be empty" },
    },
    {
      name: "taint value that is no label value",
      edit: (n) => (spec(n).taints[1]!.value = "a/b"),
      violation: { field: "spec.taints[1].value", value: "a/b", rule: "must consist of alphanumeric characters, '-', '_' or '.'" },
    },
    {
      name: "unknown taint effect",
      edit: (n) => (spec(n).taints[1]!.effect = "NoScheduleAtAll"),
      violation: { field: "spec.taints[1].effect", value: "NoScheduleAtAll", rule: "must be one of NoSchedule, PreferNoSchedule, NoExecute" },
    },
    {
      name: "empty taint effect",
      edit: (n) => (spec(n).taints[0]!.effect = ""),
      violation: { field: "spec.taints[0].effect", value: "", rule: "must be one of NoSchedule, PreferNoSchedule, NoExecute" },
    },
    {
      name: "duplicate taint key and effect",
      edit: (n) => spec(n).taints.push({ key: "dedicated", value: "other", effect: "NoSchedule" }),
      violation: {
        field: "spec.taints[3]",
        value: "dedicated=other:NoSchedule",
        rule: "duplicate of spec.taints[1]: taints must be unique by key and effect",
      },
    },
    // Pod CIDRs.
    {
      name: "pod_cidr with host bits set",
      edit: (n) => Object.assign(spec(n), { podCidr: "10.244.1.1/24", podCidrs: [] }),
      violation: { field: "spec.pod_cidr", value: "10.244.1.1/24", rule: "must be a CIDR with host bits zero: did you mean 10.244.1.0/24?" },
    },
    {
      name: "pod_cidrs entry that is no CIDR",
      edit: (n) => Object.assign(spec(n), { podCidr: "", podCidrs: ["10.244.1.0/24", "fd00::1"] }),
      violation: {
        field: "spec.pod_cidrs[1]",
        value: "fd00::1",
        rule: 'must be a CIDR: an IPv4 or IPv6 address, "/" and a prefix length (e.g. "10.244.0.0/24", "fd00:10:244::/64")',
      },
    },
    {
      name: "two IPv4 pod CIDRs",
      edit: (n) => Object.assign(spec(n), { podCidr: "", podCidrs: ["10.244.1.0/24", "10.244.2.0/24"] }),
      violation: {
        field: "spec.pod_cidrs[1]",
        value: "10.244.2.0/24",
        rule: "at most one IPv4 CIDR is allowed, and spec.pod_cidrs[0] is already IPv4",
      },
    },
    {
      name: "pod_cidr differing from pod_cidrs[0]",
      edit: (n) => (spec(n).podCidr = "10.244.9.0/24"),
      violation: {
        field: "spec.pod_cidr",
        value: "10.244.9.0/24",
        rule: 'must equal spec.pod_cidrs[0] ("10.244.1.0/24") when both are set',
      },
    },
    // Status: quantities.
    {
      name: "negative capacity",
      edit: (n) => (status(n).capacity["cpu"] = "-4"),
      violation: { field: 'status.capacity["cpu"]', value: "-4", rule: "must not be negative" },
    },
    {
      name: "allocatable that is no quantity",
      edit: (n) => (status(n).allocatable["memory"] = "15GB"),
      violation: {
        field: 'status.allocatable["memory"]',
        value: "15GB",
        rule: 'has unknown suffix "GB": expected one of Ki, Mi, Gi, Ti, Pi, Ei (binary), n, u, m, k, M, G, T, P, E (decimal), an exponent such as e3, or none',
      },
    },
    {
      name: "resource name that is no qualified name",
      edit: (n) => (status(n).capacity["nvidia gpu"] = "1"),
      violation: {
        field: 'status.capacity["nvidia gpu"]',
        value: "nvidia gpu",
        rule: "resource name must consist of alphanumeric characters, '-', '_' or '.'",
      },
    },
    // Status: addresses.
    {
      name: "unknown address type",
      edit: (n) => (status(n).addresses[0]!.type = "Internal"),
      violation: {
        field: "status.addresses[0].type",
        value: "Internal",
        rule: "must be one of Hostname, InternalIP, ExternalIP, InternalDNS, ExternalDNS",
      },
    },
    {
      name: "empty address",
      edit: (n) => (status(n).addresses[3]!.address = ""),
      violation: { field: "status.addresses[3].address", value: "", rule: "must not be empty" },
    },
    {
      name: "InternalIP that is no IP",
      edit: (n) => (status(n).addresses[1]!.address = "10.0.0.300"),
      violation: { field: "status.addresses[1].address", value: "10.0.0.300", rule: "must be a valid IPv4 or IPv6 address for type InternalIP" },
    },
    {
      name: "ExternalIP that is a host name",
      edit: (n) => (status(n).addresses[2]!.address = "node-1.example.com"),
      violation: {
        field: "status.addresses[2].address",
        value: "node-1.example.com",
        rule: "must be a valid IPv4 or IPv6 address for type ExternalIP",
      },
    },
    // Status: conditions.
    {
      name: "condition status not True/False/Unknown",
      edit: (n) => (status(n).conditions[0]!.status = "true"),
      violation: { field: "status.conditions[0].status", value: "true", rule: "must be one of True, False, Unknown" },
    },
    {
      name: "empty condition type",
      edit: (n) => (status(n).conditions[1]!.type = ""),
      violation: { field: "status.conditions[1].type", value: "", rule: "must not be empty" },
    },
    {
      name: "condition type that is no qualified name",
      edit: (n) => (status(n).conditions[1]!.type = "Memory Pressure"),
      violation: {
        field: "status.conditions[1].type",
        value: "Memory Pressure",
        rule: "must consist of alphanumeric characters, '-', '_' or '.'",
      },
    },
    {
      name: "duplicate condition type",
      edit: (n) => status(n).conditions.push({ type: "Ready", status: "False", reason: "", message: "" }),
      violation: {
        field: "status.conditions[3].type",
        value: "Ready",
        rule: "duplicate of status.conditions[0].type: condition types must be unique",
      },
    },
    // Status: daemon endpoint.
    {
      name: "daemon port 65536 (boundary)",
      edit: (n) => (status(n).daemonEndpoints!.agentEndpoint!.port = 65536),
      violation: { field: "status.daemon_endpoints.agent_endpoint.port", value: "65536", rule: "must be a whole number from 0 to 65535" },
    },
    {
      name: "negative daemon port",
      edit: (n) => (status(n).daemonEndpoints!.agentEndpoint!.port = -1),
      violation: { field: "status.daemon_endpoints.agent_endpoint.port", value: "-1", rule: "must be a whole number from 0 to 65535" },
    },
  ];
  it.each(rows)("$name", ({ edit, violation }) => {
    const n = validNode();
    edit(n);
    const e = invalidErrorOf(() => validateNode(n, "create"));
    expect(e.violations).toEqual([violation]);
    expect(e.message).toContain(violation.field);
    expect(e.message).toContain(violation.rule);
  });
});

describe("validateNode modes and reporting", () => {
  it("reports every violation at once, in one InvalidError", () => {
    const n = validNode();
    meta(n).name = "Bad_Name";
    spec(n).taints[0]!.effect = "Never";
    status(n).addresses[1]!.address = "nope";
    expect(violationsOf(() => validateNode(n, "register")).map((v) => v.field)).toEqual([
      "metadata.name",
      "spec.taints[0].effect",
      "status.addresses[1].address",
    ]);
  });

  it("checks the status on create and register, not on update (UpdateNode ignores the status)", () => {
    const n = validNode();
    status(n).conditions[0]!.status = "maybe";
    expect(violationsOf(() => validateNode(n, "create"))).toHaveLength(1);
    expect(violationsOf(() => validateNode(n, "register"))).toHaveLength(1);
    expect(() => validateNode(n, "update")).not.toThrow();
  });

  it("cuts a long value short in the message but keeps it whole in the violation", () => {
    const n = validNode();
    meta(n).name = "x".repeat(300);
    const e = invalidErrorOf(() => validateNode(n, "update"));
    expect(e.violations[0]!.value).toHaveLength(300);
    expect(e.message).toBe(`metadata.name: "${"x".repeat(64)}…(300 chars)": must be no more than 253 characters`);
  });
});

describe("validateNodeStatus", () => {
  it("accepts an absent or empty status", () => {
    expect(() => validateNodeStatus(undefined, "status")).not.toThrow();
    expect(() => validateNodeStatus(NodeStatus.fromPartial({}), "status")).not.toThrow();
  });

  it("prefixes field paths with fieldPrefix", () => {
    const s = NodeStatus.fromPartial({ conditions: [{ type: "Ready", status: "Maybe" }], addresses: [{ type: "Pager", address: "x" }] });
    expect(violationsOf(() => validateNodeStatus(s, "node.status"))).toEqual([
      {
        field: "node.status.addresses[0].type",
        value: "Pager",
        rule: "must be one of Hostname, InternalIP, ExternalIP, InternalDNS, ExternalDNS",
      },
      { field: "node.status.conditions[0].status", value: "Maybe", rule: "must be one of True, False, Unknown" },
    ]);
  });
});

describe("validateLeaseRequest", () => {
  const valid: { name: string; args: [string, string, number] }[] = [
    { name: "typical renewal", args: ["node-1", "node-1", 40] },
    { name: "duration 0 keeps the current one (boundary)", args: ["node-1", "node-1", 0] },
    { name: "duration 3600 (boundary)", args: ["node-1", "node-1", 3600] },
    { name: "empty holder identity", args: ["node-1", "", 40] },
    { name: "holder identity of 253 characters (boundary)", args: ["node-1", "h".repeat(253), 40] },
  ];
  it.each(valid)("accepts $name", ({ args }) => {
    expect(() => validateLeaseRequest(...args)).not.toThrow();
  });

  const invalid: { name: string; args: [string, string, number]; violation: FieldViolation }[] = [
    {
      name: "node name that is no DNS-1123 subdomain",
      args: ["Node_1", "x", 40],
      violation: { field: "node_name", value: "Node_1", rule: "must consist of lower case alphanumeric characters, '-' or '.'" },
    },
    { name: "empty node name", args: ["", "x", 40], violation: { field: "node_name", value: "", rule: "must not be empty" } },
    {
      name: "holder identity of 254 characters (boundary)",
      args: ["node-1", "h".repeat(254), 40],
      violation: { field: "holder_identity", value: "h".repeat(254), rule: "must be no more than 253 characters" },
    },
    {
      name: "negative duration",
      args: ["node-1", "x", -1],
      violation: { field: "lease_duration_seconds", value: "-1", rule: "must be a whole number from 0 (keep the current duration) to 3600" },
    },
    {
      name: "duration 3601 (boundary)",
      args: ["node-1", "x", 3601],
      violation: { field: "lease_duration_seconds", value: "3601", rule: "must be a whole number from 0 (keep the current duration) to 3600" },
    },
    {
      name: "fractional duration",
      args: ["node-1", "x", 1.5],
      violation: { field: "lease_duration_seconds", value: "1.5", rule: "must be a whole number from 0 (keep the current duration) to 3600" },
    },
  ];
  it.each(invalid)("rejects $name", ({ args, violation }) => {
    expect(violationsOf(() => validateLeaseRequest(...args))).toEqual([violation]);
  });

  it("reports every violation at once", () => {
    expect(violationsOf(() => validateLeaseRequest("", "h".repeat(300), 99999)).map((v) => v.field)).toEqual([
      "node_name",
      "holder_identity",
      "lease_duration_seconds",
    ]);
  });
});

describe("timestamps a client sends", () => {
  it("must lie within google.protobuf.Timestamp's range (one beyond JavaScript's dates decoded to an invalid Date and failed the write with INTERNAL)", () => {
    const node = validNode();
    node.spec!.taints[0]!.timeAdded = new Date(Number.NaN);
    node.status!.conditions[0]!.lastHeartbeatTime = new Date(Date.parse("9999-12-31T23:59:59Z") + 1000);
    node.status!.conditions[1]!.lastTransitionTime = new Date(Date.parse("0001-01-01T00:00:00Z") - 1);
    expect(violationsOf(() => validateNode(node, "register")).map((v) => [v.field, v.value])).toEqual([
      ["spec.taints[0].time_added", "out of range"],
      ["status.conditions[0].last_heartbeat_time", "+010000-01-01T00:00:00.000Z"],
      ["status.conditions[1].last_transition_time", "0000-12-31T23:59:59.999Z"],
    ]);
    const edges = validNode();
    edges.status!.conditions[0]!.lastHeartbeatTime = new Date("9999-12-31T23:59:59Z");
    edges.status!.conditions[1]!.lastTransitionTime = new Date("0001-01-01T00:00:00Z");
    expect(() => validateNode(edges, "register")).not.toThrow();
  });
});
