/**
 * Issue 11, defect 6: connection limits. ~21,000 idle TCP connections used to exhaust the
 * server's file descriptors, with nothing logged and no idle connection ever closed. With a small
 * cap: connections past it are closed as soon as they are accepted, a warning is logged near the
 * limit and on refusal, /readyz answers 503 while saturated, and the server serves again once
 * connections close. Idle connections are closed; the per-connection stream cap is advertised.
 */
import { once } from "node:events";
import http2 from "node:http2";
import { connect, type Socket } from "node:net";
import { Writable } from "node:stream";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { NodeClient } from "../../src/client/client.js";
import { UnavailableError } from "../../src/client/errors.js";
import { NodeplaneServer, type ServeOptions } from "../../src/server/server.js";
import { agentNode } from "../support/server.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server whose log lines are kept (JSON objects) for the test to read. */
async function start(o: Partial<ServeOptions>): Promise<{ server: NodeplaneServer; logs: Record<string, unknown>[] }> {
  const dataDir = mkdtempSync(join(tmpdir(), "nodeplane-conns-"));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n")) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const server = await NodeplaneServer.start({
    listen: "127.0.0.1:0",
    httpListen: "127.0.0.1:0",
    dataDir,
    logger: pino({ level: "warn" }, sink),
    nodeLifecycle: false,
    ...o,
  });
  cleanups.push(() => server.shutdown());
  await server.whenReady();
  return { server, logs };
}

/** A raw TCP connection that says nothing; resolves once connected. */
async function rawConnection(port: number): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  cleanups.push(() => void socket.destroy());
  socket.on("error", () => {});
  await once(socket, "connect");
  return socket;
}

async function readyz(port: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: await res.text() };
}

describe("connection limits", () => {
  it("refuses connections past --max-connections cleanly, warns, is not ready while saturated, and serves again", async () => {
    const { server, logs } = await start({ maxConnections: 5 });
    const sockets: Socket[] = [];
    for (let i = 0; i < 5; i++) sockets.push(await rawConnection(server.port));
    // The server counts a connection once it has accepted it: readyz says saturated once all five are in.
    let ready = await readyz(server.httpPort!);
    for (let i = 0; i < 100 && ready.status === 200; i++) ready = await readyz(server.httpPort!);
    expect(ready).toEqual({ status: 503, body: "not ready: gRPC connections at the limit: 5 of 5 (--max-connections)\n" });
    expect(logs.map((l) => l.msg)).toContain("gRPC connections near the limit: 5 of 5 (--max-connections); more are refused");

    // The sixth is closed by the server as soon as it is accepted.
    const sixth = await rawConnection(server.port);
    await once(sixth, "close");
    const client = new NodeClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => client.close());
    await expect(client.register(agentNode("n1"), { timeoutMs: 5000 })).rejects.toBeInstanceOf(UnavailableError);
    expect(logs.map((l) => l.msg)).toContain("gRPC connection refused: 5 connections open, the limit (--max-connections); 1 refused so far");

    await Promise.all(sockets.map(async (s) => {
      s.destroy();
      await once(s, "close");
    }));
    // Once the server has seen them close it is ready again, and a new connection is served (a
    // client on a subchannel of its own: the refused one waits out its reconnect backoff).
    ready = await readyz(server.httpPort!);
    for (let i = 0; i < 100 && ready.status !== 200; i++) ready = await readyz(server.httpPort!);
    expect(ready.status).toBe(200);
    const fresh = new NodeClient(`127.0.0.1:${server.port}`, { channelOptions: { "grpc.use_local_subchannel_pool": 1 } });
    cleanups.push(() => fresh.close());
    expect((await fresh.register(agentNode("n1"), { timeoutMs: 5000 })).node?.metadata?.name).toBe("n1");
  });

  it("closes a connection that says nothing, and an HTTP/2 connection idle for --connection-idle-timeout", async () => {
    const { server } = await start({ connectionIdleMs: 300 });
    const socket = await rawConnection(server.port);
    await once(socket, "close"); // bounded by the test's timeout
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    cleanups.push(() => void session.destroy());
    session.on("error", () => {});
    await once(session, "goaway"); // no call on it: the server sends GOAWAY
    await once(session, "close");
    const client = new NodeClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => client.close());
    expect((await client.register(agentNode("after-idle"))).node?.metadata?.name).toBe("after-idle");
  });

  it("advertises --max-streams-per-connection as HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS", async () => {
    const { server } = await start({ maxStreamsPerConnection: 7 });
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    cleanups.push(() => void session.destroy());
    await once(session, "remoteSettings");
    expect(session.remoteSettings.maxConcurrentStreams).toBe(7);
  });

  it("closes HTTP connections past --http-max-connections", async () => {
    const { server } = await start({ httpMaxConnections: 2 });
    await rawConnection(server.httpPort!);
    await rawConnection(server.httpPort!);
    const third = await rawConnection(server.httpPort!);
    await once(third, "close");
  });
});
