/**
 * Authentication: from what a connection and a request carry to an Identity, the same for gRPC
 * and HTTP. Order, as kube-apiserver's union authenticator: a client certificate first, then a
 * bearer token (a `--token-auth-file` token, else a bootstrap token), else anonymous.
 *
 * A certificate the TLS layer could not verify against the client CA is refused
 * (UNAUTHENTICATED naming why), never taken as anonymous; so is one that has expired since its
 * connection was made (connections are long-lived; the check is per call). Messages never
 * quote a token.
 */
import type { Clock } from "../clock.js";
import { UnauthenticatedError } from "../errors.js";
import { BOOTSTRAP_TOKEN_PATTERN, type BootstrapTokens } from "./bootstrap-tokens.js";
import { anonymous, authenticated, type Identity } from "./identity.js";
import type { TokenFile } from "./token-file.js";

/** A TLS client's certificate as Node describes it (tls.TLSSocket#getPeerCertificate()). */
export interface PeerCertificate {
  subject?: Record<string, string | string[] | undefined>;
  /** e.g. "Jan  1 00:00:00 2027 GMT". */
  valid_to: string;
  fingerprint256: string;
}

export interface Credentials {
  /** The client's certificate on a TLS connection, when it presented one. */
  certificate?: PeerCertificate;
  /** Why the TLS layer did not verify that certificate against the client CA (e.g. CERT_HAS_EXPIRED); undefined when it did. */
  certificateError?: string;
  /** The `authorization` header or metadata value (`Bearer <token>`). */
  authorization?: string;
}

export interface AuthenticatorOptions {
  tokenFile?: TokenFile;
  bootstrapTokens?: BootstrapTokens;
  clock: Clock;
}

/** Bearer tokens longer than this are refused unread. */
const MAX_TOKEN_LENGTH = 4096;

export class Authenticator {
  constructor(private readonly o: AuthenticatorOptions) {}

  /** @throws UnauthenticatedError for a credential that is present but not valid. */
  async authenticate(c: Credentials): Promise<Identity> {
    if (c.certificate) return this.fromCertificate(c.certificate, c.certificateError);
    if (c.authorization !== undefined) return this.fromBearer(c.authorization);
    return anonymous;
  }

  private fromCertificate(cert: PeerCertificate, error: string | undefined): Identity {
    const cn = first(cert.subject?.CN);
    if (error !== undefined) throw new UnauthenticatedError(`client certificate${cn ? ` for ${JSON.stringify(cn)}` : ""} rejected: ${certificateProblem(error)}`);
    const notAfter = Date.parse(cert.valid_to);
    if (!(notAfter > this.o.clock.now())) {
      throw new UnauthenticatedError(`client certificate for ${JSON.stringify(cn)} expired at ${new Date(notAfter).toISOString()}; reconnect with a renewed one`);
    }
    if (!cn) throw new UnauthenticatedError("client certificate has no common name (CN): the CN is the user name");
    return authenticated(cn, all(cert.subject?.O), "x509", { expiresAt: notAfter });
  }

  private async fromBearer(header: string): Promise<Identity> {
    const m = /^bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new UnauthenticatedError('malformed authorization: want "Bearer <token>"');
    const token = m[1]!;
    if (token.length > MAX_TOKEN_LENGTH) throw new UnauthenticatedError(`malformed bearer token: longer than ${MAX_TOKEN_LENGTH} characters`);
    const fromFile = this.o.tokenFile?.lookup(token);
    if (fromFile) return fromFile;
    if (this.o.bootstrapTokens && (BOOTSTRAP_TOKEN_PATTERN.test(token) || /^[a-z0-9]{6}\./.test(token))) {
      return this.o.bootstrapTokens.authenticate(token);
    }
    throw new UnauthenticatedError("invalid bearer token");
  }
}

/** OpenSSL's verification codes, said for people. */
function certificateProblem(code: string): string {
  const known: Record<string, string> = {
    CERT_HAS_EXPIRED: "it has expired",
    CERT_NOT_YET_VALID: "it is not valid yet",
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: "it is not signed by a trusted client CA",
    UNABLE_TO_GET_ISSUER_CERT: "it is not signed by a trusted client CA",
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "it is not signed by a trusted client CA",
    SELF_SIGNED_CERT_IN_CHAIN: "its chain ends in a CA that is not trusted",
    DEPTH_ZERO_SELF_SIGNED_CERT: "it is self-signed",
    CERT_SIGNATURE_FAILURE: "its signature does not verify",
    INVALID_PURPOSE: "it is not a client certificate (extended key usage)",
    CERT_REVOKED: "it has been revoked",
  };
  return `${known[code] ?? "it does not verify"} (${code})`;
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
const all = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
