/**
 * nodectl's command line (commander), shaped like kubectl's: `get`, `describe`, `label`,
 * `taint`, `cordon`, `uncordon`, `delete`, `apply`, `top`, `logs`, `check`, `version` (and
 * `watch` = `get -w`).
 * `run` answers the exit code; every error is printed as one line, never a stack trace.
 */
import { existsSync, readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { CancelledError } from "../../client/errors.js";
import { parseDuration } from "../flags.js";
import * as cmd from "./commands.js";
import type { Ctx, GetOptions, Io } from "./commands.js";
import { CliError, errorLine } from "./errors.js";
import { type ConnectionFlags, resolveConnection, Session } from "./session.js";
import * as token from "./token.js";
import * as agents from "./agents.js";

export interface RunIo extends Io {
  env: NodeJS.ProcessEnv;
  /** The user's home directory (for ~/.nodeplane/config.yaml). */
  home: string;
}

interface GlobalFlags extends ConnectionFlags {
  requestTimeout: number;
  connectTimeout: number;
}

/** The package's version, from the package.json above this module (src/ or dist/src/). */
function clientVersion(): string {
  let dir = new URL(".", import.meta.url);
  for (let i = 0; i < 6; i++) {
    const file = new URL("package.json", dir);
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
        if (pkg.name === "nodeplane" && pkg.version) return pkg.version;
      } catch {
        // not ours; keep looking
      }
    }
    dir = new URL("..", dir);
  }
  return "unknown";
}

const OUTPUTS = ["wide", "json", "yaml", "name"];

export async function run(argv: readonly string[], io: RunIo): Promise<number> {
  let session: Session | undefined;
  let server = "";
  let code = 0;
  const program = new Command("nodectl")
    .description("nodectl controls the nodeplane node control plane, as kubectl does Kubernetes nodes")
    .option("-s, --server <address>", "the nodeplane server, host:port or https://host:port, or several replicas separated by commas (default: $NODEPLANE_SERVER, else the config file's, else 127.0.0.1:50051)")
    .option("--kubeconfig <file>", "config file: kubeconfig-shaped, with server, CA, client certificate/key or token (default: $NODEPLANE_CONFIG, else ~/.nodeplane/config.yaml)")
    .option("--certificate-authority <file>", "CA (PEM) to verify the server with")
    .option("--client-certificate <file>", "client certificate (PEM)")
    .option("--client-key <file>", "the client certificate's key (PEM)")
    .option("--token <token>", "bearer token")
    .option("--request-timeout <duration>", "deadline of each call (e.g. 10s, 1m)", parseDuration, 30_000)
    .addOption(new Option("--connect-timeout <duration>", "how long the first call waits for a connection").argParser(parseDuration).default(5_000).hideHelp())
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: (s, write) => write(s) });

  const connectionOf = (command: Command) => resolveConnection(command.optsWithGlobals<GlobalFlags>(), io.env, io.home);
  const ctxOf = (command: Command): Ctx => {
    const flags = command.optsWithGlobals<GlobalFlags>();
    const choice = connectionOf(command);
    server = choice.address;
    return {
      io,
      server: choice.address,
      session: () =>
        (session ??= new Session(choice.address, { client: choice.options, requestTimeoutMs: flags.requestTimeout, connectTimeoutMs: flags.connectTimeout })),
    };
  };
  /** Wrap an action: its exit code becomes run's. */
  const act =
    <A extends unknown[]>(fn: (ctx: Ctx, ...args: A) => Promise<number>) =>
    async (...args: unknown[]): Promise<void> => {
      const command = args[args.length - 1] as Command;
      code = await fn(ctxOf(command), ...(args.slice(0, -1) as A));
    };

  const outputOption = (): Option => new Option("-o, --output <format>", "output format").choices(OUTPUTS);
  const selectorOption = (): Option => new Option("-l, --selector <selector>", "label selector, e.g. 'kubernetes.io/os=linux,tier in (web,db)'");

  const getCommand = (name: string, description: string, watch: boolean): Command =>
    program
      .command(`${name} <resource> [names...]`)
      .description(description)
      .addOption(selectorOption())
      .option("--field-selector <selector>", "field selector (nodes), e.g. 'spec.unschedulable=true,status.topology.topology_manager_policy=single-numa-node'")
      .addOption(outputOption())
      .option("-w, --watch", "after listing, print a row for every change until interrupted")
      .option("--watch-only", "print only the changes, not the first list")
      .option("--show-labels", "add a LABELS column")
      .option("--output-watch-events", "in watch mode, add an EVENT column (ADDED, MODIFIED, DELETED)")
      .option("--no-headers", "leave out the header row")
      .action(
        act((ctx, resource: string, names: string[], opts: GetOptions) => cmd.get(ctx, resource, names, watch ? { ...opts, watch: true } : opts)),
      );

  getCommand("get", "list nodes (or leases): nodectl get nodes [NAME…] [-l SELECTOR] [--field-selector SELECTOR] [-o wide|json|yaml|name] [-w]", false);
  getCommand("watch", "watch nodes: nodectl watch nodes (the same as get nodes -w)", true);

  program
    .command("describe <resource> [names...]")
    .description("show a node in detail: labels, taints, lease, conditions, addresses, capacity, system info, events")
    .addOption(selectorOption())
    .action(act((ctx, resource: string, names: string[], opts: { selector?: string }) => cmd.describe(ctx, resource, names, opts)));

  program
    .command("label <resource> <args...>")
    .description("update a node's labels: nodectl label node NAME k=v [k2=v2] [k-] [--overwrite]")
    .option("--overwrite", "allow changing the value of an existing label")
    .addOption(selectorOption())
    .action(act((ctx, resource: string, args: string[], opts: { overwrite?: boolean; selector?: string }) => cmd.label(ctx, resource, args, opts)));

  program
    .command("taint <resource> <args...>")
    .description("update a node's taints: nodectl taint node NAME k=v:Effect [k:Effect-] [k-] [--overwrite]")
    .option("--overwrite", "allow replacing a taint with the same key and effect")
    .addOption(selectorOption())
    .action(act((ctx, resource: string, args: string[], opts: { overwrite?: boolean; selector?: string }) => cmd.taint(ctx, resource, args, opts)));

  program
    .command("cordon [names...]")
    .description("mark nodes unschedulable (spec.unschedulable = true)")
    .addOption(selectorOption())
    .action(act((ctx, names: string[], opts: { selector?: string }) => cmd.setUnschedulable(ctx, names, opts, true)));

  program
    .command("uncordon [names...]")
    .description("mark nodes schedulable again")
    .addOption(selectorOption())
    .action(act((ctx, names: string[], opts: { selector?: string }) => cmd.setUnschedulable(ctx, names, opts, false)));

  program
    .command("delete <resource> [names...]")
    .description("delete nodes (and their leases)")
    .addOption(selectorOption())
    .option("--all", "delete every node")
    .action(act((ctx, resource: string, names: string[], opts: { selector?: string; all?: boolean }) => cmd.deleteNodes(ctx, resource, names, opts)));

  program
    .command("apply")
    .description("create or update nodes from YAML or JSON manifests (one node, a list, a NodeList, or --- documents)")
    .option("-f, --filename <file>", "a manifest file, a directory of them, or - for stdin (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .action(act((ctx, opts: { filename: string[] }) => cmd.apply(ctx, opts.filename)));

  const tokens = program.command("token").description("manage node bootstrap tokens: create, list, delete");
  tokens
    .command("create")
    .description("create a bootstrap token and print it (shown this once): nodeplane agent --bootstrap-token TOKEN gets its node a certificate with it")
    .option("--ttl <duration>", "how long the token is valid (default 24h)", parseDuration)
    .option("--description <text>", "what the token is for")
    .option("--node-names <names>", "only these node names may be bootstrapped with it (comma separated; default: any name not taken)")
    .option("--print-bootstrap-kubeconfig", "print a kubeconfig with the server, its CA and the token (for nodeplane agent --bootstrap-kubeconfig)")
    .action(
      async (opts: token.TokenCreateOptions, command: Command) => {
        code = await token.createToken(ctxOf(command), connectionOf(command), opts);
      },
    );
  tokens
    .command("list")
    .description("list bootstrap tokens (ids, expiry, node names; never secrets)")
    .action(act((ctx) => token.listTokens(ctx)));
  tokens
    .command("delete <ids...>")
    .description("delete bootstrap tokens by id; names they claimed are free again")
    .action(act((ctx, ids: string[]) => token.deleteTokens(ctx, ids)));

  program
    .command("auth")
    .description("who the server thinks you are: nodectl auth whoami")
    .argument("<whoami>", "whoami")
    .action(
      act(async (ctx, sub: string) => {
        if (sub !== "whoami") throw new CliError(`unknown auth subcommand ${JSON.stringify(sub)} (known: whoami)`);
        return token.whoAmI(ctx);
      }),
    );

  program
    .command("top <resource> [names...]")
    .description("CPU and memory in use on nodes, measured by their agents and reached through the server: nodectl top nodes [NAME…] [-l SELECTOR]")
    .addOption(selectorOption())
    .option("--no-headers", "leave out the header row")
    .action(act((ctx, resource: string, names: string[], opts: { selector?: string; headers?: boolean }) => agents.top(ctx, resource, names, opts)));

  program
    .command("logs <resource> [names...]")
    .description("a node agent's recent log lines, through the server: nodectl logs node NAME [--tail N]")
    .option("--tail <lines>", "only the last N lines (1 to 1000; -1 = every line the agent keeps)", agents.parseTail)
    .action(act((ctx, resource: string, names: string[], opts: { tail?: number }) => agents.logs(ctx, resource, names, opts)));

  program
    .command("check <resource> [names...]")
    .description("run a node agent's health checks, through the server: nodectl check node NAME (exit code 1 when one fails)")
    .action(act((ctx, resource: string, names: string[]) => agents.check(ctx, resource, names)));

  program
    .command("version")
    .description("print the client version and whether the server answers")
    .option("--client", "only the client version")
    .action(act((ctx, opts: { client?: boolean }) => cmd.version(ctx, clientVersion(), opts)));

  try {
    if (argv.length <= 2) {
      program.outputHelp();
      return 0;
    }
    await program.parseAsync(argv as string[]);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CancelledError && io.signal.aborted) return code;
    io.err(errorLine(err, server) + "\n");
    return 1;
  } finally {
    session?.close();
  }
}
