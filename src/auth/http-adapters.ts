/**
 * The HTTP views' hooks, served by AccessControl (typed structurally, so that this module needs
 * neither view):
 *
 * - `restAccess(access)`: the REST router's access hook (src/rest/access.ts's RestAccess):
 *   authenticate the request (401), then authorize its verb, resource, name and namespace with
 *   the one table (403 naming the identity, the action and the object). Discovery and pods (no
 *   data behind them) need authentication only. A node may not write its Node object through
 *   REST: NodeRestriction needs the object, which this hook does not see; nodes change their Node
 *   with Register and their status through nodes/status, as the kubelet does.
 * - `dashboardAuth(access)`: the dashboard's authenticate(token) and authorize(who, verb,
 *   resource, name) (src/dashboard/auth.ts's DashboardAuth); both absent with authentication off.
 *   The same rule keeps nodes from writing their Node object (a cordon) there.
 *
 *   new Router({ access: restAccess(security.access), … })
 *   new Dashboard({ ...dashboardAuth(security.access), … })
 */
import type { IncomingMessage } from "node:http";
import { NodeplaneError } from "../errors.js";
import type { AccessControl } from "./access.js";
import type { Resource, Verb } from "./authorizer.js";
import { authenticated, type Identity } from "./identity.js";

type RestDecision = { allowed: true; user?: string } | { allowed: false; code: 401 | 403; message: string };

interface RestAttributes {
  verb: Verb;
  resource: Resource | "pods" | "discovery";
  name?: string;
  namespace?: string;
}

export function restAccess(access: AccessControl): (req: IncomingMessage, attrs: RestAttributes) => Promise<RestDecision> {
  return async (req, attrs) => {
    if (!access.enabled) return { allowed: true };
    let who: Identity;
    try {
      who = await access.authenticateHttp(req);
    } catch (err) {
      if (err instanceof NodeplaneError && err.kind === "Unauthenticated") return { allowed: false, code: 401, message: err.message };
      throw err;
    }
    if (attrs.resource === "discovery" || attrs.resource === "pods") return { allowed: true, user: who.user };
    if (nodeWritesItsNode(who, attrs.verb, attrs.resource)) {
      return {
        allowed: false,
        code: 403,
        message: `user ${JSON.stringify(who.user)} cannot ${attrs.verb} node ${JSON.stringify(attrs.name ?? "")} through the REST API: a node changes its Node with Register (NodeRestriction) and its status through nodes/status`,
      };
    }
    const denied = access.authorize(who, attrs.verb, attrs.resource, attrs.name ?? "", attrs.namespace);
    return denied ? { allowed: false, code: 403, message: denied.message } : { allowed: true, user: who.user };
  };
}

/** A node writing a Node object (not its status) outside Register, where NodeRestriction cannot see the object. */
function nodeWritesItsNode(who: Identity, verb: Verb, resource: string): boolean {
  return who.nodeName !== undefined && resource === "nodes" && verb !== "get" && verb !== "list" && verb !== "watch";
}

export function dashboardAuth(access: AccessControl): {
  authenticate?: (token: string) => Promise<Identity | undefined>;
  authorize?: (who: { user: string; groups: readonly string[] }, verb: Verb, resource: Resource, name: string) => boolean;
} {
  if (!access.enabled) return {};
  return {
    authenticate: async (token) => {
      try {
        const who = await access.authenticate({ authorization: `Bearer ${token}` });
        return who.method === "none" ? undefined : who;
      } catch (err) {
        if (err instanceof NodeplaneError && err.kind === "Unauthenticated") return undefined;
        throw err;
      }
    },
    // `who` is an identity authenticate() answered; node-ness is worked out again from its name and groups.
    authorize: (who, verb, resource, name) => {
      const identity = authenticated(who.user, who.groups, "token");
      if (nodeWritesItsNode(identity, verb, resource)) return false;
      return access.authorize(identity, verb, resource, name) === undefined;
    },
  };
}
