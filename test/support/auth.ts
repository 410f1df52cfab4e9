/**
 * Test harness with authentication on: a real server on 127.0.0.1:0 serving TLS with its own
 * PKI (made in a temp data dir at start, as `nodeplane serve --tls` does) and a token file, and
 * SDK clients for each kind of caller. Every certificate is made here, at test time, by the
 * project's own PKI code; none is committed.
 *
 *   const h = await startAuthHarness();
 *   await h.operator.listNodes();                 // system:masters (the admin credential)
 *   const n1 = await h.node("n1");                // system:node:n1 in system:nodes
 *   await h.anonymous.getNode("n1");              // UNAUTHENTICATED
 *
 * The fuzz suite (or any test) can run the same calls as operator, node and anonymous.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthClient } from "../../src/client/auth-client.js";
import { tlsCredentials } from "../../src/auth/client-credentials.js";
import { generateKeyPair, issueCertificate, type Issuer, loadIssuer, privateKeyPem } from "../../src/auth/pki.js";
import type { SecurityOptions } from "../../src/auth/setup.js";
import type { NodeplaneServer, ServeOptions } from "../../src/server/server.js";
import { startHarness } from "./server.js";

/** Tokens in the harness's --token-auth-file. */
export const TOKENS = {
  operator: "operator-token-0123456789",
  viewer: "viewer-token-0123456789",
  nobody: "nobody-token-0123456789",
} as const;

export interface Credential {
  cert?: string;
  key?: string;
  token?: string;
  /** CA to verify the server with (default: the cluster CA). */
  ca?: string;
}

export interface AuthHarness {
  server: NodeplaneServer;
  dataDir: string;
  /** 127.0.0.1:<port> */
  address: string;
  /** The cluster CA (PEM), which signed the serving certificate. */
  caPem: string;
  /** The cluster CA as an issuer, to make more certificates. */
  issuer: Issuer;
  /** CN=nodeplane-admin, O=system:masters (the credential the server made). */
  operator: AuthClient;
  /** The operator's certificate and key, for clients other than the SDK. */
  adminCredential: Credential;
  /** A client certificate in nodeplane:viewers. */
  viewer: AuthClient;
  /** TLS, no certificate, no token. */
  anonymous: AuthClient;
  /** A client certificate CN=system:node:<name>, O=system:nodes (one client per name). */
  node(name: string): Promise<AuthClient>;
  /** A client with any credential. */
  client(c: Credential): AuthClient;
  /** A client certificate signed by `issuer` (default: the cluster CA). */
  certificate(commonName: string, organizations: string[], opts?: { notBefore?: Date; notAfter?: Date; issuer?: Issuer }): Promise<{ cert: string; key: string }>;
  /** Shut down and start again on the same data dir (same PKI); clients are made anew. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Writes the harness's --token-auth-file (kube-apiserver's CSV, one line per TOKENS entry) in `dir`; answers its path. */
export function writeTokenFile(dir: string): string {
  const file = join(dir, "tokens.csv");
  writeFileSync(
    file,
    [
      `${TOKENS.operator},ops-bot,1001,"nodeplane:operators"`,
      `${TOKENS.viewer},dashboard,1002,nodeplane:viewers`,
      `${TOKENS.nobody},nobody,1003`,
    ].join("\n"),
  );
  return file;
}

/** A client certificate CN=`commonName`, O=`organizations` signed by `issuer`, valid from a minute ago for an hour unless told. */
export async function clientCertificate(
  issuer: Issuer,
  commonName: string,
  organizations: string[],
  opts: { notBefore?: Date; notAfter?: Date } = {},
): Promise<{ cert: string; key: string }> {
  const keys = await generateKeyPair();
  const now = Date.now();
  const cert = await issueCertificate(issuer, {
    subject: { commonName, organizations },
    publicKey: keys.publicKey,
    usage: "client",
    notBefore: opts.notBefore ?? new Date(now - 60_000),
    notAfter: opts.notAfter ?? new Date(now + 3_600_000),
  });
  return { cert, key: privateKeyPem(keys.privateKey) };
}

export async function startAuthHarness(security: SecurityOptions = {}, overrides: Partial<ServeOptions> = {}): Promise<AuthHarness> {
  const tokenDir = mkdtempSync(join(tmpdir(), "nodeplane-auth-tokens-"));
  const tokenFile = writeTokenFile(tokenDir);
  // The plain harness (its own temp data dir, restart on it); its plaintext client is not used.
  const base = await startHarness({ ...overrides, security: { tls: true, tokenAuthFile: tokenFile, ...security } });
  const dataDir = base.dataDir;
  const pki = join(dataDir, "pki");
  const caPem = readFileSync(join(pki, "ca.crt"), "utf8");
  const issuer = await loadIssuer(caPem, readFileSync(join(pki, "ca.key"), "utf8"));
  const admin = { cert: readFileSync(join(pki, "admin.crt"), "utf8"), key: readFileSync(join(pki, "admin.key"), "utf8") };

  const clients: AuthClient[] = [];
  const certificate: AuthHarness["certificate"] = (commonName, organizations, opts = {}) =>
    clientCertificate(opts.issuer ?? issuer, commonName, organizations, opts);
  const viewerCert = await certificate("viewer-alice", ["nodeplane:viewers"]);
  const nodeCerts = new Map<string, { cert: string; key: string }>();

  const h: AuthHarness = {
    server: base.server,
    dataDir,
    address: "",
    caPem,
    issuer,
    operator: undefined as unknown as AuthClient,
    adminCredential: admin,
    viewer: undefined as unknown as AuthClient,
    anonymous: undefined as unknown as AuthClient,
    client(c) {
      const client = new AuthClient(h.address, { credentials: tlsCredentials({ ca: c.ca ?? caPem, cert: c.cert, key: c.key }), token: c.token, timeoutMs: 10_000 });
      clients.push(client);
      return client;
    },
    async node(name) {
      let c = nodeCerts.get(name);
      if (!c) {
        c = await certificate(`system:node:${name}`, ["system:nodes"]);
        nodeCerts.set(name, c);
      }
      return h.client(c);
    },
    certificate,
    async restart() {
      for (const c of clients.splice(0)) c.close();
      await base.restart();
      h.server = base.server;
      connect();
    },
    async close() {
      for (const c of clients.splice(0)) c.close();
      await base.close();
      rmSync(tokenDir, { recursive: true, force: true });
    },
  };
  const connect = (): void => {
    h.address = `127.0.0.1:${h.server.port}`;
    h.operator = h.client(admin);
    h.viewer = h.client(viewerCert);
    h.anonymous = h.client({});
  };
  connect();
  return h;
}
