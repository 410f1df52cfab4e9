/**
 * The HTTP side: Prometheus metrics and probes for load balancers and orchestrators.
 * /healthz: the process is up. /readyz: the store answers and the server accepts work.
 * Every other path goes to `fallback` when there is one (the Kubernetes REST API).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tlsServerOptions, type TlsMaterial } from "../auth/listener.js";
import { NodeplaneError } from "../errors.js";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HttpSideOptions {
  host: string;
  port: number;
  /** Connections open at once; more are closed as soon as they are accepted (--http-max-connections). */
  maxConnections: number;
  metrics: Registry;
  /** Resolves when ready (with a line to add to "ok", if any); rejects with the reason otherwise. */
  ready: () => Promise<string | undefined>;
  /** More routes (the dashboard): answers true when it took the request. */
  routes?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Serves every request for another path (src/rest/router.ts); none = 404. */
  fallback?: (req: IncomingMessage, res: ServerResponse) => void;
  /** Serve HTTPS with this material (client certificates asked for, not required). */
  tls?: TlsMaterial;
  /** With authentication on: rejects (Unauthenticated / PermissionDenied) a caller who may not read /metrics. Probes stay open. */
  protectMetrics?: (req: IncomingMessage) => Promise<void>;
}

const OWN_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

export async function startHttpSide(opts: HttpSideOptions): Promise<{ server: Server; port: number }> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    // The probes first, then the dashboard's paths, then everything else to the REST API. A
    // route that throws answers 500: no request takes the server down.
    if (!OWN_PATHS.has(path)) {
      try {
        if (opts.routes?.(req, res)) return;
        if (opts.fallback) return opts.fallback(req, res);
      } catch (err) {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        res.end(`internal error: ${err instanceof Error ? err.name : "unknown"}\n`);
        return;
      }
    }
    const reply = (code: number, body: string, type = "text/plain; charset=utf-8"): void => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "method not allowed\n");
    if (path === "/healthz") return reply(200, "ok\n");
    if (path === "/readyz") {
      opts.ready().then(
        (detail) => reply(200, detail ? `ok\n${detail}\n` : "ok\n"),
        (err: unknown) => reply(503, `not ready: ${err instanceof Error ? err.message : String(err)}\n`),
      );
      return;
    }
    if (path === "/metrics") {
      (opts.protectMetrics?.(req) ?? Promise.resolve()).then(
        () =>
          opts.metrics.metrics().then(
            (text) => reply(200, text, opts.metrics.contentType),
            (err: unknown) => reply(500, `metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
          ),
        (err: unknown) => reply(httpStatusOf(err), `${err instanceof Error ? err.message : String(err)}\n`),
      );
      return;
    }
    reply(404, "not found: try /metrics, /healthz or /readyz\n");
  };
  const server = opts.tls ? createHttpsServer(tlsServerOptions(opts.tls), handler) : createServer(handler);
  // Bounded: a connection cap, and slow or idle clients are cut off (issue 11, defect 6).
  server.maxConnections = opts.maxConnections;
  server.headersTimeout = 10_000; // the request's headers must arrive within 10 s
  server.requestTimeout = 30_000; // …and the whole request within 30 s (not the answer: long answers stream on)
  server.keepAliveTimeout = 5_000; // an idle kept-alive connection is closed after 5 s
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/** 401 for a missing or bad credential, 403 for an identity that may not, 500 otherwise. */
function httpStatusOf(err: unknown): number {
  if (err instanceof NodeplaneError && err.kind === "Unauthenticated") return 401;
  if (err instanceof NodeplaneError && err.kind === "PermissionDenied") return 403;
  return 500;
}
