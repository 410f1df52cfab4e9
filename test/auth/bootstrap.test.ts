/**
 * Node bootstrap end to end, with real processes: `nodeplane serve --tls` (its own PKI, node
 * certificates living 10 s) and `nodeplane agent --bootstrap-token`. A fresh agent gets its
 * certificate, registers, heartbeats, renews its certificate before it expires and goes on with
 * the new one, survives a server restart; the same token cannot become the existing node (a new
 * name it can), and the agent says so and exits.
 *
 * Evidence is read from the processes' own log lines (the agent's, and the server's audit
 * lines: one per Lease renewal, naming the caller), never by sleeping.
 */
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientOptions } from "../../src/auth/client-credentials.js";
import { readKubeconfig } from "../../src/auth/kubeconfig.js";
import { createCsr, generateKeyPair } from "../../src/auth/pki.js";
import { AuthClient } from "../../src/client/auth-client.js";
import { RpcError } from "../../src/client/errors.js";
import { type Spawned, type SpawnedAgent, spawnAgent, spawnServer } from "../support/process.js";

const NODE = "edge-1";

describe("node bootstrap with real processes", () => {
  let dir: string;
  let server: Spawned;
  let operator: AuthClient;
  let token: string;
  const agents: SpawnedAgent[] = [];
  const serverArgs = (port: number): string[] => [
    "--listen", `127.0.0.1:${port}`,
    "--http-listen", "",
    "--data-dir", join(dir, "data"),
    "--tls",
    "--write-kubeconfig", "",
    "--cluster-signing-duration", "20s",
    "--controllers=-nodelifecycle",
  ];
  const operatorClient = (port: number): AuthClient => {
    const settings = readKubeconfig(join(dir, "data", "pki", "admin.kubeconfig"));
    return new AuthClient(`127.0.0.1:${port}`, clientOptions(settings));
  };
  /** The server's audit line for a Lease renewal by this node (after `since`, ms). */
  const renewal = (s: Spawned, since = 0) =>
    s.logLine((l) => l.msg === "audit" && l.user === `system:node:${NODE}` && (l.method === "Heartbeat" || l.method === "RenewLease") && l.code === "OK" && Date.parse(String(l.time)) > since);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nodeplane-bootstrap-"));
    server = await spawnServer(serverArgs(0));
    operator = operatorClient(server.grpcPort);
    token = (await operator.createBootstrapToken({ ttlMs: 3_600_000, description: "e2e" })).token;
  });
  afterAll(async () => {
    operator.close();
    for (const a of agents) await a.stop();
    server.child.kill("SIGTERM");
    await server.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  const agent = (name: string, certDir: string): SpawnedAgent => {
    const a = spawnAgent([
      "--server", `127.0.0.1:${server.grpcPort}`,
      "--certificate-authority", join(dir, "data", "pki", "ca.crt"),
      "--bootstrap-token", token,
      "--cert-dir", certDir,
      "--hostname-override", name,
      "--node-lease-duration-seconds", "4",
      "--node-status-update-frequency", "1s",
    ]);
    agents.push(a);
    return a;
  };

  it("a fresh agent gets its certificate, registers, heartbeats, renews its certificate and survives a server restart", async () => {
    const certDir = join(dir, "agent-pki");
    const a = agent(NODE, certDir);
    await a.logLine("got a node certificate");
    const first = new X509Certificate(readFileSync(join(certDir, "node.crt")));
    expect(first.subject).toBe(`CN=system:node:${NODE}\nO=system:nodes`);
    expect(first.checkIssued(new X509Certificate(readFileSync(join(dir, "data", "pki", "ca.crt"))))).toBe(true);
    await a.logLine("registered");
    expect((await operator.getNode(NODE)).metadata?.name).toBe(NODE);
    await renewal(server);

    // Renewal before expiry (70–90 % of 20 s), then heartbeats go on past the first certificate's end.
    let renewals = 0;
    await a.logLineMatching((l) => l.msg === "got a node certificate" && ++renewals === 2);
    const second = new X509Certificate(readFileSync(join(certDir, "node.crt")));
    expect(second.serialNumber).not.toBe(first.serialNumber);
    expect(Date.parse(second.validTo)).toBeGreaterThan(Date.parse(first.validTo));
    await renewal(server, Date.parse(first.validTo) + 1000);

    // A server restart (same port, same data dir and PKI): the agent reconnects with its certificate.
    const port = server.grpcPort;
    server.child.kill("SIGTERM");
    await server.exited;
    server = await spawnServer(serverArgs(port));
    operator.close();
    operator = operatorClient(port);
    await renewal(server);
    expect(a.child.exitCode).toBeNull();
  }, 90_000);

  it("the same token cannot become the existing node; the agent says why and exits; a new name it may have", async () => {
    const thief = agent(NODE, join(dir, "thief-pki"));
    const line = await thief.logLine("the server refused the node certificate");
    expect(String(line.msg)).toContain(`cannot get a certificate for node "${NODE}": the name is taken`);
    const exitCode = thief.child.exitCode ?? ((await once(thief.child, "exit")) as [number | null])[0];
    expect(exitCode).toBe(1);

    const holder = new AuthClient(`127.0.0.1:${server.grpcPort}`, clientOptions({ tls: true, ca: readFileSync(join(dir, "data", "pki", "ca.crt"), "utf8"), token }));
    try {
      const csr = (name: string) => generateKeyPair().then((k) => createCsr(k, { commonName: `system:node:${name}`, organizations: ["system:nodes"] }));
      const refused = await holder.signNodeCertificate(NODE, await csr(NODE)).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RpcError);
      expect((refused as RpcError).message).toMatch(/^PERMISSION_DENIED: user "system:bootstrap:[a-z0-9]{6}" \(groups system:bootstrappers\) cannot get a certificate for node "edge-1"/);
      const fresh = await holder.signNodeCertificate("edge-2", await csr("edge-2"));
      expect(new X509Certificate(fresh.certificate).subject).toBe("CN=system:node:edge-2\nO=system:nodes");
      // Having claimed edge-2, the token keeps it from other tokens until it registers.
      const other = new AuthClient(`127.0.0.1:${server.grpcPort}`, clientOptions({ tls: true, ca: readFileSync(join(dir, "data", "pki", "ca.crt"), "utf8"), token: (await operator.createBootstrapToken()).token }));
      try {
        expect((await other.signNodeCertificate("edge-2", await csr("edge-2")).catch((e: RpcError) => e.message))).toMatch(/the name is taken/);
      } finally {
        other.close();
      }
    } finally {
      holder.close();
    }
  });
});
