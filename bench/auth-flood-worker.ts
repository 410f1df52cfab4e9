/**
 * The flooder of bench/auth-flood.ts, in its own thread: `inFlight` loops of ListNodes as one
 * identity (a bearer token), as fast as answers come, for `ms`; reports how many calls were
 * answered OK, refused by the rate limit (RESOURCE_EXHAUSTED), or failed otherwise.
 */
import { parentPort, workerData } from "node:worker_threads";
import { status } from "@grpc/grpc-js";
import { silenceIpServernameWarning, tlsCredentials } from "../src/auth/client-credentials.js";
import { NodeClient } from "../src/client/client.js";
import { RpcError } from "../src/client/errors.js";

interface Job {
  address: string;
  ca: string;
  token: string;
  inFlight: number;
  ms: number;
}

silenceIpServernameWarning();
const job = workerData as Job;
const client = new NodeClient(job.address, { credentials: tlsCredentials({ ca: job.ca }), token: job.token });
const counts = { ok: 0, limited: 0, failed: 0 };
const until = Date.now() + job.ms;

async function loop(): Promise<void> {
  while (Date.now() < until) {
    try {
      await client.listNodes({ limit: 10 });
      counts.ok++;
    } catch (err) {
      if (err instanceof RpcError && err.code === status.RESOURCE_EXHAUSTED) counts.limited++;
      else counts.failed++;
    }
  }
}

await Promise.all(Array.from({ length: job.inFlight }, loop));
client.close();
parentPort!.postMessage(counts);
