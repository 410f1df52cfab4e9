/**
 * The audit log (one line per change: who, what, which object, revision before and after;
 * refused changes too; never a secret) and the per-identity abuse limits (request rate, open
 * streams, request size for nodes), through a real server.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityLimits } from "../../src/auth/limits.js";
import { authenticated } from "../../src/auth/identity.js";
import { RpcError } from "../../src/client/errors.js";
import { FakeClock } from "../../src/clock.js";
import { ResourceExhaustedError } from "../../src/errors.js";
import { type AuthHarness, startAuthHarness, TOKENS } from "../support/auth.js";
import { agentNode } from "../support/server.js";

type Line = Record<string, unknown>;

function capturingLogger(): { logger: pino.Logger; lines: Line[]; text: () => string } {
  const raw: string[] = [];
  const logger = pino({ level: "info" }, { write: (s: string) => void raw.push(s) });
  return { logger, get lines() { return raw.map((s) => JSON.parse(s) as Line); }, text: () => raw.join("") };
}

const code = (p: Promise<unknown>): Promise<string> => p.then(() => "OK", (e: unknown) => (e instanceof RpcError ? (e.message.split(":")[0] ?? "") : String(e)));

describe("audit log", () => {
  let h: AuthHarness;
  const log = capturingLogger();
  const audit = (): Line[] => log.lines.filter((l) => l.audit === true);

  beforeAll(async () => {
    h = await startAuthHarness({}, { logger: log.logger });
  });
  afterAll(() => h.close());

  it("one line per change: who, what, the object, its revision before and after; reads are not audited", async () => {
    const registered = await h.operator.register(agentNode("a1"));
    const rv1 = registered.node!.metadata!.resourceVersion;
    const updated = await h.operator.updateNode({ ...registered.node!, metadata: { ...registered.node!.metadata, labels: { team: "x" } } });
    await h.operator.getNode("a1");
    await h.operator.listNodes();
    const node = await h.node("a1");
    const lease = await node.renewLease("a1");
    await h.operator.deleteNode("a1");
    const lines = audit().map(({ method, user, verb, resource, name, namespace, code, revisionBefore, revisionAfter, authn }) => ({ method, user, verb, resource, name, namespace, code, revisionBefore, revisionAfter, authn }));
    expect(lines).toEqual([
      { method: "Register", user: "nodeplane-admin", verb: "create+update", resource: "nodes", name: "a1", namespace: undefined, code: "OK", revisionBefore: "0", revisionAfter: rv1, authn: "x509" },
      { method: "UpdateNode", user: "nodeplane-admin", verb: "update", resource: "nodes", name: "a1", namespace: undefined, code: "OK", revisionBefore: rv1, revisionAfter: updated.metadata!.resourceVersion, authn: "x509" },
      { method: "RenewLease", user: "system:node:a1", verb: "create+update", resource: "leases", name: "a1", namespace: "kube-node-lease", code: "OK", revisionBefore: rv1, revisionAfter: lease.metadata!.resourceVersion, authn: "x509" },
      { method: "DeleteNode", user: "nodeplane-admin", verb: "delete", resource: "nodes", name: "a1", namespace: undefined, code: "OK", revisionBefore: updated.metadata!.resourceVersion, revisionAfter: "deleted", authn: "x509" },
    ]);
  });

  it("refused changes are audited with their code; no token, secret or key ever reaches a log line", async () => {
    const before = audit().length;
    const { token } = await h.operator.createBootstrapToken();
    const holder = h.client({ token });
    expect(await code(holder.deleteNode("a2"))).toBe("PERMISSION_DENIED");
    const ops = h.client({ token: TOKENS.operator });
    await ops.register(agentNode("a2"));
    expect(await code(h.viewer.deleteNode("a2"))).toBe("PERMISSION_DENIED");
    const node = await h.node("a2");
    const hb = node.heartbeat();
    await hb.renew("a2");
    expect(await code(hb.renew("a3"))).toBe("PERMISSION_DENIED");
    hb.close();
    const lines = audit().slice(before).map((l) => [l.method, l.user, l.code]);
    expect(lines).toEqual([
      ["CreateBootstrapToken", "nodeplane-admin", "OK"],
      ["DeleteNode", `system:bootstrap:${token.split(".")[0]}`, "PERMISSION_DENIED"],
      ["Register", "ops-bot", "OK"],
      ["DeleteNode", "viewer-alice", "PERMISSION_DENIED"],
      ["Heartbeat", "system:node:a2", "OK"],
      ["Heartbeat", "system:node:a2", "PERMISSION_DENIED"],
    ]);
    const everything = log.text();
    expect(everything).not.toContain(token.split(".")[1]);
    expect(everything).not.toContain(TOKENS.operator);
    const adminKey = h.adminCredential.key!.split("\n")[1]!;
    expect(everything).not.toContain(adminKey);
    expect(everything).not.toContain("PRIVATE KEY");
  });

  it("--audit-log-path writes the lines to a file of their own", async () => {
    const file = join(h.dataDir, "audit.log");
    const second = await startAuthHarness({ auditLogPath: file });
    try {
      await second.operator.register(agentNode("f1"));
      await second.server.shutdown(); // flushes the file
      const lines = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Line);
      expect(lines.map((l) => [l.msg, l.method, l.name, l.code])).toEqual([["audit", "Register", "f1", "OK"]]);
    } finally {
      await second.close().catch(() => {});
    }
  });
});

describe("per-identity limits", () => {
  let h: AuthHarness;
  const clock = new FakeClock(Date.now());

  beforeAll(async () => {
    h = await startAuthHarness({ limits: { qps: 2, burst: 4, maxStreams: 2, maxNodeRequestBytes: 64 * 1024 } }, { clock });
  });
  afterAll(() => h.close());

  it("a token bucket per identity: over it RESOURCE_EXHAUSTED naming the limit; others are not affected; it refills", async () => {
    const flooder = h.client({ token: TOKENS.viewer });
    for (let i = 0; i < 4; i++) await flooder.listNodes();
    const refused = await flooder.listNodes().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RpcError);
    expect((refused as RpcError).message).toBe(
      'RESOURCE_EXHAUSTED: rate limit for user "dashboard": 2 requests/s with bursts of 4 (--max-requests-per-second-per-identity, --max-request-burst-per-identity); slow down and retry',
    );
    expect(await code(h.viewer.listNodes())).toBe("OK"); // another identity
    clock.advance(1000); // two more
    expect(await code(flooder.listNodes())).toBe("OK");
    expect(await code(flooder.listNodes())).toBe("OK");
    expect(await code(flooder.listNodes())).toBe("RESOURCE_EXHAUSTED");
  });

  it("open streams per identity", async () => {
    clock.advance(10_000);
    const c = h.client({ token: TOKENS.operator });
    await c.register(agentNode("s1"));
    const abort = new AbortController();
    const open = async (): Promise<string> => {
      try {
        for await (const ev of c.watch({ sendInitialEvents: true }, { signal: abort.signal })) if (ev.type === "BOOKMARK") return "OK";
        return "ended";
      } catch (e) {
        return e instanceof RpcError ? e.message : String(e);
      }
    };
    // Two watches held open (each parked after its first event), then a third.
    const held = [0, 1].map(() => c.watch({ sendInitialEvents: true }, { signal: abort.signal })[Symbol.asyncIterator]());
    await Promise.all(held.map((it) => it.next()));
    expect(await open()).toBe('RESOURCE_EXHAUSTED: too many open streams for user "ops-bot": limit 2 Watch and Heartbeat streams per identity (--max-streams-per-identity)');
    abort.abort();
    await Promise.all(held.map((it) => it.return(undefined)));
  });

  it("a node's request over the node size limit is refused; the same from an operator is not", async () => {
    clock.advance(10_000);
    const big = agentNode("b1", { metadata: { annotations: { blob: "x".repeat(100 * 1024) } } });
    const node = await h.node("b1");
    const refused = await node.register(big).catch((e: unknown) => e);
    expect((refused as RpcError).message).toMatch(/^RESOURCE_EXHAUSTED: request of \d+ bytes from user "system:node:b1" is over the 65536-byte limit for nodes and bootstrap tokens \(--max-node-request-size\)$/);
    expect(await code(h.operator.register(big))).toBe("OK");
  });

  it("IdentityLimits: streams are given back, and quiet identities are forgotten", () => {
    const c = new FakeClock(0);
    const limits = new IdentityLimits({ qps: 1, burst: 1, maxStreams: 1, maxNodeRequestBytes: 0, clock: c });
    const alice = authenticated("alice", [], "token");
    const release = limits.openStream(alice);
    expect(() => limits.openStream(alice)).toThrow(ResourceExhaustedError);
    release();
    release(); // idempotent
    limits.openStream(alice)();
    limits.take(alice);
    expect(() => limits.take(alice)).toThrow(/rate limit for user "alice"/);
    c.advance(1000);
    limits.sweep();
    limits.take(alice); // a fresh bucket: full again
  });
});
