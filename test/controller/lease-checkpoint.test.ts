/**
 * The lifecycle controller and Lease checkpoints: its next pass sees a renewal once the renewal
 * is answered, not when a checkpoint writes it, so a stalled checkpoint never makes a node Unknown sooner than
 * if each renewal had been a durable write; one grace period after its last answered renewal
 * the node goes Unknown, as it would then. A node renewing through another server (a leader
 * seeing its renewals only in the store) stays Ready with that server's write interval.
 */
import { afterEach, describe, expect, it } from "vitest";
import { LEASE_PREFIX } from "../../src/model/keys.js";
import { NodeRegistry } from "../../src/registry/nodes.js";
import { type HeldStore, heldStore } from "../support/held-store.js";
import { World } from "./support.js";

let w: World | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const GRACE = 40_000;
const C = 5_000;

describe("node health with Lease checkpoints", () => {
  it("judges a node by its answered renewals while the checkpoints that would write them are stalled", async () => {
    let held!: HeldStore;
    const world = (w = await World.create({}, { leaseCheckpointMs: C, wrap: (s) => (held = heldStore(s)).store }));
    await world.healthy("stalled");
    await world.step();
    const onlyLeases = held.hold((req) => req.ops.every((op) => op.key.startsWith(LEASE_PREFIX)));
    await world.step(4_000);
    await world.registry.renewLease("stalled", "", 0); // answered; its checkpoint (at 5 s) stalls
    await world.step(4_000);
    const last = await world.registry.renewLease("stalled", "", 0); // the stalled checkpoint is 3 s old: answered
    await held.waiting(1);
    await world.step(); // a pass at once: it sees the renewal
    // The store still holds the registration's renew time: a controller reading only the store
    // would judge the node Unknown one grace period after registration. This one does not.
    await world.step(GRACE - 8_000);
    await world.step(8_000);
    expect(world.clock.now() - last.spec!.renewTime!.getTime()).toBe(GRACE);
    expect(await world.readyStatus("stalled")).toBe("True");
    await world.step(1);
    expect(await world.readyStatus("stalled")).toBe("Unknown");
    onlyLeases();
  });

  it("sees the renewals this server checkpointed while its Lease informer lags behind the store", async () => {
    const world = (w = await World.create({}, { leaseCheckpointMs: 1_000 }));
    await world.healthy("lagging");
    await world.step();
    // The Lease informer stops where it is (as one backing off after a broken watch): it holds
    // the registration's renew time from now on; the store gets every checkpoint.
    await world.informers.leases.stop();
    for (let t = 0; t < 2 * GRACE; t += 5_000) {
      if (t % 10_000 === 0) await world.registry.renewLease("lagging", "", 0);
      await world.registry.renewals.checkpoint(); // written: no longer pending when the pass runs
      await world.step(5_000);
      expect([t, await world.readyStatus("lagging")]).toEqual([t, "True"]);
    }
  });

  it("sees a renewal in its next pass: the grace period runs from that pass, never from before the renewal", async () => {
    const world = (w = await World.create({}, { leaseCheckpointMs: C }));
    await world.healthy("late");
    await world.step();
    await world.step(10_000);
    const renewed = (await world.registry.renewLease("late", "", 0)).spec!.renewTime!.getTime();
    world.clock.advance(3_000); // the next pass comes 3 s after the renewal
    await world.step();
    const seen = world.clock.now();
    expect(seen - renewed).toBe(3_000);
    // One grace period after the renewal the node is still Ready: its probe time is the pass.
    await world.step(GRACE - 3_000);
    expect(world.clock.now() - renewed).toBe(GRACE);
    expect(await world.readyStatus("late")).toBe("True");
    await world.step(3_000);
    expect(world.clock.now() - seen).toBe(GRACE);
    expect(await world.readyStatus("late")).toBe("True");
    await world.step(1);
    expect(await world.readyStatus("late")).toBe("Unknown");
  });

  it("a node renewing every 10 s through another server with the default write interval (half the grace period) stays Ready; silent, it goes Unknown", async () => {
    const world = (w = await World.create({}, { leaseCheckpointMs: 1_000 }));
    await world.healthy("remote");
    // Server B: the agent's renewals reach this controller only through the store.
    const b = new NodeRegistry({ store: world.store, clock: world.clock, leaseCheckpointMs: 1_000, leaseLagLimitMs: GRACE / 8, leaseWriteIntervalMs: GRACE / 2 });
    b.renewals.start();
    try {
      let last = 0;
      for (let t = 0; t < 10 * GRACE; t += 1_000) {
        if (t % 10_000 === 0) last = (await b.renewLease("remote", "", 0)).spec!.renewTime!.getTime();
        await world.step(1_000);
        await b.renewals.idle();
        expect(await world.readyStatus("remote")).toBe("True");
      }
      // Silent from now on: Unknown once the grace period has passed since the last write of its
      // Lease (which trails its last renewal by less than S + C).
      for (let t = 0; t < GRACE / 2 + 1_000 + GRACE; t += 1_000) {
        await world.step(1_000);
        await b.renewals.idle();
      }
      expect(world.clock.now() - last).toBeLessThan(2 * GRACE);
      expect(await world.readyStatus("remote")).toBe("Unknown");
    } finally {
      await b.renewals.stop();
    }
  });

  it("a node renewing at about half its lease (the server asks for that when loaded) through another server with C = grace/8 stays Ready", async () => {
    const world = (w = await World.create({}, { leaseCheckpointMs: 1_000 }));
    await world.healthy("slow-remote");
    const b = new NodeRegistry({ store: world.store, clock: world.clock, leaseCheckpointMs: GRACE / 8, leaseLagLimitMs: GRACE / 8, leaseWriteIntervalMs: GRACE / 2 });
    b.renewals.start();
    try {
      let next = 0;
      for (let t = 0, i = 0; t < 10 * GRACE; t += 1_000) {
        if (t >= next) {
          await b.renewLease("slow-remote", "", 0);
          next = t + 19_000 + (i++ % 2) * 1_000; // 19–20 s: half the lease, with jitter
        }
        await world.step(1_000);
        await b.renewals.idle();
        expect(await world.readyStatus("slow-remote")).toBe("True");
      }
    } finally {
      await b.renewals.stop();
    }
  });
});
