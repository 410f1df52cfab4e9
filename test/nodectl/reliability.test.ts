/**
 * Issue 11 through nodectl (the compiled binary) against the real `nodeplane serve` process:
 * - defect 1: `apply -f` of a manifest with a non-ASCII label key is refused with one line
 *   naming the field, and the server lives (it used to exit);
 * - defect 8: a manifest over the message size limit is said to be too large, not
 *   "TooManyRequests";
 * - defect 3: `get nodes` with 2,000 realistic nodes (about 5 MB, more than one 4 MiB message)
 *   lists them all, page by page, as the SDK's Informer does; an unpaged ListNodes is refused
 *   with RESOURCE_EXHAUSTED saying to page, not a transport failure.
 *
 * The realistic node is the fixture the benchmarks use too (test/support/realistic-node.ts).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { realisticNode, scaleNodeName } from "../support/realistic-node.js";
import { NodeClient } from "../../src/client/client.js";
import { ResourceExhaustedError, type RpcError } from "../../src/client/errors.js";
import { Informer } from "../../src/client/informer.js";
import { type Spawned, spawnServer } from "../support/process.js";

const NODECTL = fileURLToPath(new URL("../../bin/nodectl.js", import.meta.url));
const FLEET = 2000;

let server: Spawned;
let client: NodeClient;
let dataDir: string;
let home: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "nodectl-reliability-data-"));
  home = mkdtempSync(join(tmpdir(), "nodectl-reliability-home-"));
  server = await spawnServer(["--listen", "127.0.0.1:0", "--http-listen", "", "--data-dir", dataDir, "--log-level", "warn", "--controllers=*,-nodelifecycle"]);
  client = new NodeClient(`127.0.0.1:${server.grpcPort}`);
});

afterAll(async () => {
  client?.close();
  server?.child.kill("SIGTERM");
  await server?.exited;
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

function nodectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, NODEPLANE_SERVER: `127.0.0.1:${server.grpcPort}`, HOME: home, NO_COLOR: "1" };
  delete env.NODEPLANE_CONFIG;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [NODECTL, ...args], { env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") reject(err);
      else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

/** The server process has not exited, and answers. */
async function alive(): Promise<void> {
  expect(server.child.exitCode).toBeNull();
  expect(server.child.signalCode).toBeNull();
  await client.listNodes({ limit: 1 });
}

describe("nodectl against the real server", () => {
  it("apply -f with a non-ASCII label key: one line naming the field, and the server lives", async () => {
    const file = join(home, "bad.yaml");
    writeFileSync(file, "apiVersion: v1\nkind: Node\nmetadata:\n  name: accent\n  labels:\n    ü: \"1\"\n    café/x: \"2\"\n");
    const r = await nodectl(["apply", "-f", file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^Error from server \(Invalid\): metadata\.labels\["ü"\]: "ü": key .*\n$/);
    await alive();
  });

  it("apply -f of a manifest over the message size limit says it is too large", async () => {
    const file = join(home, "huge.yaml");
    writeFileSync(file, `metadata: {name: huge}\nstatus:\n  conditions:\n  - {type: Ready, status: "True", message: ${"x".repeat(5 * 1024 * 1024)}}\n`);
    const r = await nodectl(["apply", "-f", file]);
    expect(r).toMatchObject({ code: 1, stdout: "" });
    expect(r.stderr).toMatch(/^Error from server \(RequestEntityTooLarge\): .*larger than max \(\d+ vs\.? 4194304\)\n$/);
    await alive();
  });

  it("get nodes lists 2,000 realistic nodes (more than one message) page by page, as the Informer does", async () => {
    for (let i = 0; i < FLEET; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, FLEET - i) }, (_, j) => client.register(realisticNode(i + j))));
    }
    // Unpaged: a clear refusal naming the size and the limit, not a transport failure.
    const err = (await client.listNodes({ limit: 0 }).catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err.details).toMatch(
      /^ListNodes without a limit would answer 2000 objects in about \d+ bytes, more than the largest message of 4194304 bytes \(--max-message-size\): use limit \(e\.g\. 500\) and continue_token to page$/,
    );

    const r = await nodectl(["get", "nodes"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(Array.from({ length: FLEET }, (_, i) => scaleNodeName(i)));

    const informer = new Informer({ client });
    informer.start();
    await informer.synced;
    expect(informer.list().length).toBe(FLEET);
    await informer.stop();
    await alive();
  }, 180_000); // 2,000 registrations on a shared 2-core machine
});
