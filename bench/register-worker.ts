/**
 * A register worker of bench/scale.ts: registers a range of realistic nodes
 * (test/support/realistic-node.ts) through the SDK (NodeClient.register) with a number of calls in
 * flight, reports progress every 500 ms and, at the end, the latency histogram, errors and its
 * own CPU. Every call has a deadline; a run stops early after 100 errors or at its stop time;
 * the worker exits when its parent goes away.
 */
import { NodeClient } from "../src/client/client.js";
import { Histogram } from "./histogram.js";
import { realisticNode, scaleNodeName } from "../test/support/realistic-node.js";
import type { FromRegisterWorker, RegisterResult, RegisterRun, ToRegisterWorker } from "./register-protocol.js";
import { epochNow, serveParent } from "./worker-side.js";

let index = -1;
let client: NodeClient | undefined;

const send = serveParent<ToRegisterWorker, FromRegisterWorker>(
  "register-worker",
  async (msg) => {
    switch (msg.type) {
      case "init": {
        if (!msg.address.startsWith("127.0.0.1:")) throw new Error(`refusing non-loopback address ${msg.address}`);
        index = msg.index;
        client?.close();
        client = new NodeClient(msg.address, { channelOptions: { "grpc.use_local_subchannel_pool": 1 } });
        await client.waitForReady(10_000);
        return { type: "ready", index };
      }
      case "run":
        return run(client!, msg);
    }
  },
  () => client?.close(),
);

async function run(c: NodeClient, cmd: RegisterRun): Promise<RegisterResult> {
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  const samples: string[] = [];
  let errorCount = 0;
  let next = cmd.from;
  let done = 0;
  const cpu0 = process.cpuUsage();
  const t0 = epochNow();
  const progress = setInterval(() => send({ type: "progress", seq: cmd.seq, index, done }), 500);
  const lane = async (): Promise<void> => {
    while (next < cmd.to && errorCount < 100 && (cmd.stopAt === 0 || epochNow() < cmd.stopAt)) {
      const i = next++;
      const name = scaleNodeName(i);
      const node = realisticNode(i, name);
      const start = performance.now();
      try {
        const { lease } = await c.register(node, { timeoutMs: cmd.deadlineMs });
        if (lease?.metadata?.name !== name) throw new Error(`registering ${name} answered no lease of its own`);
        hist.record((performance.now() - start) * 1000);
        done++;
      } catch (err) {
        const kind = err instanceof Error ? err.constructor.name : "error";
        errors[kind] = (errors[kind] ?? 0) + 1;
        errorCount++;
        if (samples.length < 5) samples.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(cmd.lanes, cmd.to - cmd.from)) }, lane));
  } finally {
    clearInterval(progress);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    type: "result",
    seq: cmd.seq,
    index,
    done,
    hist: { data: hist.data(), count: hist.count, sumUs: hist.sumUs, minUs: hist.minUs, maxUs: hist.maxUs },
    cpuUs: cpu.user + cpu.system,
    elapsedMs: epochNow() - t0,
    errors,
    samples,
  };
}
