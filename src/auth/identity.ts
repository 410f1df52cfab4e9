/**
 * Who is calling. An Identity is what authentication answers and what the authorizer, the
 * NodeRestriction rules, the rate limits and the audit log work from. The names and groups are
 * Kubernetes' own, so that a Kubernetes operator reads them without a glossary:
 *
 * - a node: user `system:node:<name>` in group `system:nodes` (its client certificate's CN and O);
 * - operators: group `system:masters` or `nodeplane:operators`; viewers: `nodeplane:viewers`;
 * - a bootstrap token: user `system:bootstrap:<token-id>` in group `system:bootstrappers`;
 * - no credential: `system:anonymous` in `system:unauthenticated`.
 *
 * Every authenticated identity is also in `system:authenticated`.
 */

export const GROUPS = {
  masters: "system:masters",
  operators: "nodeplane:operators",
  viewers: "nodeplane:viewers",
  nodes: "system:nodes",
  bootstrappers: "system:bootstrappers",
  /** The control plane's client certificate to node agents (src/auth/control-plane.ts); no rule of the authorizer names it. */
  controlPlane: "nodeplane:control-plane",
  authenticated: "system:authenticated",
  unauthenticated: "system:unauthenticated",
} as const;

export const NODE_USER_PREFIX = "system:node:";
export const BOOTSTRAP_USER_PREFIX = "system:bootstrap:";
const ANONYMOUS_USER = "system:anonymous";

/** How the identity was established (for the audit log and WhoAmI). */
export type AuthMethod = "x509" | "token" | "bootstrap-token" | "none";

export interface Identity {
  /** The user name: a certificate's CN, a token file's user, `system:node:<name>`… */
  user: string;
  uid: string;
  groups: readonly string[];
  method: AuthMethod;
  /** The node this identity is, when it is one (user `system:node:<name>` in `system:nodes`). */
  nodeName?: string;
  /** When the credential stops being valid (a certificate's notAfter, a bootstrap token's expiry), ms. */
  expiresAt?: number;
}

export const anonymous: Identity = { user: ANONYMOUS_USER, uid: "", groups: [GROUPS.unauthenticated], method: "none" };

/**
 * The identity of an authenticated user: `system:authenticated` added, and recognised as a
 * node when the name and group say so (both are required, as Kubernetes' Node authorizer does).
 */
export function authenticated(user: string, groups: readonly string[], method: AuthMethod, extra: { uid?: string; expiresAt?: number } = {}): Identity {
  const all = [...new Set([...groups, GROUPS.authenticated])];
  const id: Identity = { user, uid: extra.uid ?? "", groups: all, method };
  if (extra.expiresAt !== undefined) id.expiresAt = extra.expiresAt;
  if (user.startsWith(NODE_USER_PREFIX) && all.includes(GROUPS.nodes)) {
    const name = user.slice(NODE_USER_PREFIX.length);
    if (name !== "") id.nodeName = name;
  }
  return id;
}

/** "user "x" (groups a, b)": how an identity is named in error messages and logs. */
export function describeIdentity(id: Identity): string {
  const groups = id.groups.filter((g) => g !== GROUPS.authenticated);
  return `user ${JSON.stringify(id.user)}${groups.length > 0 ? ` (groups ${groups.join(", ")})` : ""}`;
}
