/**
 * The Kubernetes-compatible REST API on the HTTP listener: one function per request finds the
 * route, checks access (the pluggable hook of access.ts: authentication and authorization
 * in one call, before anything is read or written), runs the handler and turns every failure
 * into a Kubernetes Status. The registry underneath is the gRPC view's: the same objects,
 * the same revisions (resourceVersion = the store revision), the same rules.
 *
 * Paths: /version, /api, /api/v1, /apis, /apis/coordination.k8s.io[/v1], /openapi/v2, /openapi/v3;
 * /api/v1/nodes[/NAME[/status]]; /apis/coordination.k8s.io/v1[/namespaces/NS]/leases[/NAME];
 * /api/v1[/namespaces/NS]/events[/NAME]; /api/v1[/namespaces/NS]/pods[/NAME].
 *
 * A request never takes the server down: every error, thrown or rejected, becomes a Status.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { EventRecorder } from "../registry/events.js";
import type { NodeRegistry } from "../registry/nodes.js";
import type { Store } from "../store/store.js";
import type { WatchCache } from "../watch/cache.js";
import { allowAll, attributes, type RestAccess, type RestAttributes, type RestVerb } from "./access.js";
import { type RestContext, reply, subjectOf } from "./context.js";
import { discovery, EVENTS, LEASES, NODE_STATUS, NODES, PODS, type ResourceInfo } from "./discovery.js";
import { createNode, deleteNode, getNode, type NodeHandlerDeps, patchNode, updateNode } from "./nodes.js";
import { OPENAPI_V2_CONTENT_TYPE, openapiV2, openapiV3 } from "./openapi.js";
import { getEvent, getLease, listEvents, listLeases, listNodes, listPods, notFound, type ReadDeps, watch } from "./reads.js";
import { boolParam, negotiate } from "./request.js";
import { RestError, toStatus } from "./status.js";

export interface RestRouterOptions {
  registry: NodeRegistry;
  cache: WatchCache;
  events: EventRecorder;
  store: Store;
  log: Logger;
  /** Authentication + authorization of each request; default: everyone may do everything. */
  access?: RestAccess;
  /** Largest request body (Kubernetes' limit is 3 MiB). */
  maxBodyBytes?: number;
  /** Events a watch may have waiting for a slow client before it is cut off. */
  watchQueueLimit?: number;
  bookmarkIntervalMs?: number;
  /** The clock for ages in tables (ms since the epoch). */
  now?: () => number;
}

interface Route {
  resource: ResourceInfo;
  namespace: string;
  name: string | undefined;
}

type Handler = (ctx: RestContext) => Promise<void>;

let nextRequestId = 0;
const requestId = (): string => `rest-${process.pid.toString(36)}-${(++nextRequestId).toString(36)}`;

const NAMESPACED_KINDS: Record<string, ResourceInfo> = { events: EVENTS, pods: PODS };

/** The resource a path names, or undefined. Path segments are percent-decoded (400 if malformed). */
function route(path: string): Route | undefined {
  const parts = path.split("/").slice(1).map(decodeSegment);
  const [a, b, c, d, e, f, g] = parts;
  if (a === "api" && b === "v1") {
    if (c === "nodes" && parts.length <= 5) {
      if (parts.length === 5 && e !== "status") return undefined;
      return { resource: parts.length === 5 ? NODE_STATUS : NODES, namespace: "", name: d };
    }
    if (c === "namespaces" && d && e && Object.hasOwn(NAMESPACED_KINDS, e) && parts.length <= 6) return { resource: NAMESPACED_KINDS[e]!, namespace: d, name: f };
    if (c && Object.hasOwn(NAMESPACED_KINDS, c) && parts.length === 3) return { resource: NAMESPACED_KINDS[c]!, namespace: "", name: undefined };
    return undefined;
  }
  if (a === "apis" && b === LEASES.group && c === "v1") {
    if (d === "leases" && parts.length === 4) return { resource: LEASES, namespace: "", name: undefined };
    if (d === "namespaces" && e && f === "leases" && parts.length <= 7) return { resource: LEASES, namespace: e, name: g };
  }
  return undefined;
}

function parseUrl(target: string): URL {
  try {
    return new URL(target, "http://nodeplane.invalid");
  } catch {
    throw new RestError(400, "BadRequest", `the request target ${JSON.stringify(target.slice(0, 64))} is not a valid URL`);
  }
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new RestError(400, "BadRequest", `the path segment ${JSON.stringify(s.slice(0, 64))} is not valid percent-encoding`);
  }
}

function verbOf(method: string, r: Route, query: URLSearchParams): RestVerb {
  switch (method) {
    case "GET":
    case "HEAD":
      if (boolParam(query, "watch", false)) return "watch";
      return r.name === undefined ? "list" : "get";
    case "POST":
      if (r.name === undefined) return "create";
      break;
    case "PUT":
      if (r.name !== undefined) return "update";
      break;
    case "PATCH":
      if (r.name !== undefined) return "patch";
      break;
    case "DELETE":
      if (r.name !== undefined) return "delete";
      break;
  }
  throw new RestError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource: ${method} ${r.name === undefined ? "on a collection" : "on an object"} of ${r.resource.name}`);
}

export class RestRouter {
  private readonly access: RestAccess;
  private readonly reads: ReadDeps;
  private readonly writes: NodeHandlerDeps;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly stopping = new AbortController();

  constructor(opts: RestRouterOptions) {
    this.access = opts.access ?? allowAll;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.reads = {
      registry: opts.registry,
      cache: opts.cache,
      events: opts.events,
      store: opts.store,
      log: opts.log,
      watchQueueLimit: opts.watchQueueLimit ?? 1000,
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 60_000,
      stop: this.stopping.signal,
    };
    this.writes = { registry: opts.registry, maxBodyBytes: opts.maxBodyBytes ?? 3 * 1024 * 1024 };
  }

  /** Serve one request (the HTTP listener's handler for every path it does not serve itself). */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const id = requestId();
    const started = performance.now();
    // The request's context once routed: failures name what it was about (`nodes "x" not found`).
    const routed: { ctx?: RestContext } = {};
    this.serve(req, res, id, routed)
      .catch((err: unknown) => {
        const mapped = toStatus(err, id, routed.ctx && subjectOf(routed.ctx));
        const fields = { requestId: id, method: req.method, url: req.url?.slice(0, 256), code: mapped.status.code };
        if (mapped.internal) this.log.error({ ...fields, err }, "internal error");
        else this.log.debug({ ...fields, reason: mapped.status.reason }, "request rejected");
        if (res.headersSent) {
          res.destroy();
          return;
        }
        // A body we stopped reading (too large) is not drained: the connection closes instead.
        const close: Record<string, string> = mapped.status.code === 413 ? { connection: "close" } : {};
        reply({ res, warnings: [] }, mapped.status.code, mapped.status, close);
      })
      .finally(() => this.log.debug({ requestId: id, method: req.method, url: req.url?.slice(0, 256), code: res.statusCode, ms: performance.now() - started }, "request"));
  };

  /** The server is shutting down: open watches end with a 503 ERROR event (clients watch again elsewhere or later). */
  close(): void {
    this.stopping.abort();
  }

  private async serve(req: IncomingMessage, res: ServerResponse, id: string, routed: { ctx?: RestContext }): Promise<void> {
    const url = parseUrl(req.url ?? "/");
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
    const method = req.method ?? "GET";
    const simple = { res, warnings: [] };
    if (path === "/openapi/v2" || path === "/openapi/v3" || discovery(path, "") !== undefined) {
      if (method !== "GET" && method !== "HEAD") throw new RestError(405, "MethodNotAllowed", `${method} is not allowed on ${path}`);
      await this.check(req, attributes("get", "discovery"), undefined);
      if (path === "/openapi/v2") {
        const body = openapiV2();
        res.writeHead(200, { "content-type": OPENAPI_V2_CONTENT_TYPE, "content-length": String(body.length) });
        res.end(body);
        return;
      }
      reply(simple, 200, path === "/openapi/v3" ? openapiV3() : discovery(path, req.headers.host ?? ""));
      return;
    }
    const r = route(path);
    if (!r) throw new RestError(404, "NotFound", `the server could not find the requested resource (${method} ${path.slice(0, 200)})`);
    const verb = verbOf(method, r, url.searchParams);
    if (!r.resource.verbs.includes(verb)) {
      throw new RestError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource: ${verb} on ${r.resource.name}`);
    }
    const ctx: RestContext = {
      req,
      res,
      query: url.searchParams,
      resource: r.resource,
      namespace: r.namespace,
      name: r.name,
      want: { as: "Object" },
      requestId: id,
      now: this.now,
      warnings: [],
    };
    routed.ctx = ctx;
    const attrs = attributes(verb, r.resource.resource, r.name, r.resource.namespaced && r.namespace ? r.namespace : undefined);
    await this.check(req, attrs, r);
    ctx.want = negotiate(req.headers.accept, url.searchParams, verb === "get" || verb === "list" || verb === "watch");
    await this.handler(r, verb)(ctx);
  }

  /** The access hook's decision; a refusal is a 401 or 403 Status naming what was refused. */
  private async check(req: IncomingMessage, attrs: RestAttributes, r: Route | undefined): Promise<void> {
    const decision = await this.access(req, attrs);
    if (decision.allowed) return;
    throw new RestError(decision.code, decision.code === 401 ? "Unauthorized" : "Forbidden", decision.message, r && {
      ...(r.name !== undefined && { name: r.name }),
      ...(r.resource.group && { group: r.resource.group }),
      kind: r.resource.name.split("/")[0],
    });
  }

  private handler(r: Route, verb: RestVerb): Handler {
    const reads = this.reads;
    const writes = this.writes;
    if (verb === "watch") return (ctx) => watch(ctx, reads);
    switch (r.resource.resource) {
      case "nodes":
      case "nodes/status":
        switch (verb) {
          case "get":
            return (ctx) => getNode(ctx, writes);
          case "list":
            return (ctx) => listNodes(ctx, reads);
          case "create":
            return (ctx) => createNode(ctx, writes);
          case "update":
            return (ctx) => updateNode(ctx, writes);
          case "patch":
            return (ctx) => patchNode(ctx, writes);
          default:
            return (ctx) => deleteNode(ctx, writes);
        }
      case "leases":
        return verb === "get" ? (ctx) => getLease(ctx, reads) : (ctx) => listLeases(ctx, reads);
      case "events":
        return verb === "get" ? (ctx) => getEvent(ctx, reads) : (ctx) => listEvents(ctx, reads);
      case "pods":
        return verb === "get" ? (ctx) => Promise.reject(notFound(ctx)) : (ctx) => listPods(ctx, reads);
      case "discovery":
        // Discovery is answered before routing (see serve); no route names it.
        throw new RestError(404, "NotFound", "the server could not find the requested resource");
    }
  }
}
