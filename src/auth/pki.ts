/**
 * Certificates, keys and CSRs, made with @peculiar/x509 over Node's WebCrypto (Node's own crypto
 * parses and verifies X.509 but cannot create it). Everything is PEM at the edges: that is what
 * the files in the data dir, the kubeconfig and the CSR call carry.
 *
 * Keys we generate are ECDSA P-256 (fast, small, accepted by every TLS stack we talk to). An
 * issuer loaded from files may also hold an RSA key (a company CA often does).
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createPrivateKey, KeyObject, randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import { InvalidError } from "../errors.js";

x509.cryptoProvider.set(webcrypto);

type CryptoKey = webcrypto.CryptoKey;
type Algorithm = webcrypto.Algorithm;

const EC_KEY = { name: "ECDSA", namedCurve: "P-256" } as const;
const EC_SIGN = { name: "ECDSA", hash: "SHA-256" } as const;
const RSA_SIGN = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

export type KeyPair = webcrypto.CryptoKeyPair;

/** A CA that signs: its certificate and private key. */
export interface Issuer {
  certificate: x509.X509Certificate;
  certPem: string;
  signingKey: CryptoKey;
  signingAlgorithm: Algorithm;
}

export interface Subject {
  commonName: string;
  /** O= attributes: a client certificate's groups. */
  organizations?: readonly string[];
}

export interface IssueRequest {
  subject: Subject;
  publicKey: CryptoKey | x509.PublicKey;
  /** server: serverAuth with SANs; client: clientAuth. */
  usage: "server" | "client";
  /** DNS names and IP addresses for a serving certificate. */
  hosts?: readonly string[];
  notBefore: Date;
  notAfter: Date;
}

export function generateKeyPair(): Promise<KeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"]) ;
}

/** PKCS#8 PEM of a private key (what Node's TLS, grpc-js and Python's grpcio read). */
export function privateKeyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: "pkcs8", format: "pem" }).toString();
}

/** A private key from PEM (PKCS#8, PKCS#1 RSA or SEC1 EC), ready to sign with. */
async function importSigningKey(pem: string): Promise<{ key: CryptoKey; algorithm: Algorithm }> {
  const obj = createPrivateKey(pem);
  const der = obj.export({ type: "pkcs8", format: "der" });
  if (obj.asymmetricKeyType === "rsa") {
    const key = await webcrypto.subtle.importKey("pkcs8", der, RSA_SIGN, false, ["sign"]);
    return { key, algorithm: RSA_SIGN };
  }
  if (obj.asymmetricKeyType === "ec") {
    const curve = obj.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === "prime256v1" ? "P-256" : curve === "secp384r1" ? "P-384" : undefined;
    if (!namedCurve) throw new Error(`unsupported EC curve ${curve ?? "?"}: use P-256 or P-384`);
    const key = await webcrypto.subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve }, false, ["sign"]);
    return { key, algorithm: EC_SIGN };
  }
  throw new Error(`unsupported key type ${obj.asymmetricKeyType ?? "?"}: use an EC (P-256, P-384) or RSA key`);
}

/** A new self-signed CA. */
export async function createCertificateAuthority(commonName: string, notBefore: Date, notAfter: Date): Promise<{ issuer: Issuer; keyPem: string }> {
  const keys = await generateKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: [commonName] }],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const issuer = { certificate, certPem: certificate.toString("pem"), signingKey: keys.privateKey, signingAlgorithm: EC_SIGN };
  return { issuer, keyPem: privateKeyPem(keys.privateKey) };
}

/** An issuer from its certificate and key files' contents. */
export async function loadIssuer(certPem: string, keyPem: string): Promise<Issuer> {
  const certificate = new x509.X509Certificate(firstPem(certPem));
  const { key, algorithm } = await importSigningKey(keyPem);
  return { certificate, certPem: certificate.toString("pem"), signingKey: key, signingAlgorithm: algorithm };
}

/** Sign a certificate for `req.publicKey` with the issuer; answers its PEM. */
export async function issueCertificate(issuer: Issuer, req: IssueRequest): Promise<string> {
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([req.usage === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.AuthorityKeyIdentifierExtension.create(issuer.certificate),
  ];
  if (req.hosts && req.hosts.length > 0) {
    extensions.push(new x509.SubjectAlternativeNameExtension(req.hosts.map((h) => (isIP(h) ? { type: "ip" as const, value: h } : { type: "dns" as const, value: h }))));
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: subjectName(req.subject),
    issuer: issuer.certificate.subjectName,
    notBefore: req.notBefore,
    notAfter: req.notAfter,
    publicKey: req.publicKey,
    signingKey: issuer.signingKey,
    signingAlgorithm: issuer.signingAlgorithm,
    extensions,
  });
  return cert.toString("pem");
}

/** A PKCS#10 CSR for `subject`, signed with `keys`. */
export async function createCsr(keys: KeyPair, subject: Subject): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: subjectName(subject), keys, signingAlgorithm: EC_SIGN });
  return csr.toString("pem");
}

export interface ParsedCsr {
  commonName: string;
  organizations: string[];
  /** Any other subject attributes (a node CSR must have none). */
  otherAttributes: string[];
  publicKey: x509.PublicKey;
}

/**
 * Parse a CSR and check its self-signature (proof that the requester holds the key).
 * @throws InvalidError on `field` when it is not a well-formed, correctly signed PEM CSR.
 */
export async function readCsr(pem: string, field: string): Promise<ParsedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem.trim());
  } catch (err) {
    throw InvalidError.of(field, pem, `is not a PEM certificate signing request (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!(await csr.verify().catch(() => false))) throw InvalidError.of(field, pem, "its signature does not verify with its own public key");
  const name = csr.subjectName.toJSON();
  const commonName: string[] = [];
  const organizations: string[] = [];
  const otherAttributes: string[] = [];
  for (const rdn of name) {
    for (const [type, values] of Object.entries(rdn)) {
      if (type === "CN") commonName.push(...values);
      else if (type === "O") organizations.push(...values);
      else otherAttributes.push(type);
    }
  }
  if (commonName.length !== 1) throw InvalidError.of(field, csr.subject, "must have exactly one CN");
  return { commonName: commonName[0]!, organizations, otherAttributes, publicKey: csr.publicKey };
}

/** The first certificate of a PEM bundle. */
function firstPem(pem: string): string {
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error("no PEM certificate found");
  return m[0];
}

function subjectName(s: Subject): x509.JsonName {
  return [{ CN: [s.commonName] }, ...(s.organizations ?? []).map((o) => ({ O: [o] }))];
}

/** 16 random bytes, positive (RFC 5280: at most 20 octets, non-negative). */
function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString("hex");
}
