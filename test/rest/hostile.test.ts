/**
 * Hostile and malformed requests on every REST path: each is answered with a Kubernetes
 * Status of the right code and a message saying what is wrong, changes nothing, and leaves the
 * server serving (the node written at the start is untouched at the end, /healthz answers).
 */
import { request } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type RequestOptions } from "../support/rest.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

let h: Harness;
let base: string;
let victimVersion: string;

beforeAll(async () => {
  h = await startHarness({ httpListen: "127.0.0.1:0" });
  base = `http://127.0.0.1:${h.server.httpPort}`;
  victimVersion = (await h.client.register(agentNode("victim"))).node!.metadata!.resourceVersion;
});
afterAll(() => h.close());

interface Case {
  method: string;
  path: string;
  opts?: RequestOptions;
  code: number;
  reason: string;
  /** The message says this. */
  says: string | RegExp;
}

const json = (v: unknown): string => JSON.stringify(v);
const MERGE = "application/merge-patch+json";
const STRATEGIC = "application/strategic-merge-patch+json";
const JSONPATCH = "application/json-patch+json";

const cases: Record<string, Case> = {
  // bodies
  "malformed JSON": { method: "POST", path: "/api/v1/nodes", opts: { body: '{"metadata": {"name": "x"' }, code: 400, reason: "BadRequest", says: "error decoding JSON" },
  "a body that is not an object": { method: "POST", path: "/api/v1/nodes", opts: { body: "[1,2]" }, code: 400, reason: "BadRequest", says: "must be a Node object" },
  "a field of the wrong type": { method: "POST", path: "/api/v1/nodes", opts: { body: json({ metadata: { name: "x", labels: { a: 1 } } }) }, code: 400, reason: "BadRequest", says: 'metadata.labels["a"]: expected a string, found number' },
  "a bad time": { method: "PUT", path: "/api/v1/nodes/victim", opts: { body: json({ metadata: { name: "victim" }, spec: { taints: [{ key: "a", effect: "NoExecute", timeAdded: "yesterday" }] } }) }, code: 400, reason: "BadRequest", says: "spec.taints[0].timeAdded: expected an RFC 3339 time" },
  "an unknown field under fieldValidation=Strict": { method: "POST", path: "/api/v1/nodes?fieldValidation=Strict", opts: { body: json({ metadata: { name: "x" }, spec: { unschedulabel: true } }) }, code: 400, reason: "BadRequest", says: 'strict decoding error: unknown field "spec.unschedulabel"' },
  "a bad fieldValidation": { method: "POST", path: "/api/v1/nodes?fieldValidation=Maybe", opts: { body: json({ metadata: { name: "x" } }) }, code: 400, reason: "BadRequest", says: "must be Strict, Warn or Ignore" },
  "invalid UTF-8": { method: "POST", path: "/api/v1/nodes", opts: { body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }, code: 400, reason: "BadRequest", says: "not valid UTF-8" },
  "a body over 3 MiB": { method: "POST", path: "/api/v1/nodes", opts: { body: `{"metadata":{"name":"x","annotations":{"a":"${"a".repeat(4 * 1024 * 1024)}"}}}` }, code: 413, reason: "RequestEntityTooLarge", says: "limit is 3145728 bytes" },
  "a non-ASCII name": { method: "POST", path: "/api/v1/nodes", opts: { body: json({ metadata: { name: "nöde-ü" } }) }, code: 422, reason: "Invalid", says: /^Node "nöde-ü" is invalid: metadata\.name: Invalid value/ },
  "a non-ASCII label value": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: json({ metadata: { labels: { team: "ïnfra" } } }), type: MERGE }, code: 422, reason: "Invalid", says: 'metadata.labels["team"]: Invalid value: "ïnfra"' },
  "a label key named __proto__": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: '{"metadata":{"labels":{"__proto__":"x"}}}', type: MERGE }, code: 422, reason: "Invalid", says: 'metadata.labels["__proto__"]' },
  "a bad taint effect, named in Kubernetes' spelling": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: json({ spec: { taints: [{ key: "a", effect: "Sometimes" }] } }), type: STRATEGIC }, code: 422, reason: "Invalid", says: "spec.taints[0].effect: Invalid value" },
  "a second pod CIDR of the same family": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: json({ spec: { podCIDRs: ["10.0.0.0/24", "10.0.1.0/24"] } }), type: MERGE }, code: 422, reason: "Invalid", says: "spec.podCIDRs" },
  "a name that does not match the URL": { method: "PUT", path: "/api/v1/nodes/victim", opts: { body: json({ metadata: { name: "other" } }) }, code: 400, reason: "BadRequest", says: "does not match the name on the URL" },
  "another kind": { method: "POST", path: "/api/v1/nodes", opts: { body: json({ apiVersion: "v1", kind: "Pod", metadata: { name: "x" } }) }, code: 400, reason: "BadRequest", says: "cannot be handled as a Node" },
  "a resourceVersion on create": { method: "POST", path: "/api/v1/nodes", opts: { body: json({ metadata: { name: "x", resourceVersion: "5" } }) }, code: 400, reason: "BadRequest", says: "resourceVersion should not be set" },
  "a stale resourceVersion": { method: "PUT", path: "/api/v1/nodes/victim", opts: { body: json({ metadata: { name: "victim", resourceVersion: "12345" } }) }, code: 409, reason: "Conflict", says: 'Operation cannot be fulfilled on nodes "victim"' },
  "a resourceVersion that is not a number": { method: "PUT", path: "/api/v1/nodes/victim", opts: { body: json({ metadata: { name: "victim", resourceVersion: "abc" } }) }, code: 422, reason: "Invalid", says: "metadata.resourceVersion" },
  "a uid precondition that does not hold": { method: "DELETE", path: "/api/v1/nodes/victim", opts: { body: json({ preconditions: { uid: "not-the-uid" } }) }, code: 409, reason: "Conflict", says: "Precondition failed: UID in precondition: not-the-uid" },
  "a dry run": { method: "DELETE", path: "/api/v1/nodes/victim?dryRun=All", code: 400, reason: "BadRequest", says: "dryRun is not supported" },
  "a dry run in DeleteOptions": { method: "DELETE", path: "/api/v1/nodes/victim", opts: { body: json({ dryRun: ["All"] }) }, code: 400, reason: "BadRequest", says: "dryRun is not supported" },
  // media types
  "a body of another media type": { method: "POST", path: "/api/v1/nodes", opts: { body: "name: x", type: "text/plain" }, code: 415, reason: "UnsupportedMediaType", says: 'unknown format "text/plain"' },
  "a body in another charset": { method: "POST", path: "/api/v1/nodes", opts: { body: "{}", type: "application/json; charset=latin1" }, code: 415, reason: "UnsupportedMediaType", says: 'charset "latin1"' },
  "a patch of an unknown type": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: "{}", type: "application/json" }, code: 415, reason: "UnsupportedMediaType", says: "is not supported" },
  "server-side apply": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: "{}", type: "application/apply-patch+yaml" }, code: 415, reason: "UnsupportedMediaType", says: "server-side apply is not supported" },
  "an Accept nodeplane cannot produce": { method: "GET", path: "/api/v1/nodes", opts: { accept: "application/vnd.kubernetes.protobuf" }, code: 406, reason: "NotAcceptable", says: "can be served" },
  // patches
  "a JSON patch that is not a list": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: "{}", type: JSONPATCH }, code: 400, reason: "BadRequest", says: "a JSON patch is a list of operations" },
  "a JSON patch with an unknown op": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: json([{ op: "frobnicate", path: "/x" }]), type: JSONPATCH }, code: 400, reason: "BadRequest", says: 'unknown op "frobnicate"' },
  "a JSON patch at a missing path": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: json([{ op: "replace", path: "/spec/nope/deeper", value: 1 }]), type: JSONPATCH }, code: 400, reason: "BadRequest", says: "no value at /spec/nope" },
  "a failing JSON patch test": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: json([{ op: "test", path: "/metadata/name", value: "other" }]), type: JSONPATCH }, code: 400, reason: "BadRequest", says: "test failed" },
  "a JSON patch removing the name": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: json([{ op: "remove", path: "/metadata/name" }]), type: JSONPATCH }, code: 400, reason: "BadRequest", says: "does not match the name on the URL" },
  "a patch nested too deep": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`, type: STRATEGIC }, code: 400, reason: "BadRequest", says: "nested deeper than 100 levels" },
  "an unknown $patch directive": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: json({ spec: { $patch: "explode" } }), type: STRATEGIC }, code: 400, reason: "BadRequest", says: 'unknown $patch directive "explode"' },
  "a condition without its merge key": { method: "PATCH", path: "/api/v1/nodes/victim/status", opts: { body: json({ status: { conditions: [{ status: "True" }] } }), type: STRATEGIC }, code: 400, reason: "BadRequest", says: 'merge key "type"' },
  "a merge patch of null": { method: "PATCH", path: "/api/v1/nodes/victim", opts: { body: "null", type: MERGE }, code: 400, reason: "BadRequest", says: "must be a Node object" },
  // query parameters
  "a bad label selector": { method: "GET", path: `/api/v1/nodes?labelSelector=${encodeURIComponent("team in (a,")}`, code: 400, reason: "BadRequest", says: "labelSelector" },
  "a label selector with a bad key": { method: "GET", path: `/api/v1/nodes?labelSelector=${encodeURIComponent("-bad=1")}`, code: 400, reason: "BadRequest", says: "invalid label key" },
  "a field selector on an unknown field": { method: "GET", path: "/api/v1/nodes?fieldSelector=status.phase%3DRunning", code: 400, reason: "BadRequest", says: 'unknown field "status.phase"' },
  "an event field selector on an unknown field": { method: "GET", path: "/api/v1/events?fieldSelector=spec.x%3D1", code: 400, reason: "BadRequest", says: '"spec.x" is not a known field selector' },
  "a field selector without an operator": { method: "GET", path: "/apis/coordination.k8s.io/v1/leases?fieldSelector=metadata.name", code: 400, reason: "BadRequest", says: "expected field=value" },
  "a resourceVersion that is not a revision": { method: "GET", path: "/api/v1/nodes?resourceVersion=abc", code: 400, reason: "BadRequest", says: 'resourceVersion: "abc"' },
  "a huge resourceVersion": { method: "GET", path: "/api/v1/nodes?resourceVersion=100000000000000000000", code: 400, reason: "BadRequest", says: "resourceVersion" },
  "a negative limit": { method: "GET", path: "/api/v1/nodes?limit=-1", code: 400, reason: "BadRequest", says: 'limit: "-1"' },
  "a forged continue token": { method: "GET", path: "/api/v1/nodes?continue=Zm9yZ2Vk", code: 400, reason: "BadRequest", says: "continue" },
  "a resourceVersion with continue": { method: "GET", path: "/api/v1/nodes?continue=abc&resourceVersion=5", code: 400, reason: "BadRequest", says: "not allowed when using continue" },
  "a bad resourceVersionMatch": { method: "GET", path: "/api/v1/nodes?resourceVersion=1&resourceVersionMatch=Sometimes", code: 400, reason: "BadRequest", says: "must be NotOlderThan or Exact" },
  "a bad watch flag": { method: "GET", path: "/api/v1/nodes?watch=perhaps", code: 400, reason: "BadRequest", says: "watch" },
  "a bad timeoutSeconds": { method: "GET", path: "/api/v1/nodes?watch=1&timeoutSeconds=soon", code: 400, reason: "BadRequest", says: "timeoutSeconds" },
  "a watch from a future revision": { method: "GET", path: "/api/v1/nodes?watch=1&resourceVersion=99999999", code: 422, reason: "Invalid", says: "newer than the server's current revision" },
  "a bad includeObject": { method: "GET", path: "/api/v1/nodes?includeObject=All", opts: { accept: "application/json;as=Table;v=v1;g=meta.k8s.io" }, code: 400, reason: "BadRequest", says: "includeObject" },
  // paths and methods
  "a malformed percent-encoding": { method: "GET", path: "/api/v1/nodes/%zz", code: 400, reason: "BadRequest", says: "not valid percent-encoding" },
  "an unknown path": { method: "GET", path: "/apis/apps/v1/deployments", code: 404, reason: "NotFound", says: "could not find the requested resource" },
  "an unknown subresource": { method: "GET", path: "/api/v1/nodes/victim/proxy", code: 404, reason: "NotFound", says: "could not find the requested resource" },
  "a missing node": { method: "GET", path: "/api/v1/nodes/nope", code: 404, reason: "NotFound", says: 'nodes "nope" not found' },
  "a lease in another namespace": { method: "GET", path: "/apis/coordination.k8s.io/v1/namespaces/default/leases/victim", code: 404, reason: "NotFound", says: 'leases.coordination.k8s.io "victim" not found' },
  "a node created twice": { method: "POST", path: "/api/v1/nodes", opts: { body: json({ metadata: { name: "victim" } }) }, code: 409, reason: "AlreadyExists", says: 'nodes "victim" already exists' },
  "deleting every node at once": { method: "DELETE", path: "/api/v1/nodes", code: 405, reason: "MethodNotAllowed", says: "DELETE on a collection of nodes" },
  "POST to an object": { method: "POST", path: "/api/v1/nodes/victim", opts: { body: "{}" }, code: 405, reason: "MethodNotAllowed", says: "POST on an object" },
  "writing a lease": { method: "PATCH", path: "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/victim", opts: { body: "{}", type: MERGE }, code: 405, reason: "MethodNotAllowed", says: "patch on leases" },
  "OPTIONS": { method: "OPTIONS", path: "/api/v1/nodes", code: 405, reason: "MethodNotAllowed", says: "OPTIONS" },
  "POST to /version": { method: "POST", path: "/version", opts: { body: "{}" }, code: 405, reason: "MethodNotAllowed", says: "POST is not allowed on /version" },
  "watching pods": { method: "GET", path: "/api/v1/pods?watch=true", code: 405, reason: "MethodNotAllowed", says: "watch on pods" },
};

describe("hostile input: a Status with the right code, nothing changed, the server still serving", () => {
  it.each(Object.entries(cases))("%s", async (_name, c) => {
    const r = await call(base, c.method, c.path, c.opts);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(r.json).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", code: c.code, reason: c.reason });
    expect(r.status).toBe(c.code);
    if (typeof c.says === "string") expect(r.json.message).toContain(c.says);
    else expect(r.json.message).toMatch(c.says);
  });

  it("changed nothing: the node every case aimed at is as it was, and nothing was created", async () => {
    expect((await h.client.getNode("victim")).metadata?.resourceVersion).toBe(victimVersion);
    expect((await h.client.listAllNodes()).nodes.map((n) => n.metadata?.name)).toEqual(["victim"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it("keys such as __proto__ in a patch are plain keys, never a prototype", async () => {
    const r = await call(base, "PATCH", "/api/v1/nodes/victim", { body: '{"__proto__":{"polluted":true},"metadata":{"__proto__":{"polluted":true},"annotations":{"note":"x"}}}', type: MERGE });
    expect(r.status).toBe(200);
    expect(r.json.metadata).toMatchObject({ annotations: { note: "x" } });
    expect(r.headers.get("warning")).toBe('299 - "unknown field \\"metadata.__proto__\\"", 299 - "unknown field \\"__proto__\\""');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    victimVersion = (await h.client.getNode("victim")).metadata!.resourceVersion;
  });

  it("unknown fields: a Warning header by default, nothing with fieldValidation=Ignore", async () => {
    const warned = await call(base, "POST", "/api/v1/nodes", { body: json({ metadata: { name: "warned", finalizers: ["x"] }, spec: { bogus: 1 } }) });
    expect(warned.status).toBe(201);
    expect(warned.headers.get("warning")).toBe('299 - "unknown field \\"spec.bogus\\"", 299 - "metadata.finalizers is not kept by nodeplane and was ignored"');
    const quiet = await call(base, "POST", "/api/v1/nodes?fieldValidation=Ignore", { body: json({ metadata: { name: "quiet" }, spec: { bogus: 1 } }) });
    expect(quiet.status).toBe(201);
    expect(quiet.headers.get("warning")).toBeNull();
  });

  it("a request target that is not a URL is a 400", async () => {
    const socket = connect(h.server.httpPort!, "127.0.0.1");
    socket.end("GET http://[::1/api/v1/nodes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let answer = "";
    for await (const chunk of socket) answer += String(chunk);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"reason":"BadRequest"');
  });

  it("a body sent in chunks past the limit is cut off with 413, and the server goes on", async () => {
    // Chunked (no length to refuse up front): 3 MiB and one byte more, then the client waits.
    // The server stops reading at the byte over the limit, answers 413 and closes.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/api/v1/nodes`, { method: "POST", headers: { "content-type": "application/json", "transfer-encoding": "chunked" } });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      for (let i = 0; i < 3; i++) req.write(Buffer.alloc(1024 * 1024, "a"));
      req.write("a");
    });
    expect(status).toBe(413);
    expect((await call(base, "GET", "/api/v1/nodes/victim")).status).toBe(200);
  });
});
