/**
 * The dashboard's HTTP side against a real server: the event stream's resume, relist, limits
 * and slow readers; login, sessions, roles and CSRF; hostile requests. Plain HTTP clients, no
 * browser (browser.test.ts drives the page).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Identity } from "../../src/dashboard/auth.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import type { ServeOptions } from "../../src/server/server.js";
import { byRole, httpCall, openSse, type Sse, type SseReader, TOKENS } from "../support/browser.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

let h: Harness | undefined;
const open: SseReader[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) s.close();
  await h?.close();
  h = undefined;
});

async function start(overrides: Partial<ServeOptions> = {}): Promise<{ h: Harness; base: string }> {
  h = await startHarness({ httpListen: "127.0.0.1:0", ...overrides, dashboard: { frameMs: 20, ...(overrides.dashboard || {}) } });
  return { h, base: `http://127.0.0.1:${h.server.httpPort}` };
}

async function sse(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const s = await openSse(url, headers);
  open.push(s);
  return s;
}

interface FrameData {
  rev: number;
  nodes: { name: string; rev: number; cordoned: boolean }[];
  leases: { name: string; rev: number }[];
}

/** Frames (message events) until one reaches `rev`; other events are returned beside them. */
async function framesUntil(s: SseReader, rev: number): Promise<{ frames: (FrameData & { id: number })[]; other: Sse[] }> {
  const frames: (FrameData & { id: number })[] = [];
  const other: Sse[] = [];
  for (;;) {
    const e = await s.next();
    if (!e) throw new Error(`stream ended before revision ${rev}`);
    if (e.event !== "message") {
      other.push(e);
      continue;
    }
    frames.push({ ...(JSON.parse(e.data) as FrameData), id: Number(e.id) });
    if (Number(e.id) >= rev) return { frames, other };
  }
}

const json = { "content-type": "application/json" };

const cordon = async (harness: Harness, name: string): Promise<number> => {
  const n = await harness.client.getNode(name);
  return Number((await harness.client.updateNode({ ...n, spec: { ...n.spec!, unschedulable: true } })).metadata!.resourceVersion);
};

const metric = async (base: string, name: string): Promise<number> => {
  const text = (await httpCall(`${base}/metrics`)).body;
  return Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
};

describe("dashboard event stream", () => {
  it("resumes from Last-Event-ID after its connection is cut: every change after it once, none before", async () => {
    const { h, base } = await start();
    for (const n of ["a", "b", "c"]) await h.client.register(agentNode(n));
    const snap = JSON.parse((await httpCall(`${base}/dashboard/v1/snapshot`)).body) as { rev: number; nodes: unknown[] };
    expect(snap.nodes).toHaveLength(3);
    const first = await sse(`${base}/dashboard/v1/stream?after=${snap.rev}`);
    expect(first.status).toBe(200);
    expect(first.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    const hello = await first.next();
    expect(hello?.event).toBe("hello");
    const revA = await cordon(h, "a");
    const seen = await framesUntil(first, revA);
    const lastId = seen.frames.at(-1)!.id;
    first.close();

    const revB = await cordon(h, "b");
    const revC = await cordon(h, "c");
    const again = await sse(`${base}/dashboard/v1/stream?after=${snap.rev}`, { "last-event-id": String(lastId) });
    const { frames } = await framesUntil(again, revC);
    const rows = frames.flatMap((f) => f.nodes);
    expect(rows.map((r) => [r.name, r.rev])).toEqual([
      ["b", revB],
      ["c", revC],
    ]);
    expect(frames[0]!.id).toBeGreaterThan(lastId);
  });

  it("answers relist when the revision to resume from was compacted away", async () => {
    const { h, base } = await start();
    await h.client.register(agentNode("a"));
    const old = Number((await h.client.listNodes()).resourceVersion);
    for (let i = 0; i < 3; i++) await cordon(h, "a").catch(() => undefined), await h.client.register(agentNode(`x${i}`));
    await h.server.store.compact(await h.server.store.currentRevision());
    const s = await sse(`${base}/dashboard/v1/stream`, { "last-event-id": String(old) });
    expect((await s.next())?.event).toBe("hello");
    const relist = await s.next();
    expect(relist?.event).toBe("relist");
    expect((JSON.parse(relist!.data) as { reason: string }).reason).toMatch(new RegExp(`revision ${old} was compacted`));
    expect(await s.next()).toBeUndefined();
  });

  it("refuses a Last-Event-ID or after= that is not a revision, naming it", async () => {
    const { base } = await start();
    const bad = await httpCall(`${base}/dashboard/v1/stream`, { headers: { "last-event-id": "12abc" } });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ error: { code: 400, reason: "BadRequest", message: 'Last-Event-ID "12abc": must be a revision (decimal digits)' } });
    const after = await httpCall(`${base}/dashboard/v1/stream?after=-1`);
    expect(after.status).toBe(400);
    expect(after.body).toContain('after \\"-1\\"');
  });

  it("copes with thousands of streams opened and closed, holds to its stream limit, and still serves", async () => {
    const { h, base } = await start({ dashboard: { maxStreams: 300 } });
    await h.client.register(agentNode("a"));
    for (let round = 0; round < 10; round++) {
      const batch = await Promise.all(Array.from({ length: 200 }, () => openSse(`${base}/dashboard/v1/stream`)));
      await Promise.all(batch.map((s) => s.next()));
      // Half leave politely after reading, half vanish mid-stream.
      batch.forEach((s, i) => (i % 2 ? s.close() : s.response.destroy()));
    }
    // Closing is seen by the server asynchronously: wait until its gauge says none are open.
    for (let i = 0; (await metric(base, "nodeplane_dashboard_streams")) !== 0; i++) expect(i).toBeLessThan(1000);

    const full = await Promise.all(Array.from({ length: 300 }, () => sse(`${base}/dashboard/v1/stream`)));
    await Promise.all(full.map((s) => s.next()));
    const refused = await httpCall(`${base}/dashboard/v1/stream`);
    expect(refused.status).toBe(503);
    expect(refused.headers["retry-after"]).toBe("5");
    expect(JSON.parse(refused.body).error.message).toBe("too many dashboard streams open (limit 300); retry later");
    for (const s of full.slice(1)) s.close();
    const rev = await cordon(h, "a");
    const { frames } = await framesUntil(full[0]!, rev);
    expect(frames.at(-1)!.nodes.map((n) => [n.name, n.cordoned])).toEqual([["a", true]]);
  });

  it("cuts off a page that reads too slowly; it resumes from the last frame it read, missing nothing", async () => {
    const { h, base } = await start({ dashboard: { maxLagBytes: 256 * 1024 } });
    // ~24 KB rows: a few hundred nodes are more than the loopback socket buffers hold.
    const labels = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`l${i}.${"d".repeat(50)}.example.com/${"k".repeat(50)}-${i}`, "v".repeat(63)]));
    const register = (name: string) => h.server.registry.register(Node.fromPartial(agentNode(name, { metadata: { name, labels } })));
    await register("first");
    const slow = await sse(`${base}/dashboard/v1/stream`);
    await slow.next();
    slow.response.pause();
    let last = 0;
    for (let batch = 0; batch < 4; batch++) {
      const made = await Promise.all(Array.from({ length: 100 }, (_, i) => register(`n-${batch}-${i}`)));
      last = Math.max(last, ...made.map((m) => Number(m.lease.metadata!.resourceVersion)));
    }
    for (let i = 0; (await metric(base, "nodeplane_dashboard_streams_cut_off_total")) !== 1; i++) expect(i).toBeLessThan(1000);
    // What reached the page before the cut, up to its end.
    slow.response.resume();
    const before: (FrameData & { id: number })[] = [];
    for (let e = await slow.next(); e; e = await slow.next()) if (e.event === "message") before.push({ ...(JSON.parse(e.data) as FrameData), id: Number(e.id) });
    const lastId = before.at(-1)?.id ?? 0;
    expect(lastId).toBeLessThan(last);
    const resumed = await sse(`${base}/dashboard/v1/stream`, { "last-event-id": String(lastId) });
    const { frames } = await framesUntil(resumed, last);
    const rows = [...before, ...frames].flatMap((f) => f.nodes.map((n) => `${n.name}@${n.rev}`));
    expect(new Set(rows).size).toBe(rows.length);
    expect(new Set(rows.map((r) => r.split("@")[0])).size).toBe(400);
  });
});

describe("dashboard login, roles and CSRF", () => {
  const tokens = new Map<string, Identity>(Object.entries(TOKENS));
  const authOn = { dashboard: { authenticate: (t: string) => tokens.get(t), authorize: byRole, pingMs: 200 } };
  const OPERATOR = "operator-token-0123456789";
  const VIEWER = "viewer-token-0123456789";

  async function login(base: string, token: string): Promise<{ cookie: string; csrf: string }> {
    const res = await httpCall(`${base}/dashboard/login`, { method: "POST", headers: json, body: JSON.stringify({ token }) });
    expect(res.status).toBe(200);
    const setCookie = res.headers["set-cookie"]![0]!;
    return { cookie: setCookie.split(";")[0]!, csrf: (JSON.parse(res.body) as { csrfToken: string }).csrfToken };
  }

  it("exchanges a token for an HttpOnly, SameSite=Strict session cookie; a bad token or no session gets 401", async () => {
    const { base } = await start(authOn);
    const bad = await httpCall(`${base}/dashboard/login`, { method: "POST", headers: json, body: '{"token":"nope"}' });
    expect(bad.status).toBe(401);
    expect(bad.headers["set-cookie"]).toBeUndefined();
    expect(JSON.parse(bad.body).error.message).toBe("that token is not valid");
    const res = await httpCall(`${base}/dashboard/login`, { method: "POST", headers: json, body: JSON.stringify({ token: OPERATOR }) });
    expect(res.headers["set-cookie"]![0]).toMatch(/^nodeplane_session=[\w-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
    expect(JSON.parse(res.body)).toMatchObject({ user: "olivia", groups: ["nodeplane:operators"], authEnabled: true, canCordon: true });
    for (const path of ["/dashboard/v1/session", "/dashboard/v1/snapshot", "/dashboard/v1/stream", "/dashboard/v1/nodes/a"]) {
      expect((await httpCall(`${base}${path}`)).status).toBe(401);
      expect((await httpCall(`${base}${path}`, { headers: { cookie: "nodeplane_session=forged" } })).status).toBe(401);
    }
    // The page itself loads without a session (it shows the login form).
    expect((await httpCall(`${base}/`)).status).toBe(200);
    expect((await httpCall(`${base}/dashboard/login`, { method: "POST", headers: json, body: "{not json" })).status).toBe(400);
    expect((await httpCall(`${base}/dashboard/login`, { method: "POST", headers: json, body: JSON.stringify({ token: "x".repeat(20_000) }) })).status).toBe(413);
  });

  it("refuses a viewer's cordon and every forged one, and changes nothing; an operator's goes through", async () => {
    const { h, base } = await start(authOn);
    await h.client.register(agentNode("a"));
    const viewer = await login(base, VIEWER);
    const operator = await login(base, OPERATOR);
    const url = `${base}/dashboard/v1/nodes/a/cordon`;
    const post = (s: { cookie: string; csrf: string }, headers: Record<string, string> = {}) =>
      httpCall(url, { method: "POST", headers: { cookie: s.cookie, "x-csrf-token": s.csrf, ...json, ...headers }, body: "{}" });
    const refused = [
      await post(viewer),
      await post(operator, { "x-csrf-token": viewer.csrf }),
      await post(operator, { "x-csrf-token": "" }),
      await post(operator, { "content-type": "text/plain" }),
      await post(operator, { origin: "http://evil.example" }),
      await post(operator, { "sec-fetch-site": "cross-site" }),
    ];
    expect(refused.map((r) => [r.status, JSON.parse(r.body).error.message])).toEqual([
      [403, 'user "victor" (groups nodeplane:viewers) may not patch nodes "a"'],
      [403, "missing or wrong X-CSRF-Token header (reload the page)"],
      [403, "missing or wrong X-CSRF-Token header (reload the page)"],
      [403, "a change must be sent as application/json"],
      [403, "cross-origin request refused"],
      [403, "cross-site request refused (Sec-Fetch-Site: cross-site)"],
    ]);
    expect((await h.client.getNode("a")).spec?.unschedulable).toBe(false);
    const ok = await post(operator, { origin: base, "sec-fetch-site": "same-origin" });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ name: "a", cordoned: true });
    expect((await h.client.getNode("a")).spec?.unschedulable).toBe(true);
    const missing = await httpCall(`${base}/dashboard/v1/nodes/nope/cordon`, { method: "POST", headers: { cookie: operator.cookie, "x-csrf-token": operator.csrf, ...json }, body: "{}" });
    expect([missing.status, JSON.parse(missing.body).error.message]).toEqual([404, 'node "nope" not found']);
  });

  it("ends a session whose token stops authenticating at once, its open stream at the next ping; logout ends it too", async () => {
    const { base } = await start(authOn);
    tokens.set("short-lived-token", { user: "tess", groups: ["nodeplane:viewers"] });
    const s = await login(base, "short-lived-token");
    const stream = await sse(`${base}/dashboard/v1/stream`, { cookie: s.cookie });
    expect((await stream.next())?.event).toBe("hello");
    tokens.delete("short-lived-token");
    expect((await httpCall(`${base}/dashboard/v1/session`, { headers: { cookie: s.cookie } })).status).toBe(401);
    let e = await stream.next();
    while (e?.event === "zones") e = await stream.next();
    expect(e?.event).toBe("logout");
    expect(await stream.next()).toBeUndefined();

    const o = await login(base, OPERATOR);
    const out = await httpCall(`${base}/dashboard/logout`, { method: "POST", headers: { cookie: o.cookie, ...json } });
    expect(out.status).toBe(204);
    expect(out.headers["set-cookie"]![0]).toBe("nodeplane_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    expect((await httpCall(`${base}/dashboard/v1/session`, { headers: { cookie: o.cookie } })).status).toBe(401);
  });
});

describe("dashboard requests", () => {
  it("without authentication, answers only loopback and IP-literal Host names (DNS rebinding)", async () => {
    const { base } = await start();
    const port = new URL(base).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `10.1.2.3:${port}`]) {
      expect((await httpCall(`${base}/dashboard/v1/session`, { headers: { host } })).status).toBe(200);
    }
    const evil = await httpCall(`${base}/dashboard/v1/session`, { headers: { host: `attacker.example:${port}` } });
    expect(evil.status).toBe(421);
    expect(JSON.parse(evil.body).error.message).toContain("without authentication the dashboard answers only on localhost or an IP address");
    // The probes are not the dashboard's: they answer whatever the Host.
    expect((await httpCall(`${base}/healthz`, { headers: { host: "attacker.example" } })).status).toBe(200);
  });

  it("answers bad input with a clear error: selectors, node names, paths, methods", async () => {
    const { h, base } = await start();
    await h.client.register(agentNode("a", { metadata: { name: "a", labels: { tier: "web" } } }));
    const call = async (path: string, method = "GET") => {
      const r = await httpCall(`${base}${path}`, { method, headers: json });
      return [r.status, (JSON.parse(r.body) as { error?: { message: string } }).error?.message ?? JSON.parse(r.body)];
    };
    expect(await call(`/dashboard/v1/selector?labelSelector=${encodeURIComponent("tier in (web,db),!gpu")}`)).toEqual([
      200,
      { requirements: [{ key: "tier", operator: "In", values: ["web", "db"] }, { key: "gpu", operator: "DoesNotExist", values: [] }] },
    ]);
    expect(await call(`/dashboard/v1/selector?labelSelector=${encodeURIComponent("tier in (")}`)).toEqual([
      400,
      `label_selector: "tier in (": at position 9: expected a value after '(', found end of string`,
    ]);
    expect(await call(`/dashboard/v1/selector?labelSelector=${encodeURIComponent("Bad Key!=x")}`)).toEqual([400, expect.stringContaining("label_selector")]);
    expect(await call("/dashboard/v1/nodes/%E0%A4%A")).toEqual([400, 'bad node name in the path: "%E0%A4%A"']);
    expect(await call("/dashboard/v1/nodes/nope")).toEqual([404, 'node "nope" not found']);
    expect(await call("/dashboard/v1/nope")).toEqual([404, 'no such dashboard path "/dashboard/v1/nope"']);
    expect(await call("/dashboard/assets/..%2f..%2fpackage.json")).toEqual([404, 'no such file "..%2f..%2fpackage.json"']);
    expect(await call("/dashboard/v1/snapshot", "DELETE")).toEqual([405, "DELETE not allowed on /dashboard/v1/snapshot"]);
    const detail = JSON.parse((await httpCall(`${base}/dashboard/v1/nodes/a`)).body) as { node: { metadata: { name: string } }; lease: { spec: { holderIdentity: string } } };
    expect(detail.node.metadata.name).toBe("a");
    expect(detail.lease.spec.holderIdentity).toBe("a");
    const page = await httpCall(`${base}/`);
    expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(page.headers["x-frame-options"]).toBe("DENY");
  });
});

describe("dashboard behind the server's own authentication", () => {
  it("with --token-auth-file: an operator's token logs in and cordons, a viewer's is refused, an unknown one gets 401", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nodeplane-dash-auth-"));
    const tokenFile = join(dir, "tokens.csv");
    writeFileSync(tokenFile, ['ops-secret-0123456789,olga,1,"nodeplane:operators"', "view-secret-0123456789,vic,2,nodeplane:viewers"].join("\n"));
    try {
      const { h, base } = await start({ security: { tokenAuthFile: tokenFile } });
      await h.server.registry.createNode(Node.fromPartial({ metadata: { name: "a" } }));
      const login = (token: string) => httpCall(`${base}/dashboard/login`, { method: "POST", headers: json, body: JSON.stringify({ token }) });
      expect((await login("nope-0123456789")).status).toBe(401);
      expect((await httpCall(`${base}/dashboard/v1/snapshot`)).status).toBe(401);
      const session = async (token: string): Promise<{ cookie: string; csrf: string; canCordon: boolean }> => {
        const res = await login(token);
        expect(res.status).toBe(200);
        const body = JSON.parse(res.body) as { csrfToken: string; canCordon: boolean };
        return { cookie: res.headers["set-cookie"]![0]!.split(";")[0]!, csrf: body.csrfToken, canCordon: body.canCordon };
      };
      const cordon = (s: { cookie: string; csrf: string }) =>
        httpCall(`${base}/dashboard/v1/nodes/a/cordon`, { method: "POST", headers: { cookie: s.cookie, "x-csrf-token": s.csrf, ...json }, body: "{}" });
      const viewer = await session("view-secret-0123456789");
      expect(viewer.canCordon).toBe(false);
      expect((await cordon(viewer)).status).toBe(403);
      expect((await h.server.registry.getNode("a")).spec?.unschedulable).toBe(false);
      const operator = await session("ops-secret-0123456789");
      expect(operator.canCordon).toBe(true);
      expect((await cordon(operator)).status).toBe(200);
      expect((await h.server.registry.getNode("a")).spec?.unschedulable).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
