/** ListNodes: every selector operator, bad syntax, pagination at one revision, compacted tokens. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError, OutOfRangeError } from "../../src/client/errors.js";
import { type Harness, agentNode, startHarness } from "../support/server.js";

let h: Harness;
const names = async (req: { labelSelector?: string; fieldSelector?: string }): Promise<string[]> =>
  (await h.client.listAllNodes(req)).nodes.map((n) => n.metadata?.name ?? "").sort();

beforeAll(async () => {
  h = await startHarness();
  const fleet: [string, Record<string, string>][] = [
    ["a-1", { env: "prod", tier: "web", zone: "a" }],
    ["a-2", { env: "prod", tier: "db", zone: "a" }],
    ["b-1", { env: "dev", tier: "web", zone: "b" }],
    ["b-2", { env: "staging", zone: "b", gpu: "" }],
  ];
  for (const [name, labels] of fleet) await h.client.register(agentNode(name, { metadata: { labels } }));
  const b1 = await h.client.getNode("b-1");
  await h.client.updateNode({ ...b1, spec: { ...b1.spec, unschedulable: true } });
});
afterAll(() => h.close());

describe("ListNodes selectors", () => {
  const rows: { name: string; labelSelector?: string; fieldSelector?: string; want: string[] }[] = [
    { name: "everything", want: ["a-1", "a-2", "b-1", "b-2"] },
    { name: "=", labelSelector: "env=prod", want: ["a-1", "a-2"] },
    { name: "==", labelSelector: "env==dev", want: ["b-1"] },
    { name: "!= (absent keys match)", labelSelector: "tier!=web", want: ["a-2", "b-2"] },
    { name: "in", labelSelector: "env in (dev,staging)", want: ["b-1", "b-2"] },
    { name: "notin (absent keys match)", labelSelector: "tier notin (web)", want: ["a-2", "b-2"] },
    { name: "exists", labelSelector: "tier", want: ["a-1", "a-2", "b-1"] },
    { name: "exists with an empty value", labelSelector: "gpu", want: ["b-2"] },
    { name: "!not-exists", labelSelector: "!tier", want: ["b-2"] },
    { name: "ANDed requirements", labelSelector: "zone=a,tier in (web, db),!gpu", want: ["a-1", "a-2"] },
    { name: "field metadata.name", fieldSelector: "metadata.name=a-2", want: ["a-2"] },
    { name: "field metadata.name !=", fieldSelector: "metadata.name!=a-2", want: ["a-1", "b-1", "b-2"] },
    { name: "field spec.unschedulable", fieldSelector: "spec.unschedulable=true", want: ["b-1"] },
    { name: "label and field together", labelSelector: "zone=b", fieldSelector: "spec.unschedulable=false", want: ["b-2"] },
  ];
  it.each(rows)("$name", async ({ labelSelector, fieldSelector, want }) => {
    expect(await names({ labelSelector, fieldSelector })).toEqual(want);
  });

  const bad: { name: string; labelSelector?: string; fieldSelector?: string; says: string[] }[] = [
    { name: "unclosed list", labelSelector: "env in (prod", says: ["label_selector", "position 12"] },
    { name: "missing operator", labelSelector: "env prod", says: ["label_selector", "position 4"] },
    { name: "bad key", labelSelector: "-env=prod", says: ["label_selector"] },
    { name: "unsupported field", fieldSelector: "status.phase=Running", says: ["field_selector", "metadata.name", "spec.unschedulable"] },
    { name: "bad boolean", fieldSelector: "spec.unschedulable=yes", says: ["field_selector"] },
  ];
  it.each(bad)("rejects bad syntax: $name", async ({ labelSelector, fieldSelector, says }) => {
    const err = await h.client.listNodes({ labelSelector, fieldSelector }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    for (const s of says) expect((err as Error).message).toContain(s);
  });
});

describe("ListNodes pagination", () => {
  it("pages with limit and continue tokens, every page at the first page's revision", async () => {
    const first = await h.client.listNodes({ limit: 2 });
    expect(first.nodes.map((n) => n.metadata?.name)).toEqual(["a-1", "a-2"]);
    expect(first.continueToken).not.toBe("");
    // A change between pages is not seen by later pages: they read the first page's revision.
    await h.client.register(agentNode("a-3"));
    await h.client.deleteNode("b-2");
    const second = await h.client.listNodes({ limit: 2, continueToken: first.continueToken });
    expect(second.resourceVersion).toBe(first.resourceVersion);
    expect(second.nodes.map((n) => n.metadata?.name)).toEqual(["b-1", "b-2"]);
    expect(second.continueToken).toBe("");
    await h.client.deleteNode("a-3");
    await h.client.register(agentNode("b-2", { metadata: { labels: { env: "staging", zone: "b", gpu: "" } } }));
  });

  it("fills pages with matching nodes only", async () => {
    const page = await h.client.listNodes({ labelSelector: "tier", limit: 2 });
    expect(page.nodes.map((n) => n.metadata?.name)).toEqual(["a-1", "a-2"]);
    const rest = await h.client.listNodes({ labelSelector: "tier", limit: 2, continueToken: page.continueToken });
    expect(rest.nodes.map((n) => n.metadata?.name)).toEqual(["b-1"]);
    expect(rest.continueToken).toBe("");
  });

  it("limit 0 answers everything at once", async () => {
    const all = await h.client.listNodes({ limit: 0 });
    expect(all.nodes).toHaveLength(4);
    expect(all.continueToken).toBe("");
  });

  it("rejects a forged continue token and a negative limit", async () => {
    await expect(h.client.listNodes({ continueToken: "not-a-token" })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(h.client.listNodes({ limit: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("answers OUT_OF_RANGE for a token whose revision was compacted", async () => {
    const first = await h.client.listNodes({ limit: 1 });
    await h.client.updateStatus("a-1", { capacity: { cpu: "1" } });
    await h.server.store.compact(await h.server.store.currentRevision());
    const err = await h.client.listNodes({ limit: 1, continueToken: first.continueToken }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutOfRangeError);
    expect((err as Error).message).toContain("oldest revision still available");
  });
});
