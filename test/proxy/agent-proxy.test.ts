/**
 * Control plane → node, with real agent processes (`nodeplane agent --bootstrap-token`) against
 * a server with TLS and its own PKI: the agents get their serving certificates through the CSR
 * path, serve AgentService on 127.0.0.1 (any free port) and report the port; operators reach
 * them only through the server, which verifies that the certificate names the node.
 *
 * - top, logs and check through the server over verified TLS (SDK and nodectl);
 * - the agent's endpoint answers only the control plane (an operator's certificate, though the
 *   same CA signed it, is PERMISSION_DENIED there);
 * - a rogue endpoint serving another node's real certificate at a node's address (in process,
 *   and a real agent process of another node) is refused, and the server logs it;
 * - unknown node NOT_FOUND, no endpoint FAILED_PRECONDITION, closed port UNAVAILABLE naming node
 *   and address;
 * - the reverse tunnel: an agent listening where the server cannot reach it (127.0.0.2, while
 *   it reports 127.0.0.1) is reached over the tunnel it opened; a node cannot open one for
 *   another node.
 *
 * Waits are on the processes' log lines and on answers, never on sleeps.
 */
import * as grpc from "@grpc/grpc-js";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentApi } from "../../src/agent/agent-api.js";
import { AgentEndpoint } from "../../src/agent/endpoint.js";
import { LogRing } from "../../src/agent/log-ring.js";
import { UsageSampler } from "../../src/agent/usage.js";
import { tlsCredentials } from "../../src/auth/client-credentials.js";
import { systemClock } from "../../src/clock.js";
import { NodeClient } from "../../src/client/client.js";
import { ProxyClient } from "../../src/client/proxy-client.js";
import { FailedPreconditionError, NotFoundError, PermissionDeniedError, UnavailableError } from "../../src/client/errors.js";
import { AgentServiceService } from "../../src/gen/nodeplane/v1/agent.js";
import type { ConnectResponse } from "../../src/gen/nodeplane/v1/node_proxy.js";
import { startAuthHarness, type AuthHarness } from "../support/auth.js";
import { spawnAgent, type SpawnedAgent } from "../support/process.js";
import { agentNode } from "../support/server.js";
import { nodectl } from "../nodectl/support.js";

/** A pino logger whose lines the test can wait for. */
function capturedLog() {
  const lines: Record<string, unknown>[] = [];
  let waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  const logger = pino({ level: "info" }, {
    write(s: string) {
      const line = JSON.parse(s) as Record<string, unknown>;
      lines.push(line);
      waiters = waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
    },
  });
  const line = (match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    const seen = lines.find(match);
    return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
  };
  return { logger, line };
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(host = "127.0.0.1"): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, host, resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe("operators reach node agents through the server", () => {
  let h: AuthHarness;
  let dir: string;
  let log: ReturnType<typeof capturedLog>;
  let operator: ProxyClient;
  let token: string;
  const agents: SpawnedAgent[] = [];
  const closers: (() => void)[] = [];

  const agent = (name: string, extra: string[] = []): SpawnedAgent => {
    const a = spawnAgent([
      "--server", h.address,
      "--certificate-authority", join(h.dataDir, "pki", "ca.crt"),
      "--bootstrap-token", token,
      "--cert-dir", join(dir, name),
      "--hostname-override", name,
      "--node-ip", "127.0.0.1",
      "--port", "0",
      "--root-dir", dir,
      ...extra,
    ]);
    agents.push(a);
    return a;
  };
  const proxyClient = (c: { cert: string; key: string }): ProxyClient => {
    const client = new ProxyClient(h.address, { credentials: tlsCredentials({ ca: h.caPem, ...c }), timeoutMs: 20_000 });
    closers.push(() => client.close());
    return client;
  };
  const portOf = async (name: string): Promise<number> => (await operator.getNode(name)).status?.daemonEndpoints?.agentEndpoint?.port ?? 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nodeplane-agent-proxy-"));
    log = capturedLog();
    h = await startAuthHarness({}, { logger: log.logger });
    operator = proxyClient(h.adminCredential as { cert: string; key: string });
    token = (await operator.createBootstrapToken({ ttlMs: 3_600_000, description: "agent proxy test" })).token;
    // p1 is dialled; p3 listens where the server cannot reach it and opens a reverse tunnel.
    const p1 = agent("p1");
    const p3 = agent("p3", ["--address", "127.0.0.2", "--reverse-tunnel", "true"]);
    await Promise.all([p1.logLine("registered"), p3.logLine("registered"), p3.logLine("reverse tunnel open")]);
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) await a.stop();
    for (const c of closers) c();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("an agent gets a serving certificate for its own node from the cluster CA and reports its port", async () => {
    const cert = new X509Certificate(readFileSync(join(dir, "p1", "serving.crt")));
    expect(cert.subject.split("\n")).toEqual(expect.arrayContaining(["CN=system:node:p1", "O=system:nodes"]));
    expect(cert.checkIssued(new X509Certificate(h.caPem))).toBe(true);
    expect(cert.keyUsage).toContain("1.3.6.1.5.5.7.3.1");
    expect(await portOf("p1")).toBeGreaterThan(0);
  });

  it("top, logs and check reach the agent through the server over verified TLS", async () => {
    const port = await portOf("p1");
    const usage = await operator.getNodeUsage("p1");
    expect(usage.via).toBe(`127.0.0.1:${port}`);
    expect(usage.usage?.memory?.capacityBytes).toBeGreaterThan(0n);
    expect(usage.usage?.memory?.workingSetBytes).toBeGreaterThan(0n);
    expect(usage.usage?.filesystem?.path).toBe(dir);
    expect(usage.allocatable.cpu).toBeTruthy();

    const logs = await operator.getNodeLogs("p1", 50);
    expect(logs.via).toBe(`127.0.0.1:${port}`);
    expect(logs.lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain("registered");
    expect((await operator.getNodeLogs("p1", 1)).lines).toHaveLength(1);

    const check = await operator.checkNode("p1");
    expect(check.checks.map((c) => c.name)).toEqual(expect.arrayContaining(["registered", "lease", "status", "certificate", "serving-certificate"]));
    expect(check.checks.filter((c) => !c.ok)).toEqual([]);

    // nodectl, as an operator runs it, with the kubeconfig the server wrote.
    const kubeconfig = ["--kubeconfig", join(h.dataDir, "pki", "admin.kubeconfig")];
    const top = await nodectl([...kubeconfig, "top", "nodes", "p1"]);
    expect(top.stderr).toBe("");
    expect(top.stdout).toMatch(/^NAME\s+CPU\(cores\)\s+CPU\(%\)\s+MEMORY\(bytes\)\s+MEMORY\(%\)\np1\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%\n$/);
    const tail = await nodectl([...kubeconfig, "logs", "node", "p1", "--tail", "2"]);
    expect(tail.code).toBe(0);
    expect(tail.stdout.trim().split("\n")).toHaveLength(2);
    const checked = await nodectl([...kubeconfig, "check", "node", "p1"]);
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/^\[\+\]registered ok: /m);
    expect(checked.stdout).toMatch(/node "p1": check passed\n$/);
    expect((await nodectl([...kubeconfig, "logs", "node", "p1", "--tail", "5000"])).stderr).toMatch(/--tail.*1 to 1000/);
  });

  it("viewers may use the proxy; a node may not reach any agent through the server", async () => {
    const viewer = proxyClient(await h.certificate("viewer-bob", ["nodeplane:viewers"]));
    expect((await viewer.checkNode("p1")).checks.length).toBeGreaterThan(0);
    const node = proxyClient(await h.certificate("system:node:p3", ["system:nodes"]));
    await expect(node.getNodeLogs("p1")).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(node.getNodeLogs("p3")).rejects.toBeInstanceOf(PermissionDeniedError);
  });

  it("the agent's endpoint answers only the control plane", async () => {
    const address = `127.0.0.1:${await portOf("p1")}`;
    const ask = (credentials: grpc.ChannelCredentials): Promise<grpc.ServiceError | undefined> => {
      const client = new grpc.Client(address, credentials, { "grpc.ssl_target_name_override": "p1" });
      const def = AgentServiceService.getLogs;
      return new Promise((resolve) =>
        client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, { tailLines: 1 }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err) => {
          client.close();
          resolve(err ?? undefined);
        }),
      );
    };
    const checkServerIdentity = () => undefined; // the CA is checked; this test is about the agent's side
    const admin = h.adminCredential as { cert: string; key: string };
    const asOperator = await ask(grpc.credentials.createSsl(Buffer.from(h.caPem), Buffer.from(admin.key), Buffer.from(admin.cert), { checkServerIdentity }));
    expect(asOperator?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(asOperator?.details).toMatch(/nodeplane-admin.*answers only the control plane/);
    const anonymous = await ask(grpc.credentials.createSsl(Buffer.from(h.caPem), null, null, { checkServerIdentity }));
    expect(anonymous?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it("a rogue endpoint presenting another node's certificate is refused and logged", async () => {
    // A real endpoint, with p1's real serving certificate, at the address node "rogue" reports.
    let answered = 0;
    const sampler = new UsageSampler({ rootDir: dir });
    const api = agentApi({ sampler, ring: new LogRing(), checks: { progress: { registeredAt: 0, renewedAt: 0, statusSentAt: 0 }, clock: systemClock, leaseDurationMs: 1, statusUpdateFrequencyMs: 1, statusReportFrequencyMs: 1, conditions: () => [] } });
    const counted = { ...api, usage: () => (answered++, api.usage()) };
    const pair = { cert: readFileSync(join(dir, "p1", "serving.crt"), "utf8"), key: readFileSync(join(dir, "p1", "serving.key"), "utf8") };
    const silent = { info: () => {}, warn: () => {}, error: () => {} };
    const rogue = await AgentEndpoint.listen({ host: "127.0.0.1", port: 0, tls: { ...pair, ca: h.caPem }, callerGroup: "nodeplane:control-plane", api: counted, log: silent });
    closers.push(() => rogue.close());
    await operator.createNode(agentNode("rogue", { status: { addresses: [{ type: "InternalIP", address: "127.0.0.1" }], daemonEndpoints: { agentEndpoint: { port: rogue.port } } } }));

    const err = await operator.getNodeUsage("rogue").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(`node "rogue": agent at 127.0.0.1:${rogue.port} presented a certificate for "system:node:p1", not system:node:rogue: refused`);
    const logged = await log.line((l) => l.msg === "agent certificate refused" && l.node === "rogue");
    expect(logged.address).toBe(`127.0.0.1:${rogue.port}`);
    expect(answered).toBe(0);

    // The same with a real agent process: node "impostor" reports the port where p1's agent serves.
    const p1Port = await portOf("p1");
    await operator.createNode(agentNode("impostor", { status: { addresses: [{ type: "InternalIP", address: "127.0.0.1" }], daemonEndpoints: { agentEndpoint: { port: p1Port } } } }));
    await expect(operator.getNodeLogs("impostor", 1)).rejects.toThrow(`node "impostor": agent at 127.0.0.1:${p1Port} presented a certificate for "system:node:p1", not system:node:impostor: refused`);
    await log.line((l) => l.msg === "agent certificate refused" && l.node === "impostor");
    // top lists it with its error, the others with their usage.
    const rows = await operator.listNodeUsage();
    expect(rows.find((r) => r.nodeName === "rogue")?.error).toMatch(/^UNAVAILABLE: .*system:node:p1/);
    expect(rows.find((r) => r.nodeName === "impostor")?.error).toMatch(/^UNAVAILABLE: .*system:node:p1/);
    expect(rows.find((r) => r.nodeName === "p1")?.error).toBe("");
  });

  it("answers clearly: unknown node, node without an endpoint, agent unreachable", async () => {
    await expect(operator.checkNode("nowhere")).rejects.toBeInstanceOf(NotFoundError);
    await operator.createNode(agentNode("bare", { status: { addresses: [{ type: "InternalIP", address: "127.0.0.1" }] } }));
    const bare = await operator.checkNode("bare").catch((e: unknown) => e);
    expect(bare).toBeInstanceOf(FailedPreconditionError);
    expect((bare as Error).message).toContain("status.daemon_endpoints.agent_endpoint.port");
    const port = await closedPort();
    await operator.createNode(agentNode("gone", { status: { addresses: [{ type: "InternalIP", address: "127.0.0.1" }], daemonEndpoints: { agentEndpoint: { port } } } }));
    const gone = await operator.checkNode("gone").catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(UnavailableError);
    expect((gone as Error).message).toContain(`node "gone": agent at 127.0.0.1:${port} is unreachable`);
    // The server is still serving.
    expect((await operator.getNode("p1")).metadata?.name).toBe("p1");
  });

  it("the reverse tunnel reaches an agent whose port cannot be reached", async () => {
    const port = await portOf("p3");
    expect(port).toBeGreaterThan(0);
    // Nothing answers at the address the node reports (the agent listens on 127.0.0.2).
    const refused = await new Promise<string>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.on("connect", () => (s.destroy(), resolve("connected")));
      s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    expect(refused).toBe("ECONNREFUSED");

    const usage = await operator.getNodeUsage("p3");
    expect(usage.via).toBe("tunnel");
    expect(usage.usage?.memory?.capacityBytes).toBeGreaterThan(0n);
    const logs = await operator.getNodeLogs("p3", 100);
    expect(logs.via).toBe("tunnel");
    expect(logs.lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain("reverse tunnel open");
    const check = await operator.checkNode("p3");
    expect(check.via).toBe("tunnel");
    expect(check.checks.filter((c) => !c.ok)).toEqual([]);
    await expect(operator.getNodeLogs("p3", 1001)).rejects.toThrow(/tail_lines/);
  });

  it("a node cannot open a tunnel for another node", async () => {
    const p4 = new NodeClient(h.address, { credentials: tlsCredentials({ ca: h.caPem, ...(await h.certificate("system:node:p4", ["system:nodes"])) }) });
    closers.push(() => p4.close());
    const stream = p4.openTunnel();
    stream.on("data", (_: ConnectResponse) => {});
    stream.on("error", () => {});
    const ended = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
    stream.write({ hello: { nodeName: "p3" } });
    const status = await ended;
    expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(status.details).toContain(`may not open a reverse tunnel for node "p3"`);
    await log.line((l) => l.msg === "reverse tunnel refused");
    // p3's own tunnel is untouched.
    expect((await operator.checkNode("p3")).via).toBe("tunnel");
  });
});
