/**
 * Replicas as real processes: three `nodeplane serve` on a three-member etcd, agents
 * heartbeating through them (SDK NodeAgents and one real `nodeplane agent`), a writer recording
 * every acknowledged Register/UpdateStatus/UpdateNode, and watchers.
 *
 * kill -9 of the leader replica under that load: another replica leads within the lease duration
 * plus two retry periods; every acknowledged write is there; a watcher of the killed replica
 * resumes on another with exactly the events of a watcher that never moved; no agent's node is
 * judged Unknown — while a node with no agent is, by the new leader, a full grace period after it
 * took over (the proof that the new leader's controller did judge the nodes). Once with short
 * leader-election timings, once with Kubernetes' defaults (15 s / 10 s / 2 s).
 *
 * The measured takeover times are printed (`failover: …`).
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { NodeAgent } from "../../src/agent/agent.js";
import { NodeClient, type WatchEvent } from "../../src/client/client.js";
import { UnavailableError } from "../../src/client/errors.js";
import { sleep, systemClock } from "../../src/clock.js";
import { type EtcdCluster, raftLeader, startEtcd } from "../support/etcd.js";
import { fixedMachine } from "../support/machine.js";
import { spawnAgent, type SpawnedAgent } from "../support/process.js";
import { CountingClient, currentLeader, killAll, leading, nextLeader, noLeader, ResumingWatch, startReplicas, Writer } from "../support/replicas.js";
import { agentNode } from "../support/server.js";
import { Tally } from "../support/tally.js";

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});
let etcd: EtcdCluster | undefined;
afterAll(async () => {
  await etcd?.stop();
});

async function cluster(): Promise<EtcdCluster> {
  await etcd?.stop();
  etcd = await startEtcd({ members: 3 });
  return etcd;
}

function client(addresses: string[], shuffle = false): NodeClient {
  const c = new NodeClient(addresses, { shuffle, timeoutMs: 20_000 });
  cleanup.push(() => c.close());
  return c;
}

const key = (e: WatchEvent): string => `${e.type} ${e.node.metadata?.name} ${e.resourceVersion}`;
const readyOf = (e: WatchEvent): string | undefined => e.node.status?.conditions.find((c) => c.type === "Ready")?.status;

interface Timings {
  leaseMs: number;
  retryMs: number;
  /** --node-monitor-grace-period; undefined: the default (40 s), too long to wait for the dead node. */
  graceMs?: number;
  args: string[];
  agentLeaseSeconds: number;
}

async function failover(t: Timings): Promise<number> {
  const replicas = await startReplicas(await cluster(), 3, t.args);
  cleanup.push(() => killAll(replicas));
  const leader = await currentLeader(replicas);
  const survivors = replicas.filter((r) => r !== leader);
  const all = replicas.map((r) => r.address);
  const start = Number((await client(all).listNodes()).resourceVersion);

  // Watchers: one on the leader (it will move), one on a survivor (the reference).
  const moving = new ResumingWatch(client([leader.address, ...survivors.map((r) => r.address)]), start);
  const deadUnknown = new Tally();
  let deadUnknownAt = 0;
  const reference = new ResumingWatch(client([survivors[0]!.address]), start, (e) => {
    if (e.node.metadata?.name === "dead-1" && readyOf(e) === "Unknown" && deadUnknown.value === 0) {
      deadUnknownAt = e.node.status?.conditions.find((c) => c.type === "Ready")?.lastTransitionTime?.getTime() ?? 0;
      deadUnknown.set(1);
    }
  });
  cleanup.push(() => moving.stop(), () => reference.stop());

  // Agents spread over the replicas, renewing every quarter of their lease.
  const renewals = new Map<string, Tally>();
  const agents: NodeAgent[] = [];
  for (let i = 0; i < 12; i++) {
    const name = `agent-${i}`;
    const c = new CountingClient(all, { timeoutMs: 20_000 });
    cleanup.push(() => c.close());
    renewals.set(name, c.renewals);
    const agent = new NodeAgent({ client: c, nodeName: name, probe: () => fixedMachine(name), leaseDurationSeconds: t.agentLeaseSeconds });
    agent.start();
    agents.push(agent);
    cleanup.push(() => agent.stop());
  }
  const real: SpawnedAgent = spawnAgent(["--server", all.join(","), "--hostname-override", "proc-agent", "--node-lease-duration-seconds", String(t.agentLeaseSeconds), "--log-level", "info"]);
  cleanup.push(() => real.stop());
  await Promise.all([...agents.map((a) => a.registered), real.logLine("registered")]);

  // The writer goes to the leader first: writes are in flight on it when it dies.
  const writer = new Writer(client([leader.address, ...survivors.map((r) => r.address)]), 3);
  cleanup.push(() => writer.stop());
  await writer.count.reach(30);
  // A node no agent heartbeats for, registered just before the kill: only the new leader can judge it.
  const dead = await client(all).register(agentNode("dead-1"));

  // Still the leader (a leader that lost its Lease under load would make this test kill a follower).
  expect((await currentLeader(replicas)).identity, "the leader before the kill").toBe(leader.identity);
  const takeover = nextLeader(survivors, false);
  leader.server.child.kill("SIGKILL");
  const killedAt = performance.now();
  await leader.server.exited;
  const ackedAtKill = writer.count.value;
  const renewalsAtKill = new Map([...renewals].map(([n, tally]) => [n, tally.value]));
  const next = await takeover;
  const takeoverMs = performance.now() - killedAt;
  // Exactly one replica runs the controllers: the new leader.
  expect((await leading(replicas)).map((r) => r.identity)).toEqual([next.identity]);
  console.log(`failover: lease ${t.leaseMs} ms, retry ${t.retryMs} ms: ${next.identity} leads ${Math.round(takeoverMs)} ms after the kill -9 of ${leader.identity}`);
  expect(takeoverMs).toBeLessThan(t.leaseMs + 2 * t.retryMs);

  // Load goes on through the survivors; every agent renews there.
  await writer.count.reach(ackedAtKill + 30);
  await Promise.all([...renewals].map(([n, tally]) => tally.reach(renewalsAtKill.get(n)! + 2)));
  if (t.graceMs !== undefined) {
    // The new leader marks the dead node Unknown a full grace period after it took over — not a
    // grace period after the node's registration (just before the kill), as the old leader would
    // have. Both times are the new leader's own (its log line, the condition it wrote).
    await deadUnknown.reach(1);
    const tookOverAt = Date.parse(String((await next.server.logLine("became the leader")).time));
    expect(deadUnknownAt - tookOverAt).toBeGreaterThanOrEqual(t.graceMs);
  }
  await writer.stop();
  await Promise.all(agents.map((a) => a.stop()));
  const last = Math.max(...writer.acked.map((w) => w.revision));
  await Promise.all([moving.newest.reach(last), reference.newest.reach(last)]);

  // The moving watcher resumed elsewhere with exactly the reference's events: no gap, no duplicate.
  expect([moving.error, reference.error]).toEqual([undefined, undefined]);
  expect(moving.resumes).toBeGreaterThanOrEqual(1);
  expect(moving.endpoints[0]).toBe(leader.address);
  expect(moving.endpoints.length).toBeGreaterThanOrEqual(2);
  const upTo = (w: ResumingWatch): string[] => w.events.filter((e) => Number(e.resourceVersion) <= last).map(key);
  expect(upTo(moving)).toEqual(upTo(reference));
  const revs = moving.events.map((e) => Number(e.resourceVersion));
  expect(revs).toEqual([...revs].sort((a, b) => a - b));
  expect(new Set(revs).size).toBe(revs.length);

  // Every acknowledged write is in the history and in the final state.
  const byRev = new Map(reference.events.map((e) => [Number(e.resourceVersion), e.node.metadata?.name]));
  expect(writer.acked.filter((w) => byRev.get(w.revision) !== w.node)).toEqual([]);
  const final = new Map((await client(all).listAllNodes()).nodes.map((n) => [n.metadata!.name, n]));
  for (const w of writer.acked) {
    const node = final.get(w.node);
    expect(node, w.node).toBeDefined();
    if (w.kind === "status") expect(node!.status?.capacity.cpu).toBe(String(w.seq));
    else expect(Number(node!.metadata?.labels.seq)).toBeGreaterThanOrEqual(w.seq);
  }
  expect(writer.acked.length).toBeGreaterThanOrEqual(ackedAtKill + 30);

  // No heartbeating node was ever judged Unknown, before, during or after the failover.
  const heartbeating = new Set([...renewals.keys(), "proc-agent"]);
  expect(reference.events.filter((e) => heartbeating.has(e.node.metadata?.name ?? "") && readyOf(e) !== "True").map(key)).toEqual([]);
  expect(dead.node?.metadata?.name).toBe("dead-1");
  console.log(
    `failover: ${writer.acked.length} writes acknowledged (${writer.failed} failed: ${JSON.stringify(Object.fromEntries(writer.errors))}), ` +
      `${reference.events.length} node events, the moving watcher resumed ${moving.resumes} time(s) via ${moving.endpoints.join(" → ")}`,
  );
  return takeoverMs;
}

describe("replicas on a three-member etcd", () => {
  it("kill -9 of the leader replica under load (short leader-election timings): a new leader in time, nothing lost, watchers resume, no agent's node judged Unknown", async () => {
    await failover({
      leaseMs: 4000,
      retryMs: 1000,
      graceMs: 10_000,
      agentLeaseSeconds: 4,
      args: [
        ...["--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "1s"],
        ...["--node-monitor-period", "1s", "--node-monitor-grace-period", "10s"],
      ],
    });
  }, 90_000);

  it("kill -9 of the leader replica under load with Kubernetes' default timings: another replica leads in under 20 s", async () => {
    await failover({ leaseMs: 15_000, retryMs: 2000, agentLeaseSeconds: 40, args: [] });
  }, 120_000);

  it("loses one etcd member (its raft leader) and serves on; loses two and fails writes with UNAVAILABLE, not a hang; works again when they return", async () => {
    const members = await cluster();
    const replicas = await startReplicas(members, 3, ["--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "1s"]);
    cleanup.push(() => killAll(replicas));
    await currentLeader(replicas);
    const all = replicas.map((r) => r.address);
    const start = Number((await client(all).listNodes()).resourceVersion);
    const reference = new ResumingWatch(client([replicas[1]!.address]), start);
    cleanup.push(() => reference.stop());
    const writer = new Writer(client(all), 2);
    cleanup.push(() => writer.stop());
    await writer.count.reach(20);

    const first = await raftLeader(members);
    await first.kill();
    const atKill = writer.count.value;
    await writer.count.reach(atKill + 40);
    expect((await client(all).listNodes()).nodes.length).toBeGreaterThan(0);
    await writer.stop();
    console.log(`etcd: one member down: ${writer.count.value - atKill} writes acknowledged since, ${writer.failed} failed (${JSON.stringify(Object.fromEntries(writer.errors))})`);

    // Two down: no quorum. The leader replica cannot renew and stops leading; writes end with
    // UNAVAILABLE, each before the client's own deadline (60 s) — etcd's answer, not a hang.
    const second = members.members.find((m) => m.running && m !== members.members[2])!;
    await second.kill();
    const c = new NodeClient(all, { shuffle: false, timeoutMs: 60_000 });
    cleanup.push(() => c.close());
    const took: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const err = await c.register(agentNode(`quorumless-${i}`)).catch((e: unknown) => e);
      took.push(Math.round(performance.now() - t0));
      expect(err).toBeInstanceOf(UnavailableError);
    }
    await expect(c.getNode("w0-0")).rejects.toBeInstanceOf(UnavailableError);
    // Whichever replica led (leadership may have moved when the first member went) stops.
    await noLeader(replicas);
    console.log(`etcd: two members down: writes failed with UNAVAILABLE after ${took.join(", ")} ms`);

    // Back: a leader again (so etcd has its quorum), writes acknowledged, the watch goes on with
    // every acknowledged write.
    const again = nextLeader(replicas, false);
    await Promise.all([first.start(), second.start()]);
    await again;
    // The replica asked may still be reconnecting to etcd (grpc's backoff): retry as a client
    // would, for at most a minute.
    const retryUntil = performance.now() + 60_000;
    let back: string | undefined;
    while (back === undefined) {
      back = await c.register(agentNode("after-outage")).then(
        (r) => r.node?.metadata?.resourceVersion,
        (err: unknown) => {
          if (!(err instanceof UnavailableError) || performance.now() > retryUntil) throw err;
          return sleep(systemClock, 200).then(() => undefined); // a client's back-off, bounded above
        },
      );
    }
    await reference.newest.reach(Number(back));
    expect(reference.error).toBeUndefined();
    const seen = new Set(reference.events.map((e) => Number(e.resourceVersion)));
    expect(writer.acked.filter((w) => !seen.has(w.revision))).toEqual([]);
    expect(seen.has(Number(back))).toBe(true);
  }, 120_000);
});
