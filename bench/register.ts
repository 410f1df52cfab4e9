/**
 * Register nodes [from, to) (test/support/realistic-node.ts) through one NodeClient with `lanes` calls
 * in flight; each answer must carry the node's own Lease. Resolves with the count registered.
 */
import type { NodeClient } from "../src/client/client.js";
import { realisticNode, scaleNodeName } from "../test/support/realistic-node.js";

export async function registerRange(
  client: NodeClient,
  from: number,
  to: number,
  lanes: number,
  opts: { timeoutMs?: number; onDone?: () => void; signal?: AbortSignal } = {},
): Promise<number> {
  let next = from;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (next < to) {
      if (opts.signal?.aborted) throw new Error("registration aborted");
      const i = next++;
      const name = scaleNodeName(i);
      const { lease } = await client.register(realisticNode(i, name), { timeoutMs: opts.timeoutMs ?? 30_000 });
      if (lease?.metadata?.name !== name) throw new Error(`registering ${name} answered no lease of its own`);
      done++;
      opts.onDone?.();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, to - from)) }, lane));
  return done;
}
