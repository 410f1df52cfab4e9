/**
 * The SDK over several replicas (in-process servers on one real etcd, one prefix): a NodeClient
 * given several addresses moves to another replica when its own goes away; a Watch resumed from
 * its last revision on another replica has no gap and no duplicate; an Informer and a NodeAgent
 * carry on through the loss of the replica they were using.
 */
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { NodeAgent } from "../../src/agent/agent.js";
import { NodeClient, type WatchEvent } from "../../src/client/client.js";
import { UnavailableError } from "../../src/client/errors.js";
import { Informer } from "../../src/client/informer.js";
import { parseEndpoints } from "../../src/client/endpoints.js";
import { createLogger } from "../../src/log.js";
import { NodeplaneServer } from "../../src/server/server.js";
import { EtcdStore } from "../../src/store/etcd.js";
import { etcdForFile } from "../support/etcd.js";
import { fixedMachine } from "../support/machine.js";
import { agentNode } from "../support/server.js";
import { CountingClient } from "../support/replicas.js";
import { Tally } from "../support/tally.js";

const etcd = etcdForFile();

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** `n` replicas on one prefix; each is shut down at the end if the test has not. */
async function replicas(n: number): Promise<NodeplaneServer[]> {
  const prefix = `/np-failover-${randomBytes(6).toString("hex")}`;
  const out: NodeplaneServer[] = [];
  for (let i = 0; i < n; i++) {
    const server = await NodeplaneServer.start({
      listen: "127.0.0.1:0",
      httpListen: null,
      dataDir: "",
      store: await EtcdStore.open({ endpoints: etcd().endpoints, prefix }),
      logger: createLogger("silent"),
      nodeLifecycle: false,
      shutdownTimeoutMs: 1000,
    });
    await server.whenReady();
    cleanup.push(() => server.shutdown());
    out.push(server);
  }
  return out;
}

function clientOf(servers: NodeplaneServer[]): NodeClient {
  const client = new NodeClient(servers.map((s) => `127.0.0.1:${s.port}`), { shuffle: false, timeoutMs: 10_000 });
  cleanup.push(() => client.close());
  return client;
}

const rv = (x: { resourceVersion: string } | { metadata?: { resourceVersion: string } }): number =>
  Number("resourceVersion" in x ? x.resourceVersion : x.metadata?.resourceVersion);

describe("NodeClient over several replicas", () => {
  it("takes addresses as a comma list or an array, dropping blanks and repeats", () => {
    expect(parseEndpoints(" a:1, b:2 ,,a:1")).toEqual(["a:1", "b:2"]);
    expect(parseEndpoints(["a:1", "c:3"])).toEqual(["a:1", "c:3"]);
    expect(() => parseEndpoints(" , ")).toThrow(/no server address/);
    expect(new NodeClient("127.0.0.1:1, 127.0.0.1:2").address).toBe("127.0.0.1:1,127.0.0.1:2");
  });

  it("moves to the next replica when its own is gone: a call that could reach no server is sent to the next one", async () => {
    const [a, b, c] = await replicas(3);
    const client = clientOf([a!, b!, c!]);
    await client.register(agentNode("f-1"));
    expect(client.endpoint).toBe(`127.0.0.1:${a!.port}`);
    await a!.shutdown();
    // Refused by a: never sent, so b answers the same call.
    const node = await client.getNode("f-1");
    expect(node.metadata?.name).toBe("f-1");
    expect(client.endpoint).toBe(`127.0.0.1:${b!.port}`);
    await b!.shutdown();
    expect((await client.updateStatus("f-1", { capacity: { cpu: "8" } })).status?.capacity.cpu).toBe("8");
    expect(client.endpoint).toBe(`127.0.0.1:${c!.port}`);
    await c!.shutdown();
    await expect(client.getNode("f-1")).rejects.toBeInstanceOf(UnavailableError);
  });

  it("resumes a Watch on another replica from the last revision it saw, with no gap and no duplicate", async () => {
    const servers = await replicas(2);
    const client = clientOf(servers);
    const writer = clientOf([...servers].reverse());
    const acked: number[] = [];
    const write = async (i: number): Promise<void> => {
      const res = i % 3 === 0 ? (await writer.register(agentNode(`w-${i}`))).node : await writer.updateStatus(`w-0`, { capacity: { cpu: String(i) } });
      // Lease renewals in between: revisions no node watcher is told of.
      await writer.renewLease("w-0");
      acked.push(rv(res!));
    };
    await write(0);
    const seen: WatchEvent[] = [];
    const events = client.watch({ resourceVersion: String(acked[0]) })[Symbol.asyncIterator]();
    for (let i = 1; i <= 10; i++) await write(i);
    while (seen.length < 10) seen.push((await events.next()).value as WatchEvent);

    // The watched replica goes away (writes go on through the other one): the watch ends.
    const down = servers[0]!.shutdown();
    const ended = await events.next().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(ended).toBeInstanceOf(UnavailableError);
    await down;
    for (let i = 11; i <= 20; i++) await write(i);
    const resumed = client.watch({ resourceVersion: seen.at(-1)!.resourceVersion })[Symbol.asyncIterator]();
    while (rv(seen.at(-1)!) < acked.at(-1)!) seen.push((await resumed.next()).value as WatchEvent);
    await resumed.return(undefined);
    expect(client.endpoint).toBe(`127.0.0.1:${servers[1]!.port}`);
    expect(seen.map(rv)).toEqual(acked.slice(1));
  });

  it("keeps an Informer current through the loss of its replica: every change once, none twice", async () => {
    const servers = await replicas(3);
    const writer = clientOf([servers[2]!]);
    const revisions = new Map<string, number[]>();
    const newest = new Tally();
    const note = (n: { metadata?: { name: string; resourceVersion: string } }): void => {
      const name = n.metadata!.name;
      revisions.set(name, [...(revisions.get(name) ?? []), rv(n)]);
      newest.set(rv(n));
    };
    const informer = new Informer({ client: clientOf(servers), onAdd: note, onUpdate: (_, n) => note(n), backoff: { initialMs: 50 } });
    informer.start();
    cleanup.push(() => informer.stop());
    await informer.synced;
    const acked = new Map<string, number[]>();
    const write = async (name: string, cpu: string): Promise<void> => {
      const node = (await writer.register(agentNode(name, { status: { capacity: { cpu } } }))).node!;
      acked.set(name, [...(acked.get(name) ?? []), rv(node)]);
    };
    for (let i = 0; i < 5; i++) await write(`i-${i % 2}`, String(i));
    await servers[0]!.shutdown();
    for (let i = 5; i < 10; i++) await write(`i-${i % 2}`, String(i));
    await newest.reach(Math.max(...[...acked.values()].flat()));
    expect(revisions).toEqual(acked);
  });

  it("keeps a NodeAgent heartbeating through the loss of its replica", async () => {
    const servers = await replicas(2);
    const client = new CountingClient(servers.map((s) => `127.0.0.1:${s.port}`), { shuffle: false });
    cleanup.push(() => client.close());
    const agent = new NodeAgent({
      client,
      nodeName: "hb-1",
      probe: () => fixedMachine("hb-1"),
      leaseDurationSeconds: 1,
    });
    agent.start();
    cleanup.push(() => agent.stop());
    await agent.registered;
    await client.renewals.reach(2);
    await servers[0]!.shutdown();
    const before = client.renewals.value;
    const other = clientOf([servers[1]!]);
    const renewedAt = (await other.getLease("hb-1")).spec?.renewTime?.getTime() ?? 0;
    await client.renewals.reach(before + 3);
    expect((await other.getLease("hb-1")).spec?.renewTime?.getTime()).toBeGreaterThan(renewedAt);
    expect(client.endpoint).toBe(`127.0.0.1:${servers[1]!.port}`);
  });
});
