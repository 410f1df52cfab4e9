/**
 * Who is asking, and may they. A browser cannot present a client certificate from a script,
 * so the dashboard logs in with a bearer token: POST /dashboard/login exchanges it for a
 * session cookie (HttpOnly: no script ever reads it; SameSite=Strict: no other site's page
 * sends it; Secure over TLS). The session keeps the token and authenticates it again on every
 * request, so a revoked token or a changed role applies at once, not at the session's end.
 *
 * The two hooks are the seam to the server's authentication and authorization:
 * - `authenticate(token)`: the identity a token stands for, or undefined for a bad token.
 *   Absent = authentication is off (today's default): every request is anonymous, and the
 *   dashboard then answers only to loopback and IP-literal Host names (a page on another site
 *   could otherwise reach it through DNS rebinding).
 * - `authorize(identity, verb, resource, name)`: default allow-all.
 *
 * Changes (cordon) also need the session's CSRF token in a header, a JSON body and, when the
 * browser says, a same-origin request: another site's page can neither read the token nor send
 * that request without a CORS preflight, which this server never grants.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { TLSSocket } from "node:tls";

export interface Identity {
  user: string;
  groups: readonly string[];
}

export type Verb = "get" | "list" | "watch" | "patch";
export type Resource = "nodes" | "leases" | "events";

type Authenticate = (token: string) => Promise<Identity | undefined> | Identity | undefined;
export type Authorize = (who: Identity, verb: Verb, resource: Resource, name: string) => Promise<boolean> | boolean;

export interface DashboardAuth {
  /** Absent: authentication is off and every request is anonymous. */
  authenticate?: Authenticate;
  /** Absent: everything is allowed. */
  authorize?: Authorize;
}

const ANONYMOUS: Identity = { user: "system:anonymous", groups: ["system:unauthenticated"] };

const COOKIE = "nodeplane_session";

interface Session {
  token: string;
  csrf: string;
  expiresAt: number;
}

/** The caller of one request. */
export interface Caller {
  identity: Identity;
  /** The token a change must carry in the X-CSRF-Token header. */
  csrf: string;
}

export interface SessionOptions extends DashboardAuth {
  /** How long a session lasts after login (ms). */
  ttlMs?: number;
  /** Sessions held at most; the oldest goes first. */
  maxSessions?: number;
  /** Host names (besides loopback and IP literals) the dashboard answers to with authentication off. */
  allowedHosts?: readonly string[];
  now?: () => number;
}

export class Sessions {
  private readonly sessions = new Map<string, Session>();
  private readonly anonymousCsrf = token();
  private readonly ttlMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;
  private readonly authorizeHook: Authorize;

  constructor(private readonly o: SessionOptions) {
    this.ttlMs = o.ttlMs ?? 12 * 3_600_000;
    this.maxSessions = o.maxSessions ?? 10_000;
    this.now = o.now ?? Date.now;
    this.authorizeHook = o.authorize ?? (() => true);
  }

  get enabled(): boolean {
    return this.o.authenticate !== undefined;
  }

  /** Exchange a bearer token for a session: the Set-Cookie value, or undefined for a bad token. */
  async login(bearer: string, req: IncomingMessage): Promise<{ cookie: string; caller: Caller } | undefined> {
    if (!this.o.authenticate) return undefined;
    const identity = await this.o.authenticate(bearer);
    if (!identity) return undefined;
    const id = token();
    const session: Session = { token: bearer, csrf: token(), expiresAt: this.now() + this.ttlMs };
    this.sessions.set(id, session);
    if (this.sessions.size > this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const attrs = `HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(this.ttlMs / 1000)}${secure(req) ? "; Secure" : ""}`;
    return { cookie: `${COOKIE}=${id}; ${attrs}`, caller: { identity, csrf: session.csrf } };
  }

  /** End the request's session; answers the Set-Cookie value that clears it. */
  logout(req: IncomingMessage): string {
    const id = sessionId(req);
    if (id !== undefined) this.sessions.delete(id);
    return `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure(req) ? "; Secure" : ""}`;
  }

  /** The request's caller: anonymous with authentication off, else its session's (undefined: log in). */
  async caller(req: IncomingMessage): Promise<Caller | undefined> {
    if (!this.o.authenticate) return { identity: ANONYMOUS, csrf: this.anonymousCsrf };
    const id = sessionId(req);
    const session = id === undefined ? undefined : this.sessions.get(id);
    if (!session) return undefined;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(id!);
      return undefined;
    }
    const identity = await this.o.authenticate(session.token);
    if (!identity) {
      this.sessions.delete(id!);
      return undefined;
    }
    return { identity, csrf: session.csrf };
  }

  authorize(who: Identity, verb: Verb, resource: Resource, name: string): Promise<boolean> {
    return Promise.resolve(this.authorizeHook(who, verb, resource, name));
  }

  /**
   * Whether the Host header is one this dashboard answers to: any with authentication on;
   * with it off only loopback names, IP literals and `allowedHosts` (DNS rebinding).
   */
  hostAllowed(req: IncomingMessage): boolean {
    if (this.enabled) return true;
    const host = hostName(req.headers.host ?? "");
    return host === "localhost" || host.endsWith(".localhost") || isIP(host) !== 0 || (this.o.allowedHosts ?? []).includes(host);
  }
}

/**
 * Why a state-changing request is refused as a possible cross-site forgery (undefined: it is
 * not). `csrf` undefined checks only origin and content type (the login request).
 */
export function forgeryReason(req: IncomingMessage, csrf: string | undefined): string | undefined {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) return "a change must be sent as application/json";
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") return `cross-site request refused (Sec-Fetch-Site: ${site})`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `${secure(req) ? "https" : "http"}://${req.headers.host ?? ""}`) return "cross-origin request refused";
  if (csrf === undefined) return undefined;
  const given = req.headers["x-csrf-token"];
  if (typeof given !== "string" || !sameString(given, csrf)) return "missing or wrong X-CSRF-Token header (reload the page)";
  return undefined;
}

function sessionId(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** "host:port", "[v6]:port" or "host" → the host, lowercased. */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]") < 0 ? undefined : h.indexOf("]"));
  const colon = h.lastIndexOf(":");
  return colon < 0 ? h : h.slice(0, colon);
}

function secure(req: IncomingMessage): boolean {
  return req.socket instanceof TLSSocket;
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function token(): string {
  return randomBytes(32).toString("base64url");
}
