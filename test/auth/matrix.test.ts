/**
 * The authorization matrix: every kind of caller × every RPC × its own node / another node,
 * each cell asserted — allowed, or the exact gRPC code. A refused write changes nothing (the
 * target's Node and Lease keep their revisions), and a refusal names the caller and the object.
 *
 * Callers: the admin certificate (system:masters), a token in nodeplane:operators, a viewer
 * certificate, node n1's certificate, a bootstrap token, an authenticated user in no group, and
 * an anonymous TLS client. "own" is n1 (the node's own name), "other" is n2; for callers that
 * are not nodes the two columns differ only in the name.
 */
import * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tlsCredentials } from "../../src/auth/client-credentials.js";
import { createCsr, generateKeyPair } from "../../src/auth/pki.js";
import type { AuthClient } from "../../src/client/auth-client.js";
import { FailedPreconditionError, RpcError } from "../../src/client/errors.js";
import { ProxyClient } from "../../src/client/proxy-client.js";
import { type AuthHarness, type Credential, startAuthHarness, TOKENS } from "../support/auth.js";
import { agentNode } from "../support/server.js";

type Who = "operator" | "tokenOperator" | "viewer" | "node" | "bootstrap" | "nobody" | "anonymous";
type Code = "OK" | "PERMISSION_DENIED" | "UNAUTHENTICATED";
const OWN = "n1";
const OTHER = "n2";

interface Ctx {
  h: AuthHarness;
  c: AuthClient;
  /** The same credential, for NodeProxyService. */
  p: ProxyClient;
  cred: Credential;
  name: string;
  /** Filled by prepare(). */
  tokenId: string;
  csr: string;
}

interface Rpc {
  /** Writes are checked to change nothing when refused. */
  write: boolean;
  prepare?: (x: Ctx) => Promise<void>;
  call: (x: Ctx) => Promise<unknown>;
}

const RPCS: Record<string, Rpc> = {
  Register: { write: true, call: (x) => x.c.register(agentNode(x.name)) },
  CreateNode: { write: true, prepare: (x) => x.h.operator.deleteNode(x.name).then(() => undefined), call: (x) => x.c.createNode(agentNode(x.name)) },
  GetNode: { write: false, call: (x) => x.c.getNode(x.name) },
  ListNodes: { write: false, call: (x) => x.c.listNodes({ fieldSelector: `metadata.name=${x.name}` }) },
  UpdateNode: {
    write: true,
    call: async (x) => {
      const node = await x.h.operator.getNode(x.name);
      return x.c.updateNode({ ...node, metadata: { ...node.metadata, resourceVersion: "", labels: { ...node.metadata?.labels, team: `t${Date.now()}` } } });
    },
  },
  UpdateStatus: { write: true, call: (x) => x.c.updateStatus(x.name, { ...agentNode(x.name).status, conditions: [{ type: "Ready", status: "True", message: String(Date.now()) }] }) },
  DeleteNode: { write: true, call: (x) => x.c.deleteNode(x.name) },
  RenewLease: { write: true, call: (x) => x.c.renewLease(x.name) },
  Heartbeat: {
    write: true,
    call: async (x) => {
      const stream = x.c.heartbeat();
      try {
        return await stream.renew(x.name);
      } finally {
        stream.close();
      }
    },
  },
  GetLease: { write: false, call: (x) => x.c.getLease(x.name) },
  ListLeases: { write: false, call: (x) => x.c.listLeases() },
  ListEvents: { write: false, call: (x) => x.c.listEvents(x.name) },
  Watch: {
    write: false,
    call: async (x) => {
      for await (const ev of x.c.watch({ fieldSelector: `metadata.name=${x.name}`, sendInitialEvents: true }, { timeoutMs: 10_000 })) return ev;
      throw new Error("the watch ended without an event");
    },
  },
  CreateBootstrapToken: { write: true, call: (x) => x.c.createBootstrapToken({ ttlMs: 60_000 }) },
  ListBootstrapTokens: { write: false, call: (x) => x.c.listBootstrapTokens() },
  DeleteBootstrapToken: {
    write: true,
    prepare: async (x) => {
      x.tokenId = (await x.h.operator.createBootstrapToken({ ttlMs: 60_000 })).bootstrapToken!.id;
    },
    call: (x) => x.c.deleteBootstrapToken(x.tokenId),
  },
  SignNodeCertificate: {
    write: true,
    prepare: async (x) => {
      x.csr = await createCsr(await generateKeyPair(), { commonName: `system:node:${x.name}`, organizations: ["system:nodes"] });
    },
    call: (x) => x.c.signNodeCertificate(x.name, x.csr),
  },
  WhoAmI: { write: false, call: (x) => x.c.whoAmI() },
  ServerReflectionInfo: { write: false, call: (x) => listServicesByReflection(x.h.address, { ...x.cred, ca: x.h.caPem }) },
  // The nodes have no agent endpoint: an admitted call reaches the proxy, which answers FAILED_PRECONDITION.
  GetNodeUsage: { write: false, call: (x) => reached(x.p.getNodeUsage(x.name)) },
  ListNodeUsage: { write: false, call: (x) => x.p.listNodeUsage() },
  GetNodeLogs: { write: false, call: (x) => reached(x.p.getNodeLogs(x.name, 10)) },
  CheckNode: { write: false, call: (x) => reached(x.p.checkNode(x.name)) },
};

/** A proxy call that got past authorization to the node (which has no agent endpoint). */
const reached = (p: Promise<unknown>): Promise<unknown> => p.catch((err: unknown) => (err instanceof FailedPreconditionError ? undefined : Promise.reject(err)));

const ALL_OK: Record<string, [Code, Code]> = Object.fromEntries(Object.keys(RPCS).map((rpc) => [rpc, ["OK", "OK"]]));
const only = (allowed: Record<string, [Code, Code]>): Record<string, [Code, Code]> =>
  Object.fromEntries(Object.keys(RPCS).map((rpc) => [rpc, allowed[rpc] ?? ["PERMISSION_DENIED", "PERMISSION_DENIED"]]));
const BOTH: [Code, Code] = ["OK", "OK"];
const OWN_ONLY: [Code, Code] = ["OK", "PERMISSION_DENIED"];

/** The expected answer of every cell: [own node, other node]. */
const EXPECTED: Record<Who, Record<string, [Code, Code]>> = {
  operator: ALL_OK,
  tokenOperator: ALL_OK,
  viewer: only({
    GetNode: BOTH,
    ListNodes: BOTH,
    GetLease: BOTH,
    ListLeases: BOTH,
    ListEvents: BOTH,
    Watch: BOTH,
    WhoAmI: BOTH,
    ServerReflectionInfo: BOTH,
    GetNodeUsage: BOTH,
    ListNodeUsage: BOTH,
    GetNodeLogs: BOTH,
    CheckNode: BOTH,
  }),
  node: only({
    Register: OWN_ONLY,
    CreateNode: OWN_ONLY,
    GetNode: OWN_ONLY,
    ListNodes: OWN_ONLY,
    UpdateNode: OWN_ONLY,
    UpdateStatus: OWN_ONLY,
    RenewLease: OWN_ONLY,
    Heartbeat: OWN_ONLY,
    GetLease: OWN_ONLY,
    ListEvents: OWN_ONLY,
    Watch: OWN_ONLY,
    SignNodeCertificate: OWN_ONLY,
    WhoAmI: BOTH,
    ServerReflectionInfo: BOTH,
  }),
  // Both names exist, so a bootstrap token may not have either (bootstrap tokens make new nodes only).
  bootstrap: only({ WhoAmI: BOTH, ServerReflectionInfo: BOTH }),
  nobody: only({ WhoAmI: BOTH, ServerReflectionInfo: BOTH }),
  anonymous: Object.fromEntries(Object.keys(RPCS).map((rpc) => [rpc, ["UNAUTHENTICATED", "UNAUTHENTICATED"]])),
};

/** The user name each caller is, as refusals must name it. */
const USERS: Record<Who, string> = {
  operator: "nodeplane-admin",
  tokenOperator: "ops-bot",
  viewer: "viewer-alice",
  node: "system:node:n1",
  bootstrap: "system:bootstrap:",
  nobody: "nobody",
  anonymous: "",
};

describe("authorization matrix", () => {
  let h: AuthHarness;
  const callers = {} as Record<Who, { c: AuthClient; p: ProxyClient; cred: Credential }>;

  beforeAll(async () => {
    h = await startAuthHarness({ limits: { qps: 0 } });
    const bootstrapToken = (await h.operator.createBootstrapToken({ ttlMs: 3_600_000 })).token;
    const nodeCred = await h.certificate("system:node:n1", ["system:nodes"]);
    const viewerCred = await h.certificate("viewer-alice", ["nodeplane:viewers"]);
    const creds: Record<Who, Credential> = {
      operator: h.adminCredential,
      tokenOperator: { token: TOKENS.operator },
      viewer: viewerCred,
      node: nodeCred,
      bootstrap: { token: bootstrapToken },
      nobody: { token: TOKENS.nobody },
      anonymous: {},
    };
    for (const [who, cred] of Object.entries(creds) as [Who, Credential][]) {
      const p = new ProxyClient(h.address, { credentials: tlsCredentials({ ca: h.caPem, cert: cred.cert, key: cred.key }), token: cred.token, timeoutMs: 10_000 });
      callers[who] = { c: h.client(cred), p, cred };
    }
  });
  afterAll(async () => {
    for (const who of Object.keys(callers) as Who[]) callers[who].p.close();
    await h.close();
  });

  const cells = (Object.keys(EXPECTED) as Who[]).flatMap((who) =>
    Object.keys(RPCS).flatMap((rpc) => (["own", "other"] as const).map((target, i) => ({ who, rpc, target, want: EXPECTED[who][rpc]![i]! }))),
  );

  it.each(cells)("$who $rpc on the $target node: $want", async ({ who, rpc, target, want }) => {
    const name = target === "own" ? OWN : OTHER;
    // Every cell starts from both nodes registered (with their Leases).
    await h.operator.register(agentNode(OWN));
    await h.operator.register(agentNode(OTHER));
    const x: Ctx = { h, c: callers[who].c, p: callers[who].p, cred: callers[who].cred, name, tokenId: "", csr: "" };
    const spec = RPCS[rpc]!;
    await spec.prepare?.(x);
    const before = spec.write ? await revisions(h, name) : undefined;
    const got = await outcome(spec.call(x));
    expect(got.code).toBe(want);
    if (want === "PERMISSION_DENIED") {
      expect(got.message).toContain(`user "${USERS[who]}`);
      // The object is named, except where the RPC has none (lists of everything, tokens) or the
      // caller may renew no Lease at all (its Heartbeat stream is refused before any renewal is read).
      const unnamed = ["ListLeases", "ListBootstrapTokens", "CreateBootstrapToken", "DeleteBootstrapToken", "ListNodeUsage"].includes(rpc) || (rpc === "Heartbeat" && who !== "node");
      expect(got.message).toMatch(unnamed ? / cannot / : new RegExp(`[="/]${name}\\b`));
    }
    if (want !== "OK" && before) expect(await revisions(h, name)).toEqual(before);
  });

  it("a node's refused read says the same whether the object exists or not", async () => {
    const node = callers.node.c;
    const existing = await outcome(node.getNode(OTHER));
    const missing = await outcome(node.getNode("no-such-node"));
    expect(existing.code).toBe("PERMISSION_DENIED");
    expect(missing.message).toBe(existing.message.replace(`"${OTHER}"`, '"no-such-node"'));
    const existingLease = await outcome(node.getLease(OTHER));
    const missingLease = await outcome(node.getLease("no-such-node"));
    expect(existingLease.code).toBe("PERMISSION_DENIED");
    expect(missingLease.message).toBe(existingLease.message.replace(`kube-node-lease/${OTHER}`, "kube-node-lease/no-such-node"));
  });

  it("an unpinned list or watch is refused to a node (it may see only its own Node)", async () => {
    const node = callers.node.c;
    expect((await outcome(node.listNodes())).code).toBe("PERMISSION_DENIED");
    expect((await outcome(node.listNodes({ labelSelector: "kubernetes.io/os=linux" }))).code).toBe("PERMISSION_DENIED");
    expect((await outcome(node.listEvents(""))).code).toBe("PERMISSION_DENIED");
    const watch = await outcome(
      (async () => {
        for await (const ev of node.watch({ sendInitialEvents: true })) return ev;
      })(),
    );
    expect(watch).toEqual({ code: "PERMISSION_DENIED", message: 'user "system:node:n1" (groups system:nodes) cannot watch nodes (a node may only read and write its own Node and Lease)' });
  });
});

async function outcome(p: Promise<unknown>): Promise<{ code: Code | string; message: string }> {
  try {
    await p;
    return { code: "OK", message: "" };
  } catch (err) {
    if (err instanceof RpcError) return { code: status[err.code] ?? String(err.code), message: err.details };
    if (err && typeof err === "object" && "code" in err) return { code: status[(err as { code: number }).code] ?? "?", message: String((err as { details?: string }).details) };
    throw err;
  }
}

/** The target's Node and Lease revisions, read as the operator ("" when absent). */
async function revisions(h: AuthHarness, name: string): Promise<[string, string]> {
  const node = await h.operator.getNode(name).then((n) => n.metadata?.resourceVersion ?? "", () => "");
  const lease = await h.operator.getLease(name).then((l) => l.metadata?.resourceVersion ?? "", () => "");
  return [node, lease];
}

/** grpc.reflection.v1 ListServices over a raw bidi call (the SDK has no reflection client). */
function listServicesByReflection(address: string, cred: Credential): Promise<void> {
  const client = new grpc.Client(address, tlsCredentials({ ca: cred.ca ?? "", cert: cred.cert, key: cred.key }));
  const md = new grpc.Metadata();
  if (cred.token) md.set("authorization", `Bearer ${cred.token}`);
  return new Promise<void>((resolve, reject) => {
    const call = client.makeBidiStreamRequest(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      (b: Buffer) => b,
      (b: Buffer) => b,
      md,
      { deadline: Date.now() + 10_000 },
    );
    call.on("data", () => {
      call.end();
      resolve();
    });
    call.on("error", (err) => reject(err));
    call.write(Buffer.from([0x3a, 0x00])); // list_services: ""
  }).finally(() => client.close());
}
