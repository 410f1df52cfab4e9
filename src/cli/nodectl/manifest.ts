/**
 * Node manifests for `apply`, pure: parsing (YAML or JSON; one node, a list, a NodeList, or
 * several `---` documents), a strict check of the field names (the proto's JSON names,
 * lowerCamelCase or snake_case, as protobuf JSON accepts both: a misspelt field is an error,
 * not silently dropped), and the three-way merge `apply` sends (kubectl's: the manifest's
 * fields win, fields removed from the manifest since the last apply are removed, fields the
 * manifest never set are left to whoever set them).
 */
import { parseAllDocuments } from "yaml";
import { Node, NodeSpec, type Taint } from "../../gen/nodeplane/v1/node.js";
import { CliError } from "./errors.js";
import { LAST_APPLIED_ANNOTATION } from "./print.js";
import { compare } from "../../model/columns.js";

/** A field's shape: a scalar, a timestamp string, a string map, a list of something, or a message. */
type Shape = "scalar" | "time" | "map" | { list: Shape } | { fields: Record<string, Shape> };

const msg = (fields: Record<string, Shape>): Shape => ({ fields });

const CPU_COUNTS = msg({ sockets: "scalar", cores: "scalar", threads: "scalar" });

/** Node's fields in the proto's JSON names (API.md); test/nodectl/manifest.test.ts keeps this in step with the generated code. */
export const NODE_SCHEMA: Record<string, Shape> = {
  metadata: msg({
    name: "scalar",
    namespace: "scalar",
    uid: "scalar",
    resourceVersion: "scalar",
    generation: "scalar",
    creationTimestamp: "time",
    labels: "map",
    annotations: "map",
    ownerReferences: { list: msg({ apiVersion: "scalar", kind: "scalar", name: "scalar", uid: "scalar", controller: "scalar" }) },
  }),
  spec: msg({
    podCidr: "scalar",
    podCidrs: { list: "scalar" },
    providerId: "scalar",
    unschedulable: "scalar",
    taints: { list: msg({ key: "scalar", value: "scalar", effect: "scalar", timeAdded: "time" }) },
  }),
  status: msg({
    capacity: "map",
    allocatable: "map",
    addresses: { list: msg({ type: "scalar", address: "scalar" }) },
    conditions: {
      list: msg({
        type: "scalar",
        status: "scalar",
        lastHeartbeatTime: "time",
        lastTransitionTime: "time",
        reason: "scalar",
        message: "scalar",
      }),
    },
    nodeInfo: msg({
      machineId: "scalar",
      systemUuid: "scalar",
      bootId: "scalar",
      kernelVersion: "scalar",
      osImage: "scalar",
      containerRuntimeVersion: "scalar",
      agentVersion: "scalar",
      operatingSystem: "scalar",
      architecture: "scalar",
    }),
    daemonEndpoints: msg({ agentEndpoint: msg({ port: "scalar" }) }),
    topology: msg({
      topologyManagerPolicy: "scalar",
      topologyManagerScope: "scalar",
      zones: { list: msg({ id: "scalar", cpus: "scalar", memory: "scalar", distances: { list: "scalar" }, cpuCounts: CPU_COUNTS }) },
      cpuCounts: CPU_COUNTS,
    }),
  }),
};

/** Fields the server sets: ignored in a manifest (apply uses the stored resourceVersion). */
const SERVER_SET = ["uid", "resourceVersion", "generation", "creationTimestamp", "ownerReferences"];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const camel = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * Check `value` against `shape` and answer it with field names in lowerCamelCase (map keys
 * untouched). Throws CliError naming the field path.
 */
function normalize(value: unknown, shape: Shape, path: string): Json {
  if (value === null || value === undefined) return null;
  if (shape === "scalar") {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
      return typeof value === "bigint" ? value.toString() : value;
    }
    throw new CliError(`${path}: expected a single value, got ${describe(value)}`);
  }
  if (shape === "time") {
    if (value instanceof Date) return value.toISOString();
    if (typeof value === "string" && !Number.isNaN(Date.parse(value))) return value;
    throw new CliError(`${path}: expected an RFC 3339 time like "2026-01-01T00:00:00Z", got ${describe(value)}`);
  }
  if (shape === "map") {
    if (!isObject(value)) throw new CliError(`${path}: expected a mapping of strings, got ${describe(value)}`);
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === null || typeof v === "object") throw new CliError(`${path}[${JSON.stringify(k)}]: expected a string, got ${describe(v)}`);
      out[k] = String(v);
    }
    return out;
  }
  if ("list" in shape) {
    if (!Array.isArray(value)) throw new CliError(`${path}: expected a list, got ${describe(value)}`);
    return value.map((item, i) => normalize(item, shape.list, `${path}[${i}]`));
  }
  if (!isObject(value)) throw new CliError(`${path}: expected a mapping, got ${describe(value)}`);
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    const name = camel(k);
    const field = shape.fields[name];
    const at = path ? `${path}.${name}` : name;
    if (field === undefined) throw new CliError(`unknown field ${JSON.stringify(path ? `${path}.${k}` : k)}`);
    if (Object.hasOwn(out, name)) throw new CliError(`${at}: given twice (as ${name} and ${k})`);
    out[name] = normalize(v, field, at);
  }
  return out;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** One node of a manifest: its normalized JSON (kind, apiVersion, server-set fields gone) and where it came from. */
export interface ManifestNode {
  name: string;
  /** The manifest's fields, lowerCamelCase, checked against NODE_SCHEMA. */
  json: JsonObject;
  /** "nodes.yaml (document 2)" etc., for messages. */
  where: string;
}

function toNode(raw: unknown, where: string): ManifestNode {
  if (!isObject(raw)) throw new CliError(`${where}: expected a Node (a mapping with metadata, spec, status), got ${describe(raw)}`);
  const { kind, apiVersion, ...rest } = raw;
  if (kind !== undefined && kind !== null && kind !== "Node") {
    throw new CliError(`${where}: kind ${JSON.stringify(kind)} is not supported (nodectl applies Node, NodeList and List)`);
  }
  let json: JsonObject;
  try {
    json = normalize(rest, { fields: NODE_SCHEMA }, "") as JsonObject;
  } catch (err) {
    throw new CliError(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const meta = isObject(json.metadata) ? json.metadata : {};
  for (const f of SERVER_SET) delete meta[f];
  const name = meta.name;
  if (typeof name !== "string" || name === "") throw new CliError(`${where}: metadata.name is required`);
  return { name, json, where };
}

/** Every node in a manifest text. `source` names the file ("-" for stdin) in messages. */
export function parseManifests(text: string, source: string): ManifestNode[] {
  const docs = parseAllDocuments(text, { prettyErrors: false });
  if (!Array.isArray(docs)) return []; // an empty stream
  const nodes: ManifestNode[] = [];
  const several = docs.length > 1;
  docs.forEach((doc, i) => {
    const where = several ? `${source} (document ${i + 1})` : source;
    const bad = doc.errors[0];
    if (bad) throw new CliError(`${where}: not valid YAML or JSON: ${bad.message.split("\n")[0]}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    let items: unknown[] | undefined;
    if (Array.isArray(value)) items = value;
    else if (isObject(value) && (value.kind === "NodeList" || value.kind === "List" || (value.kind === undefined && Array.isArray(value.items)))) {
      if (!Array.isArray(value.items)) throw new CliError(`${where}: a ${String(value.kind)} needs an items list`);
      items = value.items;
    }
    if (items === undefined) nodes.push(toNode(value, where));
    else items.forEach((item, j) => nodes.push(toNode(item, `${where} item ${j + 1}`)));
  });
  return nodes;
}

/** Keys sorted at every level: a stable text for comparing and storing JSON. */
function stableStringify(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort(compare)) out[k] = sortKeys(value[k]);
    return out;
  }
  return value;
}

/** What apply records in the last-applied annotation: the manifest's metadata (name, labels, annotations) and spec. */
function appliedConfig(m: ManifestNode): JsonObject {
  const meta = isObject(m.json.metadata) ? m.json.metadata : {};
  const out: JsonObject = { metadata: { name: m.name } };
  const outMeta = out.metadata as JsonObject;
  if (isObject(meta.labels)) outMeta.labels = meta.labels;
  if (isObject(meta.annotations)) {
    const annotations = { ...meta.annotations };
    delete annotations[LAST_APPLIED_ANNOTATION];
    outMeta.annotations = annotations;
  }
  if (isObject(m.json.spec)) out.spec = m.json.spec;
  return out;
}

/** The node a manifest creates (status included: manual registration may bring one), with the annotation. */
export function nodeToCreate(m: ManifestNode): Node {
  const node = Node.fromJSON(m.json);
  const meta = node.metadata!;
  meta.annotations = { ...meta.annotations, [LAST_APPLIED_ANNOTATION]: stableStringify(appliedConfig(m)) };
  return node;
}

const SPEC_FIELDS = ["podCidr", "podCidrs", "providerId", "unschedulable", "taints"] as const;

/**
 * The node `apply` sends for a stored node: the stored node with the manifest's labels,
 * annotations and spec fields merged in three ways against the last applied manifest. Status
 * is never touched (UpdateNode ignores it).
 */
export function mergeForApply(live: Node, m: ManifestNode): Node {
  const next = Node.fromPartial(live);
  const desired = Node.fromJSON(m.json);
  const last = lastApplied(live);
  const meta = next.metadata!;
  const mMeta = isObject(m.json.metadata) ? m.json.metadata : {};
  const lMeta = isObject(last.metadata) ? last.metadata : {};
  meta.labels = mergeMap(meta.labels, Object.hasOwn(mMeta, "labels") ? desired.metadata!.labels : undefined, lMeta.labels);
  meta.annotations = mergeMap(meta.annotations, Object.hasOwn(mMeta, "annotations") ? desired.metadata!.annotations : undefined, lMeta.annotations);
  meta.annotations[LAST_APPLIED_ANNOTATION] = stableStringify(appliedConfig(m));

  const spec = next.spec ?? NodeSpec.fromPartial({});
  next.spec = spec;
  const mSpec = isObject(m.json.spec) ? m.json.spec : {};
  const lSpec = isObject(last.spec) ? last.spec : {};
  const wanted = desired.spec ?? NodeSpec.fromPartial({});
  const blank = NodeSpec.fromPartial({});
  for (const f of SPEC_FIELDS) {
    // Present in the manifest (null too: protobuf JSON's "the default"): the manifest's value.
    if (Object.hasOwn(mSpec, f)) {
      if (f === "taints") spec.taints = keepTimeAdded(wanted.taints, spec.taints);
      else (spec as unknown as Record<string, unknown>)[f] = wanted[f];
    } else if (Object.hasOwn(lSpec, f)) {
      (spec as unknown as Record<string, unknown>)[f] = blank[f];
    }
  }
  return next;
}

/** A taint the manifest gives without timeAdded keeps the stored one's (the server would). */
function keepTimeAdded(wanted: Taint[], stored: Taint[]): Taint[] {
  return wanted.map((t) => {
    if (t.timeAdded) return t;
    const old = stored.find((s) => s.key === t.key && s.effect === t.effect);
    return old?.timeAdded ? { ...t, timeAdded: old.timeAdded } : t;
  });
}

function mergeMap(live: Record<string, string>, wanted: Record<string, string> | undefined, last: Json | undefined): Record<string, string> {
  const out = { ...live };
  if (isObject(last)) for (const k of Object.keys(last)) if (!wanted || !Object.hasOwn(wanted, k)) delete out[k];
  if (wanted) Object.assign(out, wanted);
  return out;
}

function lastApplied(live: Node): JsonObject {
  const text = live.metadata?.annotations[LAST_APPLIED_ANNOTATION];
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : {};
  } catch {
    return {};
  }
}

/** Whether two nodes say the same thing (key order aside). */
export function sameNode(a: Node, b: Node): boolean {
  return stableStringify(Node.toJSON(a)) === stableStringify(Node.toJSON(b));
}
