/**
 * AccessControl: the one entry point to authentication and authorization, for gRPC (the
 * interceptor in gate.ts) and for HTTP (/metrics here; the REST API later):
 *
 *   const identity = await access.authenticateHttp(req);          // UnauthenticatedError
 *   const denied = access.authorize(identity, "get", "nodes", "n1"); // PermissionDeniedError | undefined
 *
 * With authentication off (plaintext on loopback, no token file: the embedded default) every
 * caller is anonymous and everything is allowed, as before authentication existed.
 */
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { UnauthenticatedError, type PermissionDeniedError } from "../errors.js";
import type { Authenticator, Credentials } from "./authenticator.js";
import { authorize, type Resource, type Verb } from "./authorizer.js";
import { anonymous, type Identity } from "./identity.js";

export class AccessControl {
  /** `authenticator` undefined = authentication off. */
  constructor(private readonly authenticator: Authenticator | undefined) {}

  get enabled(): boolean {
    return this.authenticator !== undefined;
  }

  /**
   * The caller's identity; anonymous when it presents nothing (or when authentication is off).
   * @throws UnauthenticatedError for a credential that is present but not valid.
   */
  authenticate(c: Credentials): Promise<Identity> {
    return this.authenticator ? this.authenticator.authenticate(c) : Promise.resolve(anonymous);
  }

  /** authenticate(), and refuse anonymous callers when authentication is on. */
  async requireIdentity(c: Credentials): Promise<Identity> {
    const identity = await this.authenticate(c);
    if (this.enabled && identity.method === "none") {
      throw new UnauthenticatedError("no credentials: present a client certificate or an authorization: Bearer <token> header");
    }
    return identity;
  }

  /** Undefined when allowed (always, with authentication off), else the error to answer with. */
  authorize(identity: Identity, verb: Verb, resource: Resource, name: string, namespace?: string): PermissionDeniedError | undefined {
    return this.enabled ? authorize(identity, verb, resource, name, namespace) : undefined;
  }

  /** authenticateHttp() then authorize(): answers the identity, or throws UnauthenticatedError / PermissionDeniedError. */
  async authorizeHttp(req: IncomingMessage, verb: Verb, resource: Resource, name = "", namespace?: string): Promise<Identity> {
    const identity = await this.authenticateHttp(req);
    const denied = this.authorize(identity, verb, resource, name, namespace);
    if (denied) throw denied;
    return identity;
  }

  /** The identity of an HTTP(S) request: its TLS client certificate, else its bearer token. Anonymous is refused when authentication is on. */
  authenticateHttp(req: IncomingMessage): Promise<Identity> {
    return this.requireIdentity(httpCredentials(req));
  }
}

/** What an HTTP request carries: the TLS client certificate (verified or not) and the authorization header. */
function httpCredentials(req: IncomingMessage): Credentials {
  const socket = req.socket as Partial<TLSSocket>;
  const c: Credentials = {};
  if (typeof socket.getPeerCertificate === "function") {
    const cert = socket.getPeerCertificate();
    if (cert && cert.raw) {
      c.certificate = cert;
      if (!socket.authorized) c.certificateError = String(socket.authorizationError ?? "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    }
  }
  if (req.headers.authorization !== undefined) c.authorization = req.headers.authorization;
  return c;
}
