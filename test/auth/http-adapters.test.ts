/**
 * The REST and dashboard hooks over AccessControl: 401 for a missing or bad credential, 403
 * naming identity, action and object, the one table's answers otherwise; nodes may not write
 * their Node object through REST; everything allowed with authentication off.
 */
import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { AccessControl } from "../../src/auth/access.js";
import { Authenticator } from "../../src/auth/authenticator.js";
import { dashboardAuth, restAccess } from "../../src/auth/http-adapters.js";
import { TokenFile } from "../../src/auth/token-file.js";
import { systemClock } from "../../src/clock.js";

const tokens = TokenFile.parse(["op,ops,1,nodeplane:operators", "view,dash,2,nodeplane:viewers", "n1,system:node:n1,3,system:nodes"].join("\n"), "t");
const access = new AccessControl(new Authenticator({ tokenFile: tokens, clock: systemClock }));
const req = (authorization?: string, cert?: { cn: string; o: string; authorized: boolean }): IncomingMessage =>
  ({
    headers: authorization ? { authorization } : {},
    socket: cert
      ? { getPeerCertificate: () => ({ raw: Buffer.from("x"), subject: { CN: cert.cn, O: cert.o }, valid_to: "Jan  1 00:00:00 2099 GMT", fingerprint256: "f" }), authorized: cert.authorized, authorizationError: cert.authorized ? null : "CERT_HAS_EXPIRED" }
      : {},
  }) as unknown as IncomingMessage;

describe("restAccess", () => {
  const hook = restAccess(access);
  it.each([
    ["no credential", req(), { verb: "get", resource: "nodes", name: "n1" }, { allowed: false, code: 401 }],
    ["a bad token", req("Bearer nope"), { verb: "get", resource: "nodes", name: "n1" }, { allowed: false, code: 401, message: "invalid bearer token" }],
    ["an expired certificate", req(undefined, { cn: "a", o: "nodeplane:operators", authorized: false }), { verb: "get", resource: "nodes" }, { allowed: false, code: 401 }],
    ["discovery, authenticated", req("Bearer view"), { verb: "get", resource: "discovery" }, { allowed: true, user: "dash" }],
    ["a viewer lists nodes", req("Bearer view"), { verb: "list", resource: "nodes" }, { allowed: true, user: "dash" }],
    ["a viewer patches a node", req("Bearer view"), { verb: "patch", resource: "nodes", name: "n1" }, { allowed: false, code: 403, message: 'user "dash" (groups nodeplane:viewers) cannot patch node "n1" (viewers may only get, list and watch)' }],
    ["an operator's certificate deletes a node", req(undefined, { cn: "alice", o: "system:masters", authorized: true }), { verb: "delete", resource: "nodes", name: "n2" }, { allowed: true, user: "alice" }],
    ["a node updates its status", req("Bearer n1"), { verb: "patch", resource: "nodes/status", name: "n1" }, { allowed: true, user: "system:node:n1" }],
    ["a node gets another node's lease", req("Bearer n1"), { verb: "get", resource: "leases", name: "n2", namespace: "kube-node-lease" }, { allowed: false, code: 403, message: 'user "system:node:n1" (groups system:nodes) cannot get lease "kube-node-lease/n2" (a node may only read and write its own Node and Lease)' }],
    ["a node patches its own Node object", req("Bearer n1"), { verb: "patch", resource: "nodes", name: "n1" }, { allowed: false, code: 403 }],
  ] as const)("%s", async (_name, r, attrs, want) => {
    expect(await hook(r, attrs)).toMatchObject(want);
  });

  it("allows everything with authentication off", async () => {
    expect(await restAccess(new AccessControl(undefined))(req(), { verb: "delete", resource: "nodes", name: "x" })).toEqual({ allowed: true });
  });
});

describe("dashboardAuth", () => {
  it("authenticates tokens and answers the table's decisions; absent hooks with authentication off", async () => {
    const { authenticate, authorize } = dashboardAuth(access);
    expect(await authenticate!("nope")).toBeUndefined();
    const viewer = (await authenticate!("view"))!;
    expect(viewer.user).toBe("dash");
    expect(authorize!(viewer, "list", "nodes", "")).toBe(true);
    expect(authorize!(viewer, "patch", "nodes", "n1")).toBe(false);
    const node = (await authenticate!("n1"))!;
    expect(authorize!({ user: node.user, groups: node.groups }, "get", "leases", "n1")).toBe(true);
    expect(authorize!(node, "get", "leases", "n2")).toBe(false);
    expect(authorize!(node, "patch", "nodes", "n1")).toBe(false); // a cordon of itself
    expect(dashboardAuth(new AccessControl(undefined))).toEqual({});
  });
});
