/**
 * nodectl as a user runs it: `node bin/nodectl.js …` (the compiled binary) against the real
 * `nodeplane serve` process. Label, taint, cordon/uncordon, apply (create, configure,
 * unchanged), delete, watch mode (a row per change, read line by line as it is printed), and
 * the one-line errors for a wrong address and a missing node. Nothing sleeps: every wait is
 * for a line of output or a process exit.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Spawned, spawnServer } from "../support/process.js";

const NODECTL = fileURLToPath(new URL("../../bin/nodectl.js", import.meta.url));

let server: Spawned;
let address: string;
let dataDir: string;
let home: string;
const watchers: ChildProcess[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "nodectl-e2e-data-"));
  home = mkdtempSync(join(tmpdir(), "nodectl-e2e-home-"));
  // No controller: every change below is exactly one change of the node, and nothing else moves.
  server = await spawnServer(["--listen", "127.0.0.1:0", "--http-listen", "", "--data-dir", dataDir, "--log-level", "warn", "--controllers=*,-nodelifecycle"]);
  address = `127.0.0.1:${server.grpcPort}`;
});

afterAll(async () => {
  for (const w of watchers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL");
  server?.child.kill("SIGTERM");
  await server?.exited;
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

/** The environment a user's shell would give: the server in NODEPLANE_SERVER, a home without a config file. */
function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, NODEPLANE_SERVER: address, HOME: home, NO_COLOR: "1" };
  delete e.NODEPLANE_CONFIG;
  return e;
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** `nodectl ARGS…` as a process; `stdin` is written to it when given. */
function nodectl(args: string[], stdin?: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [NODECTL, ...args], { env: env() }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") reject(err);
      else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
  });
}

/** Succeeds with exactly this output. */
async function ok(args: string[], stdout: string, stdin?: string): Promise<void> {
  expect(await nodectl(args, stdin)).toEqual({ code: 0, stdout, stderr: "" });
}

/** What `get node NAME -o json` prints (the parts these tests read). */
interface NodeJson {
  metadata: { labels?: Record<string, string> };
  spec?: { unschedulable?: boolean; taints?: { key: string; value?: string; effect: string }[] };
}

async function nodeJson(name: string): Promise<NodeJson> {
  const r = await nodectl(["get", "node", name, "-o", "json"]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as NodeJson;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, "close");
  return port;
}

/** A long-running nodectl whose stdout is read line by line. */
function watch(args: string[]): { child: ChildProcess; next: (pred: (line: string) => boolean) => Promise<string>; lines: string[]; stderr: () => string } {
  const child = spawn(process.execPath, [NODECTL, ...args], { env: env(), stdio: ["ignore", "pipe", "pipe"] });
  watchers.push(child);
  const lines: string[] = [];
  let read = 0;
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  let wake: (() => void) | undefined;
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    wake?.();
  });
  /** The next unread line, which must satisfy `pred`. */
  const next = async (pred: (line: string) => boolean): Promise<string> => {
    while (read >= lines.length) {
      if (child.exitCode !== null) throw new Error(`nodectl exited (${child.exitCode}): ${err}`);
      await new Promise<void>((resolve) => (wake = resolve));
    }
    const line = lines[read++]!;
    if (!pred(line)) throw new Error(`unexpected line ${JSON.stringify(line)}; stderr: ${err}`);
    return line;
  };
  return { child, next, lines, stderr: () => err };
}

const MANIFEST = `# two nodes registered by hand
apiVersion: v1
kind: Node
metadata:
  name: ap-1
  labels:
    node-role.kubernetes.io/worker: ""
    team: infra
spec:
  provider_id: inventory://rack1/m1
status:
  addresses:
  - {type: InternalIP, address: 10.0.0.21}
  conditions:
  - {type: Ready, status: "True", reason: AgentReady, message: ready}
  nodeInfo: {kernelVersion: 6.1.0, osImage: Debian GNU/Linux 12, agentVersion: nodeplane-agent/0.1.0}
---
apiVersion: v1
kind: Node
metadata:
  name: ap-2
`;

describe("nodectl (the binary, against nodeplane serve)", () => {
  it("apply -f creates, then an edited file updates what changed, then nothing changes", async () => {
    const file = join(home, "nodes.yaml");
    writeFileSync(file, MANIFEST);
    await ok(["apply", "-f", file], "node/ap-1 created\nnode/ap-2 created\n");
    await ok(["apply", "-f", file], "node/ap-1 unchanged\nnode/ap-2 unchanged\n");
    expect(await nodectl(["get", "nodes", "ap-1", "-o", "wide"])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\nap-1\s+Ready\s+worker\s+\d+s\s+nodeplane-agent\/0\.1\.0\s+10\.0\.0\.21\s+<none>\s+Debian GNU\/Linux 12\s+6\.1\.0\n$/),
    });

    // Edited: a label changed, one dropped, a taint and cordon added; ap-2 as it was.
    writeFileSync(
      file,
      MANIFEST.replace("    team: infra\n", "    tier: web\n").replace(
        "  provider_id: inventory://rack1/m1\n",
        "  provider_id: inventory://rack1/m1\n  unschedulable: true\n  taints:\n  - {key: dedicated, value: gpu, effect: NoSchedule}\n",
      ),
    );
    await ok(["apply", "-f", file], "node/ap-1 configured\nnode/ap-2 unchanged\n");
    const ap1 = await nodeJson("ap-1");
    expect(ap1.metadata.labels).toEqual({ "node-role.kubernetes.io/worker": "", tier: "web" });
    expect(ap1.spec).toMatchObject({ unschedulable: true, taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] });
    await ok(["apply", "-f", file], "node/ap-1 unchanged\nnode/ap-2 unchanged\n");

    // JSON on stdin, a NodeList: a label another tool added stays (it was never in a manifest).
    await ok(["label", "node", "ap-2", "added-by=hand"], "node/ap-2 labeled\n");
    await ok(["apply", "-f", "-"], "node/ap-2 configured\n", JSON.stringify({ kind: "NodeList", items: [{ metadata: { name: "ap-2", labels: { from: "stdin" } } }] }));
    expect((await nodeJson("ap-2")).metadata.labels).toEqual({ "added-by": "hand", from: "stdin" });

    // A misspelt field is refused before anything is sent.
    writeFileSync(file, "metadata: {name: ap-3}\nspec: {unschedulabel: true}\n");
    expect(await nodectl(["apply", "-f", file])).toEqual({ code: 1, stdout: "", stderr: `error: ${file}: unknown field "spec.unschedulabel"\n` });
  });

  it("label: set, refuse to overwrite without --overwrite, overwrite, remove", async () => {
    await ok(["apply", "-f", "-"], "node/lb-1 created\n", "metadata: {name: lb-1}\n");
    await ok(["label", "node", "lb-1", "team=infra", "zone=a"], "node/lb-1 labeled\n");
    expect(await nodectl(["label", "node", "lb-1", "team=web"])).toEqual({ code: 1, stdout: "", stderr: "error: 'team' already has a value (infra), and --overwrite is false\n" });
    await ok(["label", "node", "lb-1", "team=web", "--overwrite"], "node/lb-1 labeled\n");
    await ok(["label", "nodes", "lb-1", "zone-"], "node/lb-1 unlabeled\n");
    expect((await nodeJson("lb-1")).metadata.labels).toEqual({ team: "web" });
    await ok(["get", "nodes", "-l", "team=web", "-o", "name"], "node/lb-1\n");
  });

  it("taint: add, refuse a duplicate, remove by key and effect, remove by key", async () => {
    await ok(["apply", "-f", "-"], "node/tn-1 created\n", "metadata: {name: tn-1}\n");
    await ok(["taint", "node", "tn-1", "dedicated=gpu:NoSchedule", "maintenance:NoExecute"], "node/tn-1 tainted\n");
    expect(await nodectl(["taint", "node", "tn-1", "dedicated=cpu:NoSchedule"])).toEqual({
      code: 1,
      stdout: "",
      stderr: "error: node tn-1 already has dedicated taint(s) with same effect(s) and --overwrite is false\n",
    });
    await ok(["taint", "node", "tn-1", "dedicated=cpu:NoSchedule", "--overwrite"], "node/tn-1 modified\n");
    expect((await nodeJson("tn-1")).spec?.taints?.map((t) => `${t.key}=${t.value ?? ""}:${t.effect}`)).toEqual(["dedicated=cpu:NoSchedule", "maintenance=:NoExecute"]);
    await ok(["taint", "node", "tn-1", "maintenance:NoExecute-"], "node/tn-1 untainted\n");
    await ok(["taint", "node", "tn-1", "dedicated-"], "node/tn-1 untainted\n");
    expect((await nodeJson("tn-1")).spec?.taints).toBeUndefined();
    expect(await nodectl(["taint", "node", "tn-1", "dedicated:NoSchedule-"])).toEqual({ code: 1, stdout: "", stderr: 'error: taint "dedicated:NoSchedule" not found\n' });
  });

  it("cordon and uncordon set spec.unschedulable; get shows SchedulingDisabled", async () => {
    await ok(["apply", "-f", "-"], "node/cd-1 created\n", "metadata: {name: cd-1}\n");
    await ok(["cordon", "cd-1"], "node/cd-1 cordoned\n");
    await ok(["cordon", "cd-1"], "node/cd-1 already cordoned\n");
    expect((await nodectl(["get", "nodes", "cd-1", "--no-headers"])).stdout).toMatch(/^cd-1\s+Unknown,SchedulingDisabled\s+<none>\s+\d+s\s*\n$/);
    await ok(["uncordon", "cd-1"], "node/cd-1 uncordoned\n");
    expect((await nodeJson("cd-1")).spec?.unschedulable).toBeUndefined();
  });

  it("delete removes the node; a missing node is one line and exit code 1", async () => {
    await ok(["apply", "-f", "-"], "node/dl-1 created\n", "metadata: {name: dl-1}\n");
    await ok(["delete", "node", "dl-1"], 'node "dl-1" deleted\n');
    expect(await nodectl(["get", "node", "dl-1"])).toEqual({ code: 1, stdout: "", stderr: 'Error from server (NotFound): node "dl-1" not found\n' });
    expect(await nodectl(["describe", "node", "dl-1"])).toEqual({ code: 1, stdout: "", stderr: 'Error from server (NotFound): node "dl-1" not found\n' });
    expect(await nodectl(["delete", "node", "dl-1"])).toEqual({ code: 1, stdout: "", stderr: 'Error from server (NotFound): node "dl-1" not found\n' });
  });

  it("a wrong server address is one clear line and exit code 1", async () => {
    const port = await closedPort();
    const line = `error: cannot reach the nodeplane server at 127.0.0.1:${port}: connection refused (is it running? set --server or NODEPLANE_SERVER)\n`;
    expect(await nodectl(["--server", `127.0.0.1:${port}`, "get", "nodes"])).toEqual({ code: 1, stdout: "", stderr: line });
    expect(await nodectl(["describe", "node", "x", "-s", `127.0.0.1:${port}`])).toEqual({ code: 1, stdout: "", stderr: line });
    // A server that accepts connections and never answers: given up after the connect timeout.
    const held = new Set<Socket>();
    const silent = createServer((socket) => held.add(socket));
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    const silentAt = `127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      expect(await nodectl(["get", "nodes", "--server", silentAt, "--connect-timeout", "500ms"])).toEqual({
        code: 1,
        stdout: "",
        stderr: `error: cannot reach the nodeplane server at ${silentAt}: no connection within 0.5s (is it running? set --server or NODEPLANE_SERVER)\n`,
      });
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
    expect(await nodectl(["get", "nodes", "--server", "not-an-address"])).toEqual({
      code: 1,
      stdout: "",
      stderr: 'error: --server: "not-an-address" is not host:port (e.g. 127.0.0.1:50051)\n',
    });
  });

  it("version prints the client version and whether the server answers", async () => {
    const r = await nodectl(["version"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(new RegExp(`^Client Version: \\d+\\.\\d+\\.\\d+\\nServer: ${address.replace(/\./g, "\\.")} \\(reachable, nodeplane\\.v1\\.NodeService at revision \\d+\\)\\n$`));
  });

  it("describe node shows the node as kubectl would", async () => {
    const r = await nodectl(["describe", "node", "ap-1"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(/^Name:\s+ap-1\nRoles:\s+worker\nLabels:\s+node-role\.kubernetes\.io\/worker=\n\s+tier=web\nAnnotations:\s+<none>\n/);
    expect(r.stdout).toContain("Taints:             dedicated=gpu:NoSchedule\nUnschedulable:      true\n");
    expect(r.stdout).toMatch(/\n  Ready\s+True\s+\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\s+.*AgentReady\s+ready\n/);
    expect(r.stdout).toContain("ProviderID:                   inventory://rack1/m1\nEvents:                       <none>\n");
  });

  it("get nodes -w prints the table, then a row per change until interrupted", async () => {
    await ok(["apply", "-f", "-"], "node/wt-1 created\n", "metadata: {name: wt-1, labels: {watch: me}}\n");
    const plain = watch(["get", "nodes", "-w", "-l", "watch"]);
    const events = watch(["get", "nodes", "--watch", "-l", "watch", "--output-watch-events"]);
    await plain.next((l) => /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$/.test(l));
    await plain.next((l) => /^wt-1\s+Unknown\s+<none>\s+\d+s\s*$/.test(l));
    await events.next((l) => /^EVENT\s+NAME\s+STATUS/.test(l));
    await events.next((l) => /^ADDED\s+wt-1\s+Unknown\s/.test(l));

    await ok(["cordon", "wt-1"], "node/wt-1 cordoned\n");
    await plain.next((l) => /^wt-1\s+Unknown,SchedulingDisabled\s+<none>\s/.test(l));
    await events.next((l) => /^MODIFIED\s+wt-1\s+Unknown,SchedulingDisabled\s/.test(l));

    await ok(["apply", "-f", "-"], "node/wt-2 created\n", "metadata: {name: wt-2, labels: {watch: me, node-role.kubernetes.io/worker: ''}}\n");
    await plain.next((l) => /^wt-2\s+Unknown\s+worker\s/.test(l));
    await events.next((l) => /^ADDED\s+wt-2\s+Unknown\s+worker\s/.test(l));

    await ok(["label", "node", "wt-2", "node-role.kubernetes.io/gpu="], "node/wt-2 labeled\n");
    await plain.next((l) => /^wt-2\s+Unknown\s+gpu,worker\s/.test(l));
    await events.next((l) => /^MODIFIED\s+wt-2\s+Unknown\s+gpu,worker\s/.test(l));

    // A node leaving the selector, and a deleted one, are rows too.
    await ok(["label", "node", "wt-1", "watch-"], "node/wt-1 unlabeled\n");
    await plain.next((l) => /^wt-1\s/.test(l));
    await events.next((l) => /^DELETED\s+wt-1\s/.test(l));
    await ok(["delete", "node", "wt-2"], 'node "wt-2" deleted\n');
    await plain.next((l) => /^wt-2\s/.test(l));
    await events.next((l) => /^DELETED\s+wt-2\s/.test(l));

    // One row per change, nothing else; Ctrl-C ends it cleanly.
    for (const w of [plain, events]) {
      expect(w.lines).toHaveLength(7);
      w.child.kill("SIGINT");
      const [code] = (await once(w.child, "exit")) as [number | null];
      expect(code).toBe(0);
      expect(w.stderr()).toBe("");
    }
  });
});
