/**
 * The REST API's protocol, over plain HTTP on a real server: discovery and OpenAPI, one
 * registry under both views, lists (selectors, limit/continue, resourceVersion rules,
 * Table and metadata forms), watches (newline-delimited events as they happen, Table watch
 * events, initial events and bookmarks, 410 for a compacted revision, timeouts, leases and
 * events, shutdown), the status subresource, events' field selectors and the empty pods.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventRecorder } from "../../src/registry/events.js";
import { call, openWatch, type WatchStream } from "../support/rest.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

const TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

let h: Harness;
let base: string;
const streams: WatchStream[] = [];

beforeAll(async () => {
  // Bookmarks every 100 ms, so a test can wait for one.
  h = await startHarness({ httpListen: "127.0.0.1:0", bookmarkIntervalMs: 100 });
  base = `http://127.0.0.1:${h.server.httpPort}`;
});
afterAll(async () => {
  for (const s of streams) s.close();
  await h.close();
});

const get = (path: string, accept?: string): ReturnType<typeof call> => call(base, "GET", path, { accept });
const send = (method: string, path: string, body: unknown, type = "application/json"): ReturnType<typeof call> =>
  call(base, method, path, { body: JSON.stringify(body), type });

async function watchOf(path: string, accept?: string): Promise<WatchStream> {
  const w = await openWatch(base, path, accept);
  streams.push(w);
  return w;
}

async function register(name: string, labels: Record<string, string> = {}): Promise<string> {
  const res = await h.client.register(agentNode(name, { metadata: { labels } }));
  return res.node!.metadata!.resourceVersion;
}

describe("discovery", () => {
  it("/version is Kubernetes-shaped: major 1, a numeric minor in the range kubectl dispatches on", async () => {
    const v = (await get("/version")).json;
    expect(v.major).toBe("1");
    expect(Number(v.minor)).toBeGreaterThanOrEqual(27);
    expect(Number(v.minor)).toBeLessThanOrEqual(33);
    expect(v.gitVersion).toMatch(new RegExp(`^v1\\.${v.minor}\\.\\d+`));
  });

  it("/api, /apis and the resource lists name kinds, verbs and short names", async () => {
    expect((await get("/api")).json).toMatchObject({ kind: "APIVersions", versions: ["v1"] });
    expect((await get("/apis")).json).toMatchObject({
      kind: "APIGroupList",
      groups: [{ name: "coordination.k8s.io", preferredVersion: { groupVersion: "coordination.k8s.io/v1" } }],
    });
    const core = (await get("/api/v1")).json as { resources: { name: string; kind: string; verbs: string[]; shortNames?: string[]; namespaced: boolean }[] };
    expect(core.resources.find((r) => r.name === "nodes")).toEqual({
      name: "nodes",
      singularName: "node",
      namespaced: false,
      kind: "Node",
      verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
      shortNames: ["no"],
    });
    expect(core.resources.map((r) => r.name).sort()).toEqual(["events", "nodes", "nodes/status", "pods"]);
    expect((await get("/apis/coordination.k8s.io/v1")).json).toMatchObject({
      groupVersion: "coordination.k8s.io/v1",
      resources: [{ name: "leases", kind: "Lease", namespaced: true, verbs: ["get", "list", "watch"] }],
    });
  });

  it("serves the minimal OpenAPI documents kubectl create/apply fetch", async () => {
    const res = await fetch(`${base}/openapi/v2`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
    // openapi_v2.Document: field 1 (swagger) = "2.0", then field 2 (info).
    expect([...new Uint8Array(await res.arrayBuffer()).slice(0, 6)]).toEqual([0x0a, 3, 0x32, 0x2e, 0x30, 0x12]);
    expect((await get("/openapi/v3")).json).toEqual({ paths: {} });
  });
});

describe("one registry under both views", () => {
  it("an object written through REST is the one gRPC reads (same uid and resourceVersion), and back", async () => {
    const created = await send("POST", "/api/v1/nodes", { apiVersion: "v1", kind: "Node", metadata: { name: "same-1", labels: { a: "b" } } });
    expect(created.status).toBe(201);
    const viaGrpc = await h.client.getNode("same-1");
    expect(created.json.metadata).toMatchObject({ uid: viaGrpc.metadata?.uid, resourceVersion: viaGrpc.metadata?.resourceVersion });

    const updated = await h.client.updateNode({ ...viaGrpc, metadata: { ...viaGrpc.metadata, labels: { a: "c" } } });
    const viaRest = (await get("/api/v1/nodes/same-1")).json;
    expect(viaRest.metadata).toMatchObject({ resourceVersion: updated.metadata?.resourceVersion, labels: { a: "c" } });
    // A list's resourceVersion is the store's revision.
    expect((await get("/api/v1/nodes")).json.metadata).toEqual({ resourceVersion: String(await h.server.store.currentRevision()) });
  });
});

describe("lists", () => {
  it("limit and continue: pages of one consistent revision", async () => {
    for (const n of ["page-1", "page-2", "page-3"]) await register(n, { suite: "page" });
    const first = (await get("/api/v1/nodes?labelSelector=suite%3Dpage&limit=2")).json as unknown as { metadata: { resourceVersion: string; continue: string }; items: { metadata: { name: string } }[] };
    expect(first.items.map((i) => i.metadata.name)).toEqual(["page-1", "page-2"]);
    expect(first.metadata.continue).not.toBe("");
    await register("page-0", { suite: "page" }); // after the first page: not in this list
    const second = (await get(`/api/v1/nodes?labelSelector=suite%3Dpage&limit=2&continue=${first.metadata.continue}`)).json as unknown as typeof first;
    expect(second.items.map((i) => i.metadata.name)).toEqual(["page-3"]);
    expect(second.metadata).toEqual({ resourceVersion: first.metadata.resourceVersion });
  });

  it("resourceVersion: Exact reads an older state, a future one is 504, a compacted one is 410 Expired", async () => {
    const before = await register("rv-1", { v: "1" });
    await register("rv-1", { v: "2" });
    const exact = (await get(`/api/v1/nodes?fieldSelector=metadata.name%3Drv-1&resourceVersion=${before}&resourceVersionMatch=Exact`)).json as { items: { metadata: { labels: Record<string, string> } }[] };
    expect(exact.items[0]!.metadata.labels.v).toBe("1");
    expect((await get("/api/v1/nodes?fieldSelector=metadata.name%3Drv-1&resourceVersion=1")).json).toMatchObject({ items: [{ metadata: { labels: { v: "2" } } }] });

    const future = await get("/api/v1/nodes?resourceVersion=999999999");
    expect(future.status).toBe(504);
    expect(future.json).toMatchObject({ reason: "Timeout", details: { causes: [{ reason: "ResourceVersionTooLarge" }] } });

    await h.server.store.compact(await h.server.store.currentRevision());
    const gone = await get(`/api/v1/nodes?resourceVersion=${before}&resourceVersionMatch=Exact`);
    expect(gone.status).toBe(410);
    expect(gone.json).toMatchObject({ kind: "Status", reason: "Expired", code: 410 });
  });

  it("as a Table (Kubernetes' node columns, wide ones at priority 1), with or without row objects", async () => {
    await register("tbl-1", { suite: "tbl", "node-role.kubernetes.io/control-plane": "" });
    const t = (await get("/api/v1/nodes?labelSelector=suite%3Dtbl", TABLE)).json as { kind: string; columnDefinitions: { name: string; priority: number }[]; rows: { cells: unknown[]; object: { kind: string; metadata: { name: string } } }[] };
    expect(t.kind).toBe("Table");
    expect(t.columnDefinitions.map((c) => `${c.name}/${c.priority}`)).toEqual([
      "Name/0", "Status/0", "Roles/0", "Age/0", "Version/0", "Internal-IP/1", "External-IP/1", "OS-Image/1", "Kernel-Version/1", "Container-Runtime/1",
    ]);
    expect(t.rows).toHaveLength(1);
    expect(t.rows[0]!.cells).toEqual(["tbl-1", "Ready", "control-plane", expect.stringMatching(/^\d+s$/), "0.1.0", "10.0.0.7", "<none>", "Debian GNU/Linux 12", "6.1.0", "<unknown>"]);
    expect(t.rows[0]!.object).toMatchObject({ kind: "PartialObjectMetadata", metadata: { name: "tbl-1" } });
    const bare = (await get("/api/v1/nodes?labelSelector=suite%3Dtbl&includeObject=None", "application/json;as=Table;v=v1beta1;g=meta.k8s.io")).json as { apiVersion: string; rows: object[] };
    expect(bare.apiVersion).toBe("meta.k8s.io/v1beta1");
    expect(bare.rows[0]).not.toHaveProperty("object");
    const metas = (await get("/api/v1/nodes?labelSelector=suite%3Dtbl", "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")).json;
    expect(metas).toMatchObject({ kind: "PartialObjectMetadataList", items: [{ kind: "PartialObjectMetadata", metadata: { name: "tbl-1" } }] });
  });
});

describe("watch", () => {
  it("newline-delimited WatchEvents, each sent as it happens; DELETED carries the last state at the deletion's revision", async () => {
    const rv = await register("w-1", { suite: "w" });
    const w = await watchOf(`/api/v1/nodes?watch=true&labelSelector=suite%3Dw&resourceVersion=${rv}`);
    expect(w.status).toBe(200);
    expect(w.contentType).toBe("application/json");
    const cordoned = await h.client.updateNode({ metadata: { name: "w-1", labels: { suite: "w" } }, spec: { unschedulable: true } });
    // Read while the stream is still open: the event was flushed on its own.
    expect(await w.next()).toMatchObject({ type: "MODIFIED", object: { kind: "Node", apiVersion: "v1", metadata: { name: "w-1", resourceVersion: cordoned.metadata?.resourceVersion }, spec: { unschedulable: true } } });
    await h.client.deleteNode("w-1");
    const deleted = await w.next();
    expect(deleted).toMatchObject({ type: "DELETED", object: { metadata: { name: "w-1" }, spec: { unschedulable: true } } });
    expect(Number(deleted!.object.metadata!.resourceVersion)).toBeGreaterThan(Number(cordoned.metadata?.resourceVersion));
  });

  it("without a resourceVersion: synthetic ADDED events first; as a Table: one row per event, columns with the first only", async () => {
    await register("wt-1", { suite: "wt" });
    const w = await watchOf("/api/v1/nodes?watch=true&labelSelector=suite%3Dwt", TABLE);
    const first = await w.next();
    expect(first).toMatchObject({ type: "ADDED", object: { kind: "Table", rows: [{ cells: ["wt-1", "Ready", "<none>", expect.any(String), "0.1.0", "10.0.0.7", "<none>", "Debian GNU/Linux 12", "6.1.0", "<unknown>"] }] } });
    expect(first!.object.columnDefinitions).toHaveLength(10);
    await register("wt-2", { suite: "wt" });
    const second = await w.next();
    expect(second).toMatchObject({ type: "ADDED", object: { kind: "Table", rows: [{ cells: expect.arrayContaining(["wt-2"]) }] } });
    expect(second!.object).not.toHaveProperty("columnDefinitions");
  });

  it("sendInitialEvents ends the initial state with an annotated BOOKMARK; bookmarks only when allowed", async () => {
    await register("wi-1", { suite: "wi" });
    const w = await watchOf("/api/v1/nodes?watch=1&labelSelector=suite%3Dwi&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan");
    expect(await w.next()).toMatchObject({ type: "ADDED", object: { metadata: { name: "wi-1" } } });
    const end = await w.next();
    expect(end).toMatchObject({ type: "BOOKMARK", object: { kind: "Node", metadata: { annotations: { "k8s.io/initial-events-end": "true" } } } });
    // A periodic bookmark: the store moved on (a node this watch does not select), the watch stayed idle.
    const moved = await register("wi-other");
    expect(await w.next()).toMatchObject({ type: "BOOKMARK", object: { metadata: { resourceVersion: moved } } });

    const quiet = await watchOf(`/api/v1/nodes?watch=1&labelSelector=suite%3Dwi&resourceVersion=${end!.object.metadata!.resourceVersion}`);
    // Once the bookmarking watcher has had another bookmark, the quiet one has been idle as long.
    await register("wi-other", { again: "yes" });
    expect((await w.next())?.type).toBe("BOOKMARK");
    await register("wi-1", { suite: "wi", changed: "yes" });
    expect(await quiet.next()).toMatchObject({ type: "MODIFIED", object: { metadata: { labels: { changed: "yes" } } } });
  });

  it("from a compacted revision: an ERROR event with a 410 Expired Status, then the end", async () => {
    const old = await register("wc-1");
    await register("wc-1", { again: "1" });
    await h.server.store.compact(await h.server.store.currentRevision());
    const w = await watchOf(`/api/v1/nodes?watch=true&resourceVersion=${old}`);
    expect(w.status).toBe(200);
    expect(await w.next()).toMatchObject({ type: "ERROR", object: { kind: "Status", status: "Failure", reason: "Expired", code: 410 } });
    expect(await w.next()).toBeUndefined();
  });

  it("timeoutSeconds ends the stream cleanly", async () => {
    const w = await watchOf(`/api/v1/nodes?watch=true&timeoutSeconds=1&resourceVersion=${await h.server.store.currentRevision()}`);
    expect(await w.next()).toBeUndefined();
  });

  it("leases and events are watched too", async () => {
    await register("wl-1");
    const leases = (await get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")).json as unknown as { metadata: { resourceVersion: string } };
    const lw = await watchOf(`/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases?watch=true&fieldSelector=metadata.name%3Dwl-1&resourceVersion=${leases.metadata.resourceVersion}`);
    const ew = await watchOf(`/api/v1/events?watch=true&resourceVersion=${leases.metadata.resourceVersion}&fieldSelector=involvedObject.name%3Dwl-1`);
    const renewed = await h.client.renewLease("wl-1", { holderIdentity: "someone" });
    expect(await lw.next()).toMatchObject({ type: "MODIFIED", object: { kind: "Lease", metadata: { name: "wl-1", resourceVersion: renewed.metadata?.resourceVersion }, spec: { holderIdentity: "someone" } } });
    await new EventRecorder({ store: h.server.store, source: "test" }).record({ nodeName: "wl-1", type: "Warning", reason: "NodeNotReady", message: "gone quiet" });
    expect(await ew.next()).toMatchObject({ type: "ADDED", object: { kind: "Event", involvedObject: { kind: "Node", name: "wl-1" }, reason: "NodeNotReady", message: "gone quiet" } });
  });

  it("on shutdown an open watch ends with a 503 ERROR event", async () => {
    const other = await startHarness({ httpListen: "127.0.0.1:0" });
    const w = await openWatch(`http://127.0.0.1:${other.server.httpPort}`, "/api/v1/nodes?watch=true&resourceVersion=0");
    const closing = other.close();
    expect(await w.next()).toMatchObject({ type: "ERROR", object: { code: 503, reason: "ServiceUnavailable" } });
    await closing;
  });
});

describe("nodes/status", () => {
  it("PUT replaces the status only; a strategic merge patch merges conditions by type", async () => {
    await register("st-1");
    const put = await send("PUT", "/api/v1/nodes/st-1/status", {
      metadata: { name: "st-1", labels: { ignored: "yes" } },
      status: { capacity: { cpu: 8 }, conditions: [{ type: "Ready", status: "True" }, { type: "DiskPressure", status: "False" }] },
    });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ status: { capacity: { cpu: "8" } } });
    expect((await h.client.getNode("st-1")).metadata?.labels).not.toHaveProperty("ignored");

    const patched = await send("PATCH", "/api/v1/nodes/st-1/status", { status: { conditions: [{ type: "Ready", status: "False", reason: "Broken" }] } }, "application/strategic-merge-patch+json");
    expect(patched.status).toBe(200);
    const conditions = (await h.client.getNode("st-1")).status!.conditions.map((c) => `${c.type}=${c.status}`);
    expect(conditions).toEqual(["Ready=False", "DiskPressure=False"]);
  });
});

describe("events and pods, as describe node asks for them", () => {
  it("events by involvedObject, in namespace default; pods always an empty list", async () => {
    const rec = new EventRecorder({ store: h.server.store, source: "node-lifecycle-controller" });
    await rec.record({ nodeName: "ev-1", type: "Normal", reason: "RegisteredNode", message: "Node ev-1 event: Registered" });
    await rec.record({ nodeName: "ev-2", type: "Normal", reason: "RegisteredNode", message: "Node ev-2 event: Registered" });
    const selector = encodeURIComponent("involvedObject.name=ev-1,involvedObject.namespace=,involvedObject.kind=Node,involvedObject.uid=ev-1");
    const list = (await get(`/api/v1/events?fieldSelector=${selector}&limit=500`)).json as { kind: string; items: Record<string, unknown>[] };
    expect(list.kind).toBe("EventList");
    expect(list.items).toEqual([
      expect.objectContaining({
        metadata: expect.objectContaining({ name: "ev-1.RegisteredNode", namespace: "default" }),
        involvedObject: { kind: "Node", apiVersion: "v1", name: "ev-1", uid: "ev-1" },
        reason: "RegisteredNode",
        source: { component: "node-lifecycle-controller" },
        count: 1,
        type: "Normal",
      }),
    ]);
    expect((await get("/api/v1/namespaces/default/events/ev-1.RegisteredNode")).json).toMatchObject({ message: "Node ev-1 event: Registered" });
    expect((await get(`/api/v1/namespaces/kube-system/events?fieldSelector=${selector}`)).json).toMatchObject({ items: [] });

    const pods = await get("/api/v1/pods?fieldSelector=spec.nodeName%3Dev-1%2Cstatus.phase!%3DFailed&limit=500");
    expect(pods.json).toMatchObject({ kind: "PodList", apiVersion: "v1", items: [] });
    expect((await get("/api/v1/namespaces/default/pods/nope")).status).toBe(404);
  });
});
