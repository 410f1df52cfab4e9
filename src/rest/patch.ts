/**
 * Patch application on Kubernetes JSON documents, for the three patch types kubectl and
 * client-go send:
 * - `application/merge-patch+json` (RFC 7386: objects merge, `null` deletes, anything else
 *   replaces — `kubectl label`, `annotate`);
 * - `application/strategic-merge-patch+json` (Kubernetes' strategic merge patch: lists with a
 *   merge key merge element by element, directives `$patch`, `$retainKeys`,
 *   `$setElementOrder/…`, `$deleteFromPrimitiveList/…`; a list without a strategy is replaced
 *   whole, as Node's `spec.taints` is — `kubectl taint`, `cordon`, `apply`);
 * - `application/json-patch+json` (RFC 6902 operations with JSON pointers — `kubectl patch --type json`).
 *
 * Pure functions on plain JSON: they never modify their inputs, never set a prototype (keys
 * such as "__proto__" are plain keys) and refuse documents nested deeper than MAX_DEPTH.
 */
import { badRequest } from "./status.js";
import { isObject, type Json, type JsonObject, setOwn } from "./kube-json.js";

const MAX_DEPTH = 100;

export type PatchType = "merge" | "strategic" | "json";

/** How a list at a path merges under a strategic merge patch (absent: replaced whole). */
export type ListStrategy = { mergeKey: string } | "merge-primitives";

/** Strategies by dotted path from the document root (no list indices), e.g. "status.conditions". */
export type MergeSchema = Record<string, ListStrategy>;

/** Kubernetes' patch strategies of the fields a Node has (core/v1 types.go `patchStrategy` tags). */
export const NODE_MERGE_SCHEMA: MergeSchema = {
  "metadata.ownerReferences": { mergeKey: "uid" },
  "metadata.finalizers": "merge-primitives",
  "spec.podCIDRs": "merge-primitives",
  "status.conditions": { mergeKey: "type" },
  "status.addresses": { mergeKey: "type" },
  "status.volumesAttached": { mergeKey: "name" },
};

function tooDeep(): Error {
  return badRequest(`the patch is nested deeper than ${MAX_DEPTH} levels`);
}

/** RFC 7386. */
export function mergePatch(target: Json | undefined, patch: Json, depth = 0): Json {
  if (depth > MAX_DEPTH) throw tooDeep();
  if (!isObject(patch)) return patch;
  const out: JsonObject = {};
  if (isObject(target)) for (const [k, v] of Object.entries(target)) setOwn(out, k, v);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else setOwn(out, k, mergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v, depth + 1));
  }
  return out;
}

const DELETE = Symbol("delete");

/** Kubernetes' strategic merge patch of `target` with `patch`. */
export function strategicMergePatch(target: Json | undefined, patch: Json, schema: MergeSchema): Json {
  const out = smpValue(target, patch, "", schema, 0);
  return out === DELETE ? {} : out;
}

function smpValue(target: Json | undefined, patch: Json, path: string, schema: MergeSchema, depth: number): Json | typeof DELETE {
  if (depth > MAX_DEPTH) throw tooDeep();
  if (!isObject(patch)) return patch;
  const directive = patch.$patch;
  if (directive === "delete") return DELETE;
  if (directive === "replace") return withoutDirectives(patch);
  if (directive !== undefined) throw badRequest(`${path || "the patch"}: unknown $patch directive ${JSON.stringify(directive)}: expected "replace" or "delete"`);

  const out: JsonObject = {};
  if (isObject(target)) for (const [k, v] of Object.entries(target)) setOwn(out, k, v);
  const orders = new Map<string, Json[]>();
  const removals = new Map<string, Json[]>();
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$retainKeys" || k === "$patch") continue;
    if (k.startsWith("$setElementOrder/")) {
      orders.set(k.slice("$setElementOrder/".length), listOrFail(v, k));
      continue;
    }
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      removals.set(k.slice("$deleteFromPrimitiveList/".length), listOrFail(v, k));
      continue;
    }
    const at = path ? `${path}.${k}` : k;
    if (v === null) {
      delete out[k];
    } else if (Array.isArray(v)) {
      setOwn(out, k, smpList(Object.hasOwn(out, k) ? out[k] : undefined, v, at, schema, depth + 1));
    } else {
      const merged = smpValue(Object.hasOwn(out, k) ? out[k] : undefined, v, at, schema, depth + 1);
      if (merged === DELETE) delete out[k];
      else setOwn(out, k, merged);
    }
  }
  for (const [field, values] of removals) {
    const current = out[field];
    if (Array.isArray(current)) setOwn(out, field, current.filter((x) => !values.some((r) => sameJson(r, x))));
  }
  for (const [field, order] of orders) {
    const current = out[field];
    if (Array.isArray(current)) setOwn(out, field, reorder(current, order, schema[path ? `${path}.${field}` : field]));
  }
  const retain = patch.$retainKeys;
  if (retain !== undefined) {
    const keep = new Set(listOrFail(retain, "$retainKeys").map(String));
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}

function smpList(target: Json | undefined, patch: Json[], path: string, schema: MergeSchema, depth: number): Json[] {
  const strategy = schema[path];
  const current = Array.isArray(target) ? target : [];
  // A `{"$patch": "replace"}` element: the list becomes the patch's other elements.
  if (patch.some((e) => isObject(e) && e.$patch === "replace" && Object.keys(e).length === 1)) {
    return patch.filter((e) => !(isObject(e) && e.$patch === "replace"));
  }
  if (strategy === undefined) return patch.map((e) => (isObject(e) ? withoutDirectives(e) : e));
  if (strategy === "merge-primitives") {
    const out = [...current];
    for (const e of patch) if (!out.some((x) => sameJson(x, e))) out.push(e);
    return out;
  }
  const key = strategy.mergeKey;
  const out = [...current];
  for (const e of patch) {
    if (!isObject(e) || !Object.hasOwn(e, key)) {
      throw badRequest(`${path}: every element of a strategic merge patch of this list needs its merge key ${JSON.stringify(key)}`);
    }
    const i = out.findIndex((x) => isObject(x) && sameJson(x[key]!, e[key]!));
    const merged = smpValue(i >= 0 ? out[i] : undefined, e, path, schema, depth + 1);
    if (merged === DELETE) {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = merged;
    else out.push(merged);
  }
  return out;
}

/** `$setElementOrder`: the listed elements in that order, then the others in their order. */
function reorder(list: Json[], order: Json[], strategy: ListStrategy | undefined): Json[] {
  const keyOf = (e: Json): Json | undefined =>
    strategy !== undefined && strategy !== "merge-primitives" ? (isObject(e) ? e[strategy.mergeKey] : undefined) : e;
  const rank = (e: Json): number => {
    const k = keyOf(e);
    const i = k === undefined ? -1 : order.findIndex((o) => sameJson(isObject(o) && strategy !== undefined && strategy !== "merge-primitives" ? o[strategy.mergeKey]! : o, k));
    return i < 0 ? order.length : i;
  };
  return list.map((e, i) => ({ e, i, r: rank(e) })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.e);
}

function withoutDirectives(obj: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(obj)) if (!k.startsWith("$")) setOwn(out, k, v);
  return out;
}

function listOrFail(v: Json, what: string): Json[] {
  if (!Array.isArray(v)) throw badRequest(`${what}: expected a list`);
  return v;
}

function sameJson(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** RFC 6902. */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest("a JSON patch is a list of operations");
  let doc = structuredClone(target);
  ops.forEach((op, i) => {
    if (!isObject(op)) throw badRequest(`JSON patch operation ${i}: expected an object`);
    const name = op.op;
    const path = pointer(op.path, i, "path");
    switch (name) {
      case "add":
        doc = put(doc, path, need(op, "value", i), "add", i);
        break;
      case "replace":
        get(doc, path, i);
        doc = put(doc, path, need(op, "value", i), "replace", i);
        break;
      case "remove":
        doc = remove(doc, path, i);
        break;
      case "move": {
        const from = pointer(op.from, i, "from");
        const value = get(doc, from, i);
        doc = put(remove(doc, from, i), path, value, "add", i);
        break;
      }
      case "copy":
        doc = put(doc, path, structuredClone(get(doc, pointer(op.from, i, "from"), i)), "add", i);
        break;
      case "test":
        if (!sameJson(get(doc, path, i), need(op, "value", i))) throw badRequest(`JSON patch operation ${i}: test failed at ${JSON.stringify(op.path)}`);
        break;
      default:
        throw badRequest(`JSON patch operation ${i}: unknown op ${JSON.stringify(name)}: expected add, remove, replace, move, copy or test`);
    }
  });
  return doc;
}

function need(op: JsonObject, key: string, i: number): Json {
  if (!Object.hasOwn(op, key)) throw badRequest(`JSON patch operation ${i}: missing ${JSON.stringify(key)}`);
  return op[key]!;
}

function pointer(p: Json | undefined, i: number, what: string): string[] {
  if (typeof p !== "string" || (p !== "" && !p.startsWith("/"))) throw badRequest(`JSON patch operation ${i}: ${what} must be a JSON pointer such as "/metadata/labels/app"`);
  if (p === "") return [];
  const parts = p.slice(1).split("/").map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  if (parts.length > MAX_DEPTH) throw tooDeep();
  return parts;
}

function missing(i: number, path: string[]): Error {
  return badRequest(`JSON patch operation ${i}: no value at /${path.join("/")}`);
}

function get(doc: Json, path: string[], i: number): Json {
  let cur: Json = doc;
  for (const part of path) {
    if (Array.isArray(cur) && /^(0|[1-9]\d*)$/.test(part) && Number(part) < cur.length) cur = cur[Number(part)]!;
    else if (isObject(cur) && Object.hasOwn(cur, part)) cur = cur[part]!;
    else throw missing(i, path);
  }
  return cur;
}

/** Answers the document with `value` added (or replaced) at `path`; the document is a clone, changed in place. */
function put(doc: Json, path: string[], value: Json, mode: "add" | "replace", i: number): Json {
  if (path.length === 0) return value;
  const parent = get(doc, path.slice(0, -1), i);
  const last = path.at(-1)!;
  if (Array.isArray(parent)) {
    const index = last === "-" ? parent.length : /^(0|[1-9]\d*)$/.test(last) ? Number(last) : NaN;
    if (!(index <= parent.length) || (mode === "replace" && index >= parent.length)) throw missing(i, path);
    parent.splice(index, mode === "replace" ? 1 : 0, value);
  } else if (isObject(parent)) setOwn(parent, last, value);
  else throw missing(i, path);
  return doc;
}

function remove(doc: Json, path: string[], i: number): Json {
  if (path.length === 0) throw badRequest(`JSON patch operation ${i}: cannot remove the whole document`);
  const parent = get(doc, path.slice(0, -1), i);
  const last = path.at(-1)!;
  get(doc, path, i);
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else if (isObject(parent)) delete parent[last];
  return doc;
}
