/**
 * TLS and authentication at the edge: certificates from the wrong CA, expired ones (at the
 * handshake and on a connection that outlives them), no credential, another node's certificate,
 * bad tokens — each refused with the right code and a message that says why. Also HTTPS on the
 * HTTP side, health staying public, the server's own PKI across restarts, and the start-up
 * refusals of unsafe flag combinations.
 */
import * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tlsCredentials } from "../../src/auth/client-credentials.js";
import { readKubeconfig } from "../../src/auth/kubeconfig.js";
import { createCertificateAuthority } from "../../src/auth/pki.js";
import { AuthClient } from "../../src/client/auth-client.js";
import { RpcError } from "../../src/client/errors.js";
import { FakeClock } from "../../src/clock.js";
import { createLogger } from "../../src/log.js";
import { NodeplaneServer } from "../../src/server/server.js";
import { type AuthHarness, startAuthHarness, TOKENS } from "../support/auth.js";
import { agentNode } from "../support/server.js";

const HOUR = 3_600_000;

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
    return { code: "OK", message: "" };
  } catch (err) {
    if (err instanceof RpcError) return { code: status[err.code] ?? String(err.code), message: err.details };
    throw err;
  }
}

describe("TLS and authentication", () => {
  let h: AuthHarness;
  const clock = new FakeClock(Date.now());

  beforeAll(async () => {
    h = await startAuthHarness({}, { clock, httpListen: "127.0.0.1:0" });
    await h.operator.register(agentNode("n1"));
    await h.operator.register(agentNode("n2"));
  });
  afterAll(() => h.close());

  it("a client certificate signed by another CA is refused: UNAUTHENTICATED, saying why (and a good token does not rescue it)", async () => {
    const other = await createCertificateAuthority("impostor-ca", new Date(Date.now() - HOUR), new Date(Date.now() + HOUR));
    const forged = await h.certificate("system:node:n1", ["system:nodes"], { issuer: other.issuer });
    expect(await failure(h.client(forged).getNode("n1"))).toEqual({
      code: "UNAUTHENTICATED",
      message: 'client certificate for "system:node:n1" rejected: it is not signed by a trusted client CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
    });
    expect((await failure(h.client({ ...forged, token: TOKENS.operator }).getNode("n1"))).code).toBe("UNAUTHENTICATED");
  });

  it("an expired client certificate is refused: UNAUTHENTICATED", async () => {
    const old = await h.certificate("system:node:n1", ["system:nodes"], { notBefore: new Date(Date.now() - 2 * HOUR), notAfter: new Date(Date.now() - HOUR) });
    expect(await failure(h.client(old).getNode("n1"))).toEqual({
      code: "UNAUTHENTICATED",
      message: 'client certificate for "system:node:n1" rejected: it has expired (CERT_HAS_EXPIRED)',
    });
  });

  it("a certificate that expires while its connection stays open is refused from then on", async () => {
    const notAfter = new Date(Math.floor((Date.now() + HOUR) / 1000) * 1000);
    const cert = await h.certificate("system:node:n1", ["system:nodes"], { notAfter });
    const c = h.client(cert);
    expect((await failure(c.getNode("n1"))).code).toBe("OK");
    const stream = c.heartbeat();
    await stream.renew("n1");
    clock.advance(2 * HOUR);
    try {
      expect(await failure(c.getNode("n1"))).toEqual({
        code: "UNAUTHENTICATED",
        message: `client certificate for "system:node:n1" expired at ${notAfter.toISOString()}; reconnect with a renewed one`,
      });
      expect(await failure(stream.renew("n1"))).toEqual({
        code: "UNAUTHENTICATED",
        message: `the credential of user "system:node:n1" expired at ${notAfter.toISOString()}; reconnect with a renewed one`,
      });
    } finally {
      stream.close();
      clock.set(Date.now());
    }
  });

  it("no certificate and no token where authentication is required: UNAUTHENTICATED", async () => {
    expect(await failure(h.anonymous.listNodes())).toEqual({
      code: "UNAUTHENTICATED",
      message: "no credentials: present a client certificate or an authorization: Bearer <token> header",
    });
  });

  it("a certificate for another node: PERMISSION_DENIED on this node's objects; CN alone does not make a node", async () => {
    const n2 = await h.node("n2");
    expect(await failure(n2.renewLease("n1"))).toEqual({
      code: "PERMISSION_DENIED",
      message: 'user "system:node:n2" (groups system:nodes) cannot create lease "kube-node-lease/n1" (a node may only read and write its own Node and Lease)',
    });
    expect((await failure(n2.updateStatus("n1", agentNode("n1").status!))).code).toBe("PERMISSION_DENIED");
    const notANode = h.client(await h.certificate("system:node:n1", ["team-a"]));
    expect(await failure(notANode.renewLease("n1"))).toEqual({ code: "PERMISSION_DENIED", message: 'user "system:node:n1" (groups team-a) cannot create lease "kube-node-lease/n1"' });
  });

  it("a client that does not trust the server's CA, or speaks plaintext, does not connect: UNAVAILABLE", async () => {
    const other = await createCertificateAuthority("elsewhere", new Date(Date.now() - HOUR), new Date(Date.now() + HOUR));
    const distrustful = h.client({ ca: other.issuer.certPem, ...h.adminCredential });
    expect((await failure(distrustful.listNodes({}, { timeoutMs: 5_000 }))).code).toBe("UNAVAILABLE");
    const plain = new AuthClient(h.address, { timeoutMs: 5_000 });
    try {
      expect(["UNAVAILABLE", "INTERNAL"]).toContain((await failure(plain.listNodes())).code);
    } finally {
      plain.close();
    }
  });

  it("bearer tokens: unknown, malformed and expired ones are refused with UNAUTHENTICATED", async () => {
    expect(await failure(h.client({ token: "no-such-token" }).listNodes())).toEqual({ code: "UNAUTHENTICATED", message: "invalid bearer token" });
    expect(await failure(h.client({ token: "abcdef.not-a-secret" }).listNodes())).toEqual({
      code: "UNAUTHENTICATED",
      message: "malformed bootstrap token: want [a-z0-9]{6}.[a-z0-9]{16}",
    });
    const { token, bootstrapToken } = await h.operator.createBootstrapToken({ ttlMs: 60_000 });
    const holder = h.client({ token });
    expect((await failure(holder.whoAmI())).code).toBe("OK");
    clock.advance(61_000);
    try {
      expect(await failure(holder.whoAmI())).toEqual({
        code: "UNAUTHENTICATED",
        message: `bootstrap token "${bootstrapToken!.id}" expired at ${bootstrapToken!.expirationTimestamp!.toISOString()}`,
      });
    } finally {
      clock.set(Date.now());
    }
    const deleted = await h.operator.createBootstrapToken({ ttlMs: 60_000 });
    await h.operator.deleteBootstrapToken(deleted.bootstrapToken!.id);
    expect(await failure(h.client({ token: deleted.token }).whoAmI())).toEqual({
      code: "UNAUTHENTICATED",
      message: `bootstrap token "${deleted.bootstrapToken!.id}" is not valid`,
    });
  });

  it("health stays public: an anonymous client's Check answers SERVING", async () => {
    const client = new grpc.Client(h.address, tlsCredentials({ ca: h.caPem }));
    try {
      const res = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest("/grpc.health.v1.Health/Check", (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (err, r) => (err ? reject(err) : resolve(r!))),
      );
      expect([...res]).toEqual([0x08, 0x01]); // status: SERVING
    } finally {
      client.close();
    }
  });

  it("HTTPS: probes for anyone, /metrics for operators and viewers only", async () => {
    const get = (path: string, cred: { cert?: string; key?: string } = {}): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest({ host: "127.0.0.1", port: h.server.httpPort, path, ca: h.caPem, cert: cred.cert, key: cred.key }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
      });
    expect(await get("/healthz")).toBe(200);
    expect(await get("/readyz")).toBe(200);
    expect(await get("/metrics")).toBe(401);
    expect(await get("/metrics", await h.certificate("system:node:n1", ["system:nodes"]))).toBe(403);
    expect(await get("/metrics", await h.certificate("grafana", ["nodeplane:viewers"]))).toBe(200);
    expect(await get("/metrics", h.adminCredential)).toBe(200);
  });

  it("the server's own PKI is kept across restarts, with an admin kubeconfig that reads back", async () => {
    const ca = h.caPem;
    await h.restart();
    expect(readFileSync(join(h.dataDir, "pki", "ca.crt"), "utf8")).toBe(ca);
    expect((await h.operator.whoAmI()).groups).toContain("system:masters");
    const kc = readKubeconfig(join(h.dataDir, "pki", "admin.kubeconfig"));
    expect(kc).toMatchObject({ server: h.address, tls: true, ca });
    expect(kc.cert).toContain("BEGIN CERTIFICATE");
    expect(kc.key).toContain("PRIVATE KEY");
  });
});

describe("start-up refusals and given files", () => {
  const start = (security: Parameters<typeof NodeplaneServer.start>[0]["security"], listen = "127.0.0.1:0", httpListen: string | null = null) =>
    NodeplaneServer.start({ listen, httpListen, dataDir: "/nonexistent/never-opened", logger: createLogger("silent"), nodeLifecycle: false, security }).then(
      async (s) => {
        await s.shutdown();
        return "started";
      },
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );

  it.each([
    ["plaintext on all interfaces", undefined, "0.0.0.0:50051", null, /^refusing to serve --listen 0\.0\.0\.0:50051 without TLS and authentication: .*Add --tls/],
    ["plaintext metrics on all interfaces", undefined, "127.0.0.1:0", "0.0.0.0:8080", /^refusing to serve --http-listen 0\.0\.0\.0:8080 without TLS and authentication/],
    ["tokens in the clear on a LAN address", { tokenAuthFile: "/x" }, "10.1.2.3:50051", null, /^refusing to serve --listen 10\.1\.2\.3:50051 without TLS and authentication/],
    ["a certificate without its key", { tlsCertFile: "/x" }, "127.0.0.1:0", null, /^--tls-cert-file and --tls-private-key-file go together$/],
    ["TLS files with no way to authenticate", { tlsCertFile: "/x", tlsPrivateKeyFile: "/y" }, "127.0.0.1:0", null, /^TLS without --client-ca-file or --token-auth-file/],
    ["a client CA without TLS", { clientCaFile: "/x" }, "127.0.0.1:0", null, /^--client-ca-file and --cluster-signing-cert-file need TLS/],
  ])("refuses %s before opening anything", async (_name, security, listen, httpListen, message) => {
    expect(await start(security, listen, httpListen)).toMatch(message);
    expect(existsSync("/nonexistent/never-opened")).toBe(false);
  });

  it("serves with certificate files given by flags, verifying clients against --client-ca-file", async () => {
    const h = await startAuthHarness();
    const pki = join(h.dataDir, "pki");
    const tokenFile = join(h.dataDir, "tokens.csv");
    writeFileSync(tokenFile, "t0ken-0123456789,ops,1,nodeplane:operators\n");
    const server = await NodeplaneServer.start({
      listen: "127.0.0.1:0",
      httpListen: null,
      dataDir: join(h.dataDir, "second"),
      logger: createLogger("silent"),
      nodeLifecycle: false,
      security: { tlsCertFile: join(pki, "server.crt"), tlsPrivateKeyFile: join(pki, "server.key"), clientCaFile: join(pki, "ca.crt"), tokenAuthFile: tokenFile },
    });
    const admin = new AuthClient(`127.0.0.1:${server.port}`, { credentials: tlsCredentials({ ca: h.caPem, ...h.adminCredential }) });
    const byToken = new AuthClient(`127.0.0.1:${server.port}`, { credentials: tlsCredentials({ ca: h.caPem }), token: "t0ken-0123456789" });
    try {
      expect((await admin.whoAmI()).user).toBe("nodeplane-admin");
      expect((await byToken.whoAmI()).user).toBe("ops");
      // No signing CA was given: node certificates cannot be signed here.
      expect((await failure(admin.signNodeCertificate("n9", "x"))).message).toMatch(/^node certificate signing is not available/);
    } finally {
      admin.close();
      byToken.close();
      await server.shutdown();
      await h.close();
    }
  });
});
