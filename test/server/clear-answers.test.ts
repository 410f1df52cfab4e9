/**
 * Issue 11, defect 8: each answer says what happened.
 * - A full disk (SQLITE_FULL, injected at the store's edge: the inline writer's fault hook
 *   throws the driver's own error) answers RESOURCE_EXHAUSTED "disk full …", and /readyz is 503
 *   while writes fail; once a write succeeds again it is 200. Reads go on meanwhile.
 * - Writes and deletes naming an invalid node answer INVALID_ARGUMENT as Register does; a read
 *   without a name does too.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { NodeClient } from "../../src/client/client.js";
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError, type RpcError } from "../../src/client/errors.js";
import { createLogger } from "../../src/log.js";
import { NodeplaneServer } from "../../src/server/server.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("disk full", () => {
  it("answers RESOURCE_EXHAUSTED 'disk full', /readyz 503 while writes fail, and recovers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nodeplane-diskfull-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    let full = false;
    const store = await SqliteStore.open({
      dir,
      writerThread: false,
      faultInjector: (req) => {
        if (full && (req.type === "batch" || req.type === "probe")) throw new Database.SqliteError("database or disk is full", "SQLITE_FULL");
      },
    });
    const server = await NodeplaneServer.start({
      listen: "127.0.0.1:0",
      httpListen: "127.0.0.1:0",
      dataDir: dir,
      store,
      logger: createLogger("silent"),
      nodeLifecycle: false,
    });
    cleanups.push(() => server.shutdown());
    await server.whenReady();
    const client = new NodeClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => client.close());
    const readyz = async (): Promise<{ status: number; body: string }> => {
      const res = await fetch(`http://127.0.0.1:${server.httpPort}/readyz`);
      return { status: res.status, body: await res.text() };
    };

    await client.register(agentNode("before"));
    expect((await readyz()).status).toBe(200);
    full = true;
    const err = (await client.register(agentNode("during")).catch((e: unknown) => e)) as RpcError;
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err.details).toMatch(/^disk full: the store could not commit 1 write\(s\), none applied \(SQLITE_FULL: database or disk is full\); free space on the filesystem of .*: writes fail until then$/);
    const ready = await readyz();
    expect(ready.status).toBe(503);
    expect(ready.body).toMatch(/^not ready: disk full: /);
    expect((await client.getNode("before")).metadata?.name).toBe("before"); // reads go on

    full = false;
    expect(await readyz()).toEqual({ status: 200, body: "ok\n" });
    expect((await client.register(agentNode("after"))).node?.metadata?.name).toBe("after");
  });
});

describe("names", () => {
  let h: Harness;
  const harness = async (): Promise<Harness> => {
    h = await startHarness();
    cleanups.push(() => h.close());
    await h.client.register(agentNode("real"));
    return h;
  };

  it.each([
    // ListEvents' "" means every node: not a bad name there.
    { rpc: "DeleteNode", call: (c: NodeClient, name: string) => c.deleteNode(name), names: ["", "Bad_Name", "-x", "a/b"] },
    { rpc: "UpdateStatus", call: (c: NodeClient, name: string) => c.updateStatus(name, {}), names: ["", "Bad_Name", "-x", "a/b"] },
    { rpc: "ListEvents", call: (c: NodeClient, name: string) => c.listEvents(name), names: ["Bad_Name", "-x", "a/b"] },
  ])("$rpc with an invalid name answers INVALID_ARGUMENT naming the rule", async ({ call, names }) => {
    const { client, server } = await harness();
    const before = await server.store.currentRevision();
    for (const name of names) {
      const err = (await call(client, name).catch((e: unknown) => e)) as RpcError;
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err.details).toMatch(/^(name|node_name): ".*": must /);
    }
    expect(await server.store.currentRevision()).toBe(before);
  });

  it("GetNode and GetLease without a name answer INVALID_ARGUMENT; with a name no node can have, NOT_FOUND saying why", async () => {
    const { client } = await harness();
    for (const get of [(n: string) => client.getNode(n), (n: string) => client.getLease(n)]) {
      const empty = (await get("").catch((e: unknown) => e)) as RpcError;
      expect(empty).toBeInstanceOf(InvalidArgumentError);
      expect(empty.details).toBe('name: "": must not be empty: name the node');
      const bad = (await get("Bad_Name").catch((e: unknown) => e)) as RpcError;
      expect(bad).toBeInstanceOf(NotFoundError);
      expect(bad.details).toMatch(/"(kube-node-lease\/)?Bad_Name" not found: not a valid node name: it must consist of lower case alphanumeric characters/);
    }
  });
});
