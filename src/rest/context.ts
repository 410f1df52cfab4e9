/**
 * One REST request as the handlers see it: what it is about (resource, namespace, name), its
 * query, the response form it asked for, and how to answer. Answers are JSON with
 * Kubernetes' `Warning: 299 - "…"` headers for what was accepted but not kept.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ResourceInfo } from "./discovery.js";
import type { Want } from "./request.js";
import type { StatusSubject } from "./status.js";

export interface RestContext {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  resource: ResourceInfo;
  /** For namespaced kinds: the namespace in the path ("" = all namespaces). */
  namespace: string;
  /** The object's name, for requests about one object. */
  name: string | undefined;
  /** The response form (reads only; writes answer plain objects). */
  want: Want;
  requestId: string;
  /** Milliseconds since the epoch, for ages in tables. */
  now(): number;
  /** Warnings to send with the answer (unknown or dropped fields). */
  warnings: string[];
}

/** What a failure of this request names (`nodes "x" not found`). */
export function subjectOf(ctx: Pick<RestContext, "resource" | "name">): StatusSubject {
  const r = ctx.resource;
  return { resource: r.name.split("/")[0]!, group: r.group, kind: r.kind, ...(ctx.name !== undefined && { name: ctx.name }) };
}

/** Kubernetes' warning header value: `299 - "text"` (quotes and backslashes escaped, one line). */
function warningHeader(text: string): string {
  return `299 - "${text.replace(/[\r\n]+/g, " ").replace(/[\\"]/g, (c) => `\\${c}`).slice(0, 1024)}"`;
}

/** Send a JSON answer with the request's warnings. */
export function reply(ctx: Pick<RestContext, "res" | "warnings">, code: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string | string[]> = {
    "content-type": "application/json",
    "cache-control": "no-cache, private",
    "content-length": String(Buffer.byteLength(text)),
    ...extra,
  };
  // Header values must be Latin-1 single-line text: anything else is sent escaped.
  if (ctx.warnings.length > 0) headers.warning = ctx.warnings.map((w) => warningHeader(w).replace(/[^\x20-\x7e]/g, "?"));
  ctx.res.writeHead(code, headers);
  ctx.res.end(text);
}
