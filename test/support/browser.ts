/**
 * Browser and HTTP helpers for the dashboard's tests: Debian's Chromium driven by
 * playwright-core (which downloads no browser: a missing /usr/bin/chromium fails the test,
 * as every missing real component does), a reader of the dashboard's Server-Sent Events, and
 * the operator/viewer token table the tests plug into the dashboard's authentication hooks.
 */
import { existsSync } from "node:fs";
import { request, type IncomingMessage } from "node:http";
import { type Browser, chromium } from "playwright-core";
import type { Authorize, Identity } from "../../src/dashboard/auth.js";

export const CHROMIUM = "/usr/bin/chromium";

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Two people: an operator and a viewer (the security issue's groups). */
export const TOKENS: Record<string, Identity> = {
  "operator-token-0123456789": { user: "olivia", groups: ["nodeplane:operators"] },
  "viewer-token-0123456789": { user: "victor", groups: ["nodeplane:viewers"] },
};

/** Operators may do everything; viewers get, list and watch (the security issue's table). */
export const byRole: Authorize = (who, verb) =>
  who.groups.includes("nodeplane:operators") || who.groups.includes("system:masters") || (who.groups.includes("nodeplane:viewers") && verb !== "patch");

export const tokenAuth = { authenticate: (token: string) => TOKENS[token], authorize: byRole };

/** One Server-Sent Event. */
export interface Sse {
  event: string;
  id: string | undefined;
  data: string;
}

/** An open event stream: its events as they come, and a way to cut it. */
export interface SseReader {
  status: number;
  headers: IncomingMessage["headers"];
  /** The next event (or undefined once the stream has ended). */
  next(): Promise<Sse | undefined>;
  close(): void;
  response: IncomingMessage;
}

export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: "text/event-stream", ...headers } }, (res) => {
      res.setEncoding("utf8");
      const queue: Sse[] = [];
      const waiters: ((e: Sse | undefined) => void)[] = [];
      let buffer = "";
      let ended = false;
      const deliver = (e: Sse | undefined): void => {
        const w = waiters.shift();
        if (w) w(e);
        else if (e) queue.push(e);
      };
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const e: Sse = { event: "message", id: undefined, data: "" };
          const data: string[] = [];
          let any = false;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") e.event = value;
            else if (field === "id") e.id = value;
            else if (field === "data") data.push(value);
            else continue;
            any = true;
          }
          if (!any || data.length === 0) continue;
          e.data = data.join("\n");
          deliver(e);
        }
      });
      const finish = (): void => {
        ended = true;
        for (const w of waiters.splice(0)) w(undefined);
      };
      res.on("end", finish);
      res.on("close", finish);
      res.on("error", finish);
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        response: res,
        next: () => {
          const e = queue.shift();
          if (e || ended) return Promise.resolve(e);
          return new Promise((r) => waiters.push(r));
        },
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/** A plain HTTP request; answers status, headers and the body as text. */
export function httpCall(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: IncomingMessage["headers"]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? "GET", headers: opts.headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}
