/**
 * The bodies fuzz as a vitest suite for one identity (bodies.test.ts runs it anonymous without
 * authentication, bodies-auth.test.ts as each identity with authentication on): every RPC of
 * `rpcs` gets both kinds of bodies, each campaign a test of its own (see campaign.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bodyCount, type BodyKind, type FuzzSettings, type Oracle, runCampaign } from "./campaign.js";
import type { FuzzRpc } from "./rpcs.js";
import { type FuzzIdentity, FuzzTarget } from "./target.js";

const KINDS: BodyKind[] = ["random bytes", "schema-mutated bodies"];

/** `file`: the test file calling this, named in failures' replay commands. */
export function describeBodyFuzz(file: string, who: FuzzIdentity, rpcs: FuzzRpc[], settings: FuzzSettings, oracle?: Oracle): void {
  describe(`fuzz bodies (${who.name}, seed ${settings.seed}, ${settings.iterations} per RPC)`, () => {
    let target: FuzzTarget;
    beforeAll(async () => {
      target = await FuzzTarget.start(who);
    });
    afterAll(async () => {
      await target?.stop();
    });

    // A test that found something may leave the store poisoned (an object no read can return):
    // the next test gets a fresh server, so that each failure is reported where it happens.
    let fresh = false;

    for (const rpc of rpcs) {
      for (const kind of KINDS) {
        // Bounded by the bodies it sends (a few ms each), and on failure by the hanging batches
        // and the replays that name a culprit (campaign.ts bounds both).
        const timeout = 240_000 + bodyCount(kind, settings.iterations) * 20;
        it(`${rpc.name}: ${kind}`, { timeout }, async () => {
          if (fresh) await target.restart();
          else await target.ensureUp();
          fresh = true; // until the campaign comes back clean
          const report = await runCampaign(target, rpc, kind, settings, oracle);
          fresh = report.failures.length > 0;
          expect(report.failures, report.summary(file)).toHaveLength(0);
          expect(report.sent).toBe(settings.only === undefined ? bodyCount(kind, settings.iterations) : 1);
        });
      }
    }
  });
}
