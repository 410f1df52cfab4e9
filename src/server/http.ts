/**
 * The HTTP side: Prometheus metrics and probes for load balancers and orchestrators.
 * /healthz: the process is up. /readyz: the store answers and the server accepts work.
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
  metrics: Registry;
  /** Resolves when ready; rejects with the reason otherwise. */
  ready: () => Promise<void>;
  /** Serve HTTPS with this material (client certificates asked for, not required). */
  tls?: TlsMaterial;
  /** With authentication on: rejects (Unauthenticated / PermissionDenied) a caller who may not read /metrics. Probes stay open. */
  protectMetrics?: (req: IncomingMessage) => Promise<void>;
}

export async function startHttpSide(opts: HttpSideOptions): Promise<{ server: Server; port: number }> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (code: number, body: string, type = "text/plain; charset=utf-8"): void => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "method not allowed\n");
    if (path === "/healthz") return reply(200, "ok\n");
    if (path === "/readyz") {
      opts.ready().then(
        () => reply(200, "ok\n"),
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
