/**
 * The visibility bound of a renewal, end to end on a real server (README "Lease renewals", and
 * service.proto's RenewLease): GetLease and ListLeases on the server that answered show it at
 * once; the stored Lease and watches (the REST lease watch) show it when the checkpoint that
 * writes it commits, and the checkpoint timer fires within C of the renewal. The fake clock
 * drives the timer: nothing waits on time.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { openWatch } from "../support/rest.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

const C = 1_000;
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe("who sees a renewal when", () => {
  it("this server's GetLease and ListLeases at once; the store and the lease watch once the timer's checkpoint commits, within C", async () => {
    const clock = new FakeClock(Date.UTC(2026, 11, 6, 3, 0, 0));
    h = await startHarness({ clock, httpListen: "127.0.0.1:0", leaseCheckpointMs: C });
    await h.client.register(agentNode("vis-1"));
    const registered = await h.client.getLease("vis-1");
    const from = await h.server.store.currentRevision();
    const w = await openWatch(
      `http://127.0.0.1:${h.server.httpPort}`,
      `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases?watch=true&fieldSelector=metadata.name%3Dvis-1&resourceVersion=${from}`,
    );
    try {
      clock.advance(C / 4);
      const hb = h.client.heartbeat();
      const { lease: renewed } = await hb.renew("vis-1");
      const renewMs = renewed.spec!.renewTime!.getTime();
      expect(renewMs).toBe(clock.now());
      expect(renewed.metadata!.resourceVersion).toBe(registered.metadata!.resourceVersion);

      // At once on this server.
      expect((await h.client.getLease("vis-1")).spec!.renewTime!.getTime()).toBe(renewMs);
      const listed = (await h.client.listLeases()).find((l) => l.metadata?.name === "vis-1");
      expect(listed!.spec!.renewTime!.getTime()).toBe(renewMs);
      // Not yet written: the store still holds the registration's renew time.
      expect(h.server.registry.renewals.pendingCount).toBe(1);
      expect(await h.server.store.currentRevision()).toBe(from);

      // C after the renewal the checkpoint timer has fired (it fires every C): the watch shows
      // the renewal as written, at a new revision.
      clock.advance(C);
      const ev = await w.next();
      expect(ev).toMatchObject({ type: "MODIFIED", object: { kind: "Lease", metadata: { name: "vis-1" } } });
      const spec = (ev!.object as { spec: { renewTime: string } }).spec;
      expect(new Date(spec.renewTime).getTime()).toBe(renewMs);
      const written = await h.client.getLease("vis-1");
      expect(written.spec!.renewTime!.getTime()).toBe(renewMs);
      expect(Number(written.metadata!.resourceVersion)).toBeGreaterThan(from);
      expect(h.server.registry.renewals.pendingCount).toBe(0);
      hb.close();
    } finally {
      w.close();
    }
  });
});
