/**
 * PKI, identities and authentication, without a network: certificates and CSRs made by our
 * own code verify with Node's X.509; certificate subjects, token file lines and bootstrap
 * tokens become the identities the authorizer works from; bad credentials are refused with
 * UNAUTHENTICATED and a message that names the problem but never the secret.
 */
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Authenticator } from "../../src/auth/authenticator.js";
import { BootstrapTokens } from "../../src/auth/bootstrap-tokens.js";
import { createCertificateAuthority, createCsr, generateKeyPair, issueCertificate, loadIssuer, readCsr } from "../../src/auth/pki.js";
import { TokenFile } from "../../src/auth/token-file.js";
import { FakeClock } from "../../src/clock.js";
import { InvalidError, UnauthenticatedError } from "../../src/errors.js";
import { SqliteStore } from "../../src/store/sqlite.js";

const HOUR = 3_600_000;

describe("pki", () => {
  it("makes a CA whose certificates Node's X.509 verifies, with the asked subject, usage and names", async () => {
    const now = Date.now();
    const { issuer } = await createCertificateAuthority("test-ca", new Date(now - 1000), new Date(now + HOUR));
    const keys = await generateKeyPair();
    const pem = await issueCertificate(issuer, {
      subject: { commonName: "nodeplane" },
      publicKey: keys.publicKey,
      usage: "server",
      hosts: ["localhost", "127.0.0.1", "::1"],
      notBefore: new Date(now - 1000),
      notAfter: new Date(now + HOUR),
    });
    const cert = new X509Certificate(pem);
    const ca = new X509Certificate(issuer.certPem);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkHost("localhost")).toBe("localhost");
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkIP("::1")).toBeDefined();
    expect(cert.checkHost("example.com")).toBeUndefined();
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
  });

  it("signs with an RSA CA given as files (a company CA often is one)", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const keyPem = rsa.privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    // A self-signed RSA CA made by our code from that key, then loaded back from PEM.
    const ec = await createCertificateAuthority("ec-ca", new Date(Date.now() - 1000), new Date(Date.now() + HOUR));
    const caPem = await issueCertificate(ec.issuer, {
      subject: { commonName: "rsa-intermediate" },
      publicKey: await (await import("node:crypto")).webcrypto.subtle.importKey(
        "spki",
        rsa.publicKey.export({ type: "spki", format: "der" }),
        { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
        true,
        ["verify"],
      ),
      usage: "client",
      notBefore: new Date(Date.now() - 1000),
      notAfter: new Date(Date.now() + HOUR),
    });
    const issuer = await loadIssuer(caPem, keyPem);
    const keys = await generateKeyPair();
    const leaf = await issueCertificate(issuer, { subject: { commonName: "x" }, publicKey: keys.publicKey, usage: "client", notBefore: new Date(), notAfter: new Date(Date.now() + HOUR) });
    expect(new X509Certificate(leaf).verify(rsa.publicKey)).toBe(true);
  });

  it("reads back a CSR's subject and refuses one whose signature does not match its key", async () => {
    const keys = await generateKeyPair();
    const pem = await createCsr(keys, { commonName: "system:node:n1", organizations: ["system:nodes"] });
    const csr = await readCsr(pem, "csr");
    expect(csr).toMatchObject({ commonName: "system:node:n1", organizations: ["system:nodes"], otherAttributes: [] });

    const body = pem.replace(/-----[^-]+-----/g, "").replace(/\s/g, "");
    const der = Buffer.from(body, "base64");
    der[der.length - 5] = der[der.length - 5]! ^ 0xff; // flip a byte of the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----`;
    await expect(readCsr(tampered, "csr")).rejects.toBeInstanceOf(InvalidError);
    await expect(readCsr("not a csr", "csr")).rejects.toThrow(/csr: "not a csr": is not a PEM certificate signing request/);
  });
});

describe("token file", () => {
  it("reads kube-apiserver's CSV: token,user,uid,\"group1,group2\"", () => {
    const f = TokenFile.parse(['# comment', 't1,alice,1,"nodeplane:operators,team-a"', "t2, bob ,2", "", 't3,"carol, jr",3,nodeplane:viewers'].join("\n"), "tokens.csv");
    expect(f.size).toBe(3);
    expect(f.lookup("t1")).toMatchObject({ user: "alice", uid: "1", groups: ["nodeplane:operators", "team-a", "system:authenticated"], method: "token" });
    expect(f.lookup("t2")).toMatchObject({ user: "bob", groups: ["system:authenticated"] });
    expect(f.lookup("t3")).toMatchObject({ user: "carol, jr", groups: ["nodeplane:viewers", "system:authenticated"] });
    expect(f.lookup("t4")).toBeUndefined();
  });

  it.each([
    ["too few fields", "t1,alice", "tokens.csv: line 1: want token,user,uid[,\"group1,group2\"], found 2 field(s)"],
    ["an empty token", ",alice,1", "tokens.csv: line 1: the token is empty"],
    ["an empty user", "t1,,1", "tokens.csv: line 1: the user is empty"],
    ["an open quote", 't1,alice,1,"a,b', "tokens.csv: line 1: a quoted field is not closed"],
    ["a token given twice", "t1,alice,1\nt1,bob,2", "tokens.csv: line 2: this token is already given to another line"],
  ])("refuses %s, naming the line and never the token", (_name, text, message) => {
    expect(() => TokenFile.parse(text, "tokens.csv")).toThrow(message);
  });
});

describe("authenticator", () => {
  let dir: string;
  let store: SqliteStore;
  const clock = new FakeClock(Date.UTC(2026, 5, 1));
  let tokens: BootstrapTokens;
  let authn: Authenticator;
  const cert = (cn: string, o: string | string[], validTo = "Jan  1 00:00:00 2030 GMT") => ({ subject: { CN: cn, O: o }, valid_to: validTo, fingerprint256: "x" });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nodeplane-authn-"));
    store = await SqliteStore.open({ dir });
    tokens = new BootstrapTokens({ store, clock });
    authn = new Authenticator({ tokenFile: TokenFile.parse("static-token,ops,7,nodeplane:operators", "t"), bootstrapTokens: tokens, clock });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const refusal = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => "accepted",
      (err: unknown) => (err instanceof UnauthenticatedError ? err.message : `not UNAUTHENTICATED: ${String(err)}`),
    );

  it("a client certificate: CN is the user, O are the groups; system:node:<name> in system:nodes is that node", async () => {
    expect(await authn.authenticate({ certificate: cert("alice", ["nodeplane:viewers", "team-a"]) })).toMatchObject({
      user: "alice",
      groups: ["nodeplane:viewers", "team-a", "system:authenticated"],
      method: "x509",
    });
    expect(await authn.authenticate({ certificate: cert("system:node:n1", "system:nodes") })).toMatchObject({ user: "system:node:n1", nodeName: "n1" });
    // The name alone does not make a node (as Kubernetes' Node authorizer): the group is needed too.
    expect((await authn.authenticate({ certificate: cert("system:node:n1", "team-a") })).nodeName).toBeUndefined();
  });

  it("refuses a certificate the TLS layer could not verify, and one that expired since", async () => {
    expect(await refusal(authn.authenticate({ certificate: cert("mallory", []), certificateError: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" }))).toBe(
      'client certificate for "mallory" rejected: it is not signed by a trusted client CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
    );
    expect(await refusal(authn.authenticate({ certificate: cert("old", []), certificateError: "CERT_HAS_EXPIRED" }))).toBe(
      'client certificate for "old" rejected: it has expired (CERT_HAS_EXPIRED)',
    );
    expect(await refusal(authn.authenticate({ certificate: cert("late", [], "Jan  1 00:00:00 2026 GMT") }))).toBe(
      'client certificate for "late" expired at 2026-01-01T00:00:00.000Z; reconnect with a renewed one',
    );
  });

  it("bearer tokens: from the token file; unknown and malformed ones are refused", async () => {
    expect(await authn.authenticate({ authorization: "Bearer static-token" })).toMatchObject({ user: "ops", uid: "7", method: "token" });
    expect(await authn.authenticate({ authorization: "bearer static-token" })).toMatchObject({ user: "ops" });
    expect(await refusal(authn.authenticate({ authorization: "Bearer nope" }))).toBe("invalid bearer token");
    expect(await refusal(authn.authenticate({ authorization: "Basic YTpi" }))).toBe('malformed authorization: want "Bearer <token>"');
    expect(await refusal(authn.authenticate({ authorization: `Bearer ${"x".repeat(5000)}` }))).toBe("malformed bearer token: longer than 4096 characters");
    expect(await refusal(authn.authenticate({ authorization: "Bearer abcdef.short" }))).toBe("malformed bootstrap token: want [a-z0-9]{6}.[a-z0-9]{16}");
    expect(await authn.authenticate({})).toMatchObject({ user: "system:anonymous", method: "none" });
  });

  it("bootstrap tokens: valid until they expire; unknown ids and wrong secrets answer alike", async () => {
    const { token, record } = await tokens.create({ ttlMs: HOUR, description: "rack 4", nodeNames: [], createdBy: "alice" });
    expect(token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    expect(JSON.stringify(await tokens.list())).not.toContain(token.split(".")[1]); // the secret is not stored
    expect(await authn.authenticate({ authorization: `Bearer ${token}` })).toMatchObject({
      user: `system:bootstrap:${record.id}`,
      groups: ["system:bootstrappers", "system:authenticated"],
      method: "bootstrap-token",
    });
    const wrongSecret = `${record.id}.${"0".repeat(16)}`;
    expect(await refusal(authn.authenticate({ authorization: `Bearer ${wrongSecret}` }))).toBe(`bootstrap token "${record.id}" is not valid`);
    expect(await refusal(authn.authenticate({ authorization: "Bearer zzzzzz.0123456789abcdef" }))).toBe('bootstrap token "zzzzzz" is not valid');
    clock.advance(HOUR);
    expect(await refusal(authn.authenticate({ authorization: `Bearer ${token}` }))).toBe(
      `bootstrap token "${record.id}" expired at ${new Date(record.expiresAt).toISOString()}`,
    );
    expect(await tokens.sweep()).toBe(1);
    expect(await tokens.list()).toEqual([]);
  });

  it("bootstrap token TTLs and node names are checked", async () => {
    await expect(tokens.create({ ttlMs: 10, description: "", nodeNames: [], createdBy: "a" })).rejects.toThrow('ttl: "0.01s": must be between 1s and 8760h');
    await expect(tokens.create({ ttlMs: HOUR, description: "", nodeNames: ["Bad_Name"], createdBy: "a" })).rejects.toThrow(/node_names\[0\]: "Bad_Name"/);
    await expect(tokens.delete("nope")).rejects.toThrow('id: "nope": must be a bootstrap token id');
    await expect(tokens.delete("abcdef")).rejects.toThrow('bootstrap token "abcdef" not found');
  });
});
