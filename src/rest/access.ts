/**
 * Who may do what through the REST view. Every request is described by Kubernetes-style
 * attributes (verb, resource, name, namespace) and by the NodeService RPC whose authorization
 * rule covers the same action, so that one authorization table serves both views: a
 * `kubectl label node` is the same act as an UpdateNode call.
 *
 * The router calls the access hook once per request, before anything is read or written;
 * the hook authenticates (TLS peer certificate, bearer token…) and authorizes in one go.
 * With authentication off the hook is `allowAll`.
 *
 * Wiring the security layer's authenticator and authorizer is an adapter of a few lines:
 *
 *   const access: RestAccess = async (req, attrs) => {
 *     let who;
 *     try { who = authenticate(req); } catch (e) { return { allowed: false, code: 401, message: String(e) }; }
 *     try { authorize(who, attrs.verb, attrs.resource, attrs.name, attrs.namespace); }
 *     catch (e) { if (e instanceof PermissionDenied) return { allowed: false, code: 403, message: e.message }; throw e; }
 *     return { allowed: true, user: who.name };
 *   };
 */
import type { IncomingMessage } from "node:http";

export type RestVerb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";

/** `discovery`: /version, /api, /apis and /openapi (what every client reads first). */
export type RestResource = "nodes" | "nodes/status" | "leases" | "events" | "pods" | "discovery";

/** NodeService methods, as the gRPC view's authorization rules name them. */
export type NodeServiceMethod =
  | "GetNode"
  | "ListNodes"
  | "Watch"
  | "CreateNode"
  | "UpdateNode"
  | "UpdateStatus"
  | "DeleteNode"
  | "GetLease"
  | "ListLeases"
  | "ListEvents";

export interface RestAttributes {
  verb: RestVerb;
  resource: RestResource;
  /** The object's name for requests about one object. */
  name?: string;
  /** For namespaced resources (leases, events, pods) when the request names one. */
  namespace?: string;
  /**
   * The RPC whose rule governs this request. Undefined where no data is behind it: discovery,
   * and pods (nodeplane holds none and answers an empty list); there the hook only needs to
   * authenticate.
   */
  rpc: NodeServiceMethod | undefined;
}

export type AccessDecision =
  | { allowed: true; /** For logs: who made the request. */ user?: string }
  | { allowed: false; /** 401: not authenticated; 403: authenticated but not allowed. */ code: 401 | 403; message: string };

/**
 * Authenticate and authorize one request. Throwing is an internal error (500); a refusal is
 * a decision with its code and a message naming the identity and the action.
 */
export type RestAccess = (req: IncomingMessage, attrs: RestAttributes) => AccessDecision | Promise<AccessDecision>;

/** Authentication off: everyone may do everything (the gRPC view's behaviour without auth). */
export const allowAll: RestAccess = () => ({ allowed: true });

const RULES: Record<RestResource, Partial<Record<RestVerb, NodeServiceMethod>>> = {
  nodes: {
    get: "GetNode",
    list: "ListNodes",
    watch: "Watch",
    create: "CreateNode",
    update: "UpdateNode",
    patch: "UpdateNode",
    delete: "DeleteNode",
  },
  "nodes/status": { get: "GetNode", update: "UpdateStatus", patch: "UpdateStatus" },
  leases: { get: "GetLease", list: "ListLeases", watch: "ListLeases" },
  events: { get: "ListEvents", list: "ListEvents", watch: "ListEvents" },
  pods: {},
  discovery: {},
};

/** The attributes of a request: its verb on a resource, and the RPC with the same rule. */
export function attributes(verb: RestVerb, resource: RestResource, name?: string, namespace?: string): RestAttributes {
  return {
    verb,
    resource,
    ...(name !== undefined && { name }),
    ...(namespace !== undefined && { namespace }),
    rpc: RULES[resource][verb],
  };
}
