/**
 * The dashboard's HTTP routes, mounted on the server's HTTP listener (src/server/http.ts):
 *
 *   GET  /                                 the page (its files under /dashboard/assets/)
 *   POST /dashboard/login                  {"token": "…"} → session cookie
 *   POST /dashboard/logout
 *   GET  /dashboard/v1/session             who am I, what may I do, the CSRF token
 *   GET  /dashboard/v1/snapshot            every node, Lease and recent event as of `rev`
 *   GET  /dashboard/v1/stream?after=REV    Server-Sent Events after REV (src/dashboard/stream.ts)
 *   GET  /dashboard/v1/selector?labelSelector=…   the selector parsed (or 400 saying why not)
 *   GET  /dashboard/v1/nodes/NAME          one node, its Lease and its events
 *   POST /dashboard/v1/nodes/NAME/cordon   (and /uncordon): operators only
 *
 * Every request is authorized through the same hook (src/dashboard/auth.ts): reading the fleet
 * needs list+watch on nodes, leases and events; a node's detail get on it; cordon patch on it.
 * Errors are JSON `{"error": {"code", "reason", "message"}}`.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { gzipSync } from "node:zlib";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { ConflictError, InvalidError, NotFoundError } from "../errors.js";
import { Event } from "../gen/nodeplane/v1/event.js";
import { Lease } from "../gen/nodeplane/v1/lease.js";
import { Node } from "../gen/nodeplane/v1/node.js";
import type { EventRecorder } from "../registry/events.js";
import type { NodeRegistry } from "../registry/nodes.js";
import type { Store } from "../store/store.js";
import { parseLabelSelector } from "../validation/selector.js";
import { type Asset, loadAssets } from "./assets.js";
import { type Caller, type DashboardAuth, forgeryReason, type Identity, type Resource, Sessions, type Verb } from "./auth.js";
import { FleetFeed } from "./feed.js";
import { nodeRow } from "./rows.js";
import { Streams, type ZoneView } from "./stream.js";
import type { NodeLifecycleController } from "../controller/nodelifecycle.js";
import { zoneName } from "../controller/zones.js";

export interface DashboardOptions extends DashboardAuth {
  registry: NodeRegistry;
  events: EventRecorder;
  store: Store;
  /** The node lifecycle controller, when it runs: zone states and its grace period. */
  controller?: Pick<NodeLifecycleController, "zones" | "monitorGracePeriodMs">;
  log: Logger;
  metrics?: Registry;
  /** Host names answered with authentication off, besides loopback and IP literals. */
  allowedHosts?: readonly string[];
  frameMs?: number;
  ringBytes?: number;
  maxStreams?: number;
  maxLagBytes?: number;
  pingMs?: number;
}

/** Largest login or change request body. */
const MAX_BODY = 16 * 1024;

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
};

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export class Dashboard {
  private readonly assets: Map<string, Asset>;
  private readonly sessions: Sessions;
  private readonly feed: FleetFeed;
  private readonly streams: Streams;
  private snapshotCache: { rev: number; json: Buffer; gzip: Buffer } | undefined;

  constructor(private readonly o: DashboardOptions) {
    this.assets = loadAssets();
    this.sessions = new Sessions({ authenticate: o.authenticate, authorize: o.authorize, allowedHosts: o.allowedHosts });
    this.feed = new FleetFeed({
      store: o.store,
      frameMs: o.frameMs,
      ringBytes: o.ringBytes,
      onError: (err) => o.log.warn({ err }, "dashboard feed relisting"),
    });
    this.streams = new Streams({
      feed: this.feed,
      sessions: this.sessions,
      zones: () => zoneViews(o.controller),
      maxStreams: o.maxStreams,
      maxLagBytes: o.maxLagBytes,
      pingMs: o.pingMs,
      metrics: o.metrics,
    });
  }

  /** Open event streams (pages). */
  get streamCount(): number {
    return this.streams.count;
  }

  stop(): void {
    this.streams.closeAll();
    this.feed.stop();
  }

  /** Take the request if its path is the dashboard's (answers false otherwise, writing nothing). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://x");
    } catch {
      return false; // not a URL: not the dashboard's (the REST API answers it with a 400 Status)
    }
    const path = url.pathname;
    if (path !== "/" && path !== "/favicon.ico" && !path.startsWith("/dashboard/")) return false;
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    this.route(req, res, url).catch((err: unknown) => {
      if (err instanceof HttpError) return sendError(res, err.code, err.reason, err.message);
      if (err instanceof NotFoundError) return sendError(res, 404, "NotFound", err.message);
      if (err instanceof InvalidError) return sendError(res, 400, "Invalid", err.message);
      const id = randomUUID().slice(0, 8);
      this.o.log.error({ err, requestId: id, path }, "dashboard request failed");
      sendError(res, 500, "InternalError", `internal error (request id ${id})`);
    });
    return true;
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (!this.sessions.hostAllowed(req)) {
      throw new HttpError(421, "MisdirectedRequest", `host ${JSON.stringify(req.headers.host ?? "")} refused: without authentication the dashboard answers only on localhost or an IP address`);
    }
    if (path === "/favicon.ico") return void res.writeHead(204).end();
    if (path === "/" || path.startsWith("/dashboard/assets/")) {
      if (method !== "GET" && method !== "HEAD") throw new HttpError(405, "MethodNotAllowed", `${method} not allowed on ${path}`);
      return this.asset(req, res, path === "/" ? "index.html" : path.slice("/dashboard/assets/".length));
    }
    if (path === "/dashboard/login" && method === "POST") return this.login(req, res);
    if (path === "/dashboard/logout" && method === "POST") {
      const reason = forgeryReason(req, undefined);
      if (reason) throw new HttpError(403, "Forbidden", reason);
      res.writeHead(204, { "set-cookie": this.sessions.logout(req), "cache-control": "no-store" }).end();
      return;
    }
    const caller = await this.sessions.caller(req);
    if (!caller) throw new HttpError(401, "Unauthorized", "log in with a token first (POST /dashboard/login)");
    const nodeAction = /^\/dashboard\/v1\/nodes\/([^/]+)(?:\/(cordon|uncordon))?$/.exec(path);
    if (method === "POST" && nodeAction?.[2]) return this.cordon(req, res, caller, nodeName(nodeAction[1]!), nodeAction[2] === "cordon");
    if (method !== "GET") throw new HttpError(405, "MethodNotAllowed", `${method} not allowed on ${path}`);
    if (path === "/dashboard/v1/session") return this.session(res, caller);
    if (path === "/dashboard/v1/snapshot") {
      await this.need(caller.identity, ["list"], "");
      return this.snapshot(req, res);
    }
    if (path === "/dashboard/v1/stream") {
      await this.need(caller.identity, ["list", "watch"], "");
      return this.streams.serve(req, res, streamStart(req, url));
    }
    if (path === "/dashboard/v1/selector") {
      await this.need(caller.identity, ["list"], "", ["nodes"]);
      const selector = parseLabelSelector(url.searchParams.get("labelSelector") ?? "");
      return sendJson(res, 200, selector);
    }
    if (nodeAction && !nodeAction[2]) return this.detail(res, caller.identity, nodeName(nodeAction[1]!));
    throw new HttpError(404, "NotFound", `no such dashboard path ${JSON.stringify(path)}`);
  }

  private asset(req: IncomingMessage, res: ServerResponse, name: string): void {
    const a = this.assets.get(name);
    if (!a) throw new HttpError(404, "NotFound", `no such file ${JSON.stringify(name)}`);
    if (req.headers["if-none-match"] === a.etag) return void res.writeHead(304, { etag: a.etag }).end();
    res.writeHead(200, { "content-type": a.type, "content-length": a.body.length, etag: a.etag, "cache-control": "no-cache" });
    res.end(req.method === "HEAD" ? undefined : a.body);
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reason = forgeryReason(req, undefined);
    if (reason) throw new HttpError(403, "Forbidden", reason);
    if (!this.sessions.enabled) throw new HttpError(400, "BadRequest", "authentication is off: there is nothing to log in to");
    const body = await readJson(req);
    const token = typeof body === "object" && body !== null && "token" in body ? body.token : undefined;
    if (typeof token !== "string" || token === "") throw new HttpError(400, "BadRequest", 'want a JSON body {"token": "…"}');
    const session = await this.sessions.login(token, req);
    // Never log the token; say only that a login failed.
    if (!session) {
      this.o.log.info("dashboard login refused: unknown token");
      throw new HttpError(401, "Unauthorized", "that token is not valid");
    }
    this.o.log.info({ user: session.caller.identity.user }, "dashboard login");
    res.setHeader("set-cookie", session.cookie);
    await this.session(res, session.caller);
  }

  private async session(res: ServerResponse, caller: Caller): Promise<void> {
    const who = caller.identity;
    sendJson(res, 200, {
      user: who.user,
      groups: who.groups,
      authEnabled: this.sessions.enabled,
      canCordon: await this.sessions.authorize(who, "patch", "nodes", ""),
      csrfToken: caller.csrf,
      graceMs: this.o.controller?.monitorGracePeriodMs ?? null,
    });
  }

  /** Every row as of one revision, JSON made (and gzipped) once per revision. */
  private async snapshot(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.feed.start();
    const snap = this.feed.snapshot();
    if (this.snapshotCache?.rev !== snap.rev) {
      const json = Buffer.from(JSON.stringify(snap));
      this.snapshotCache = { rev: snap.rev, json, gzip: gzipSync(json, { level: 1 }) };
    }
    const c = this.snapshotCache;
    const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    const body = gzip ? c.gzip : c.json;
    res.writeHead(200, {
      "content-type": "application/json",
      "cache-control": "no-store",
      "content-length": body.length,
      ...(gzip ? { "content-encoding": "gzip" } : {}),
    });
    res.end(body);
  }

  private async detail(res: ServerResponse, who: Identity, name: string): Promise<void> {
    await this.need(who, ["get"], name, ["nodes"]);
    const node = await this.o.registry.getNode(name);
    const lease = (await this.sessions.authorize(who, "get", "leases", name))
      ? await this.o.registry.getLease(name).catch((err: unknown) => (err instanceof NotFoundError ? undefined : Promise.reject(err)))
      : undefined;
    const events = (await this.sessions.authorize(who, "list", "events", name)) ? await this.o.events.list(name) : [];
    sendJson(res, 200, {
      node: Node.toJSON(node),
      lease: lease ? Lease.toJSON(lease) : null,
      events: events.map((e) => Event.toJSON(e)),
    });
  }

  private async cordon(req: IncomingMessage, res: ServerResponse, caller: Caller, name: string, unschedulable: boolean): Promise<void> {
    const reason = forgeryReason(req, caller.csrf);
    if (reason) throw new HttpError(403, "Forbidden", reason);
    await this.need(caller.identity, ["patch"], name, ["nodes"]);
    // Read, flip, write under the read's revision; a lost race is read again.
    for (let attempt = 0; ; attempt++) {
      const node = await this.o.registry.getNode(name);
      if ((node.spec?.unschedulable ?? false) === unschedulable) return sendJson(res, 200, nodeRow(node));
      try {
        const updated = await this.o.registry.updateNode({ ...node, spec: { ...node.spec!, unschedulable } });
        this.o.log.info({ user: caller.identity.user, node: name, unschedulable }, unschedulable ? "dashboard: node cordoned" : "dashboard: node uncordoned");
        return sendJson(res, 200, nodeRow(updated));
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 4) throw err;
      }
    }
  }

  /** Refuse unless `who` may do every verb on every resource (the fleet: nodes, leases, events). */
  private async need(who: Identity, verbs: Verb[], name: string, resources: Resource[] = ["nodes", "leases", "events"]): Promise<void> {
    for (const resource of resources) {
      for (const verb of verbs) {
        if (!(await this.sessions.authorize(who, verb, resource, name))) {
          const what = name ? `${resource} ${JSON.stringify(name)}` : resource;
          throw new HttpError(403, "Forbidden", `user ${JSON.stringify(who.user)} (groups ${who.groups.join(",") || "none"}) may not ${verb} ${what}`);
        }
      }
    }
  }
}

/** Zone states as the page shows them, by name; undefined without a lifecycle controller. */
function zoneViews(controller: DashboardOptions["controller"]): ZoneView[] | undefined {
  if (!controller) return undefined;
  return [...controller.zones()].map(([key, state]) => ({ zone: zoneName(key), state })).sort((a, b) => (a.zone < b.zone ? -1 : a.zone > b.zone ? 1 : 0));
}

/** The revision a stream starts after: Last-Event-ID (a reconnect) wins over ?after= (the page's snapshot). */
function streamStart(req: IncomingMessage, url: URL): number | undefined {
  const header = req.headers["last-event-id"];
  const [value, source] = typeof header === "string" && header !== "" ? [header, "Last-Event-ID"] : [url.searchParams.get("after"), "after"];
  if (value === null || value === "") return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new HttpError(400, "BadRequest", `${source} ${JSON.stringify(value.slice(0, 40))}: must be a revision (decimal digits)`);
  return Number(value);
}

function nodeName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, "BadRequest", `bad node name in the path: ${JSON.stringify(segment.slice(0, 80))}`);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, "RequestEntityTooLarge", `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch {
    throw new HttpError(400, "BadRequest", "the request body is not JSON");
  }
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, code: number, reason: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, code, { error: { code, reason, message } });
}
