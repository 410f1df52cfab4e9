/**
 * In-process micro-benchmark of Register (issue 7): a NodeRegistry on a temporary SqliteStore,
 * no gRPC. Phase "create" registers `--nodes` realistic nodes (test/support/realistic-node.ts) with
 * `--concurrency` calls in flight, each answer encoded as the server would send it; phase
 * "reregister" (unless `--no-reregister`) registers the same nodes again (agents restarting:
 * reconcile; their conditions carry no heartbeat time, so the server stamps a new one and the
 * node is rewritten with its Lease). Reports nodes/s and process CPU µs per node for each
 * phase, and the group commits the store made.
 *
 * Requests are built and decoded before timing starts (the gRPC layer's work, not Register's).
 * `--cpu-prof PREFIX` profiles each timed phase into PREFIX.<phase>.cpuprofile and prints its
 * summary (bench/profile-summary.ts).
 *
 *   npm run build && node dist/bench/register-micro.js --nodes 20000 --concurrency 96 --cpu-prof /tmp/reg
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Session } from "node:inspector/promises";
import { parseArgs } from "node:util";
import { Node } from "../src/gen/nodeplane/v1/node.js";
import { RegisterResponse } from "../src/gen/nodeplane/v1/service.js";
import { NodeRegistry } from "../src/registry/nodes.js";
import { SqliteStore } from "../src/store/sqlite.js";
import { summarizeProfile } from "./profile-summary.js";
import { realisticNode } from "../test/support/realistic-node.js";

interface Phase {
  name: string;
  nodes: number;
  wallMs: number;
  cpuUs: number;
  commits: number;
  commitMs: number;
}

const { values: args } = parseArgs({
  options: {
    nodes: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "96" },
    warmup: { type: "string", default: "2000" },
    "no-reregister": { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
  },
});
const N = Number(args.nodes);
const K = Number(args.concurrency);
const WARMUP = Number(args.warmup);

/** What the server hands Register: the request's node as grpc-js decodes it. */
const asDecoded = (i: number, name: string): Node => Node.decode(Node.encode(Node.fromPartial(realisticNode(i, name))).finish());

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nodeplane-register-micro-"));
  let commits = 0;
  let commitSeconds = 0;
  const store = await SqliteStore.open({
    dir,
    onCommit: (_n, s) => {
      commits++;
      commitSeconds += s;
    },
  });
  const registry = new NodeRegistry({ store });
  const warm = Array.from({ length: WARMUP }, (_, i) => asDecoded(N + i, `warm-node-${i}`));
  const nodes = Array.from({ length: N }, (_, i) => asDecoded(i, `micro-node-${String(i).padStart(6, "0")}`));

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
    await Promise.all(Array.from({ length: Math.min(K, batch.length) }, lane));
  };
  const timed = async (name: string, batch: Node[]): Promise<Phase> => {
    const profile = args["cpu-prof"] && (await startProfile());
    const c0 = commits;
    const s0 = commitSeconds;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await registerAll(batch);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (profile) await profile(`${args["cpu-prof"]}.${name}.cpuprofile`);
    return { name, nodes: batch.length, wallMs, cpuUs: cpu.user + cpu.system, commits: commits - c0, commitMs: (commitSeconds - s0) * 1000 };
  };

  await registerAll(warm);
  const phases = [await timed("create", nodes)];
  if (!args["no-reregister"]) phases.push(await timed("reregister", nodes));
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });

  process.stdout.write(`Register micro-benchmark: ${N} realistic nodes, ${K} in flight, SqliteStore in ${os.tmpdir()}\n`);
  for (const p of phases) {
    process.stdout.write(
      `  ${p.name.padEnd(11)} ${Math.round((p.nodes * 1000) / p.wallMs).toLocaleString("en").padStart(7)} nodes/s` +
        `  ${(p.cpuUs / p.nodes).toFixed(0).padStart(5)} µs CPU/node` +
        `  ${p.commits} commits (avg ${(p.nodes / Math.max(1, p.commits)).toFixed(0)} txns, ${((p.commitMs * 1000) / p.nodes).toFixed(0)} µs/node in commits)\n`,
    );
  }
  process.stdout.write(`  answers: ${(answerBytes / (phases.length * N)).toFixed(0)} bytes each on average\n`);
  for (const p of phases) {
    if (args["cpu-prof"]) process.stdout.write(`${summarizeProfile(`${args["cpu-prof"]}.${p.name}.cpuprofile`, 20)}\n`);
  }
}

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

await main();
