/**
 * `node dist/bench/register-micro.js`: Register in process (issue 7): a NodeRegistry on a
 * temporary SqliteStore, no gRPC. Phase "create" registers --nodes realistic nodes
 * (test/support/realistic-node.ts) with --concurrency calls in flight, each answer encoded as the
 * server would send it; phase "reregister" (unless --no-reregister) registers the same nodes
 * again (agents restarting: reconcile; their conditions carry no heartbeat time, so the server
 * stamps a new one and the node is rewritten with its Lease). Reports nodes/s and process CPU µs
 * per node for each phase, and the group commits the store made. Requests are built and decoded
 * before timing starts (the gRPC layer's work, not Register's). --cpu-prof PREFIX profiles each
 * timed phase into PREFIX.<phase>.cpuprofile and prints its summary. Flags: --help.
 */
import fs from "node:fs";
import os from "node:os";
import { Session } from "node:inspector/promises";
import { Node } from "../src/gen/nodeplane/v1/node.js";
import { RegisterResponse } from "../src/gen/nodeplane/v1/service.js";
import { NodeRegistry } from "../src/registry/nodes.js";
import { SqliteStore } from "../src/store/sqlite.js";
import { realisticNode } from "../test/support/realistic-node.js";
import { Flags } from "./flags.js";
import { runMain, tempDir } from "./harness.js";
import { summarizeProfile } from "./profile-summary.js";

/** What the server hands Register: the request's node as grpc-js decodes it. */
const asDecoded = (i: number, name: string): Node => Node.decode(Node.encode(Node.fromPartial(realisticNode(i, name))).finish());

/** Start the V8 profiler in this process; the answer stops it and writes the profile to a file. */
async function startProfile(): Promise<(file: string) => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  return async (file) => {
    const { profile } = await session.post("Profiler.stop");
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

async function main(): Promise<void> {
  const f = new Flags("register-micro.js", "REGISTER");
  const n = f.num("nodes", 20_000, 1, 1_000_000, "nodes registered");
  const k = f.num("concurrency", 96, 1, 10_000, "calls in flight");
  const warmup = f.num("warmup", 2000, 0, 1_000_000, "nodes registered first, untimed");
  const reregister = !f.bool("no-reregister", "skip the second phase");
  const prof = f.str("cpu-prof", undefined, "profile each phase into PREFIX.<phase>.cpuprofile");
  f.done();
  let commits = 0;
  let commitSeconds = 0;
  const store = await SqliteStore.open({ dir: tempDir("nodeplane-register-micro-"), onCommit: (_n, s) => ((commits += 1), (commitSeconds += s)) });
  const registry = new NodeRegistry({ store });
  let answerBytes = 0;
  const registerAll = async (batch: Node[]): Promise<void> => {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < batch.length) {
        const node = batch[next++]!;
        const answer = await registry.register(node);
        if (answer.lease.metadata?.name !== node.metadata?.name) throw new Error(`no lease of its own for ${node.metadata?.name}`);
        answerBytes += RegisterResponse.encode(answer).finish().length;
      }
    };
    await Promise.all(Array.from({ length: Math.min(k, batch.length) }, lane));
  };
  const timed = async (name: string, batch: Node[]) => {
    const stopProfile = prof ? await startProfile() : undefined;
    const [c0, s0, cpu0, t0] = [commits, commitSeconds, process.cpuUsage(), performance.now()];
    await registerAll(batch);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    await stopProfile?.(`${prof}.${name}.cpuprofile`);
    return { name, nodes: batch.length, wallMs, cpuUs: cpu.user + cpu.system, commits: commits - c0, commitMs: (commitSeconds - s0) * 1000 };
  };

  await registerAll(Array.from({ length: warmup }, (_, i) => asDecoded(n + i, `warm-node-${i}`)));
  const nodes = Array.from({ length: n }, (_, i) => asDecoded(i, `micro-node-${String(i).padStart(6, "0")}`));
  const phases = [await timed("create", nodes), ...(reregister ? [await timed("reregister", nodes)] : [])];
  await store.close();

  process.stdout.write(`Register micro-benchmark: ${n} realistic nodes, ${k} in flight, SqliteStore in ${os.tmpdir()}\n`);
  for (const p of phases) {
    process.stdout.write(
      `  ${p.name.padEnd(11)} ${Math.round((p.nodes * 1000) / p.wallMs).toLocaleString("en").padStart(7)} nodes/s` +
        `  ${(p.cpuUs / p.nodes).toFixed(0).padStart(5)} µs CPU/node` +
        `  ${p.commits} commits (avg ${(p.nodes / Math.max(1, p.commits)).toFixed(0)} txns, ${((p.commitMs * 1000) / p.nodes).toFixed(0)} µs/node in commits)\n`,
    );
  }
  process.stdout.write(`  answers: ${(answerBytes / (phases.length * n)).toFixed(0)} bytes each on average\n`);
  for (const p of phases) if (prof) process.stdout.write(`${summarizeProfile(`${prof}.${p.name}.cpuprofile`, 20)}\n`);
}

runMain("register-micro", main);
