/**
 * Authorization: one table of who may do what, for every RPC and every HTTP path. Kubernetes
 * words: a verb on a resource (with its name and, for leases, namespace). The table:
 *
 * | who                                              | may                                                    |
 * | ------------------------------------------------ | ------------------------------------------------------ |
 * | operators (`system:masters`, `nodeplane:operators`) | everything                                          |
 * | viewers (`nodeplane:viewers`)                    | get, list, watch nodes, leases and events; metrics; node agents' usage, logs and checks through the server (nodes/proxy) |
 * | a node (`system:node:N` in `system:nodes`)       | its own Node N: get, list/watch pinned to N, create, update (NodeRestriction applies), status; its own Lease N: get, create, update; events about N; a certificate for N; a reverse tunnel for N (nodes/tunnel) — never any node's agent through the server |
 * | bootstrap tokens (`system:bootstrappers`)        | ask for a node certificate (csr-signer.ts decides which names) |
 * | every authenticated identity                     | reflection; who am I                                   |
 * | anonymous                                        | nothing (health probes are not authorized at all)      |
 *
 * The answer depends only on the identity and the request, never on the stored state: a denied
 * read cannot tell whether its object exists.
 */
import { PermissionDeniedError } from "../errors.js";
import { describeIdentity, GROUPS, type Identity } from "./identity.js";

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";

export type Resource =
  | "nodes"
  | "nodes/status"
  | "nodes/proxy"
  | "nodes/tunnel"
  | "leases"
  | "events"
  | "bootstraptokens"
  | "certificatesigningrequests"
  | "selfsubjectreviews"
  | "reflection"
  | "metrics";

export const LEASE_NAMESPACE = "kube-node-lease";

interface Rule {
  groups: readonly string[];
  verbs: readonly Verb[] | "*";
  resources: readonly Resource[] | "*";
  /** Only the caller's own node: the name must be the identity's node name. */
  ownNode?: boolean;
}

const READ: readonly Verb[] = ["get", "list", "watch"];

const RULES: readonly Rule[] = [
  { groups: [GROUPS.masters, GROUPS.operators], verbs: "*", resources: "*" },
  { groups: [GROUPS.viewers], verbs: READ, resources: ["nodes", "nodes/status", "nodes/proxy", "leases", "events", "metrics"] },
  { groups: [GROUPS.nodes], verbs: READ, resources: ["nodes", "nodes/status"], ownNode: true },
  { groups: [GROUPS.nodes], verbs: ["create", "update", "patch"], resources: ["nodes", "nodes/status"], ownNode: true },
  { groups: [GROUPS.nodes], verbs: ["get", "create", "update", "patch"], resources: ["leases"], ownNode: true },
  { groups: [GROUPS.nodes], verbs: ["list"], resources: ["events"], ownNode: true },
  { groups: [GROUPS.nodes], verbs: ["create"], resources: ["certificatesigningrequests"], ownNode: true },
  { groups: [GROUPS.nodes], verbs: ["create"], resources: ["nodes/tunnel"], ownNode: true },
  { groups: [GROUPS.bootstrappers], verbs: ["create"], resources: ["certificatesigningrequests"] },
  { groups: [GROUPS.authenticated], verbs: ["get"], resources: ["reflection"] },
  { groups: [GROUPS.authenticated], verbs: ["create"], resources: ["selfsubjectreviews"] },
];

/**
 * May `identity` do `verb` on `resource` `name` (in `namespace`)? Undefined when allowed, else
 * the PermissionDeniedError to answer with. For list and watch, `name` is the one name the
 * request is pinned to (a `metadata.name=` field selector), "" when it is not pinned.
 */
export function authorize(identity: Identity, verb: Verb, resource: Resource, name: string, namespace?: string): PermissionDeniedError | undefined {
  for (const rule of RULES) {
    if (!rule.groups.some((g) => identity.groups.includes(g))) continue;
    if (rule.verbs !== "*" && !rule.verbs.includes(verb)) continue;
    if (rule.resources !== "*" && !rule.resources.includes(resource)) continue;
    if (rule.ownNode && !ownsObject(identity, resource, name, namespace)) continue;
    return undefined;
  }
  return new PermissionDeniedError(`${describeIdentity(identity)} cannot ${verb} ${describeObject(verb, resource, name, namespace)}${hint(identity)}`);
}

function ownsObject(identity: Identity, resource: Resource, name: string, namespace: string | undefined): boolean {
  if (identity.nodeName === undefined || name !== identity.nodeName) return false;
  return resource !== "leases" || namespace === undefined || namespace === LEASE_NAMESPACE;
}

/** "node "n2"", "nodes", "nodes with metadata.name=n2", "lease "kube-node-lease/n2"", "bootstrap tokens". */
function describeObject(verb: Verb, resource: Resource, name: string, namespace?: string): string {
  const [one, many] = NAMES[resource];
  if (resource === "events" && name) return `events of node ${JSON.stringify(name)}`;
  if (verb === "list" || verb === "watch" || !name) return name ? `${many} with metadata.name=${name}` : many;
  const shown = resource === "leases" ? `${namespace ?? LEASE_NAMESPACE}/${name}` : name;
  return `${one} ${JSON.stringify(shown)}`;
}

/** How each resource is named in messages: one object, and several (or the kind as a whole). */
const NAMES: Record<Resource, [string, string]> = {
  nodes: ["node", "nodes"],
  "nodes/status": ["the status of node", "node statuses"],
  "nodes/proxy": ["the agent of node", "node agents"],
  "nodes/tunnel": ["a tunnel for node", "node tunnels"],
  leases: ["lease", "leases"],
  events: ["events of node", "events"],
  bootstraptokens: ["bootstrap token", "bootstrap tokens"],
  certificatesigningrequests: ["a certificate for node", "node certificates"],
  selfsubjectreviews: ["a self subject review", "self subject reviews"],
  reflection: ["the reflection service", "the reflection service"],
  metrics: ["metrics", "metrics"],
};

function hint(identity: Identity): string {
  if (identity.nodeName !== undefined) return " (a node may only read and write its own Node and Lease)";
  if (identity.groups.includes(GROUPS.bootstrappers)) return " (a bootstrap token may only ask for a node certificate)";
  if (identity.groups.includes(GROUPS.viewers)) return " (viewers may only get, list and watch)";
  return "";
}
