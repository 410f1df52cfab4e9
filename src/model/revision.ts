/**
 * Revisions: numbers inside the server (the store's counter), decimal strings on the wire
 * (`resource_version`). They are parsed once where a request arrives and formatted once where an
 * object or answer leaves, here.
 */
import { InvalidError } from "../errors.js";

/** A revision as clients see it. */
export const formatRevision = (rev: number): string => String(rev);

/** Parse a client's resource_version ("" = none). */
export function parseRevision(field: string, value: string): number | undefined {
  if (value === "") return undefined;
  if (!/^\d{1,15}$/.test(value)) {
    throw InvalidError.of(field, value, "must be a resource_version: a decimal revision returned by the server");
  }
  return Number(value);
}

/** The revision of an object's last change, from its metadata (0 if it has none). */
export function revisionOf(obj: { metadata?: { resourceVersion: string } | undefined }): number {
  return Number(obj.metadata?.resourceVersion || 0);
}
