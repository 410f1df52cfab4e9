/**
 * The real kubectl against a test server: a generated kubeconfig and a `--cache-dir` in a
 * temp dir (kubectl caches discovery on disk), HOME pointed there too so that nothing from
 * the machine's ~/.kube is read. `/usr/bin/kubectl` must exist: a test that needs it fails
 * (never skips) without it.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const KUBECTL = "/usr/bin/kubectl";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** A kubeconfig for a plain-HTTP server on loopback (the form the README shows). */
export function kubeconfig(server: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: nodeplane
  cluster:
    server: ${server}
users:
- name: operator
  user: {}
contexts:
- name: nodeplane
  context:
    cluster: nodeplane
    user: operator
current-context: nodeplane
`;
}

/** A kubeconfig for an HTTPS server, with a client certificate (data inline, as kubeadm writes it). */
export function kubeconfigTls(server: string, c: { ca: string; cert: string; key: string }): string {
  const b64 = (pem: string): string => Buffer.from(pem).toString("base64");
  return `apiVersion: v1
kind: Config
clusters:
- name: nodeplane
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(c.ca)}
users:
- name: me
  user:
    client-certificate-data: ${b64(c.cert)}
    client-key-data: ${b64(c.key)}
contexts:
- name: nodeplane
  context:
    cluster: nodeplane
    user: me
current-context: nodeplane
`;
}

export interface Kubectl {
  dir: string;
  /** `kubectl ARGS…` to completion (stdin written when given). */
  run(args: string[], stdin?: string): Promise<Ran>;
  /** A long-running kubectl (e.g. `get -w`) read line by line. */
  stream(args: string[]): KubectlStream;
  close(): void;
}

export interface KubectlStream {
  child: ChildProcess;
  /** Every line printed so far. */
  lines: string[];
  /** Resolves with the next unread line; fails if kubectl exits first. */
  next(): Promise<string>;
  stop(): Promise<void>;
}

/** kubectl with its own kubeconfig (`config` text, default: plain HTTP to `server`) and cache dir. */
export function kubectlFor(server: string, config = kubeconfig(server)): Kubectl {
  if (!existsSync(KUBECTL)) throw new Error(`${KUBECTL} is missing: these tests drive the real kubectl (.ci/run installs one)`);
  const dir = mkdtempSync(join(tmpdir(), "nodeplane-kubectl-"));
  const file = join(dir, "kubeconfig");
  writeFileSync(file, config);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, NO_COLOR: "1" };
  const argv = (args: string[]): string[] => ["--kubeconfig", file, "--cache-dir", join(dir, "cache"), ...args];
  const children = new Set<ChildProcess>();
  return {
    dir,
    run(args, stdin) {
      return new Promise((resolve, reject) => {
        const child = execFile(KUBECTL, argv(args), { env, timeout: 60_000 }, (err, stdout, stderr) => {
          if (err && typeof err.code !== "number") reject(err);
          else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
        });
        child.stdin!.end(stdin ?? "");
      });
    },
    stream(args) {
      const child = spawn(KUBECTL, argv(args), { env, stdio: ["ignore", "pipe", "pipe"] });
      children.add(child);
      // "close": the process has exited and its output has been read to the end.
      const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      const lines: string[] = [];
      let read = 0;
      let wake: (() => void) | undefined;
      createInterface({ input: child.stdout! }).on("line", (line) => {
        lines.push(line);
        wake?.();
      });
      let done = false;
      void exited.then(() => {
        done = true;
        wake?.();
      });
      return {
        child,
        lines,
        async next() {
          while (read >= lines.length) {
            if (done) throw new Error(`kubectl exited (${child.exitCode ?? child.signalCode}): ${stderr}`);
            await new Promise<void>((resolve) => (wake = resolve));
          }
          return lines[read++]!;
        },
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          await exited;
          children.delete(child);
        },
      };
    },
    close() {
      for (const c of children) c.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
