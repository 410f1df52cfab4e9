/**
 * nodectl's commands that reach node agents through the server (NodeProxyService; nobody dials
 * a node directly):
 *
 * - `top nodes [NAME…] [-l SELECTOR]`: CPU and memory in use and as a share of allocatable, as
 *   `kubectl top nodes` prints them; a node that could not be measured shows <unknown> and its
 *   error goes to stderr (exit code 1);
 * - `logs node NAME [--tail N]`: the agent's recent log lines (JSON), oldest first;
 * - `check node NAME`: the agent's health checks as kube-apiserver's verbose health
 *   ([+]name ok / [-]name failed), exit code 1 when any failed.
 */
import { InvalidArgumentError } from "commander";
import { parseQuantity } from "../../validation/quantity.js";
import type { NodeUsage } from "../../gen/nodeplane/v1/node_proxy.js";
import type { Ctx } from "./commands.js";
import { CliError } from "./errors.js";
import { formatTable } from "./table.js";

const NODES = new Set(["node", "nodes", "no"]);

/** The node resource with one name (`node NAME` or `node/NAME`). */
function oneNode(resource: string, rest: readonly string[], command: string): string {
  const [type, slashName] = resource.split("/", 2) as [string, string | undefined];
  if (!NODES.has(type.toLowerCase())) throw new CliError(`nodectl ${command} knows only nodes (node, no), not ${JSON.stringify(type)}`);
  const names = [...(slashName ? [slashName] : []), ...rest];
  if (names.length !== 1) throw new CliError(`nodectl ${command} takes exactly one node name: nodectl ${command} node NAME`);
  return names[0]!;
}

/** --tail: a whole number from 1 to 1000, or -1 for every line the agent keeps. */
export function parseTail(value: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || (n !== -1 && (n < 1 || n > 1000))) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a line count: 1 to 1000, or -1 for every line the agent keeps`);
  }
  return n === -1 ? 0 : n;
}

export async function top(ctx: Ctx, resource: string, names: string[], opts: { selector?: string; headers?: boolean }): Promise<number> {
  if (!NODES.has(resource.toLowerCase())) throw new CliError(`nodectl top knows only nodes, not ${JSON.stringify(resource)}: nodectl top nodes`);
  if (names.length > 0 && opts.selector) throw new CliError("name cannot be provided when a selector is specified");
  const s = ctx.session();
  const rows: NodeUsage[] = [];
  if (names.length > 0) {
    for (const name of names) rows.push(await s.call((o) => s.client.getNodeUsage(name, o)));
  } else {
    rows.push(...(await s.call((o) => s.client.listNodeUsage({ labelSelector: opts.selector }, o))));
  }
  if (rows.length === 0) {
    ctx.io.err("No resources found\n");
    return 0;
  }
  const header = ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"];
  ctx.io.out(formatTable([...(opts.headers === false ? [] : [header]), ...rows.map(usageRow)]));
  let code = 0;
  for (const r of rows.filter((x) => x.error)) {
    ctx.io.err(`error: node ${JSON.stringify(r.nodeName)}: ${r.error}\n`);
    code = 1;
  }
  return code;
}

function usageRow(r: NodeUsage): string[] {
  const u = r.usage;
  if (!u || r.error) return [r.nodeName, "<unknown>", "<unknown>", "<unknown>", "<unknown>"];
  const cpuCores = Number(u.cpu?.usageNanoCores ?? 0n) / 1e9;
  const memory = Number(u.memory?.workingSetBytes ?? 0n);
  return [r.nodeName, `${Math.round(cpuCores * 1000)}m`, percent(cpuCores, r.allocatable.cpu), `${Math.round(memory / 1024 / 1024)}Mi`, percent(memory, r.allocatable.memory)];
}

/** used / allocatable as kubectl rounds it (down), or <unknown> without an allocatable amount. */
function percent(used: number, allocatable: string | undefined): string {
  let total = 0;
  try {
    total = allocatable ? parseQuantity(allocatable) : 0;
  } catch {
    total = 0;
  }
  return total > 0 ? `${Math.floor((used / total) * 100)}%` : "<unknown>";
}

export async function logs(ctx: Ctx, resource: string, rest: string[], opts: { tail?: number }): Promise<number> {
  const name = oneNode(resource, rest, "logs");
  const s = ctx.session();
  const res = await s.call((o) => s.client.getNodeLogs(name, opts.tail ?? 0, o));
  ctx.io.out(res.lines.map((l) => `${l}\n`).join(""));
  return 0;
}

export async function check(ctx: Ctx, resource: string, rest: string[]): Promise<number> {
  const name = oneNode(resource, rest, "check");
  const s = ctx.session();
  const res = await s.call((o) => s.client.checkNode(name, o));
  const failed = res.checks.filter((c) => !c.ok);
  const lines = res.checks.map((c) => (c.ok ? `[+]${c.name} ok: ${c.message}` : `[-]${c.name} failed: ${c.message}`));
  lines.push(failed.length === 0 ? `node ${JSON.stringify(name)}: check passed` : `node ${JSON.stringify(name)}: check failed (${failed.map((c) => c.name).join(", ")})`);
  ctx.io.out(lines.map((l) => `${l}\n`).join(""));
  return failed.length === 0 ? 0 : 1;
}
