/**
 * EtcdStore over TLS (--etcd-cafile, --etcd-certfile, --etcd-keyfile) against a real etcd that
 * serves clients over TLS and requires client certificates signed by its CA.
 */
import "reflect-metadata";
import { KeyObject, webcrypto } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UnavailableError } from "../../src/errors.js";
import { EtcdStore } from "../../src/store/etcd.js";
import { type EtcdCluster, startEtcd } from "../support/etcd.js";
import { put } from "./conformance-support.js";

x509.cryptoProvider.set(webcrypto);
const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-etcd-tls-"));
const file = (name: string): string => path.join(dir, name);

interface Pair {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

async function authority(name: string): Promise<Pair> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { cert, keys };
}

/** A certificate for 127.0.0.1 usable by a server and a client, signed by `ca`, written as NAME.pem and NAME-key.pem. */
async function issue(ca: Pair, name: string): Promise<void> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "02",
    subject: `CN=${name}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: "ip", value: "127.0.0.1" }]),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  fs.writeFileSync(file(`${name}.pem`), cert.toString("pem"));
  fs.writeFileSync(file(`${name}-key.pem`), KeyObject.from(keys.privateKey).export({ type: "pkcs8", format: "pem" }));
}

let etcd: EtcdCluster | undefined;
beforeAll(async () => {
  const ca = await authority("etcd-ca");
  fs.writeFileSync(file("ca.pem"), ca.cert.toString("pem"));
  await issue(ca, "server");
  await issue(ca, "client");
  const other = await authority("other-ca");
  fs.writeFileSync(file("other-ca.pem"), other.cert.toString("pem"));
  await issue(other, "stranger");
  etcd = await startEtcd({ tls: { certFile: file("server.pem"), keyFile: file("server-key.pem"), caFile: file("ca.pem") } });
});
afterAll(async () => {
  await etcd?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("EtcdStore over TLS", () => {
  it("connects with the CA and a client certificate it signed", async () => {
    const store = await EtcdStore.open({
      endpoints: etcd!.endpoints,
      tls: { caFile: file("ca.pem"), certFile: file("client.pem"), keyFile: file("client-key.pem") },
    });
    try {
      expect(etcd!.endpoints[0]).toMatch(/^https:/);
      const rev = await put(store, "/k/a", "1");
      expect((await store.get("/k/a"))?.modRevision).toBe(rev);
    } finally {
      await store.close();
    }
  });

  it.each([
    ["without a client certificate", { caFile: file("ca.pem") }],
    ["with a client certificate from another CA", { caFile: file("ca.pem"), certFile: file("stranger.pem"), keyFile: file("stranger-key.pem") }],
    ["trusting another CA than the server's", { caFile: file("other-ca.pem"), certFile: file("client.pem"), keyFile: file("client-key.pem") }],
  ])("is refused %s, with UnavailableError", async (_, tls) => {
    const err = await EtcdStore.open({ endpoints: etcd!.endpoints, tls, requestTimeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(etcd!.endpoints[0]);
  });
});
