/**
 * The streaming heartbeat: renewals on one long-lived stream, answered in order (at once, made
 * durable by the next checkpoint; with --lease-checkpoint-interval 0s, once written).
 */
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
    expect(second.nextRenewIntervalMs).toBe(10_000);
    // A change of duration is a durable write: a new revision.
    const short = await hb.renew("hb-1", { leaseDurationSeconds: 4 });
    expect(short.lease.spec?.leaseDurationSeconds).toBe(4);
    expect(Number(short.lease.metadata?.resourceVersion)).toBeGreaterThan(Number(second.lease.metadata?.resourceVersion));
    expect(short.nextRenewIntervalMs).toBe(1_000);
    expect((await h.client.getLease("hb-1")).spec?.renewTime?.getTime()).toBe(clock.now());
    hb.close();
  });

  it("answers pipelined renewals at once and in order; the checkpoint writes the Lease once", async () => {
    const clock = new FakeClock();
    h = await startHarness({ clock, leaseWriteIntervalMs: 0 });
    await h.client.register(agentNode("hb-2"));
    const registered = await h.client.getLease("hb-2");
    const hb = h.client.heartbeat();
    const results = await Promise.all(Array.from({ length: 200 }, () => hb.renew("hb-2")));
    // Nothing written yet: every answer carries the registered revision.
    expect(new Set(results.map((r) => r.lease.metadata?.resourceVersion))).toEqual(new Set([registered.metadata?.resourceVersion]));
    clock.advance(10);
    const later = await hb.renew("hb-2");
    expect(later.lease.spec?.renewTime?.getTime()).toBe(clock.now());
    expect((await h.client.getLease("hb-2")).spec?.renewTime?.getTime()).toBe(clock.now());
    const before = Number((await h.client.listNodes()).resourceVersion);
    await h.server.registry.renewals.checkpoint();
    const written = await h.client.getLease("hb-2");
    expect(Number(written.metadata?.resourceVersion)).toBe(before + 1);
    expect(written.spec?.renewTime?.getTime()).toBe(clock.now());
    hb.close();
  });

  it("with --lease-checkpoint-interval 0s answers each renewal once written, renewals in flight riding along in one write, in order", async () => {
    h = await startHarness({ leaseCheckpointMs: 0 });
    await h.client.register(agentNode("hb-4"));
    const registered = Number((await h.client.getLease("hb-4")).metadata?.resourceVersion);
    const hb = h.client.heartbeat();
    const results = await Promise.all(Array.from({ length: 200 }, () => hb.renew("hb-4")));
    const revs = results.map((r) => Number(r.lease.metadata?.resourceVersion));
    const times = results.map((r) => r.lease.spec!.renewTime!.getTime());
    expect(revs).toEqual([...revs].sort((a, b) => a - b));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(revs[0]).toBeGreaterThan(registered);
    // Each answer is durable: the store holds its revision or a later one.
    const stored = await h.client.getLease("hb-4");
    expect(Number(stored.metadata?.resourceVersion)).toBe(revs.at(-1));
    expect(stored.spec?.renewTime?.getTime()).toBe(times.at(-1));
    // Renewals that came while a write was in flight rode along: fewer writes than renewals.
    expect(new Set(revs).size).toBeLessThan(200);
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
