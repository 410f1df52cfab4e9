/**
 * Plain HTTP against the Kubernetes REST API of a test server: requests with a body and media
 * types of the test's choosing, answers parsed as JSON, and watch streams read one
 * newline-delimited event at a time as the server flushes them.
 */
import type { KubeStatus } from "../../src/rest/status.js";

export interface Answer {
  status: number;
  headers: Headers;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: Record<string, unknown> & Partial<KubeStatus>;
  text: string;
}

export interface RequestOptions {
  body?: string | Uint8Array;
  /** Content-Type of the body (default application/json when there is one). */
  type?: string;
  accept?: string;
}

export async function call(base: string, method: string, path: string, opts: RequestOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers["content-type"] = opts.type ?? "application/json";
  if (opts.accept !== undefined) headers.accept = opts.accept;
  const res = await fetch(`${base}${path}`, { method, headers, body: opts.body });
  const text = await res.text();
  let json: Answer["json"];
  try {
    json = JSON.parse(text) as Answer["json"];
  } catch {
    json = {};
  }
  return { status: res.status, headers: res.headers, json, text };
}

export interface WatchEventJson {
  type: string;
  object: Record<string, unknown> & { metadata?: Record<string, unknown> };
}

export interface WatchStream {
  status: number;
  contentType: string | null;
  /** The next event; undefined when the stream ended. */
  next(): Promise<WatchEventJson | undefined>;
  close(): void;
}

/** Open a watch (`path` carries `?watch=true&…`). */
export async function openWatch(base: string, path: string, accept?: string): Promise<WatchStream> {
  const abort = new AbortController();
  const res = await fetch(`${base}${path}`, { signal: abort.signal, headers: accept ? { accept } : {} });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    async next() {
      for (;;) {
        const nl = buffered.indexOf("\n");
        if (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          return JSON.parse(line) as WatchEventJson;
        }
        const { done, value } = await reader.read();
        if (done) {
          if (buffered.trim() !== "") throw new Error(`stream ended inside an event: ${buffered}`);
          return undefined;
        }
        buffered += decoder.decode(value, { stream: true });
      }
    },
    close: () => abort.abort(),
  };
}
