/** Every validation rule of API.md, one row each, through CreateNode on a real server. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeInput } from "../../src/client/client.js";
import { InvalidArgumentError, NotFoundError } from "../../src/client/errors.js";
import { type Harness, startHarness } from "../support/server.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

const named = (name: string, rest: NodeInput = {}): NodeInput => ({ ...rest, metadata: { ...rest.metadata, name } });
const ok = (rest: NodeInput = {}): NodeInput => named("valid-node", rest);

const rows: { rule: string; node: NodeInput; field: string; says: string }[] = [
  { rule: "name at most 253 characters", node: named("a".repeat(254)), field: "metadata.name", says: "no more than 253 characters" },
  { rule: "name only lowercase letters, digits, '-' and '.'", node: named("Node_1"), field: "metadata.name", says: "lower case alphanumeric" },
  { rule: "name starts with a letter or digit", node: named("-node"), field: "metadata.name", says: "start with an alphanumeric" },
  { rule: "name ends with a letter or digit", node: named("node-"), field: "metadata.name", says: "end with an alphanumeric" },
  { rule: "name not empty", node: named(""), field: "metadata.name", says: "empty" },
  { rule: "label key name at most 63", node: ok({ metadata: { labels: { ["k".repeat(64)]: "v" } } }), field: "metadata.labels", says: "63" },
  { rule: "label key prefix a DNS subdomain", node: ok({ metadata: { labels: { "Bad_Prefix/k": "v" } } }), field: "metadata.labels", says: "prefix" },
  { rule: "label key name characters", node: ok({ metadata: { labels: { "k*y": "v" } } }), field: "metadata.labels", says: "alphanumeric" },
  { rule: "label value at most 63", node: ok({ metadata: { labels: { k: "v".repeat(64) } } }), field: "metadata.labels", says: "63" },
  { rule: "label value characters", node: ok({ metadata: { labels: { k: "a b" } } }), field: "metadata.labels", says: "alphanumeric" },
  {
    rule: "annotations at most 256 KiB in total",
    node: ok({ metadata: { annotations: { big: "x".repeat(256 * 1024) } } }),
    field: "metadata.annotations",
    says: "262144",
  },
  { rule: "taint key as a label key", node: ok({ spec: { taints: [{ key: "bad key", effect: "NoSchedule" }] } }), field: "spec.taints[0].key", says: "" },
  { rule: "taint value as a label value", node: ok({ spec: { taints: [{ key: "k", value: "-v-", effect: "NoSchedule" }] } }), field: "spec.taints[0].value", says: "" },
  { rule: "taint effect one of three", node: ok({ spec: { taints: [{ key: "k", effect: "NoWay" }] } }), field: "spec.taints[0].effect", says: "NoSchedule" },
  { rule: "quantity syntax", node: ok({ status: { capacity: { cpu: "four" } } }), field: "status.capacity[\"cpu\"]", says: "must start with a number" },
  { rule: "quantity not negative", node: ok({ status: { allocatable: { memory: "-1Gi" } } }), field: "status.allocatable", says: "negative" },
  { rule: "address type one of five", node: ok({ status: { addresses: [{ type: "PublicIP", address: "1.2.3.4" }] } }), field: "status.addresses[0].type", says: "InternalIP" },
  { rule: "InternalIP parses as an IP", node: ok({ status: { addresses: [{ type: "InternalIP", address: "10.0.0.300" }] } }), field: "status.addresses[0].address", says: "IP" },
  { rule: "ExternalIP parses as an IP", node: ok({ status: { addresses: [{ type: "ExternalIP", address: "fe80::1::2" }] } }), field: "status.addresses[0].address", says: "IP" },
  { rule: "CIDR valid", node: ok({ spec: { podCidrs: ["10.0.0.0/33"] } }), field: "spec.pod_cidrs[0]", says: "" },
  { rule: "at most one CIDR per family", node: ok({ spec: { podCidrs: ["10.0.0.0/24", "10.0.1.0/24"] } }), field: "spec.pod_cidrs", says: "one" },
  { rule: "condition status True, False or Unknown", node: ok({ status: { conditions: [{ type: "Ready", status: "Yes" }] } }), field: "status.conditions[0].status", says: "Unknown" },
];

describe("validation through CreateNode", () => {
  it.each(rows)("$rule", async ({ node, field, says }) => {
    const err = await h.client.createNode(node).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    const message = (err as Error).message;
    expect(message).toContain(field);
    expect(message).toContain(says);
    // A rejected request changes nothing.
    const name = node.metadata?.name ?? "";
    if (name !== "") await expect(h.client.getNode(name.slice(0, 253))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("accepts a node at every boundary", async () => {
    const node = await h.client.createNode(
      named(`${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`, {
        metadata: { labels: { [`example.com/${"k".repeat(63)}`]: "v".repeat(63), empty: "" } },
        spec: { podCidrs: ["10.0.0.0/24", "fd00::/64"], taints: [{ key: "k", effect: "NoExecute" }] },
        status: {
          capacity: { cpu: "500m", memory: "16Gi", pods: "110", "example.com/gpu": "1e3" },
          addresses: [
            { type: "InternalIP", address: "fd00::7" },
            { type: "Hostname", address: "host" },
          ],
        },
      }),
    );
    expect(node.metadata?.name).toHaveLength(253);
    expect(node.spec?.taints[0]?.timeAdded).toBeInstanceOf(Date);
  });
});
