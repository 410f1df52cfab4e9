/** Patch application (src/rest/patch.ts): RFC 7386 merge patch, strategic merge patch, RFC 6902 JSON patch. */
import { describe, expect, it } from "vitest";
import type { Json } from "../../src/rest/kube-json.js";
import { jsonPatch, mergePatch, NODE_MERGE_SCHEMA, strategicMergePatch } from "../../src/rest/patch.js";
import { RestError } from "../../src/rest/status.js";

describe("merge patch (RFC 7386)", () => {
  // The RFC's own examples (appendix A).
  const cases: [Json, Json, Json][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [["a", "b"], ["c", "d"], ["c", "d"]],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  it.each(cases)("%j + %j = %j", (target, patch, want) => {
    const before = JSON.stringify(target);
    expect(mergePatch(target, patch)).toEqual(want);
    expect(JSON.stringify(target)).toBe(before);
  });
});

describe("strategic merge patch (Node's strategies)", () => {
  const node: Json = {
    metadata: { name: "n", labels: { a: "1", b: "2" } },
    spec: { podCIDRs: ["10.0.0.0/24"], taints: [{ key: "x", effect: "NoSchedule" }, { key: "y", effect: "NoExecute" }] },
    status: {
      conditions: [
        { type: "Ready", status: "True", reason: "AgentReady" },
        { type: "DiskPressure", status: "False" },
      ],
      addresses: [{ type: "InternalIP", address: "10.0.0.1" }],
    },
  };
  const cases: Record<string, { patch: Json; check: (out: Record<string, Record<string, unknown>>) => void }> = {
    "spec.taints has no strategy: replaced whole (kubectl taint)": {
      patch: { spec: { taints: [{ key: "z", effect: "NoSchedule" }] } },
      check: (out) => expect(out.spec!.taints).toEqual([{ key: "z", effect: "NoSchedule" }]),
    },
    "null removes (uncordon, the last untaint)": {
      patch: { spec: { taints: null, unschedulable: null }, metadata: { labels: { a: null } } },
      check: (out) => {
        expect(out.spec).toEqual({ podCIDRs: ["10.0.0.0/24"] });
        expect(out.metadata!.labels).toEqual({ b: "2" });
      },
    },
    "conditions merge by type": {
      patch: { status: { conditions: [{ type: "Ready", status: "False" }, { type: "PIDPressure", status: "False" }] } },
      check: (out) =>
        expect(out.status!.conditions).toEqual([
          { type: "Ready", status: "False", reason: "AgentReady" },
          { type: "DiskPressure", status: "False" },
          { type: "PIDPressure", status: "False" },
        ]),
    },
    "$patch: delete removes one element of a merged list": {
      patch: { status: { conditions: [{ type: "DiskPressure", $patch: "delete" }] } },
      check: (out) => expect(out.status!.conditions).toEqual([{ type: "Ready", status: "True", reason: "AgentReady" }]),
    },
    "$patch: replace on a map replaces it": {
      patch: { metadata: { labels: { c: "3", $patch: "replace" } } },
      check: (out) => expect(out.metadata!.labels).toEqual({ c: "3" }),
    },
    "a {$patch: replace} element replaces a merged list": {
      patch: { status: { addresses: [{ $patch: "replace" }, { type: "Hostname", address: "n" }] } },
      check: (out) => expect(out.status!.addresses).toEqual([{ type: "Hostname", address: "n" }]),
    },
    "$retainKeys keeps only the listed keys": {
      patch: { metadata: { labels: { $retainKeys: ["b"], b: "20" } } },
      check: (out) => expect(out.metadata!.labels).toEqual({ b: "20" }),
    },
    "$setElementOrder orders a merged list": {
      patch: { status: { "$setElementOrder/conditions": [{ type: "DiskPressure" }, { type: "Ready" }] } },
      check: (out) => expect((out.status!.conditions as { type: string }[]).map((c) => c.type)).toEqual(["DiskPressure", "Ready"]),
    },
    "primitive lists with a merge strategy union, and $deleteFromPrimitiveList removes": {
      patch: { spec: { podCIDRs: ["fd00::/64"], "$deleteFromPrimitiveList/podCIDRs": ["10.0.0.0/24"] } },
      check: (out) => expect(out.spec!.podCIDRs).toEqual(["fd00::/64"]),
    },
  };
  it.each(Object.entries(cases))("%s", (_name, c) => {
    const before = JSON.stringify(node);
    const out = strategicMergePatch(node, c.patch, NODE_MERGE_SCHEMA) as Record<string, Record<string, unknown>>;
    c.check(out);
    expect(JSON.stringify(node)).toBe(before);
  });

  it("refuses unknown directives, merge elements without their key and documents nested too deep", () => {
    expect(() => strategicMergePatch(node, { spec: { $patch: "merge-harder" } }, NODE_MERGE_SCHEMA)).toThrow(RestError);
    expect(() => strategicMergePatch(node, { status: { conditions: [{ status: "True" }] } }, NODE_MERGE_SCHEMA)).toThrow(/merge key "type"/);
    let deep: Json = 1;
    for (let i = 0; i < 150; i++) deep = { a: deep };
    expect(() => strategicMergePatch({}, deep, NODE_MERGE_SCHEMA)).toThrow(/nested deeper than 100 levels/);
    expect(() => mergePatch({}, deep)).toThrow(/nested deeper than 100 levels/);
  });
});

describe("JSON patch (RFC 6902)", () => {
  const doc = { metadata: { labels: { "a/b": "1", "m~n": "2" } }, list: [1, 2, 3] };
  const cases: [string, Json, Json][] = [
    ["add to a map", [{ op: "add", path: "/metadata/labels/c", value: "3" }], { metadata: { labels: { "a/b": "1", "m~n": "2", c: "3" } }, list: [1, 2, 3] }],
    ["escaped keys (~1 is /, ~0 is ~)", [{ op: "remove", path: "/metadata/labels/a~1b" }, { op: "replace", path: "/metadata/labels/m~0n", value: "x" }], { metadata: { labels: { "m~n": "x" } }, list: [1, 2, 3] }],
    ["insert into and append to a list", [{ op: "add", path: "/list/0", value: 0 }, { op: "add", path: "/list/-", value: 4 }], { metadata: doc.metadata, list: [0, 1, 2, 3, 4] }],
    ["move and copy", [{ op: "copy", from: "/list/0", path: "/first" }, { op: "move", from: "/list", path: "/moved" }], { metadata: doc.metadata, first: 1, moved: [1, 2, 3] }],
    ["test then replace", [{ op: "test", path: "/list/1", value: 2 }, { op: "replace", path: "/list/1", value: 20 }], { metadata: doc.metadata, list: [1, 20, 3] }],
  ];
  it.each(cases)("%s", (_name, ops, want) => {
    expect(jsonPatch(doc, ops)).toEqual(want);
    expect(doc.list).toEqual([1, 2, 3]);
  });

  it.each([
    ["not a list", {}, /a JSON patch is a list/],
    ["replace of a missing member", [{ op: "replace", path: "/nope", value: 1 }], /no value at \/nope/],
    ["an index past the end", [{ op: "add", path: "/list/9", value: 1 }], /no value at \/list\/9/],
    ["a path that is not a pointer", [{ op: "add", path: "list", value: 1 }], /must be a JSON pointer/],
    ["a failing test", [{ op: "test", path: "/list/0", value: 9 }], /test failed/],
    ["no value", [{ op: "add", path: "/x" }], /missing "value"/],
  ] as [string, Json, RegExp][])("refuses %s", (_name, ops, message) => {
    expect(() => jsonPatch(doc, ops)).toThrow(message);
  });
});
