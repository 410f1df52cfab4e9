/**
 * Leader election as the server wires it: on etcd one replica runs the controllers and says so
 * in /readyz and /metrics, the others are ready without them; a replica shut down releases the
 * Lease and another takes over at its next read; on SQLite the one server always leads; bad
 * --leader-elect-* durations are refused at start-up naming the flag.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { type Logger, pino } from "pino";
import { NodeplaneServer } from "../../src/server/server.js";
import { EtcdStore } from "../../src/store/etcd.js";
import { etcdForFile } from "../support/etcd.js";
import { startHarness } from "../support/server.js";

const etcd = etcdForFile();
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A logger whose lines can be waited for (pino JSON, in memory). */
function capturing(): { logger: Logger; line(msg: string, fields?: Record<string, unknown>): Promise<void> } {
  const lines: Record<string, unknown>[] = [];
  const waiters: { test: (l: Record<string, unknown>) => boolean; resolve: () => void }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      const l = JSON.parse(chunk.toString()) as Record<string, unknown>;
      lines.push(l);
      for (const w of waiters.splice(0)) (w.test(l) ? w.resolve : () => waiters.push(w))();
      done();
    },
  });
  const matches = (msg: string, fields: Record<string, unknown>) => (l: Record<string, unknown>) =>
    String(l.msg).includes(msg) && Object.entries(fields).every(([k, v]) => l[k] === v);
  return {
    logger: pino({ level: "info" }, stream),
    line: (msg, fields = {}) => (lines.some(matches(msg, fields)) ? Promise.resolve() : new Promise((resolve) => waiters.push({ test: matches(msg, fields), resolve }))),
  };
}

async function replica(prefix: string, identity: string): Promise<{ server: NodeplaneServer; line: ReturnType<typeof capturing>["line"] }> {
  const { logger, line } = capturing();
  const server = await NodeplaneServer.start({
    listen: "127.0.0.1:0",
    httpListen: "127.0.0.1:0",
    dataDir: "",
    store: await EtcdStore.open({ endpoints: etcd().endpoints, prefix }),
    logger,
    // A lease far longer than the test: a replica takes over only a released Lease. A renew
    // deadline that a loaded machine cannot miss: the leader never steps down on its own here.
    leaderElection: { identity, leaseDurationMs: 120_000, renewDeadlineMs: 10_000, retryPeriodMs: 500 },
  });
  cleanup.push(() => server.shutdown());
  await server.whenReady();
  return { server, line };
}

const get = async (server: NodeplaneServer, path: string): Promise<{ status: number; body: string }> => {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}${path}`);
  return { status: res.status, body: await res.text() };
};

describe("leader election in the server", () => {
  it("runs the controllers on one replica, reports who leads on every one, and hands over on shutdown", async () => {
    const prefix = `/np-leader-${randomBytes(6).toString("hex")}`;
    const { server: a, line: aLog } = await replica(prefix, "replica-a");
    await aLog("became the leader");
    expect(await get(a, "/readyz")).toEqual({ status: 200, body: "ok\nleader: replica-a (this replica)\n" });
    const { server: b, line: bLog } = await replica(prefix, "replica-b");
    await bLog("leader observed", { leader: "replica-a" });
    expect(await get(b, "/readyz")).toEqual({ status: 200, body: "ok\nleader: replica-a\n" });
    expect((await get(a, "/metrics")).body).toMatch(/nodeplane_leader\{identity="replica-a"\} 1/);
    expect((await get(b, "/metrics")).body).toMatch(/nodeplane_leader\{identity="replica-b"\} 0/);
    expect((await get(b, "/metrics")).body).toMatch(/nodeplane_leader_holder\{identity="replica-a"\} 1/);

    // Shut down, a releases the Lease: b takes it at its next read, not after the lease's 2 minutes.
    await a.shutdown();
    await aLog("leader lease released");
    await bLog("became the leader");
    expect(await get(b, "/readyz")).toEqual({ status: 200, body: "ok\nleader: replica-b (this replica)\n" });
    expect((await get(b, "/metrics")).body).toMatch(/nodeplane_leader\{identity="replica-b"\} 1/);
  });

  it("on SQLite always runs the controllers, without election", async () => {
    const h = await startHarness({ httpListen: "127.0.0.1:0" });
    cleanup.push(() => h.close());
    const res = await fetch(`http://127.0.0.1:${h.server.httpPort}/readyz`);
    expect(await res.text()).toBe("ok\n");
    expect(await (await fetch(`http://127.0.0.1:${h.server.httpPort}/metrics`)).text()).toMatch(/nodeplane_leader\{identity="[^"]+"\} 1/);
  });

  const run = promisify(execFile);
  it.each([
    ["a renew deadline not above the retry period", ["--leader-elect-renew-deadline", "2s"], "--leader-elect-renew-deadline: \"2000ms\": must be more than 1.2 × --leader-elect-retry-period"],
    ["a lease not above the renew deadline", ["--leader-elect-lease-duration", "10s"], "--leader-elect-lease-duration: \"10000ms\": must be longer than --leader-elect-renew-deadline"],
    ["a lease of part seconds", ["--leader-elect-lease-duration", "15500ms"], "must be whole seconds"],
    ["a bad boolean", ["--leader-elect=maybe"], "\"maybe\" is not true or false"],
  ])("refuses %s at start-up", async (_what, args, says) => {
    const bin = new URL("../../bin/nodeplane.js", import.meta.url).pathname;
    const err = (await run(process.execPath, [bin, "serve", "--store", "etcd", "--etcd-endpoints", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--http-listen", "", ...args]).catch(
      (e: unknown) => e,
    )) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toContain(says);
  });
});
