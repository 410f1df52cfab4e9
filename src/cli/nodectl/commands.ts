/**
 * nodectl's commands over a Session: each reads what it needs, prints through `io` and
 * answers its exit code. Per-object failures (a missing node among several) are printed as
 * they happen and make the exit code 1; anything else is thrown to the caller, which prints
 * it as one line.
 */
import { status } from "@grpc/grpc-js";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { AbortedError, AlreadyExistsError, CancelledError, NotFoundError, OutOfRangeError, RpcError } from "../../client/errors.js";
import { Informer } from "../../client/informer.js";
import type { Event } from "../../gen/nodeplane/v1/event.js";
import type { Lease } from "../../gen/nodeplane/v1/lease.js";
import { Node } from "../../gen/nodeplane/v1/node.js";
import { CliError, errorLine } from "./errors.js";
import { applyLabels, applyTaints, isLabelArg, isTaintArg, parseLabelArgs, parseTaintArgs } from "./edit.js";
import { type ManifestNode, mergeForApply, nodeToCreate, parseManifests, sameNode } from "./manifest.js";
import { describeNode, joinDescriptions, nodeToJSON, type OutputFormat, printLeases, printLeaseTable, printNodes, printNodeTable, printYAML } from "./print.js";
import { nodeHeader, nodeRow, type TableOptions } from "../../model/columns.js";
import type { Session } from "./session.js";
import { TableStream } from "./table.js";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  now(): number;
  readStdin(): Promise<string>;
  /** Aborted on Ctrl-C: ends watch mode. */
  signal: AbortSignal;
}

export interface Ctx {
  io: Io;
  /** The server's address, for messages. */
  server: string;
  session(): Session;
}

export type Resource = "nodes" | "leases";

const RESOURCES: Record<string, Resource> = { node: "nodes", nodes: "nodes", no: "nodes", lease: "leases", leases: "leases" };

/** "nodes", "node/NAME" …: the resource and any name given with a slash. */
function parseResource(arg: string, allowed: readonly Resource[] = ["nodes", "leases"]): { resource: Resource; name?: string } {
  const slash = arg.indexOf("/");
  const type = slash < 0 ? arg : arg.slice(0, slash);
  const resource = RESOURCES[type.toLowerCase()];
  if (!resource || !allowed.includes(resource)) {
    const known = allowed.map((r) => (r === "nodes" ? "nodes (node, no)" : "leases (lease)")).join(", ");
    throw new CliError(`the server doesn't have a resource type ${JSON.stringify(type)} (nodectl knows ${known})`);
  }
  return slash < 0 ? { resource } : { resource, name: arg.slice(slash + 1) };
}

function names(first: { name?: string }, rest: readonly string[]): string[] {
  return [...(first.name ? [first.name] : []), ...rest];
}

/** Print a per-object failure; answers the exit code it implies. */
function report(ctx: Ctx, err: unknown): number {
  if (err instanceof CancelledError) throw err;
  ctx.io.err(errorLine(err, ctx.server) + "\n");
  return 1;
}

export interface GetOptions {
  selector?: string;
  /** --field-selector (nodes only): metadata.name, spec.unschedulable, status.topology.topology_manager_policy/scope. */
  fieldSelector?: string;
  output?: OutputFormat;
  watch?: boolean;
  watchOnly?: boolean;
  showLabels?: boolean;
  outputWatchEvents?: boolean;
  headers?: boolean;
}

export async function get(ctx: Ctx, resourceArg: string, rest: string[], opts: GetOptions): Promise<number> {
  const target = parseResource(resourceArg);
  const wanted = names(target, rest);
  if (wanted.length > 0 && (opts.selector || opts.fieldSelector)) throw new CliError("name cannot be provided when a selector is specified");
  if (target.resource === "leases") {
    if (opts.watch || opts.watchOnly) throw new CliError("watch is only supported for nodes");
    if (opts.fieldSelector) throw new CliError("--field-selector is only supported for nodes");
    return getLeases(ctx, wanted, opts);
  }
  if (opts.watch || opts.watchOnly) return watchNodes(ctx, wanted, opts);
  const s = ctx.session();
  let nodes: Node[] = [];
  let code = 0;
  if (wanted.length > 0) {
    for (const name of wanted) {
      try {
        nodes.push(await s.call((o) => s.client.getNode(name, o)));
      } catch (err) {
        code = report(ctx, err);
      }
    }
  } else {
    nodes = (await s.call((o) => s.client.listAllNodes({ labelSelector: opts.selector ?? "", fieldSelector: opts.fieldSelector ?? "" }, o))).nodes;
  }
  const output = opts.output ?? "";
  if (nodes.length === 0) {
    // As kubectl: an empty list for -o json|yaml (scripts read it), a note for people otherwise.
    if (wanted.length === 0 && (output === "json" || output === "yaml")) ctx.io.out(printNodes([], output, false));
    else if (wanted.length === 0) ctx.io.err("No resources found\n");
    return code;
  }
  if (output === "json" || output === "yaml" || output === "name") ctx.io.out(printNodes(nodes, output, wanted.length === 1));
  else ctx.io.out(printNodeTable(nodes, ctx.io.now(), tableOptions(opts)));
  return code;
}

function tableOptions(opts: GetOptions): TableOptions {
  return { output: opts.output === "wide" ? "wide" : "", showLabels: opts.showLabels, noHeaders: opts.headers === false };
}

async function getLeases(ctx: Ctx, wanted: string[], opts: GetOptions): Promise<number> {
  if (opts.showLabels) throw new CliError("--show-labels is only supported for nodes");
  const s = ctx.session();
  let leases: Lease[] = [];
  let code = 0;
  if (wanted.length > 0) {
    for (const name of wanted) {
      try {
        leases.push(await s.call((o) => s.client.getLease(name, o)));
      } catch (err) {
        code = report(ctx, err);
      }
    }
  } else {
    if (opts.selector) throw new CliError("leases have no labels to select by");
    leases = await s.call((o) => s.client.listLeases(o));
  }
  const output = opts.output ?? "";
  if (leases.length === 0) {
    if (wanted.length === 0 && (output === "json" || output === "yaml")) ctx.io.out(printLeases([], output, false));
    else if (wanted.length === 0) ctx.io.err("No resources found in kube-node-lease namespace.\n");
    return code;
  }
  if (output === "json" || output === "yaml" || output === "name") ctx.io.out(printLeases(leases, output, wanted.length === 1));
  else ctx.io.out(printLeaseTable(leases, ctx.io.now(), { noHeaders: opts.headers === false }));
  return code;
}

/**
 * `get nodes -w`: the table once, then a row per change (ADDED, MODIFIED, DELETED) until
 * interrupted, kept in step by an Informer (list, watch from the list's revision, relist or
 * resume after failures). A first call checks the server and the names before it starts.
 */
async function watchNodes(ctx: Ctx, wanted: string[], opts: GetOptions): Promise<number> {
  const s = ctx.session();
  if (wanted.length > 0) {
    for (const name of wanted) await s.call((o) => s.client.getNode(name, o));
  } else {
    await s.call((o) => s.client.listNodes({ labelSelector: opts.selector ?? "", fieldSelector: opts.fieldSelector ?? "", limit: 1 }, o));
  }
  const output = opts.output ?? "";
  const table = new TableStream();
  const tableOpts = tableOptions(opts);
  let started = false;
  const header = (): string[] => (opts.outputWatchEvents ? ["EVENT", ...nodeHeader(tableOpts)] : nodeHeader(tableOpts));
  const cells = (type: string, node: Node): string[] => {
    const row = nodeRow(node, ctx.io.now(), tableOpts);
    return opts.outputWatchEvents ? [type, ...row] : row;
  };
  const print = (type: string, nodes: readonly Node[]): void => {
    if (nodes.length === 0) return;
    if (output === "json") {
      for (const n of nodes) ctx.io.out(JSON.stringify(opts.outputWatchEvents ? { type, object: nodeToJSON(n) } : nodeToJSON(n), null, 4) + "\n");
    } else if (output === "yaml") {
      for (const n of nodes) ctx.io.out("---\n" + printYAML([opts.outputWatchEvents ? { type, object: nodeToJSON(n) } : nodeToJSON(n)], undefined));
    } else if (output === "name") {
      for (const n of nodes) ctx.io.out(`${opts.outputWatchEvents ? `${type} ` : ""}node/${n.metadata?.name ?? ""}\n`);
    } else if (!started) {
      // The first rows (the list, or the first change) are aligned together, under the header.
      started = true;
      ctx.io.out(table.start([...(tableOpts.noHeaders ? [] : [header()]), ...nodes.map((n) => cells(type, n))]));
    } else {
      for (const n of nodes) ctx.io.out(table.row(cells(type, n)));
    }
  };
  const keep = (node: Node): boolean => wanted.length <= 1 || wanted.includes(node.metadata?.name ?? "");
  let synced = false;
  let failed: unknown;
  const informer = new Informer({
    client: s.client,
    labelSelector: opts.selector ?? "",
    fieldSelector: wanted.length === 1 ? `metadata.name=${wanted[0]}` : (opts.fieldSelector ?? ""),
    signal: ctx.io.signal,
    onAdd: (n) => synced && keep(n) && print("ADDED", [n]),
    onUpdate: (_, n) => synced && keep(n) && print("MODIFIED", [n]),
    onDelete: (n) => synced && keep(n) && print("DELETED", [n]),
    onError: (err) => {
      if (err instanceof CancelledError) return;
      if (!synced) {
        failed = err;
        void informer.stop();
      } else if (!(err instanceof OutOfRangeError)) {
        ctx.io.err(`${errorLine(err, ctx.server)} (watching again)\n`);
      }
    },
  });
  informer.start();
  try {
    await informer.synced;
  } catch (err) {
    if (failed !== undefined) throw failed;
    if (err instanceof CancelledError) return 0;
    throw err;
  }
  synced = true;
  if (!opts.watchOnly) print("ADDED", informer.list().filter(keep));
  await new Promise<void>((resolve) => {
    if (ctx.io.signal.aborted) resolve();
    else ctx.io.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await informer.stop();
  return 0;
}

export async function describe(ctx: Ctx, resourceArg: string, rest: string[], opts: { selector?: string }): Promise<number> {
  const target = parseResource(resourceArg, ["nodes"]);
  const wanted = names(target, rest);
  if (wanted.length > 0 && opts.selector) throw new CliError("name cannot be provided when a selector is specified");
  const s = ctx.session();
  let code = 0;
  let nodes: Node[] = [];
  if (wanted.length > 0) {
    for (const name of wanted) {
      try {
        nodes.push(await s.call((o) => s.client.getNode(name, o)));
      } catch (err) {
        code = report(ctx, err);
      }
    }
  } else {
    nodes = (await s.call((o) => s.client.listAllNodes({ labelSelector: opts.selector ?? "" }, o))).nodes;
    if (nodes.length === 0) {
      ctx.io.err("No resources found\n");
      return 0;
    }
  }
  const parts: string[] = [];
  for (const node of nodes) {
    const name = node.metadata?.name ?? "";
    const [lease, events] = await Promise.all([
      s.call((o) => s.client.getLease(name, o)).catch((err: unknown) => {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }),
      s.call((o) => s.client.listEvents(name, o)).catch((err: unknown): Event[] => {
        // An older server without ListEvents: describe without them.
        if (err instanceof RpcError && err.code === status.UNIMPLEMENTED) return [];
        throw err;
      }),
    ]);
    parts.push(describeNode(node, lease, events, ctx.io.now()));
  }
  if (parts.length > 0) ctx.io.out(joinDescriptions(parts));
  return code;
}

/** The nodes a command acts on: the names given, or those a selector matches. */
async function targets(ctx: Ctx, given: string[], selector: string | undefined, verb: string): Promise<string[]> {
  if (given.length > 0 && selector) throw new CliError("name cannot be provided when a selector is specified");
  if (given.length > 0) return given;
  if (!selector) throw new CliError(`resource(s) were provided, but no name was specified: nodectl ${verb} node NAME (or -l SELECTOR)`);
  const s = ctx.session();
  const { nodes } = await s.call((o) => s.client.listAllNodes({ labelSelector: selector }, o));
  if (nodes.length === 0) throw new CliError(`no nodes match ${JSON.stringify(selector)}`);
  return nodes.map((n) => n.metadata?.name ?? "");
}

/**
 * Read-modify-write of one node: `edit` gets a copy of the stored node and answers the node to
 * send (undefined: nothing to change); sent with the stored resourceVersion, again on conflict.
 */
async function edit<R>(ctx: Ctx, name: string, change: (node: Node) => { next: Node | undefined; result: R }): Promise<R> {
  const s = ctx.session();
  for (let attempt = 0; ; attempt++) {
    const live = await s.call((o) => s.client.getNode(name, o));
    const { next, result } = change(Node.fromPartial(live));
    if (next === undefined || sameNode(next, live)) return result;
    next.metadata = { ...next.metadata!, resourceVersion: live.metadata?.resourceVersion ?? "" };
    try {
      await s.call((o) => s.client.updateNode(next, o));
      return result;
    } catch (err) {
      if (err instanceof AbortedError && attempt < 10) continue;
      throw err;
    }
  }
}

/** Split `label`/`taint` arguments into node names and changes (names first, as kubectl requires). */
function splitArgs(args: readonly string[], isChange: (a: string) => boolean, what: string): { names: string[]; changes: string[] } {
  const out = { names: [] as string[], changes: [] as string[] };
  for (const a of args) {
    if (isChange(a)) out.changes.push(a);
    else if (out.changes.length > 0) throw new CliError(`all resources must be specified before ${what} changes: ${a}`);
    else out.names.push(a);
  }
  return out;
}

export async function label(ctx: Ctx, resourceArg: string, args: string[], opts: { overwrite?: boolean; selector?: string }): Promise<number> {
  const target = parseResource(resourceArg, ["nodes"]);
  const split = splitArgs(args, isLabelArg, "label");
  const change = parseLabelArgs(split.changes);
  let code = 0;
  for (const name of await targets(ctx, names(target, split.names), opts.selector, "label")) {
    try {
      const outcome = await edit(ctx, name, (node) => {
        const o = applyLabels(node.metadata?.labels ?? {}, change, opts.overwrite ?? false);
        node.metadata = { ...node.metadata!, labels: o.labels };
        return { next: o.verb === "not labeled" ? undefined : node, result: o };
      });
      for (const k of outcome.notFound) ctx.io.out(`label ${JSON.stringify(k)} not found.\n`);
      ctx.io.out(`node/${name} ${outcome.verb}\n`);
    } catch (err) {
      code = report(ctx, err);
    }
  }
  return code;
}

export async function taint(ctx: Ctx, resourceArg: string, args: string[], opts: { overwrite?: boolean; selector?: string }): Promise<number> {
  const target = parseResource(resourceArg, ["nodes"]);
  const split = splitArgs(args, isTaintArg, "taint");
  const change = parseTaintArgs(split.changes);
  let code = 0;
  for (const name of await targets(ctx, names(target, split.names), opts.selector, "taint")) {
    try {
      const verb = await edit(ctx, name, (node) => {
        const o = applyTaints(name, node.spec?.taints ?? [], change, opts.overwrite ?? false);
        node.spec = { ...node.spec!, taints: o.taints };
        return { next: node, result: o.verb };
      });
      ctx.io.out(`node/${name} ${verb}\n`);
    } catch (err) {
      code = report(ctx, err);
    }
  }
  return code;
}

/** cordon (unschedulable = true) and uncordon. */
export async function setUnschedulable(ctx: Ctx, given: string[], opts: { selector?: string }, unschedulable: boolean): Promise<number> {
  const verb = unschedulable ? "cordon" : "uncordon";
  let code = 0;
  for (const arg of await targets(ctx, given, opts.selector, verb)) {
    try {
      const changed = await edit(ctx, arg, (node) => {
        if ((node.spec?.unschedulable ?? false) === unschedulable) return { next: undefined, result: false };
        node.spec = { ...node.spec!, unschedulable };
        return { next: node, result: true };
      });
      ctx.io.out(`node/${arg} ${changed ? `${verb}ed` : `already ${verb}ed`}\n`);
    } catch (err) {
      code = report(ctx, err);
    }
  }
  return code;
}

export async function deleteNodes(ctx: Ctx, resourceArg: string, rest: string[], opts: { selector?: string; all?: boolean }): Promise<number> {
  const target = parseResource(resourceArg, ["nodes"]);
  const given = names(target, rest);
  let list: string[];
  if (opts.all) {
    if (given.length > 0 || opts.selector) throw new CliError("--all cannot be combined with names or a selector");
    const s = ctx.session();
    list = (await s.call((o) => s.client.listAllNodes({}, o))).nodes.map((n) => n.metadata?.name ?? "");
    if (list.length === 0) {
      ctx.io.err("No resources found\n");
      return 0;
    }
  } else {
    list = await targets(ctx, given, opts.selector, "delete");
  }
  const s = ctx.session();
  let code = 0;
  for (const name of list) {
    try {
      await s.call((o) => s.client.deleteNode(name, o));
      ctx.io.out(`node "${name}" deleted\n`);
    } catch (err) {
      code = report(ctx, err);
    }
  }
  return code;
}

/** The manifests of `-f` arguments: files, directories (their .yaml, .yml, .json files) or "-" for stdin. */
async function readManifests(ctx: Ctx, files: readonly string[]): Promise<ManifestNode[]> {
  if (files.length === 0) throw new CliError("must specify -f FILE (a YAML or JSON file of nodes, a directory, or - for stdin)");
  const out: ManifestNode[] = [];
  for (const f of files) {
    if (f === "-") {
      out.push(...parseManifests(await ctx.io.readStdin(), "<stdin>"));
      continue;
    }
    if (!existsSync(f)) throw new CliError(`the path "${f}" does not exist`);
    const paths = statSync(f).isDirectory()
      ? readdirSync(f)
          .filter((e) => /\.(ya?ml|json)$/.test(e))
          .sort()
          .map((e) => join(f, e))
      : [f];
    for (const p of paths) out.push(...parseManifests(readFileSync(p, "utf8"), p));
  }
  return out;
}

/** `apply -f`: create each node that is absent, else update what its manifest changes. */
export async function apply(ctx: Ctx, files: string[]): Promise<number> {
  const manifests = await readManifests(ctx, files);
  if (manifests.length === 0) throw new CliError("no objects passed to apply");
  const s = ctx.session();
  let code = 0;
  for (const m of manifests) {
    try {
      ctx.io.out(`node/${m.name} ${await applyOne(ctx, s, m)}\n`);
    } catch (err) {
      code = report(ctx, err);
    }
  }
  return code;
}

async function applyOne(ctx: Ctx, s: Session, m: ManifestNode): Promise<"created" | "configured" | "unchanged"> {
  for (let attempt = 0; attempt < 10; attempt++) {
    let live: Node | undefined;
    try {
      live = await s.call((o) => s.client.getNode(m.name, o));
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    if (live === undefined) {
      try {
        await s.call((o) => s.client.createNode(nodeToCreate(m), o));
        return "created";
      } catch (err) {
        if (err instanceof AlreadyExistsError) continue;
        throw err;
      }
    }
    const changed = await edit(ctx, m.name, (node) => {
      const next = mergeForApply(node, m);
      return { next, result: !sameNode(next, node) };
    }).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (changed === undefined) continue; // deleted meanwhile: create it
    return changed ? "configured" : "unchanged";
  }
  throw new CliError(`node/${m.name}: it kept changing under apply; try again`);
}

export async function version(ctx: Ctx, clientVersion: string, opts: { client?: boolean }): Promise<number> {
  ctx.io.out(`Client Version: ${clientVersion}\n`);
  if (opts.client) return 0;
  const s = ctx.session();
  const res = await s.call((o) => s.client.listNodes({ limit: 1 }, o));
  ctx.io.out(`Server: ${ctx.server} (reachable, nodeplane.v1.NodeService at revision ${res.resourceVersion})\n`);
  return 0;
}
