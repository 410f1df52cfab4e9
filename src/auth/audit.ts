/**
 * The audit log: one structured line for every request that changes (or tried to change)
 * state — who (user, groups, how authenticated), what (RPC, verb, resource), which object
 * (name, namespace), the outcome (gRPC code) and the object's revision before and after.
 * Never a token, a key or a certificate body: the request itself is not logged.
 *
 * `revisionBefore` is the object's store revision read just before the change ("0": it did not
 * exist); `revisionAfter` is the revision of the object the change answered with ("deleted"
 * for a deletion, "" when the change has no revisioned object, e.g. a signed certificate).
 */
import type { Logger } from "pino";
import type { Identity } from "./identity.js";

export interface AuditRecord {
  identity: Identity;
  method: string;
  verb: string;
  resource: string;
  name: string;
  namespace?: string;
  code: string;
  revisionBefore: string;
  revisionAfter: string;
  peer: string;
}

export class AuditLog {
  constructor(private readonly log: Logger) {}

  record(r: AuditRecord): void {
    this.log.info(
      {
        audit: true,
        user: r.identity.user,
        groups: r.identity.groups,
        authn: r.identity.method,
        method: r.method,
        verb: r.verb,
        resource: r.resource,
        name: r.name,
        ...(r.namespace ? { namespace: r.namespace } : {}),
        code: r.code,
        revisionBefore: r.revisionBefore,
        revisionAfter: r.revisionAfter,
        peer: r.peer,
      },
      "audit",
    );
  }
}
