/**
 * The HTTP side: Prometheus metrics and probes for load balancers and orchestrators.
 * /healthz: the process is up. /readyz: the store answers and the server accepts work.
 * Every other path goes to `fallback` when there is one (the Kubernetes REST API).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HttpSideOptions {
  host: string;
  port: number;
  metrics: Registry;
  /** Resolves when ready (with a line to add to "ok", if any); rejects with the reason otherwise. */
  ready: () => Promise<string | undefined>;
  /** Serves every request for another path (src/rest/router.ts); none = 404. */
  fallback?: (req: IncomingMessage, res: ServerResponse) => void;
}

const OWN_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

export async function startHttpSide(opts: HttpSideOptions): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (opts.fallback && !OWN_PATHS.has(path)) return opts.fallback(req, res);
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
      opts.metrics.metrics().then(
        (text) => reply(200, text, opts.metrics.contentType),
        (err: unknown) => reply(500, `metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
      );
      return;
    }
    reply(404, "not found: try /metrics, /healthz or /readyz\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
