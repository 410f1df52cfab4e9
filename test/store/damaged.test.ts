/**
 * Issue 11, defect 7: a damaged or emptied store is refused at open, with what was found and
 * how to repair it, and is never written. A 0-byte nodeplane.db used to open as an empty store
 * (every node gone without a word); garbage in the middle of the file used to be written to.
 * The marker file tells a new data directory from one whose store was lost.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { UnavailableError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { NodeplaneServer } from "../../src/server/server.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { spawnServer } from "../support/process.js";
import { NodeClient } from "../../src/client/client.js";
import { type RpcError, UnavailableError as ClientUnavailableError } from "../../src/client/errors.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-damaged-"));
  dirs.push(d);
  return d;
}

const enc = new TextEncoder();

/** A closed store in a new directory holding `n` keys of about 1 KB each. */
async function storeWith(n: number): Promise<string> {
  const dir = tempDir();
  const store = await SqliteStore.open({ dir });
  for (let i = 0; i < n; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, n - i) }, (_, j) =>
        store.txn({ compare: [], ops: [{ type: "put", key: `/k/${String(i + j).padStart(6, "0")}`, value: enc.encode(`v${i + j}`.repeat(150)) }] }),
      ),
    );
  }
  await store.close();
  return dir;
}

/** A closed store with 64 KiB of garbage in the middle of its file (whole pages of the kv and log b-trees). */
async function damagedStore(): Promise<string> {
  const dir = await storeWith(3000);
  const size = fs.statSync(db(dir)).size;
  expect(size).toBeGreaterThan(1024 * 1024);
  const fd = fs.openSync(db(dir), "r+");
  const garbage = Buffer.alloc(64 * 1024, 0);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24; // deterministic
  fs.writeSync(fd, garbage, 0, garbage.length, Math.floor(size / 2 / 4096) * 4096);
  fs.closeSync(fd);
  return dir;
}

const db = (dir: string): string => path.join(dir, "nodeplane.db");
const marker = (dir: string): string => path.join(dir, "nodeplane.db.marker");
const sha = (file: string): string => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

async function refusal(dir: string): Promise<Error> {
  const err = await SqliteStore.open({ dir }).then(
    async (store) => {
      await store.close();
      return new Error("opened");
    },
    (e: unknown) => e as Error,
  );
  expect(err).toBeInstanceOf(UnavailableError);
  return err;
}

describe("a damaged or emptied store is refused at open", () => {
  it("a 0-byte database file (as left by an earlier version, with no marker)", async () => {
    const dir = await storeWith(10);
    fs.truncateSync(db(dir), 0);
    fs.rmSync(marker(dir));
    const err = await refusal(dir);
    expect(err.message).toContain(`the SQLite store ${db(dir)} is empty (0 bytes): its data is gone`);
    expect(err.message).toContain(`mv ${db(dir)} ${db(dir)}.empty`);
    expect(fs.statSync(db(dir)).size).toBe(0);
  });

  it("a 0-byte database file where the marker says a store was created", async () => {
    const dir = await storeWith(10);
    fs.truncateSync(db(dir), 0);
    const err = await refusal(dir);
    expect(err.message).toMatch(/is empty \(0 bytes\); a store was created here on \d{4}-\d\d-\d\dT/);
  });

  it("garbage in the middle of the file: the integrity check fails, the repair path is given, nothing is written", async () => {
    const dir = await damagedStore();
    const before = sha(db(dir));
    const store = await SqliteStore.open({ dir });
    // The check runs in the writer while reads are answered; the write waits for it, then fails.
    const write = store.txn({ compare: [], ops: [{ type: "put", key: "/k/new", value: enc.encode("v") }] });
    const err = (await store.checked.catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err.message).toContain(`the SQLite store ${db(dir)} failed its integrity check (PRAGMA quick_check: `);
    expect(err.message).toContain("nothing was written to it");
    expect(err.message).toContain(`sqlite3 ${db(dir)} .recover | sqlite3 ${db(dir)}.recovered`);
    await expect(write).rejects.toBe(err);
    await expect(store.ping()).rejects.toBe(err);
    await store.close();
    expect(sha(db(dir))).toBe(before);
  });

  it("a missing database where the marker says a store was created", async () => {
    const dir = await storeWith(10);
    fs.rmSync(db(dir));
    const err = await refusal(dir);
    expect(err.message).toContain(`the SQLite store ${db(dir)} is missing, but ${marker(dir)} says a store was created here on`);
    expect(err.message).toContain(`remove ${marker(dir)}`);
    expect(fs.existsSync(db(dir))).toBe(false);
  });

  it("a database without its tables (emptied)", async () => {
    const dir = await storeWith(10);
    const raw = new Database(db(dir));
    raw.exec("DROP TABLE kv; DROP TABLE log; DROP TABLE meta;");
    raw.close();
    const err = await refusal(dir);
    expect(err.message).toContain("holds no nodeplane store (its kv, log and meta tables are missing)");
  });

  it("a store without a marker (from before markers) is checked, opened and gets one; a new directory gets one", async () => {
    const dir = await storeWith(10);
    fs.rmSync(marker(dir));
    const store = await SqliteStore.open({ dir });
    expect((await store.list("/k/")).kvs.length).toBe(10);
    await store.close();
    expect(JSON.parse(fs.readFileSync(marker(dir), "utf8"))).toMatchObject({ created: expect.stringMatching(/^\d{4}-/) });
    const fresh = tempDir();
    await (await SqliteStore.open({ dir: fresh })).close();
    expect(fs.existsSync(marker(fresh))).toBe(true);
  });

  it("a server on a damaged store is never ready, answers writes UNAVAILABLE saying why, and writes nothing", async () => {
    const dir = await damagedStore();
    const before = sha(db(dir));
    const server = await NodeplaneServer.start({ listen: "127.0.0.1:0", httpListen: "127.0.0.1:0", dataDir: dir, logger: createLogger("silent"), nodeLifecycle: false });
    const client = new NodeClient(`127.0.0.1:${server.port}`);
    try {
      await expect(server.whenReady()).rejects.toThrow("failed its integrity check");
      const res = await fetch(`http://127.0.0.1:${server.httpPort}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.text()).toMatch(/^not ready: start-up failed: storage unavailable: the SQLite store .* failed its integrity check/);
      const err = (await client.register({ metadata: { name: "n1" } }).catch((e: unknown) => e)) as RpcError;
      expect(err).toBeInstanceOf(ClientUnavailableError);
      expect(err.details).toContain("failed its integrity check");
    } finally {
      client.close();
      await server.shutdown();
    }
    expect(sha(db(dir))).toBe(before);
  });

  it("nodeplane serve on a damaged store stops with the message and the repair path, having written nothing", async () => {
    const dir = await damagedStore();
    const before = sha(db(dir));
    const server = await spawnServer(["--listen", "127.0.0.1:0", "--http-listen", "", "--data-dir", dir, "--log-level", "fatal"]);
    expect((await server.exited).code).toBe(1);
    expect(server.stderr()).toContain(`nodeplane: storage unavailable: the SQLite store ${db(dir)} failed its integrity check`);
    expect(sha(db(dir))).toBe(before);
  });

  it("the server refuses to start on a 0-byte store, saying so", async () => {
    const dir = await storeWith(10);
    fs.truncateSync(db(dir), 0);
    const start = NodeplaneServer.start({ listen: "127.0.0.1:0", httpListen: null, dataDir: dir, logger: createLogger("silent"), nodeLifecycle: false });
    await expect(start).rejects.toThrow(/is empty \(0 bytes\)/);
  });
});
