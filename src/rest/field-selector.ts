/**
 * Field selectors for the kinds whose fields the REST view filters itself (Leases, Events):
 * Kubernetes' syntax `field=value`, `field==value`, `field!=value`, terms ANDed by commas, over
 * a fixed set of fields per kind (an unknown field is a 400 naming the supported ones, as
 * kube-apiserver answers). Nodes use the registry's own selector (src/validation/selector.ts).
 *
 * `kubectl describe node` sends `involvedObject.name=N,involvedObject.namespace=,
 * involvedObject.kind=Node,involvedObject.uid=N` for a node's events.
 */
import { InvalidError, quote } from "../errors.js";
import { parseLabelSelector } from "../validation/selector.js";
import type { LabelSelector } from "../validation/selector.js";
import { kubeFieldPath } from "./field-names.js";
import { badRequest } from "./status.js";

interface Requirement {
  field: string;
  equals: boolean;
  value: string;
}

export interface FieldFilter {
  matches(fields: Record<string, string>): boolean;
  /** The value the selector pins `field` to with `=`, if any. */
  pinned(field: string): string | undefined;
}

const TERM = /^\s*(.*?)\s*(!=|==|=)\s*(.*?)\s*$/s;

/** Parse a field selector over `known` fields; throws a 400 RestError. */
export function parseFields(selector: string, known: readonly string[]): FieldFilter {
  const reqs: Requirement[] = [];
  for (const term of selector.split(",")) {
    if (term.trim() === "") continue;
    const m = TERM.exec(term);
    if (!m) throw badRequest(`fieldSelector: invalid selector ${JSON.stringify(term.slice(0, 64))}: expected field=value, field==value or field!=value`);
    const [, field = "", op = "", value = ""] = m;
    if (!known.includes(field)) {
      throw badRequest(`fieldSelector: ${JSON.stringify(field.slice(0, 64))} is not a known field selector: only ${known.map((k) => JSON.stringify(k)).join(", ")}`);
    }
    reqs.push({ field, equals: op !== "!=", value });
  }
  return {
    matches: (fields) => reqs.every((r) => ((fields[r.field] ?? "") === r.value) === r.equals),
    pinned: (field) => reqs.find((r) => r.field === field && r.equals)?.value,
  };
}

/** A label selector for a query parameter: a bad one is a 400 saying where it breaks. */
export function parseLabels(selector: string): LabelSelector {
  return asBadRequest(() => parseLabelSelector(selector));
}

/** Run a parse whose InvalidError is a bad query parameter (400), not an invalid object (422). */
export function asBadRequest<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw toBadRequest(err);
  }
}

/** The same for a call that answers a promise (a list whose continue token is checked by the registry). */
export async function asBadRequestAsync<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toBadRequest(err);
  }
}

function toBadRequest(err: unknown): unknown {
  if (!(err instanceof InvalidError)) return err;
  return badRequest(err.violations.map((v) => `${kubeFieldPath(v.field)}: ${quote(v.value)}: ${v.rule}`).join("; "));
}
