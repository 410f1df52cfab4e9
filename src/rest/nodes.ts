/**
 * Node requests about one node, each the REST form of a NodeService RPC on the same registry:
 * GET (GetNode), POST (CreateNode), PUT (UpdateNode; on `/status` UpdateStatus), PATCH
 * (read, patch the Kubernetes JSON, then UpdateNode/UpdateStatus under the read's
 * resourceVersion, retried when someone else wrote in between unless the client gave its own
 * resourceVersion), DELETE (DeleteNode, with `preconditions`).
 *
 * Rules stay in the registry: this file only translates. A client's resourceVersion is a
 * precondition (409 Conflict when stale); status in a PUT or PATCH of the node itself is
 * ignored, as Kubernetes ignores it outside the status subresource.
 */
import { ConflictError } from "../errors.js";
import type { Node } from "../gen/nodeplane/v1/node.js";
import type { NodeRegistry } from "../registry/nodes.js";
import { type RestContext, reply, subjectOf } from "./context.js";
import { formatOne, NODE_KIND } from "./format.js";
import { DecodeReport, Fields, isObject, type Json } from "./kube-json.js";
import { keepStoredTimes, type KubeNodeInput, nodeFromKube, nodeToKube, withStoredExtras } from "./kube-node.js";
import { jsonPatch, mergePatch, NODE_MERGE_SCHEMA, strategicMergePatch } from "./patch.js";
import { contentType, fieldValidation, parseDocument, parseText, patchType, readBody, refuseDryRun } from "./request.js";
import { badRequest, RestError, success } from "./status.js";

export interface NodeHandlerDeps {
  registry: NodeRegistry;
  maxBodyBytes: number;
}

/** How many times a PATCH is re-applied when another writer changed the node in between. */
const PATCH_ATTEMPTS = 8;

const isStatus = (ctx: RestContext): boolean => ctx.resource.resource === "nodes/status";

export async function getNode(ctx: RestContext, deps: NodeHandlerDeps): Promise<void> {
  const node = await deps.registry.getNode(ctx.name!);
  reply(ctx, 200, formatOne(NODE_KIND, node, ctx.want, ctx.now()));
}

/** Read a Node document from the body: JSON or YAML, its kind checked, unknown fields reported. */
async function readNode(ctx: RestContext, deps: NodeHandlerDeps): Promise<KubeNodeInput> {
  const doc = parseDocument(await readBody(ctx.req, deps.maxBodyBytes), contentType(ctx.req), true);
  return decode(ctx, doc);
}

function decode(ctx: RestContext, doc: Json): KubeNodeInput {
  if (!isObject(doc)) throw badRequest("the body must be a Node object");
  const report = new DecodeReport(fieldValidation(ctx.query));
  const input = nodeFromKube(doc, report);
  if ((input.kind !== "" && input.kind !== "Node") || (input.apiVersion !== "" && input.apiVersion !== "v1")) {
    throw badRequest(`${JSON.stringify(`${input.apiVersion}, Kind=${input.kind}`)} cannot be handled as a Node: send apiVersion v1, kind Node`);
  }
  ctx.warnings.push(...report.finish());
  return input;
}

function checkName(node: Node, urlName: string): void {
  const name = node.metadata?.name ?? "";
  if (name !== urlName) {
    throw badRequest(`the name of the object (${JSON.stringify(name)}) does not match the name on the URL (${JSON.stringify(urlName)})`);
  }
}

const NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789";

/** `metadata.generateName`: the prefix and five random characters, as Kubernetes makes them. */
function generatedName(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(5));
  return prefix.slice(0, 253 - 5) + [...bytes].map((b) => NAME_CHARS[b % NAME_CHARS.length]).join("");
}

export async function createNode(ctx: RestContext, deps: NodeHandlerDeps): Promise<void> {
  refuseDryRun(ctx.query);
  const { node, generateName } = await readNode(ctx, deps);
  if (node.metadata.resourceVersion !== "") throw badRequest("resourceVersion should not be set on objects to be created");
  if (node.metadata.name === "" && generateName !== "") node.metadata.name = generatedName(generateName);
  ctx.name = node.metadata.name;
  const created = await deps.registry.createNode(node);
  reply(ctx, 201, formatOne(NODE_KIND, created, ctx.want, ctx.now()));
}

export async function updateNode(ctx: RestContext, deps: NodeHandlerDeps): Promise<void> {
  refuseDryRun(ctx.query);
  const { node } = await readNode(ctx, deps);
  checkName(node, ctx.name!);
  const stored = await deps.registry.getNode(ctx.name!);
  keepStoredTimes(node, stored);
  const updated = isStatus(ctx)
    ? await deps.registry.updateStatus(ctx.name!, withStoredExtras(node.status, stored.status), node.metadata.resourceVersion)
    : await deps.registry.updateNode(node);
  reply(ctx, 200, formatOne(NODE_KIND, updated, ctx.want, ctx.now()));
}

export async function patchNode(ctx: RestContext, deps: NodeHandlerDeps): Promise<void> {
  refuseDryRun(ctx.query);
  const type = patchType(contentType(ctx.req));
  const patch = parseText(await readBody(ctx.req, deps.maxBodyBytes), "json");
  const name = ctx.name!;
  for (let attempt = 1; ; attempt++) {
    const current = await deps.registry.getNode(name);
    const doc = nodeToKube(current);
    const patched =
      type === "merge" ? mergePatch(doc, patch) : type === "strategic" ? strategicMergePatch(doc, patch, NODE_MERGE_SCHEMA) : jsonPatch(doc, patch);
    ctx.warnings.length = 0;
    const { node } = decode(ctx, patched);
    checkName(node, name);
    keepStoredTimes(node, current);
    const uid = current.metadata?.uid ?? "";
    if (node.metadata.uid !== "" && node.metadata.uid !== uid) {
      throw new RestError(409, "Conflict", `Precondition failed: UID in precondition: ${node.metadata.uid}, UID in object meta: ${uid}`, { name, kind: "nodes" });
    }
    // The read's version unless the patch set its own (then a conflict is the client's to resolve).
    const ours = node.metadata.resourceVersion === current.metadata?.resourceVersion;
    try {
      const updated = isStatus(ctx)
        ? await deps.registry.updateStatus(name, withStoredExtras(node.status, current.status), node.metadata.resourceVersion)
        : await deps.registry.updateNode(node);
      reply(ctx, 200, formatOne(NODE_KIND, updated, ctx.want, ctx.now()));
      return;
    } catch (err) {
      if (!(err instanceof ConflictError) || !ours || attempt >= PATCH_ATTEMPTS) throw err;
    }
  }
}

/** DeleteOptions from the body (optional) and the query: preconditions and dry run. */
async function deleteOptions(ctx: RestContext, deps: NodeHandlerDeps): Promise<{ uid: string; resourceVersion: string }> {
  refuseDryRun(ctx.query);
  const body = await readBody(ctx.req, deps.maxBodyBytes);
  if (body.length === 0) return { uid: "", resourceVersion: "" };
  const doc = parseDocument(body, contentType(ctx.req) || "application/json", true);
  // DeleteOptions are read leniently (as Kubernetes does): unknown fields are ignored.
  const f = new Fields(doc, "", new DecodeReport("Ignore"));
  if (f.strings("dryRun").length > 0) throw badRequest("dryRun is not supported by nodeplane: nothing was changed");
  return f.object("preconditions", (p) => ({ uid: p.string("uid"), resourceVersion: p.string("resourceVersion") }));
}

export async function deleteNode(ctx: RestContext, deps: NodeHandlerDeps): Promise<void> {
  const name = ctx.name!;
  const pre = await deleteOptions(ctx, deps);
  let resourceVersion = pre.resourceVersion;
  if (pre.uid !== "") {
    const current = await deps.registry.getNode(name);
    const uid = current.metadata?.uid ?? "";
    if (uid !== pre.uid) {
      throw new RestError(409, "Conflict", `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${uid}`, { name, kind: "nodes" });
    }
    // Delete exactly the node whose uid was checked.
    resourceVersion ||= current.metadata?.resourceVersion ?? "";
  }
  const deleted = await deps.registry.deleteNode(name, resourceVersion);
  reply(ctx, 200, success({ ...subjectOf(ctx), name }, deleted.metadata?.uid ?? ""));
}
