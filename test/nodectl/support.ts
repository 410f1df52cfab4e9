/** Running nodectl in this process (the same `run` the binary calls) with captured output. */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../src/cli/nodectl/program.js";

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export interface InProcessOptions {
  /** The clock `now` for ages (default Date.now). */
  now?: () => number;
  env?: NodeJS.ProcessEnv;
  stdin?: string;
  home?: string;
}

/** A home directory without a ~/.nodeplane/config.yaml (it does not even exist). */
const NO_HOME = join(tmpdir(), `nodectl-test-no-home-${process.pid}`);

/** `nodectl ARGS…` in-process. */
export async function nodectl(args: string[], opts: InProcessOptions = {}): Promise<Result> {
  let stdout = "";
  let stderr = "";
  const code = await run(["node", "nodectl", ...args], {
    out: (s) => (stdout += s),
    err: (s) => (stderr += s),
    now: opts.now ?? (() => Date.now()),
    readStdin: () => Promise.resolve(opts.stdin ?? ""),
    signal: new AbortController().signal,
    env: opts.env ?? {},
    home: opts.home ?? NO_HOME,
  });
  return { code, stdout, stderr };
}
