/**
 * The fuzz suite's RPC table: every method the server serves — NodeService's, health's and
 * reflection's — with its path and call shape, valid base requests built from the generated
 * types (the mutator's starting points), and, for writes, how to read from a successful answer
 * which store revisions it committed (so the suite can tell a successful write from a rejected
 * request that changed the store anyway).
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { AuthServiceService, CreateBootstrapTokenRequest, DeleteBootstrapTokenRequest } from "../../src/gen/nodeplane/v1/auth.js";
import type { Lease } from "../../src/gen/nodeplane/v1/lease.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import {
  CreateNodeRequest,
  CreateNodeResponse,
  DeleteNodeRequest,
  GetLeaseRequest,
  GetNodeRequest,
  HeartbeatRequest,
  HeartbeatResponse,
  ListEventsRequest,
  ListLeasesRequest,
  ListNodesRequest,
  NodeServiceService,
  RegisterRequest,
  RegisterResponse,
  RenewLeaseRequest,
  RenewLeaseResponse,
  UpdateNodeRequest,
  UpdateNodeResponse,
  UpdateStatusRequest,
  UpdateStatusResponse,
  WatchRequest,
} from "../../src/gen/nodeplane/v1/service.js";
import { agentNode } from "../support/server.js";
import { requestShape, type Shape } from "./schema.js";
import {
  AgentTunnelServiceService,
  CheckNodeRequest,
  ConnectRequest,
  GetNodeLogsRequest,
  GetNodeUsageRequest,
  ListNodeUsageRequest,
  NodeProxyServiceService,
} from "../../src/gen/nodeplane/v1/node_proxy.js";

export type CallKind = "unary" | "server-stream" | "bidi";

/** What a successful call wrote: the revisions its answer carries, and writes it cannot name. */
export interface Written {
  revisions: string[];
  /** Writes whose revision the answer does not carry (DeleteNode answers the node as it was). */
  unnamed: number;
}

export interface FuzzRpc {
  /** Short name, used in test names and failure messages: "Register", "health.Check". */
  name: string;
  path: string;
  kind: CallKind;
  shape: Shape;
  /** Valid requests, the mutator's starting points. */
  bases: Uint8Array[];
  /**
   * A server stream that stays open while the request is good answers its first message at
   * once (the caller then ends it): such a stream counts as answered at its first message.
   */
  answeredAtFirstMessage?: boolean;
  /** Adjusts every body before it is sent (see Watch). */
  prepare?: (body: Uint8Array) => Uint8Array;
  /** For writes: what a successful call committed, from its answer's messages. */
  written?: (responses: Uint8Array[]) => Written;
}

/** Nodes the suite registers before each batch, so that bases reach existing objects. */
export const SEED_NODES = ["fuzz-seed-0", "fuzz-seed-1", "fuzz-seed-2"] as const;

/** A complete node, as an agent registers it, with every field set so that mutations reach every field. */
function seedNode(name: string): Node {
  const t = new Date("2024-05-01T10:00:00.000Z");
  return Node.fromPartial(
    agentNode(name, {
      metadata: { creationTimestamp: t, labels: { "example.com/team": "a" }, annotations: { "example.com/note": "fuzz seed" } },
      spec: { providerId: `inventory://rack1/${name}`, taints: [{ key: "example.com/dedicated", value: "fuzz", effect: "NoSchedule", timeAdded: t }] },
      status: {
        conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: t, lastTransitionTime: t, reason: "AgentReady", message: "ok" }],
        nodeInfo: {
          machineId: "m",
          systemUuid: "u",
          bootId: "b",
          kernelVersion: "6.1.0",
          osImage: "Debian GNU/Linux 12",
          containerRuntimeVersion: "containerd://1.7",
          agentVersion: "0.1.0",
          operatingSystem: "linux",
          architecture: "amd64",
        },
        daemonEndpoints: { agentEndpoint: { port: 10250 } },
      },
    }),
  );
}

const revisionOf = (o: Node | Lease | undefined): string[] => {
  const rv = o?.metadata?.resourceVersion;
  return rv ? [rv] : [];
};

const each = <T>(decode: (b: Uint8Array) => T, pick: (m: T) => string[]) => (responses: Uint8Array[]): Written => ({
  revisions: responses.flatMap((r) => pick(decode(r))),
  unnamed: 0,
});

/** A message of string fields only (health's and reflection's requests). */
function strings(fields: Record<number, string>): Uint8Array {
  const w = new BinaryWriter();
  for (const [no, value] of Object.entries(fields)) w.uint32((Number(no) << 3) | 2).string(value);
  return w.finish();
}

/**
 * Continue tokens an attacker would forge once they have seen one (base64url JSON carrying a
 * revision and a key): revisions in the future, from before the store began, keys outside the
 * node prefix.
 */
const FORGED_TOKENS = [
  { v: 1, r: 999_999_999_999, a: "" },
  { v: 1, r: 0, a: "" },
  { v: 1, r: 1, a: "/registry/leases/\u0000" },
  { v: 2, r: 1, a: "" },
].map((t) => Buffer.from(JSON.stringify(t)).toString("base64url"));

/**
 * A good Watch from "now" says nothing until something changes: indistinguishable from a hung
 * call. So every Watch body is made to carry send_initial_events = true as the server's own
 * decoder reads it; a watch the server accepts then answers at once with its initial state and
 * a BOOKMARK (API.md). The field goes after the body (the last one wins), else before it (the
 * generated decoder stops at a zero or end-group tag), else the body is re-encoded from what
 * that decoder read.
 */
function withInitialEvents(body: Uint8Array): Uint8Array {
  const flag = Uint8Array.of((4 << 3) | 0, 1);
  let read: WatchRequest | undefined;
  for (const candidate of [Buffer.concat([body, flag]), Buffer.concat([flag, body])]) {
    try {
      read = WatchRequest.decode(candidate);
    } catch {
      return candidate; // undecodable: the server must reject it, and at once
    }
    if (read.sendInitialEvents) return candidate;
  }
  return WatchRequest.encode({ ...read!, sendInitialEvents: true }).finish();
}

const [S0, S1, S2] = SEED_NODES;
const svc = NodeServiceService;

function nodeRpc(
  name: keyof typeof svc,
  bases: Uint8Array[],
  extra: Partial<Pick<FuzzRpc, "answeredAtFirstMessage" | "prepare" | "written">> = {},
): FuzzRpc {
  const def = svc[name];
  const kind: CallKind = def.requestStream ? "bidi" : def.responseStream ? "server-stream" : "unary";
  const method = def.path.slice(def.path.lastIndexOf("/") + 1);
  return { name: method, path: def.path, kind, shape: requestShape(`nodeplane.v1.${method}Request`), bases, ...extra };
}

const BASE_RPCS: FuzzRpc[] = [
  nodeRpc(
    "register",
    [...SEED_NODES, "fuzz-new-0"].map((n) => RegisterRequest.encode({ node: seedNode(n) }).finish()),
    { written: each(RegisterResponse.decode, (m) => [...revisionOf(m.node), ...revisionOf(m.lease)]) },
  ),
  nodeRpc(
    "createNode",
    ["fuzz-created-0", S2].map((n) => CreateNodeRequest.encode({ node: seedNode(n) }).finish()),
    { written: each(CreateNodeResponse.decode, (m) => revisionOf(m.node)) },
  ),
  nodeRpc("getNode", [S0, "fuzz-missing", ""].map((name) => GetNodeRequest.encode({ name }).finish())),
  nodeRpc("listNodes", [
    ListNodesRequest.encode({ labelSelector: "", fieldSelector: "", limit: 0, continueToken: "" }).finish(),
    ListNodesRequest.encode({ labelSelector: "kubernetes.io/os=linux,example.com/team in (a,b),!gone", fieldSelector: "spec.unschedulable=false", limit: 2, continueToken: "" }).finish(),
    ListNodesRequest.encode({ labelSelector: "", fieldSelector: `metadata.name=${S1}`, limit: 1, continueToken: "" }).finish(),
    ...FORGED_TOKENS.map((continueToken) => ListNodesRequest.encode({ labelSelector: "", fieldSelector: "", limit: 1, continueToken }).finish()),
  ]),
  nodeRpc(
    "updateNode",
    [S0, S1].map((n) => UpdateNodeRequest.encode({ node: seedNode(n) }).finish()),
    { written: each(UpdateNodeResponse.decode, (m) => revisionOf(m.node)) },
  ),
  nodeRpc(
    "updateStatus",
    [S0, S2].map((n, i) => UpdateStatusRequest.encode({ name: n, status: seedNode(n).status, resourceVersion: i === 0 ? "" : "1" }).finish()),
    { written: each(UpdateStatusResponse.decode, (m) => revisionOf(m.node)) },
  ),
  nodeRpc(
    "deleteNode",
    [
      DeleteNodeRequest.encode({ name: S2, resourceVersion: "" }).finish(),
      DeleteNodeRequest.encode({ name: S1, resourceVersion: "1" }).finish(),
      DeleteNodeRequest.encode({ name: "fuzz-missing", resourceVersion: "" }).finish(),
    ],
    // The answer is the node as it was: the delete's own revision is not in it.
    { written: (responses) => ({ revisions: [], unnamed: responses.length }) },
  ),
  nodeRpc(
    "renewLease",
    [
      RenewLeaseRequest.encode({ nodeName: S0, holderIdentity: S0, leaseDurationSeconds: 40 }).finish(),
      RenewLeaseRequest.encode({ nodeName: S1, holderIdentity: "someone-else", leaseDurationSeconds: 0 }).finish(),
    ],
    { written: each(RenewLeaseResponse.decode, (m) => revisionOf(m.lease)) },
  ),
  nodeRpc(
    "heartbeat",
    [HeartbeatRequest.encode({ nodeName: S0, holderIdentity: S0, leaseDurationSeconds: 40 }).finish()],
    { written: each(HeartbeatResponse.decode, (m) => revisionOf(m.lease)) },
  ),
  nodeRpc("getLease", [S0, "fuzz-missing"].map((name) => GetLeaseRequest.encode({ name }).finish())),
  nodeRpc("listLeases", [
    ListLeasesRequest.encode({ limit: 0, continueToken: "" }).finish(),
    ListLeasesRequest.encode({ limit: 1, continueToken: "" }).finish(),
    ...FORGED_TOKENS.map((continueToken) => ListLeasesRequest.encode({ limit: 1, continueToken }).finish()),
  ]),
  nodeRpc("listEvents", [S0, ""].map((nodeName) => ListEventsRequest.encode({ nodeName }).finish())),
  nodeRpc(
    "watch",
    [
      WatchRequest.encode({ resourceVersion: "", labelSelector: "", fieldSelector: "", sendInitialEvents: true, allowBookmarks: true }).finish(),
      WatchRequest.encode({ resourceVersion: "1", labelSelector: "kubernetes.io/os=linux", fieldSelector: `metadata.name!=${S0}`, sendInitialEvents: false, allowBookmarks: false }).finish(),
    ],
    { answeredAtFirstMessage: true, prepare: withInitialEvents },
  ),
  {
    name: "health.Check",
    path: "/grpc.health.v1.Health/Check",
    kind: "unary",
    shape: requestShape("grpc.health.v1.HealthCheckRequest"),
    bases: ["", "nodeplane.v1.NodeService", "no.such.Service"].map((service) => strings({ 1: service })),
  },
  {
    name: "health.Watch",
    path: "/grpc.health.v1.Health/Watch",
    kind: "server-stream",
    shape: requestShape("grpc.health.v1.HealthCheckRequest"),
    bases: ["", "no.such.Service"].map((service) => strings({ 1: service })),
    // The health service answers a Watch with the current status at once.
    answeredAtFirstMessage: true,
  },
  {
    name: "health.List",
    path: "/grpc.health.v1.Health/List",
    kind: "unary",
    shape: requestShape("grpc.health.v1.HealthListRequest"),
    bases: [new Uint8Array(0)],
  },
  ...(["v1", "v1alpha"] as const).map(
    (version): FuzzRpc => ({
      name: `reflection.${version}`,
      path: `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      kind: "bidi",
      shape: requestShape("grpc.reflection.v1.ServerReflectionRequest"),
      bases: [
        strings({ 7: "" }),
        strings({ 1: "localhost", 4: "nodeplane.v1.NodeService" }),
        strings({ 3: "nodeplane/v1/node.proto" }),
        strings({ 6: "nodeplane.v1.Node" }),
      ],
    }),
  ),
];

/** The table of the runs without authentication. */
export const FUZZ_RPCS: FuzzRpc[] = [...BASE_RPCS, ...proxyRpcs(true)];

/**
 * NodeProxyService and AgentTunnelService. Without authentication the server has no
 * control-plane certificate and dials no agent, so reads may name an existing seed node
 * (`existing`); with it, an operator's call about a seed node would dial the seed's made-up
 * address (10.0.0.7, off this machine), so the bases name missing nodes only (a mutated name
 * is, all but surely, missing too). A tunnel's hello names seed node 0: refused without
 * authentication, and for every identity but that node; the node's own tunnel ends when the
 * fuzz client half-closes.
 */
function proxyRpcs(existing: boolean): FuzzRpc[] {
  const svc = NodeProxyServiceService;
  const names = existing ? [S0, "fuzz-missing", ""] : ["fuzz-missing", ""];
  const rpc = (name: keyof typeof svc, shape: string, bases: Uint8Array[]): FuzzRpc => {
    const def = svc[name];
    return { name: def.path.slice(def.path.lastIndexOf("/") + 1), path: def.path, kind: "unary", shape: requestShape(`nodeplane.v1.${shape}`), bases };
  };
  const connect = AgentTunnelServiceService.connect;
  return [
    rpc("getNodeUsage", "GetNodeUsageRequest", names.map((name) => GetNodeUsageRequest.encode({ name }).finish())),
    rpc("listNodeUsage", "ListNodeUsageRequest", [ListNodeUsageRequest.encode({ labelSelector: "", fieldSelector: `metadata.name=${existing ? S0 : "fuzz-missing"}` }).finish()]),
    rpc("getNodeLogs", "GetNodeLogsRequest", names.map((name) => GetNodeLogsRequest.encode({ name, tailLines: 10 }).finish())),
    rpc("checkNode", "CheckNodeRequest", names.map((name) => CheckNodeRequest.encode({ name }).finish())),
    {
      name: "tunnel.Connect",
      path: connect.path,
      kind: "bidi",
      shape: requestShape("nodeplane.v1.ConnectRequest"),
      bases: [ConnectRequest.encode({ hello: { nodeName: S0 } }).finish()],
    },
  ];
}

/**
 * The table as the runs with authentication on use it: the reads also start from requests
 * about another seed node, one that exists and that the node identity does not own (the
 * writes' bases name one already), so that what a refused read says about an existing object
 * is compared with what it says about a missing one (see identities.ts).
 */
export const AUTH_FUZZ_RPCS: FuzzRpc[] = [
  ...[...BASE_RPCS, ...proxyRpcs(false)].map((rpc) => {
    const extra: Record<string, Uint8Array[]> = {
      GetNode: [GetNodeRequest.encode({ name: S1 }).finish()],
      GetLease: [GetLeaseRequest.encode({ name: S1 }).finish()],
      ListEvents: [ListEventsRequest.encode({ nodeName: S1 }).finish()],
    };
    return extra[rpc.name] ? { ...rpc, bases: [...rpc.bases, ...extra[rpc.name]!] } : rpc;
  }),
  ...authRpcs(),
];

/**
 * AuthService's methods but SignNodeCertificate (whose bases would need CSRs made at start-up):
 * served with authentication off too, but about tokens and identities, so fuzzed with it on.
 * Bootstrap tokens are store writes whose answers carry no revision.
 */
function authRpcs(): FuzzRpc[] {
  const rpc = (name: keyof typeof AuthServiceService, bases: Uint8Array[], writes = false): FuzzRpc => {
    const def = AuthServiceService[name];
    const method = def.path.slice(def.path.lastIndexOf("/") + 1);
    const written = writes ? (responses: Uint8Array[]): Written => ({ revisions: [], unnamed: responses.length }) : undefined;
    return { name: method, path: def.path, kind: "unary", shape: requestShape(`nodeplane.v1.${method}Request`), bases, ...(written ? { written } : {}) };
  };
  return [
    rpc("createBootstrapToken", [CreateBootstrapTokenRequest.encode({ ttl: { seconds: 3600n, nanos: 0 }, description: "fuzz", nodeNames: ["fuzz-boot-0", S1] }).finish()], true),
    rpc("listBootstrapTokens", [new Uint8Array(0)]),
    rpc("deleteBootstrapToken", ["abcdef", "abcdef.0123456789abcdef", ""].map((id) => DeleteBootstrapTokenRequest.encode({ id }).finish()), true),
    rpc("whoAmI", [new Uint8Array(0)]),
  ];
}
