/**
 * NodeRestriction: what a node may change about its own Node (table test over
 * admitNodeWrite), and the same rules through a real server with a node's certificate.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticated } from "../../src/auth/identity.js";
import { admitNodeWrite, type NodeWrite } from "../../src/auth/node-restriction.js";
import { PermissionDeniedError } from "../../src/errors.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import type { DeepPartial } from "../../src/gen/nodeplane/v1/node.js";
import { RpcError } from "../../src/client/errors.js";
import { startAuthHarness, type AuthHarness } from "../support/auth.js";
import { agentNode } from "../support/server.js";

const n1 = authenticated("system:node:n1", ["system:nodes"], "x509");
const node = (p: DeepPartial<Node>): Node => Node.fromPartial({ ...p, metadata: { name: "n1", ...p.metadata } });
const stored = node({
  metadata: { labels: { "kubernetes.io/hostname": "n1", "node-role.kubernetes.io/worker": "", team: "a" } },
  spec: { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }], providerId: "inv://m1" },
});

const cases: { name: string; write: NodeWrite; request: Node; before?: Node; denied?: string }[] = [
  { name: "register a new node with the kubelet's labels and taints", write: "Register", request: node({ metadata: { labels: { "kubernetes.io/os": "linux", "topology.kubernetes.io/zone": "z1", "node.kubernetes.io/foo": "x", "kubelet.kubernetes.io/y": "1", team: "b" } }, spec: { taints: [{ key: "k", effect: "NoSchedule" }] } }) },
  { name: "register a new node with a node-restriction label", write: "Register", request: node({ metadata: { labels: { "node-restriction.kubernetes.io/pool": "a" } } }), denied: 'may not set label "node-restriction.kubernetes.io/pool"' },
  { name: "register a new node with a role label", write: "Register", request: node({ metadata: { labels: { "node-role.kubernetes.io/worker": "" } } }), denied: 'may not set label "node-role.kubernetes.io/worker"' },
  { name: "register a new node with a k8s.io label", write: "CreateNode", request: node({ metadata: { labels: { "example.k8s.io/x": "1" } } }), denied: 'may not set label "example.k8s.io/x"' },
  { name: "register a new node unschedulable", write: "Register", request: node({ spec: { unschedulable: true } }), denied: "may not register itself unschedulable" },
  { name: "re-register with its own label changed (an operator's role label kept)", write: "Register", before: stored, request: node({ metadata: { labels: { "kubernetes.io/hostname": "n1", team: "b" } }, spec: { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] } }) },
  { name: "re-register with a different taint", write: "Register", before: stored, request: node({ spec: { taints: [{ key: "dedicated", value: "cpu", effect: "NoSchedule" }] } }), denied: "may not change its taints" },
  { name: "re-register with another provider id", write: "Register", before: stored, request: node({ spec: { taints: stored.spec!.taints, providerId: "inv://m2" } }), denied: "may not change spec.provider_id once set" },
  { name: "update: relabel itself with an allowed label", write: "UpdateNode", before: stored, request: node({ metadata: { labels: { ...stored.metadata!.labels, team: "c" } }, spec: stored.spec }) },
  { name: "update: remove an operator's role label", write: "UpdateNode", before: stored, request: node({ metadata: { labels: { "kubernetes.io/hostname": "n1", team: "a" } }, spec: stored.spec }), denied: 'may not change label "node-role.kubernetes.io/worker"' },
  { name: "update: cordon itself", write: "UpdateNode", before: stored, request: node({ metadata: stored.metadata, spec: { ...stored.spec, unschedulable: true } }), denied: "may not change spec.unschedulable" },
  { name: "update: drop its taints", write: "UpdateNode", before: stored, request: node({ metadata: stored.metadata, spec: { ...stored.spec, taints: [] } }), denied: "may not change its taints" },
  { name: "update: set pod CIDRs", write: "UpdateNode", before: stored, request: node({ metadata: stored.metadata, spec: { ...stored.spec, podCidrs: ["10.0.0.0/24"] } }), denied: "may not change its pod CIDRs" },
  { name: "update of a node that does not exist (the registry answers NOT_FOUND)", write: "UpdateNode", request: node({ spec: { unschedulable: true } }) },
  { name: "create of a node that exists (the registry answers ALREADY_EXISTS)", write: "CreateNode", before: stored, request: node({ spec: { unschedulable: true } }) },
];

describe("NodeRestriction", () => {
  it.each(cases)("$name", ({ write, request, before, denied }) => {
    const err = admitNodeWrite(n1, write, request, before, new Date());
    if (!denied) return expect(err).toBeUndefined();
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect(err!.message).toMatch(/^user "system:node:n1" \(groups system:nodes\) cannot (create|update) node "n1": NodeRestriction: /);
    expect(err!.message).toContain(denied);
  });
});

describe("NodeRestriction through the server", () => {
  let h: AuthHarness;
  beforeAll(async () => {
    h = await startAuthHarness();
  });
  afterAll(() => h.close());

  it("a node registers itself, may not retaint or cordon itself, and an operator still may", async () => {
    const c = await h.node("n1");
    await c.register(agentNode("n1", { spec: { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] } }));
    const refused = await c.register(agentNode("n1", { spec: { taints: [] } })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RpcError);
    expect((refused as RpcError).details).toContain("NodeRestriction: may not change its taints once it exists");
    const current = await c.getNode("n1");
    const cordon = await c.updateNode({ ...current, spec: { ...current.spec, unschedulable: true } }).catch((e: unknown) => e);
    expect((cordon as RpcError).details).toContain("may not change spec.unschedulable");
    expect((await c.getNode("n1")).metadata?.resourceVersion).toBe(current.metadata?.resourceVersion);
    const cordoned = await h.operator.updateNode({ ...current, spec: { ...current.spec, unschedulable: true } });
    expect(cordoned.spec?.unschedulable).toBe(true);
    // The node's own re-registration keeps what the operator set.
    const again = await c.register(agentNode("n1", { spec: { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] } }));
    expect(again.node?.spec?.unschedulable).toBe(true);
  });
});
