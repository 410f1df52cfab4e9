/**
 * A register worker of bench/scale.ts: registers a range of realistic nodes through the SDK
 * (NodeClient.register) with a number of calls in flight, notes its progress every 500 ms and
 * answers the latency histogram. Every call has a deadline; a run may stop early at a given time.
 */
import { NodeClient } from "../src/client/client.js";
import { loopbackOnly, notify, serve } from "./ipc.js";
import { registerRange } from "./register.js";
import { Histogram } from "./tally.js";

let client: NodeClient | undefined;

const api = {
  async connect(address: string): Promise<void> {
    client?.close();
    client = new NodeClient(loopbackOnly(address), { channelOptions: { "grpc.use_local_subchannel_pool": 1 } });
    await client.waitForReady(10_000);
  },

  /** Register nodes [from, to), `lanes` in flight, starting no call after `stopAt` (epoch ms, 0 = never). */
  async run(r: { from: number; to: number; lanes: number; stopAt: number }) {
    const hist = new Histogram();
    const progress = setInterval(() => notify(hist.count), 500);
    try {
      await registerRange(client!, r.from, r.to, r.lanes, { stopAt: r.stopAt, onDone: (us) => hist.record(us) });
    } finally {
      clearInterval(progress);
    }
    return hist.wire();
  },
};

export type RegisterApi = typeof api;
serve("register-worker", api, () => client?.close());
