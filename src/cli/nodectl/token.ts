/**
 * `nodectl token create|list|delete` (as `kubeadm token`), and `nodectl auth whoami` (as
 * `kubectl auth whoami`). A token is printed whole only by `create`; `list` shows ids.
 * `create --print-bootstrap-kubeconfig` prints a kubeconfig with the server, its CA and the
 * new token, for `nodeplane agent --bootstrap-kubeconfig FILE` on the new machine.
 */
import type { BootstrapToken } from "../../gen/nodeplane/v1/auth.js";
import { kubeconfigYaml } from "../../auth/kubeconfig.js";
import type { Ctx } from "./commands.js";
import { CliError } from "./errors.js";
import type { Connection } from "./session.js";
import { formatTable } from "./table.js";
import { humanDuration } from "../../model/columns.js";

export interface TokenCreateOptions {
  ttl?: number;
  description?: string;
  nodeNames?: string;
  printBootstrapKubeconfig?: boolean;
}

export async function createToken(ctx: Ctx, connection: Connection, opts: TokenCreateOptions): Promise<number> {
  if (opts.printBootstrapKubeconfig && !connection.settings.ca) {
    throw new CliError("--print-bootstrap-kubeconfig needs the server's CA in nodectl's config (or --certificate-authority) to hand on");
  }
  const s = ctx.session();
  const nodeNames = (opts.nodeNames ?? "").split(",").map((n) => n.trim()).filter(Boolean);
  const res = await s.call((o) => s.client.createBootstrapToken({ ...o, ttlMs: opts.ttl, description: opts.description, nodeNames }));
  if (opts.printBootstrapKubeconfig) {
    ctx.io.out(kubeconfigYaml(`system:bootstrap:${res.bootstrapToken?.id ?? ""}`, { server: connection.address, ca: connection.settings.ca!, token: res.token }));
  } else {
    ctx.io.out(`${res.token}\n`);
  }
  return 0;
}

export async function listTokens(ctx: Ctx): Promise<number> {
  const s = ctx.session();
  const tokens = await s.call((o) => s.client.listBootstrapTokens(o));
  if (tokens.length === 0) {
    ctx.io.err("No bootstrap tokens\n");
    return 0;
  }
  const now = ctx.io.now();
  const row = (t: BootstrapToken): string[] => {
    const expires = t.expirationTimestamp?.getTime() ?? 0;
    return [
      t.id,
      expires > now ? humanDuration(expires - now) : "<expired>",
      t.expirationTimestamp?.toISOString().replace(/\.\d{3}Z$/, "Z") ?? "",
      t.nodeNames.length > 0 ? t.nodeNames.join(",") : "<any new name>",
      t.createdBy || "<unknown>",
      t.description || "<none>",
    ];
  };
  ctx.io.out(formatTable([["TOKEN ID", "TTL", "EXPIRES", "NODE NAMES", "CREATED BY", "DESCRIPTION"], ...tokens.map(row)]));
  return 0;
}

export async function deleteTokens(ctx: Ctx, ids: string[]): Promise<number> {
  if (ids.length === 0) throw new CliError("give the id of at least one token to delete (nodectl token list shows them)");
  const s = ctx.session();
  for (const id of ids) {
    const gone = await s.call((o) => s.client.deleteBootstrapToken(id, o));
    ctx.io.out(`bootstrap token "${gone?.id ?? id}" deleted\n`);
  }
  return 0;
}

export async function whoAmI(ctx: Ctx): Promise<number> {
  const s = ctx.session();
  const me = await s.call((o) => s.client.whoAmI(o));
  ctx.io.out(
    formatTable([
      ["ATTRIBUTE", "VALUE"],
      ["Username", me.user],
      ...(me.uid ? [["UID", me.uid]] : []),
      ["Groups", `[${me.groups.join(" ")}]`],
      ["Authenticated by", me.authenticationMethod],
    ]),
  );
  return 0;
}
