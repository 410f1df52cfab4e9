/**
 * What a REST request asks for and carries: the response form its Accept header chooses
 * (plain JSON, a meta.k8s.io Table, or PartialObjectMetadata), its body (size-capped, UTF-8
 * JSON or YAML of an accepted media type) and its query parameters. Every malformed part is a
 * RestError with the HTTP code Kubernetes answers (400, 406, 413, 415), before anything is
 * read from or written to the registry.
 */
import type { IncomingMessage } from "node:http";
import { parse as parseYaml } from "yaml";
import type { FieldValidation, Json } from "./kube-json.js";
import type { PatchType } from "./patch.js";
import { badRequest, RestError } from "./status.js";
import type { IncludeObject } from "./table.js";

/** The response form: the objects themselves, a Table, or their metadata only. */
export type Want =
  | { as: "Object" }
  | { as: "Table"; apiVersion: string; includeObject: IncludeObject }
  | { as: "PartialObjectMetadata"; apiVersion: string };

interface MediaRange {
  type: string;
  params: Map<string, string>;
}

function parseMediaRanges(header: string): MediaRange[] {
  return header
    .split(",")
    .map((part) => {
      const [type = "", ...params] = part.split(";").map((s) => s.trim());
      return {
        type: type.toLowerCase(),
        params: new Map(params.map((p) => {
          const eq = p.indexOf("=");
          return eq < 0 ? [p.toLowerCase(), ""] : [p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1")];
        })),
      };
    })
    .filter((r) => r.type !== "");
}

const META_VERSIONS = new Set(["v1", "v1beta1"]);

/**
 * The first media range of the Accept header that the server can produce, in the client's
 * order (kubectl lists its preference first). A Table or metadata form is offered only where
 * `tables` is true (reads of resources); none acceptable → 406 NotAcceptable.
 */
export function negotiate(accept: string | undefined, query: URLSearchParams, tables: boolean): Want {
  if (!accept || accept.trim() === "") return { as: "Object" };
  for (const r of parseMediaRanges(accept)) {
    if (r.type !== "application/json" && r.type !== "application/*" && r.type !== "*/*") continue;
    const as = r.params.get("as");
    if (as === undefined) return { as: "Object" };
    if (!tables || r.params.get("g") !== "meta.k8s.io" || !META_VERSIONS.has(r.params.get("v") ?? "")) continue;
    const apiVersion = `meta.k8s.io/${r.params.get("v")}`;
    if (as === "Table") return { as: "Table", apiVersion, includeObject: includeObject(query) };
    if (as === "PartialObjectMetadata" || as === "PartialObjectMetadataList") return { as: "PartialObjectMetadata", apiVersion };
  }
  throw new RestError(406, "NotAcceptable", `none of the media types in Accept ${JSON.stringify(accept.slice(0, 200))} can be served: nodeplane answers application/json (optionally as=Table or as=PartialObjectMetadata, g=meta.k8s.io, v=v1)`);
}

function includeObject(query: URLSearchParams): IncludeObject {
  const v = query.get("includeObject") ?? "Metadata";
  if (v === "None" || v === "Metadata" || v === "Object") return v;
  throw badRequest(`includeObject: ${JSON.stringify(v)}: must be None, Metadata or Object`);
}

/**
 * Read the body, refusing more than `maxBytes` (413) without buffering the excess. On refusal
 * the rest is left unread (not destroyed, so the 413 can still be sent; the router closes the
 * connection after it).
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = (): RestError => new RestError(413, "RequestEntityTooLarge", `request entity too large: limit is ${maxBytes} bytes`);
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > maxBytes) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      stop();
      req.pause();
      reject(tooLarge());
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      stop();
      reject(err);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The media type of a request body, without parameters; a charset other than UTF-8 is refused. */
export function contentType(req: IncomingMessage): string {
  const [range] = parseMediaRanges(req.headers["content-type"] ?? "");
  if (!range) return "";
  const charset = range.params.get("charset");
  if (charset !== undefined && charset.toLowerCase() !== "utf-8") {
    throw new RestError(415, "UnsupportedMediaType", `charset ${JSON.stringify(charset)} is not supported: send UTF-8`);
  }
  return range.type;
}

/** A document body: JSON (or YAML, for create and update). */
export function parseDocument(body: Buffer, type: string, yamlAllowed: boolean): Json {
  if (type !== "application/json" && !(yamlAllowed && type === "application/yaml")) {
    const accepted = yamlAllowed ? "application/json, application/yaml" : "application/json";
    throw new RestError(415, "UnsupportedMediaType", `the body of the request was in an unknown format ${JSON.stringify(type)} - accepted media types include: ${accepted}`);
  }
  return parseText(body, type === "application/yaml" ? "yaml" : "json");
}

const PATCH_TYPES: Record<string, PatchType> = {
  "application/merge-patch+json": "merge",
  "application/strategic-merge-patch+json": "strategic",
  "application/json-patch+json": "json",
};

/** The patch type of a PATCH's Content-Type (415 for server-side apply and the rest). */
export function patchType(type: string): PatchType {
  const t = Object.hasOwn(PATCH_TYPES, type) ? PATCH_TYPES[type] : undefined;
  if (t) return t;
  const hint = type === "application/apply-patch+yaml" ? " (server-side apply is not supported: use kubectl apply without --server-side)" : "";
  throw new RestError(415, "UnsupportedMediaType", `the patch type ${JSON.stringify(type)} is not supported${hint}: use ${Object.keys(PATCH_TYPES).join(", ")}`);
}

export function parseText(body: Buffer, format: "json" | "yaml"): Json {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw badRequest("the body is not valid UTF-8");
  }
  try {
    return (format === "json" ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 })) as Json;
  } catch (err) {
    throw badRequest(`error decoding ${format === "json" ? "JSON" : "YAML"}: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}`);
  }
}

/** The request's `fieldValidation` (Warn when absent, as Kubernetes defaults it). */
export function fieldValidation(query: URLSearchParams): FieldValidation {
  const v = query.get("fieldValidation") ?? "Warn";
  if (v === "Strict" || v === "Warn" || v === "Ignore") return v;
  throw badRequest(`fieldValidation: ${JSON.stringify(v)}: must be Strict, Warn or Ignore`);
}

/** A dry run would write nothing; nodeplane does not do them, so it refuses rather than writes. */
export function refuseDryRun(query: URLSearchParams): void {
  if (query.getAll("dryRun").some((v) => v !== "")) {
    throw badRequest("dryRun is not supported by nodeplane: nothing was changed (run without --dry-run=server)");
  }
}

/** A boolean query parameter ("true"/"1" or "false"/"0"; absent = `fallback`). */
export function boolParam(query: URLSearchParams, name: string, fallback: boolean): boolean {
  const v = query.get(name);
  if (v === null || v === "") return fallback;
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw badRequest(`${name}: ${JSON.stringify(v.slice(0, 64))}: must be true or false`);
}

/** A non-negative integer query parameter (absent = `fallback`). */
export function intParam(query: URLSearchParams, name: string, fallback: number): number {
  const v = query.get(name);
  if (v === null || v === "") return fallback;
  if (!/^\d{1,15}$/.test(v)) throw badRequest(`${name}: ${JSON.stringify(v.slice(0, 64))}: must be a non-negative integer`);
  return Number(v);
}
