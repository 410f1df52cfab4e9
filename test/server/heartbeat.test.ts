/** The streaming heartbeat: renewals on one long-lived stream, answered in order after commit. */
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { NotFoundError, UnavailableError } from "../../src/client/errors.js";
import { type Harness, agentNode, startHarness } from "../support/server.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("Heartbeat", () => {
  it("renews the node's Lease on each request and asks for the next renewal a quarter of the duration later", async () => {
    const clock = new FakeClock();
    h = await startHarness({ clock });
    await h.client.register(agentNode("hb-1"));
    const hb = h.client.heartbeat();
    const first = await hb.renew("hb-1");
    clock.advance(10_000);
    const second = await hb.renew("hb-1");
    expect(second.lease.spec?.renewTime?.getTime()).toBe(first.lease.spec!.renewTime!.getTime() + 10_000);
    expect(Number(second.lease.metadata?.resourceVersion)).toBeGreaterThan(Number(first.lease.metadata?.resourceVersion));
    expect(second.nextRenewIntervalMs).toBe(10_000);
    const short = await hb.renew("hb-1", { leaseDurationSeconds: 4 });
    expect(short.lease.spec?.leaseDurationSeconds).toBe(4);
    expect(short.nextRenewIntervalMs).toBe(1_000);
    expect((await h.client.getLease("hb-1")).spec?.renewTime?.getTime()).toBe(clock.now());
    hb.close();
  });

  it("answers pipelined renewals in order, each after its commit", async () => {
    h = await startHarness();
    await h.client.register(agentNode("hb-2"));
    const hb = h.client.heartbeat();
    const results = await Promise.all(Array.from({ length: 200 }, () => hb.renew("hb-2")));
    const revs = results.map((r) => Number(r.lease.metadata?.resourceVersion));
    expect(revs).toEqual([...revs].sort((a, b) => a - b));
    expect(new Set(revs).size).toBe(200);
    expect((await h.client.getLease("hb-2")).metadata?.resourceVersion).toBe(String(revs.at(-1)));
    hb.close();
  });

  it("ends the stream with NOT_FOUND for a node that does not exist", async () => {
    h = await startHarness();
    const hb = h.client.heartbeat();
    const err = await hb.renew("ghost").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain('"ghost"');
    await expect(hb.renew("ghost")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("asks for longer intervals when the fleet would renew faster than --max-heartbeat-rate", async () => {
    h = await startHarness({ maxHeartbeatRate: 2 });
    const streams = [];
    for (let i = 0; i < 3; i++) {
      await h.client.register(agentNode(`hb-rate-${i}`));
      streams.push(h.client.heartbeat());
    }
    await Promise.all(streams.map((s, i) => s.renew(`hb-rate-${i}`, { leaseDurationSeconds: 4 })));
    // 3 streams at most 2 renewals/s: every 1.5 s instead of every 1 s (never past half the duration).
    const { nextRenewIntervalMs } = await streams[0]!.renew("hb-rate-0");
    expect(nextRenewIntervalMs).toBe(1_500);
    for (const s of streams) s.close();
  });

  it("ends open streams with UNAVAILABLE on shutdown", async () => {
    h = await startHarness();
    await h.client.register(agentNode("hb-3"));
    const hb = h.client.heartbeat();
    await hb.renew("hb-3");
    await h.server.shutdown();
    await expect(hb.renew("hb-3")).rejects.toBeInstanceOf(UnavailableError);
    await h.restart();
  });
});
