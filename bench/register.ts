/**
 * Register nodes [from, to) through one NodeClient with `lanes` calls in flight; each answer
 * must carry the node's own Lease. By default the nodes are realistic ones
 * (test/support/realistic-node.ts). Resolves with the count registered.
 */
import type { NodeClient, NodeInput } from "../src/client/client.js";
import { realisticNode } from "../test/support/realistic-node.js";
import { epochNow } from "./harness.js";

export interface RegisterOptions {
  /** Node i as registered (default realisticNode(i)). */
  node?: (i: number) => NodeInput;
  /** Stop starting calls at this epoch ms (0 = never). */
  stopAt?: number;
  /** Called after each registration with its latency, µs. */
  onDone?: (us: number) => void;
  timeoutMs?: number;
}

export async function registerRange(client: NodeClient, from: number, to: number, lanes: number, o: RegisterOptions = {}): Promise<number> {
  const node = o.node ?? ((i: number): NodeInput => realisticNode(i));
  let next = from;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (next < to && !(o.stopAt && epochNow() >= o.stopAt)) {
      const n = node(next++);
      const name = n.metadata?.name;
      const t = performance.now();
      const { lease } = await client.register(n, { timeoutMs: o.timeoutMs ?? 30_000 });
      if (lease?.metadata?.name !== name) throw new Error(`registering ${name} answered no lease of its own`);
      done++;
      o.onDone?.((performance.now() - t) * 1000);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, to - from)) }, lane));
  return done;
}
