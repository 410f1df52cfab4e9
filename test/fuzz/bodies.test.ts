/**
 * Fuzz: every RPC the server serves (NodeService, health, reflection) gets random bytes and
 * schema-mutated bodies — valid requests built from the generated types, then mutated at the
 * wire level (hostile strings, invalid UTF-8, edge numbers, wrong wire types, duplicated,
 * unknown and illegal fields, lying lengths, truncation) — sent raw through a grpc-js client
 * with identity serializers to the real `nodeplane serve` in its own process.
 *
 * Asserted (see campaign.ts): the server stays up and answering, every call ends with a
 * status and never INTERNAL/UNKNOWN, and no rejected request changes the store.
 *
 * Runs with a fixed seed and DEFAULT_ITERATIONS (2,000) bodies per RPC in `npm test`: with the
 * wire-level file, about 70 s of CPU (server and client), so about 40 s on an idle 2-core
 * machine and two minutes or more when the machine is loaded. Environment:
 *   NODEPLANE_FUZZ_SEED=<n>         another seed (failure messages print the one used)
 *   NODEPLANE_FUZZ_ITERATIONS=<n>   bodies per RPC, e.g. 50000 for a long run
 *   NODEPLANE_FUZZ_BODY=<i>         only body #i of each selected test (replay one failure;
 *                                   pick the test with -t "Register: schema-mutated bodies")
 * A long run: NODEPLANE_FUZZ_ITERATIONS=50000 npx vitest run test/fuzz/ (test timeouts scale
 * with the count; needs dist/: `npx tsc -p tsconfig.build.json`, which `npm test` does first).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bodyCount, type BodyKind, runCampaign, settingsFromEnv } from "./campaign.js";
import { FUZZ_RPCS } from "./rpcs.js";
import { ANONYMOUS, FuzzTarget } from "./target.js";

const settings = settingsFromEnv();
const KINDS: BodyKind[] = ["random bytes", "schema-mutated bodies"];
/** Who the suite calls as (see FuzzIdentity). */
const WHO = ANONYMOUS;

describe(`fuzz bodies (${WHO.name}, seed ${settings.seed}, ${settings.iterations} per RPC)`, () => {
  let target: FuzzTarget;
  beforeAll(async () => {
    target = await FuzzTarget.start(WHO);
  });
  afterAll(async () => {
    await target?.stop();
  });

  // A test that found something may leave the store poisoned (an object no read can return):
  // the next test gets a fresh server, so that each failure is reported where it happens.
  let fresh = false;

  for (const rpc of FUZZ_RPCS) {
    for (const kind of KINDS) {
      // Bounded by the bodies it sends (a few ms each), and on failure by the hanging batches
      // and the replays that name a culprit (campaign.ts bounds both).
      const timeout = 240_000 + bodyCount(kind, settings.iterations) * 20;
      it(`${rpc.name}: ${kind}`, { timeout }, async () => {
        if (fresh) await target.restart();
        else await target.ensureUp();
        fresh = true; // until the campaign comes back clean
        const report = await runCampaign(target, rpc, kind, settings);
        fresh = report.failures.length > 0;
        expect(report.failures, report.summary()).toHaveLength(0);
        expect(report.sent).toBe(settings.only === undefined ? bodyCount(kind, settings.iterations) : 1);
      });
    }
  }
});
