/**
 * Reads of collections and of the read-only kinds: lists and watches of nodes (the registry's
 * ListNodes and the watch cache, with label/field selectors, `limit`/`continue` and
 * `resourceVersion`), of Leases in `kube-node-lease`, of node Events (with the
 * `involvedObject` field selectors `kubectl describe node` sends), and the always-empty pods
 * that `describe node` and `drain` ask for.
 *
 * resourceVersion on a list (Kubernetes' rules): unset or "0" — the latest state; "N" — a
 * state not older than N (the latest; N beyond the store's revision is 504 "Too large
 * resource version"); with `resourceVersionMatch=Exact` — the state at exactly N (410 Expired
 * once compacted). A continue token carries its first page's revision.
 */
import type { Logger } from "pino";
import { decodeEvent } from "../registry/events.js";
import { EVENT_PREFIX } from "../model/keys.js";
import type { Event } from "../gen/nodeplane/v1/event.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import type { EventRecorder } from "../registry/events.js";
import { decodeLease } from "../model/codec.js";
import { LEASE_NAMESPACE, LEASE_PREFIX } from "../model/keys.js";
import { compileFilter } from "../model/filter.js";
import type { NodeRegistry } from "../registry/nodes.js";
import { encodeContinue } from "../registry/paging.js";
import { pages } from "../store/pages.js";
import type { Store } from "../store/store.js";
import { matchesLabels } from "../validation/selector.js";
import type { WatchCache } from "../watch/cache.js";
import { type RestContext, reply, subjectOf } from "./context.js";
import { EVENT_KIND, formatEmptyList, formatList, formatOne, type Kind, LEASE_KIND, NODE_KIND, WatchEncoder } from "./format.js";
import { asBadRequest, asBadRequestAsync, parseFields, parseLabels } from "./field-selector.js";
import { EVENT_FIELD_NAMES, EVENT_NAMESPACE, eventFields, eventToKube, leaseFields } from "./kube-objects.js";
import { boolParam, intParam } from "./request.js";
import { badRequest, RestError } from "./status.js";
import { POD_COLUMNS } from "./table.js";
import { streamWatch, type WatchSource, type WatchStart, watchNodes, watchPrefix } from "./watch.js";

export interface ReadDeps {
  registry: NodeRegistry;
  cache: WatchCache;
  events: EventRecorder;
  store: Store;
  log: Logger;
  watchQueueLimit: number;
  bookmarkIntervalMs: number;
  /** Aborted on shutdown: watches end. */
  stop: AbortSignal;
}

const LEASE_FIELDS = ["metadata.name", "metadata.namespace"];

/** A revision parameter: "" and "0" mean "any"/"now" (undefined). */
function revisionParam(query: URLSearchParams, name: string): number | undefined {
  const v = query.get(name) ?? "";
  if (v === "" || v === "0") return undefined;
  if (!/^\d{1,15}$/.test(v)) throw badRequest(`${name}: ${JSON.stringify(v.slice(0, 64))}: must be a resourceVersion returned by the server (a decimal revision)`);
  return Number(v);
}

interface ListQuery {
  labelSelector: string;
  fieldSelector: string;
  limit: number;
  continueToken: string;
}

/** A list's parameters, with `resourceVersion`/`resourceVersionMatch` turned into a continue token or a check. */
async function listQuery(ctx: RestContext, store: Store): Promise<ListQuery> {
  const q = ctx.query;
  const continueToken = q.get("continue") ?? "";
  const rv = revisionParam(q, "resourceVersion");
  const match = q.get("resourceVersionMatch") ?? "";
  if (match !== "" && match !== "NotOlderThan" && match !== "Exact") throw badRequest(`resourceVersionMatch: ${JSON.stringify(match.slice(0, 64))}: must be NotOlderThan or Exact`);
  if (match !== "" && q.get("resourceVersion") === null) throw badRequest("resourceVersionMatch is forbidden unless resourceVersion is provided");
  if (continueToken !== "" && rv !== undefined) throw badRequest("specifying resourceVersion is not allowed when using continue");
  const query = { labelSelector: q.get("labelSelector") ?? "", fieldSelector: q.get("fieldSelector") ?? "", limit: intParam(q, "limit", 0), continueToken };
  if (rv === undefined) return query;
  if (match === "Exact") return { ...query, continueToken: encodeContinue({ revision: rv, after: "" }) };
  const current = await store.currentRevision();
  if (rv > current) {
    throw new RestError(504, "Timeout", `Too large resource version: ${rv}, current: ${current}`, {
      causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
      retryAfterSeconds: 1,
    });
  }
  return query;
}

/** Leases and Events live in one namespace each; a list elsewhere is empty, a get elsewhere 404. */
function inNamespace(ctx: RestContext, namespace: string): boolean {
  return ctx.namespace === "" || ctx.namespace === namespace;
}

// ---- nodes ------------------------------------------------------------------------------

export async function listNodes(ctx: RestContext, deps: ReadDeps): Promise<void> {
  const q = await listQuery(ctx, deps.store);
  // Selectors, limit and continue are query parameters: a bad one is a 400.
  const page = await asBadRequestAsync(() => {
    compileFilter(q.labelSelector, q.fieldSelector);
    return deps.registry.listNodes(q);
  });
  reply(ctx, 200, formatList(NODE_KIND, page.nodes, ctx.want, ctx.now(), page.resourceVersion, page.continueToken));
}

// ---- leases -----------------------------------------------------------------------------

function leaseFilter(ctx: RestContext): (l: Lease) => boolean {
  const labels = parseLabels(ctx.query.get("labelSelector") ?? "");
  const fields = parseFields(ctx.query.get("fieldSelector") ?? "", LEASE_FIELDS);
  return (l) => matchesLabels(labels, l.metadata?.labels) && fields.matches(leaseFields(l));
}

export async function listLeases(ctx: RestContext, deps: ReadDeps): Promise<void> {
  const matches = leaseFilter(ctx);
  const q = await listQuery(ctx, deps.store);
  if (!inNamespace(ctx, LEASE_NAMESPACE)) {
    reply(ctx, 200, formatList(LEASE_KIND, [], ctx.want, ctx.now(), String(await deps.store.currentRevision())));
    return;
  }
  const page = await asBadRequestAsync(() => deps.registry.listLeases(q));
  reply(ctx, 200, formatList(LEASE_KIND, page.leases.filter(matches), ctx.want, ctx.now(), page.resourceVersion, page.continueToken));
}

export async function getLease(ctx: RestContext, deps: ReadDeps): Promise<void> {
  if (ctx.namespace !== LEASE_NAMESPACE) throw notFound(ctx);
  reply(ctx, 200, formatOne(LEASE_KIND, await deps.registry.getLease(ctx.name!), ctx.want, ctx.now()));
}

// ---- events -----------------------------------------------------------------------------

function eventFilter(ctx: RestContext): (e: Event) => boolean {
  const labels = parseLabels(ctx.query.get("labelSelector") ?? "");
  const fields = parseFields(ctx.query.get("fieldSelector") ?? "", EVENT_FIELD_NAMES);
  return (e) => matchesLabels(labels, e.metadata?.labels) && fields.matches(eventFields(eventToKube(e)));
}

/** Every event at one revision, oldest occurrence first. */
async function eventsAt(store: Store): Promise<{ items: Event[]; revision: number }> {
  const items: Event[] = [];
  let revision = 0;
  for await (const page of pages(store, EVENT_PREFIX, { limit: 1000, pinned: true })) {
    revision = page.revision;
    items.push(...page.kvs.map(decodeEvent));
  }
  items.sort((a, b) => (a.lastTimestamp?.getTime() ?? 0) - (b.lastTimestamp?.getTime() ?? 0));
  return { items, revision };
}

/** Events are few per node and kept an hour: a list answers them all (`limit` is not applied). */
export async function listEvents(ctx: RestContext, deps: ReadDeps): Promise<void> {
  const matches = eventFilter(ctx);
  await listQuery(ctx, deps.store);
  const { items, revision } = await eventsAt(deps.store);
  const shown = inNamespace(ctx, EVENT_NAMESPACE) ? items.filter(matches) : [];
  reply(ctx, 200, formatList(EVENT_KIND, shown, ctx.want, ctx.now(), String(revision)));
}

export async function getEvent(ctx: RestContext, deps: ReadDeps): Promise<void> {
  const ev = ctx.namespace === EVENT_NAMESPACE ? (await deps.events.list("")).find((e) => e.metadata?.name === ctx.name) : undefined;
  if (!ev) throw notFound(ctx);
  reply(ctx, 200, formatOne(EVENT_KIND, ev, ctx.want, ctx.now()));
}

// ---- pods -------------------------------------------------------------------------------

/** nodeplane runs no pods: every pod list is empty (so `describe node` and `drain` work). */
export async function listPods(ctx: RestContext, deps: ReadDeps): Promise<void> {
  parseLabels(ctx.query.get("labelSelector") ?? "");
  reply(ctx, 200, formatEmptyList(ctx.resource, POD_COLUMNS, ctx.want, String(await deps.store.currentRevision())));
}

export function notFound(ctx: RestContext): RestError {
  const s = subjectOf(ctx);
  const name = `${s.group ? `${s.resource}.${s.group}` : s.resource} ${JSON.stringify(ctx.name ?? "")}`;
  return new RestError(404, "NotFound", `${name} not found`, { name: ctx.name, ...(s.group && { group: s.group }), kind: s.resource });
}

// ---- watches ----------------------------------------------------------------------------

function watchStart(q: URLSearchParams): WatchStart {
  const sendInitialEvents = q.get("sendInitialEvents");
  return {
    afterRevision: revisionParam(q, "resourceVersion"),
    sendInitialEvents: sendInitialEvents === null ? undefined : boolParam(q, "sendInitialEvents", false),
    allowBookmarks: boolParam(q, "allowWatchBookmarks", false),
  };
}

/** `?watch=true` on a collection, or on one object's path (then pinned to its name). */
export async function watch(ctx: RestContext, deps: ReadDeps): Promise<void> {
  const q = ctx.query;
  const start = watchStart(q);
  const timeoutSeconds = intParam(q, "timeoutSeconds", 0);
  const named = ctx.name !== undefined ? `metadata.name=${ctx.name}` : "";
  const fieldSelector = [q.get("fieldSelector") ?? "", named].filter((s) => s !== "").join(",");
  const opts = { timeoutSeconds, requestId: ctx.requestId, subject: subjectOf(ctx), log: deps.log, stop: deps.stop };
  const stream = <T>(kind: Kind<T>, source: WatchSource<T>): Promise<void> =>
    streamWatch(ctx.res, source, new WatchEncoder(kind, ctx.want, ctx.now), opts);
  const withName = new URLSearchParams(q);
  withName.set("fieldSelector", fieldSelector);
  const scoped = { ...ctx, query: withName };
  const prefix = { store: deps.store, queueLimit: deps.watchQueueLimit, bookmarkIntervalMs: deps.bookmarkIntervalMs };
  switch (ctx.resource.resource) {
    case "nodes": {
      const filter = asBadRequest(() => compileFilter(q.get("labelSelector") ?? "", fieldSelector));
      return stream(NODE_KIND, await watchNodes(deps.cache, filter, start));
    }
    case "leases": {
      const filter = leaseFilter(scoped);
      const matches = inNamespace(ctx, LEASE_NAMESPACE) ? filter : () => false;
      const list = async (): Promise<{ items: Lease[]; revision: number }> => {
        const all = await deps.registry.listLeases({ limit: 0, continueToken: "" });
        return { items: all.leases, revision: Number(all.resourceVersion) };
      };
      return stream(LEASE_KIND, await watchPrefix({ ...prefix, prefix: LEASE_PREFIX, decode: decodeLease, matches, list }, start));
    }
    case "events": {
      const filter = eventFilter(scoped);
      const matches = inNamespace(ctx, EVENT_NAMESPACE) ? filter : () => false;
      return stream(EVENT_KIND, await watchPrefix({ ...prefix, prefix: EVENT_PREFIX, decode: decodeEvent, matches, list: () => eventsAt(deps.store) }, start));
    }
    default:
      throw new RestError(405, "MethodNotAllowed", `watch is not supported on ${ctx.resource.name}`);
  }
}
