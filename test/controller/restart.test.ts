/**
 * No mass false alarms after a control-plane restart: nodes that were healthy before it are
 * not marked Unknown sooner than one grace period after it, however long the server was down.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { type Harness, agentNode, startHarness } from "../support/server.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const GRACE = 40_000;

describe("restart", () => {
  it("gives every node a full grace period from the moment the restarted server starts", async () => {
    const clock = new FakeClock();
    // Passes are driven by the test (a period of an hour keeps the timer out of the way).
    const nodeLifecycle = { monitorPeriodMs: 3_600_000, monitorGracePeriodMs: GRACE };
    h = await startHarness({ clock, nodeLifecycle });
    for (let i = 0; i < 5; i++) await h.client.register(agentNode(`pre-${i}`));
    await h.server.controller!.sync();
    await h.server.controller!.monitor();

    clock.advance(10 * GRACE); // the server is down far longer than the grace period
    await h.restart();
    const ctl = h.server.controller!;
    await ctl.sync();
    await ctl.monitor();
    clock.advance(GRACE);
    await ctl.monitor();
    for (let i = 0; i < 5; i++) {
      const ready = (await h.client.getNode(`pre-${i}`)).status?.conditions.find((c) => c.type === "Ready");
      expect(ready?.status).toBe("True");
    }
    clock.advance(1);
    await ctl.monitor();
    for (let i = 0; i < 5; i++) {
      const ready = (await h.client.getNode(`pre-${i}`)).status?.conditions.find((c) => c.type === "Ready");
      expect(ready?.status).toBe("Unknown");
    }
  });
});
