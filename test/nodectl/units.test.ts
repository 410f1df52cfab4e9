/**
 * nodectl's pure parts: kubectl's text layout (tabwriter, human durations, RFC 1123 times),
 * label and taint semantics and messages, manifest parsing and apply's three-way merge,
 * the server address lookup, and the one-line error messages.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { createFileRegistry, type DescField, type DescMessage, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { AbortedError, InvalidArgumentError, NotFoundError, UnavailableError } from "../../src/client/errors.js";
import { applyLabels, applyTaints, parseLabelArgs, parseTaintArgs } from "../../src/cli/nodectl/edit.js";
import { CliError, errorLine } from "../../src/cli/nodectl/errors.js";
import { mergeForApply, NODE_SCHEMA, nodeToCreate, parseManifests, sameNode } from "../../src/cli/nodectl/manifest.js";
import { LAST_APPLIED_ANNOTATION } from "../../src/cli/nodectl/print.js";
import { nodeStatus } from "../../src/model/columns.js";
import { resolveServer } from "../../src/cli/nodectl/session.js";
import { humanDuration } from "../../src/model/columns.js";
import { rfc1123, TableStream, tabwrite } from "../../src/cli/nodectl/table.js";
import { Node, type Taint } from "../../src/gen/nodeplane/v1/node.js";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe("layout", () => {
  it("humanDuration is Kubernetes' duration.HumanDuration", () => {
    const cases: [number, string][] = [
      [-2 * S, "<invalid>"],
      [-1 * S, "0s"],
      [0, "0s"],
      [S, "1s"],
      [45 * S, "45s"],
      [70 * S, "70s"],
      [119 * S, "119s"],
      [120 * S, "2m"],
      [190 * S, "3m10s"],
      [5 * M, "5m"],
      [70 * M, "70m"],
      [3 * H, "3h"],
      [3 * H + 20 * M, "3h20m"],
      [47 * H, "47h"],
      [2 * D, "2d"],
      [49 * H, "2d1h"],
      [8 * D + 2 * H, "8d"],
      [367 * D, "367d"],
      [(365 * 2 * 24 + 25) * H, "2y1d"],
      [(365 * 8 * 24 + 2) * H, "8y"],
    ];
    for (const [ms, want] of cases) expect([ms, humanDuration(ms)]).toEqual([ms, want]);
  });

  it("rfc1123 is Go's RFC1123Z in UTC", () => {
    expect(rfc1123(new Date(Date.UTC(2026, 10, 25, 12, 0, 0)))).toBe("Wed, 25 Nov 2026 12:00:00 +0000");
    expect(rfc1123(new Date(Date.UTC(2027, 0, 3, 4, 5, 6, 999)))).toBe("Sun, 03 Jan 2027 04:05:06 +0000");
    expect(rfc1123(undefined)).toBe("<unset>");
  });

  it("tabwrite aligns column blocks as Go's tabwriter does", () => {
    // Lines without a tab end a block; the last cell of a line is never padded.
    const text = "a:\tx\nlonger key:\ty\n\tcontinued\nsection\n  k:\tv\n  kk:\tvv\n";
    expect(tabwrite(text, { minWidth: 0, padding: 2 })).toBe(
      ["a:           x", "longer key:  y", "             continued", "section", "  k:   v", "  kk:  vv", ""].join("\n"),
    );
    // Nested blocks: the second column spans only the lines that have it.
    expect(tabwrite("a\tb\tc\naaaa\tb\nx\tyyyyy\tz\n", { minWidth: 0, padding: 1 })).toBe("a    b c\naaaa b\nx    yyyyy z\n");
  });

  it("a watch table keeps its widths and widens a column only when a cell does not fit", () => {
    const t = new TableStream();
    expect(t.start([["NAME", "STATUS", "AGE"], ["n1", "Ready", "5s"]])).toBe("NAME   STATUS   AGE\nn1     Ready    5s\n");
    expect(t.row(["n2", "NotReady", "1s"])).toBe("n2     NotReady   1s\n");
    expect(t.row(["n1", "Ready", "6s"])).toBe("n1     Ready      6s\n");
  });

  it("STATUS: NotReady for a Ready condition that is False or Unknown, Unknown without one", () => {
    const node = (ready: string | undefined, unschedulable = false): Node =>
      Node.fromPartial({ spec: { unschedulable }, status: { conditions: ready ? [{ type: "Ready", status: ready }] : [] } });
    expect(nodeStatus(node("True"))).toBe("Ready");
    expect(nodeStatus(node("False"))).toBe("NotReady");
    expect(nodeStatus(node("Unknown"))).toBe("NotReady");
    expect(nodeStatus(node(undefined))).toBe("Unknown");
    expect(nodeStatus(node("True", true))).toBe("Ready,SchedulingDisabled");
  });
});

describe("label", () => {
  it("parses k=v and k- as kubectl does", () => {
    expect(parseLabelArgs(["a=1", "b=", "c-"])).toEqual({ set: { a: "1", b: "" }, remove: ["c"] });
    expect(() => parseLabelArgs(["a=1=2"])).toThrow("invalid label spec: a=1=2");
    expect(() => parseLabelArgs(["a=x y"])).toThrow(/invalid label value: "a=x y"/);
    expect(() => parseLabelArgs(["a=1", "a-"])).toThrow("can not both modify and remove a label in the same command");
    expect(() => parseLabelArgs([])).toThrow("at least one label update is required");
  });

  it("refuses to change a value without --overwrite, with kubectl's message", () => {
    const change = parseLabelArgs(["team=web"]);
    expect(() => applyLabels({ team: "infra" }, change, false)).toThrow(new CliError("'team' already has a value (infra), and --overwrite is false"));
    expect(applyLabels({ team: "infra" }, change, true)).toEqual({ labels: { team: "web" }, verb: "labeled", notFound: [] });
    // The same value again is no change.
    expect(applyLabels({ team: "web" }, change, false).verb).toBe("not labeled");
    expect(applyLabels({ team: "web", x: "1" }, parseLabelArgs(["x-", "y-"]), false)).toEqual({ labels: { team: "web" }, verb: "unlabeled", notFound: ["y"] });
  });
});

describe("taint", () => {
  const t = (key: string, value: string, effect: string): Taint => ({ key, value, effect, timeAdded: undefined });

  it("parses key=value:Effect, key:Effect, key:Effect- and key-", () => {
    expect(parseTaintArgs(["a=b:NoSchedule", "c:NoExecute", "d:PreferNoSchedule-", "e-"])).toEqual({
      add: [t("a", "b", "NoSchedule"), t("c", "", "NoExecute")],
      remove: [
        { key: "d", effect: "PreferNoSchedule" },
        { key: "e", effect: "" },
      ],
    });
    expect(() => parseTaintArgs(["a=b"])).toThrow(/invalid taint spec: a=b/);
    expect(() => parseTaintArgs(["a=b:Sometimes"])).toThrow("invalid taint effect: Sometimes, unsupported taint effect");
    expect(() => parseTaintArgs(["a:NoSchedule", "a=x:NoSchedule"])).toThrow("duplicated taints with the same key and effect: a=x:NoSchedule");
  });

  it("applies with kubectl's rules and words", () => {
    const current = [t("x", "1", "NoSchedule"), t("x", "", "NoExecute"), t("y", "", "NoSchedule")];
    expect(applyTaints("n1", current, parseTaintArgs(["z=2:NoSchedule"]), false)).toEqual({ taints: [t("z", "2", "NoSchedule"), ...current], verb: "tainted" });
    expect(() => applyTaints("n1", current, parseTaintArgs(["x=2:NoSchedule"]), false)).toThrow(
      "node n1 already has x taint(s) with same effect(s) and --overwrite is false",
    );
    expect(applyTaints("n1", current, parseTaintArgs(["x=2:NoSchedule"]), true)).toEqual({
      taints: [t("x", "2", "NoSchedule"), t("x", "", "NoExecute"), t("y", "", "NoSchedule")],
      verb: "modified",
    });
    // key- removes every effect of the key; key:Effect- only that one.
    expect(applyTaints("n1", current, parseTaintArgs(["x-"]), false)).toEqual({ taints: [t("y", "", "NoSchedule")], verb: "untainted" });
    expect(applyTaints("n1", current, parseTaintArgs(["x:NoExecute-"]), false).taints).toEqual([t("x", "1", "NoSchedule"), t("y", "", "NoSchedule")]);
    expect(() => applyTaints("n1", current, parseTaintArgs(["q:NoSchedule-"]), false)).toThrow('taint "q:NoSchedule" not found');
  });
});

describe("manifests", () => {
  it("reads one node, a list, a NodeList and --- documents, in YAML or JSON, snake_case or lowerCamelCase", () => {
    const yaml = [
      "apiVersion: v1",
      "kind: Node",
      "metadata: {name: a, labels: {x: '1'}}",
      "spec: {pod_cidr: 10.0.0.0/24, unschedulable: true}",
      "---",
      "kind: NodeList",
      "items:",
      "- metadata: {name: b}",
      "  status: {node_info: {kernel_version: '6.1'}}",
      "- {metadata: {name: c}}",
      "---",
      "",
    ].join("\n");
    const nodes = parseManifests(yaml, "f.yaml");
    expect(nodes.map((n) => [n.name, n.where])).toEqual([
      ["a", "f.yaml (document 1)"],
      ["b", "f.yaml (document 2) item 1"],
      ["c", "f.yaml (document 2) item 2"],
    ]);
    expect(nodes[0]!.json).toEqual({ metadata: { name: "a", labels: { x: "1" } }, spec: { podCidr: "10.0.0.0/24", unschedulable: true } });
    expect(Node.fromJSON(nodes[1]!.json).status?.nodeInfo?.kernelVersion).toBe("6.1");
    expect(parseManifests('[{"metadata": {"name": "j1"}}, {"metadata": {"name": "j2"}}]', "f.json").map((n) => n.name)).toEqual(["j1", "j2"]);
    // Server-set fields (as `get -o yaml` prints them) are dropped.
    expect(parseManifests("metadata: {name: a, uid: u, resourceVersion: '7', generation: '2', creationTimestamp: '2026-01-01T00:00:00Z'}", "f").at(0)!.json).toEqual({
      metadata: { name: "a" },
    });
  });

  it("refuses unknown fields, other kinds, nameless nodes and bad YAML, naming the place", () => {
    expect(() => parseManifests("metadata: {name: a}\nspec: {unschedulabel: true}", "n.yaml")).toThrow('n.yaml: unknown field "spec.unschedulabel"');
    expect(() => parseManifests("kind: Pod\nmetadata: {name: a}", "n.yaml")).toThrow('n.yaml: kind "Pod" is not supported');
    expect(() => parseManifests("metadata: {labels: {a: b}}", "n.yaml")).toThrow("n.yaml: metadata.name is required");
    expect(() => parseManifests("metadata: {name: a}\nspec: {taints: {key: a}}", "n.yaml")).toThrow("n.yaml: spec.taints: expected a list, got a mapping");
    expect(() => parseManifests("metadata: {name: [a}", "n.yaml")).toThrow(/^n\.yaml: not valid YAML or JSON/);
  });

  it("the schema has exactly the generated Node's fields (from the descriptor set)", () => {
    const set = fromBinary(FileDescriptorSetSchema, readFileSync(new URL("../../src/gen/nodeplane.binpb", import.meta.url)));
    const registry = createFileRegistry(set);
    const shape = (f: DescField): unknown => {
      const of = (m: DescMessage | undefined): unknown => (m?.typeName === "google.protobuf.Timestamp" ? "time" : m ? fields(m) : "scalar");
      if (f.fieldKind === "map") return "map";
      if (f.fieldKind === "list") return { list: f.listKind === "message" ? of(f.message) : "scalar" };
      if (f.fieldKind === "message") return of(f.message);
      return "scalar";
    };
    const fields = (m: DescMessage): unknown => ({ fields: Object.fromEntries(m.fields.map((f) => [f.jsonName, shape(f)])) });
    expect({ fields: NODE_SCHEMA }).toEqual(fields(registry.getMessage("nodeplane.v1.Node")!));
  });

  it("apply merges three ways: the manifest wins, what it dropped since the last apply goes, the rest stays", () => {
    const first = parseManifests("metadata: {name: a, labels: {team: infra, tier: web}}\nspec: {taints: [{key: k, effect: NoExecute}]}", "f")[0]!;
    const created = nodeToCreate(first);
    expect(JSON.parse(created.metadata!.annotations[LAST_APPLIED_ANNOTATION]!)).toEqual({
      metadata: { name: "a", labels: { team: "infra", tier: "web" } },
      spec: { taints: [{ key: "k", effect: "NoExecute" }] },
    });
    // As stored: the server stamped the NoExecute taint; the agent added a label; an operator cordoned it.
    const stamp = new Date(Date.UTC(2026, 0, 1));
    const live = Node.fromPartial({
      ...created,
      metadata: { ...created.metadata, labels: { ...created.metadata!.labels, "kubernetes.io/os": "linux" }, resourceVersion: "5" },
      spec: { unschedulable: true, taints: [{ key: "k", effect: "NoExecute", timeAdded: stamp }] },
    });
    // The same manifest again changes nothing (the stored timeAdded is kept).
    expect(sameNode(mergeForApply(live, first), live)).toBe(true);
    // An edited manifest: tier dropped, team changed, taints dropped.
    const edited = parseManifests("metadata: {name: a, labels: {team: data}}", "f")[0]!;
    const next = mergeForApply(live, edited);
    expect(next.metadata!.labels).toEqual({ team: "data", "kubernetes.io/os": "linux" });
    expect(next.spec!.taints).toEqual([]);
    expect(next.spec!.unschedulable).toBe(true);
    expect(next.metadata!.resourceVersion).toBe("5");
  });
});

describe("server address", () => {
  const home = mkdtempSync(join(tmpdir(), "nodectl-units-"));
  mkdirSync(join(home, ".nodeplane"));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it("--server, else NODEPLANE_SERVER, else the config file, else 127.0.0.1:50051", () => {
    expect(resolveServer(undefined, {}, join(home, "nowhere")).address).toBe("127.0.0.1:50051");
    writeFileSync(join(home, ".nodeplane", "config.yaml"), "server: 10.1.1.1:7000\n");
    expect(resolveServer(undefined, {}, home)).toEqual({ address: "10.1.1.1:7000", source: join(home, ".nodeplane", "config.yaml") });
    const other = join(home, "other.yaml");
    writeFileSync(other, "server: 10.2.2.2:7000\n");
    expect(resolveServer(undefined, { NODEPLANE_CONFIG: other }, home).address).toBe("10.2.2.2:7000");
    expect(resolveServer(undefined, { NODEPLANE_SERVER: "10.3.3.3:7000", NODEPLANE_CONFIG: other }, home).address).toBe("10.3.3.3:7000");
    expect(resolveServer("10.4.4.4:7000", { NODEPLANE_SERVER: "10.3.3.3:7000" }, home).address).toBe("10.4.4.4:7000");
  });

  it("says which setting is wrong", () => {
    expect(() => resolveServer("nope", {}, home)).toThrow('--server: "nope" is not host:port');
    expect(() => resolveServer(undefined, { NODEPLANE_SERVER: "a:b" }, home)).toThrow('NODEPLANE_SERVER: "a:b" is not host:port');
    expect(() => resolveServer(undefined, { NODEPLANE_CONFIG: join(home, "missing.yaml") }, home)).toThrow("NODEPLANE_CONFIG: ");
    const bad = join(home, "bad.yaml");
    writeFileSync(bad, "sever: 1.2.3.4:5\n");
    expect(() => resolveServer(undefined, { NODEPLANE_CONFIG: bad }, home)).toThrow(`config file ${bad}: unknown keys sever (known: server)`);
  });
});

describe("error lines", () => {
  const server = "127.0.0.1:59999";
  it("says what the server refused as kubectl does, and an unreachable server in words", () => {
    expect(errorLine(new NotFoundError(status.NOT_FOUND, 'node "x" not found'), server)).toBe('Error from server (NotFound): node "x" not found');
    expect(errorLine(new AbortedError(status.ABORTED, "stale"), server)).toBe("Error from server (Conflict): stale");
    expect(errorLine(new InvalidArgumentError(status.INVALID_ARGUMENT, "bad\nselector"), server)).toBe("Error from server (Invalid): bad; selector");
    expect(errorLine(new UnavailableError(status.UNAVAILABLE, "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:59999."), server)).toBe(
      "error: cannot reach the nodeplane server at 127.0.0.1:59999: connection refused (is it running? set --server or NODEPLANE_SERVER)",
    );
    expect(errorLine(new UnavailableError(status.UNAVAILABLE, "server is shutting down"), server)).toBe("Error from server (ServiceUnavailable): server is shutting down");
    expect(errorLine(new CliError("at least one label update is required"), server)).toBe("error: at least one label update is required");
  });
});
