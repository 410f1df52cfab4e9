/**
 * Every RPC the server answers, in the authorizer's words: which verbs on which resource, and
 * the object's name as the request gives it. An RPC that needs several verbs (Register creates
 * or updates) needs all of them. Health is public: probes never authenticate.
 *
 * Bidirectional streams (Heartbeat, reflection) are admitted when they start, before any
 * message is read; Heartbeat's messages are then each checked by `authorizeRenewal`.
 */
import type { Verb, Resource } from "./authorizer.js";
import { LEASE_NAMESPACE } from "./authorizer.js";
import type { Identity } from "./identity.js";
import { exactNameOf, parseFieldSelector } from "../validation/selector.js";

export interface RpcAccess {
  verbs: readonly Verb[];
  resource: Resource;
  /** The object's name from the request ("" for none, e.g. an unpinned list). */
  name: (req: Record<string, unknown>) => string;
  namespace?: string;
  /** Changes state: audited, and the NodeRestriction rules apply to nodes. */
  mutating: boolean;
  /** A long-lived stream counted against the per-identity stream limit. */
  stream?: boolean;
  /**
   * Bidirectional: admitted at the start of the stream from the identity alone (messages are
   * not read yet), so `name` is given the identity's own name.
   */
  atStart?: boolean;
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const nodeName = (req: Record<string, unknown>): string => str((req.node as { metadata?: { name?: unknown } } | undefined)?.metadata?.name);

/** The name a `metadata.name=X` field selector pins a list or watch to ("" if none or unparsable). */
function pinnedName(req: Record<string, unknown>): string {
  try {
    return exactNameOf(parseFieldSelector(str(req.fieldSelector))) ?? "";
  } catch {
    return ""; // the registry answers INVALID_ARGUMENT to those who may list at all
  }
}

const NODE = "/nodeplane.v1.NodeService/";
const AUTH = "/nodeplane.v1.AuthService/";
const PROXY = "/nodeplane.v1.NodeProxyService/";
const read = (verb: Verb, resource: Resource, name: RpcAccess["name"], more: Partial<RpcAccess> = {}): RpcAccess => ({ verbs: [verb], resource, name, mutating: false, ...more });
const write = (verbs: Verb[], resource: Resource, name: RpcAccess["name"], more: Partial<RpcAccess> = {}): RpcAccess => ({ verbs, resource, name, mutating: true, ...more });

export const RPC_TABLE: Readonly<Record<string, RpcAccess>> = {
  [`${NODE}Register`]: write(["create", "update"], "nodes", nodeName),
  [`${NODE}CreateNode`]: write(["create"], "nodes", nodeName),
  [`${NODE}GetNode`]: read("get", "nodes", (r) => str(r.name)),
  [`${NODE}ListNodes`]: read("list", "nodes", pinnedName),
  [`${NODE}UpdateNode`]: write(["update"], "nodes", nodeName),
  [`${NODE}UpdateStatus`]: write(["update"], "nodes/status", (r) => str(r.name)),
  [`${NODE}DeleteNode`]: write(["delete"], "nodes", (r) => str(r.name)),
  [`${NODE}RenewLease`]: write(["create", "update"], "leases", (r) => str(r.nodeName), { namespace: LEASE_NAMESPACE }),
  [`${NODE}Heartbeat`]: write(["create", "update"], "leases", (r) => str(r.nodeName), { namespace: LEASE_NAMESPACE, stream: true, atStart: true }),
  [`${NODE}GetLease`]: read("get", "leases", (r) => str(r.name), { namespace: LEASE_NAMESPACE }),
  [`${NODE}ListLeases`]: read("list", "leases", () => "", { namespace: LEASE_NAMESPACE }),
  [`${NODE}ListEvents`]: read("list", "events", (r) => str(r.nodeName)),
  [`${NODE}Watch`]: read("watch", "nodes", pinnedName, { stream: true }),
  [`${AUTH}CreateBootstrapToken`]: write(["create"], "bootstraptokens", () => ""),
  [`${AUTH}ListBootstrapTokens`]: read("list", "bootstraptokens", () => ""),
  [`${AUTH}DeleteBootstrapToken`]: write(["delete"], "bootstraptokens", (r) => str(r.id).split(".")[0] ?? ""),
  [`${AUTH}SignNodeCertificate`]: write(["create"], "certificatesigningrequests", (r) => str(r.nodeName)),
  [`${AUTH}WhoAmI`]: read("create", "selfsubjectreviews", () => ""),
  [`${PROXY}GetNodeUsage`]: read("get", "nodes/proxy", (r) => str(r.name)),
  [`${PROXY}ListNodeUsage`]: read("list", "nodes/proxy", () => ""),
  [`${PROXY}GetNodeLogs`]: read("get", "nodes/proxy", (r) => str(r.name)),
  [`${PROXY}CheckNode`]: read("get", "nodes/proxy", (r) => str(r.name)),
  // Admitted for the caller's own node; the tunnel's hello must then name that node (src/proxy/tunnels.ts).
  "/nodeplane.v1.AgentTunnelService/Connect": read("create", "nodes/tunnel", () => "", { stream: true, atStart: true }),
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": read("get", "reflection", () => "", { atStart: true }),
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": read("get", "reflection", () => "", { atStart: true }),
};

/** Methods that are never authenticated nor authorized (probes). */
export const PUBLIC_METHODS: ReadonlySet<string> = new Set([
  "/grpc.health.v1.Health/Check",
  "/grpc.health.v1.Health/Watch",
  "/grpc.health.v1.Health/List",
]);

/** The RPC's short name for logs and messages: "/nodeplane.v1.NodeService/GetNode" → "GetNode". */
export const shortMethod = (path: string): string => path.slice(path.lastIndexOf("/") + 1);

/** The name a stream admitted at its start is checked against: the caller's own node, if it is one. */
export const startName = (identity: Identity): string => identity.nodeName ?? "";
