/**
 * The visibility bound of a renewal, end to end on a real server (README "Lease renewals", and
 * service.proto's RenewLease): GetLease and ListLeases on the server that answered show it at
 * once; the stored Lease and watches (the REST lease watch) show it when the checkpoint that
 * writes it commits, and the checkpoint timer fires within C of the renewal; with a write
 * interval S, the stored renew time trails the latest renewal by less than S + C, and a Lease
 * renewed every S/2 is written about once per S. The fake clock drives the timer: nothing waits
 * on time.
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { decodeLease } from "../../src/model/codec.js";
import { leaseKey } from "../../src/model/keys.js";
import { createLogger } from "../../src/log.js";
import { NodeplaneServer } from "../../src/server/server.js";
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
    h = await startHarness({ clock, httpListen: "127.0.0.1:0", leaseCheckpointMs: C, leaseWriteIntervalMs: 0 });
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

  it("with a write interval S, the stored Lease and the lease watch trail the latest renewal by less than S + C, at one write per S", async () => {
    const S = 20_000;
    const I = S / 2;
    const renewals = 12;
    const clock = new FakeClock(Date.UTC(2026, 11, 6, 3, 0, 0));
    h = await startHarness({ clock, httpListen: "127.0.0.1:0", leaseCheckpointMs: C, leaseWriteIntervalMs: S });
    const server = h.server;
    await h.client.register(agentNode("vis-2"));
    const from = await server.store.currentRevision();
    const w = await openWatch(
      `http://127.0.0.1:${server.httpPort}`,
      `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases?watch=true&fieldSelector=metadata.name%3Dvis-2&resourceVersion=${from}`,
    );
    const hb = h.client.heartbeat();
    try {
      const written: number[] = [];
      let revision = (await server.store.get(leaseKey("vis-2")))!.modRevision;
      for (let i = 0; i < renewals; i++) {
        const latest = (await hb.renew("vis-2")).lease.spec!.renewTime!.getTime();
        expect(latest).toBe(clock.now());
        // The checkpoints of the next I, C apart, each awaited.
        for (let t = 0; t < I; t += C) {
          clock.advance(C);
          await server.registry.renewals.idle();
          expect((await h.client.getLease("vis-2")).spec!.renewTime!.getTime()).toBe(latest); // this server: at once
          const kv = (await server.store.get(leaseKey("vis-2")))!;
          const stored = decodeLease(kv).spec!.renewTime!.getTime();
          // After each checkpoint the stored renew time trails the latest renewal by less than S
          // (so by less than S + C at any time, C being the longest wait for the next checkpoint).
          expect(latest - stored).toBeLessThan(S);
          if (kv.modRevision !== revision) {
            revision = kv.modRevision;
            written.push(stored);
          }
        }
      }
      // Every other renewal starts a new write period of the Lease: about one write per S, not per I.
      expect(written.length).toBeGreaterThanOrEqual(renewals / 2 - 1);
      expect(written.length).toBeLessThanOrEqual(renewals / 2 + 1);
      // The lease watch shows exactly those writes.
      for (const at of written) {
        const ev = await w.next();
        expect(ev).toMatchObject({ type: "MODIFIED", object: { kind: "Lease", metadata: { name: "vis-2" } } });
        expect(Date.parse((ev!.object as { spec: { renewTime: string } }).spec.renewTime)).toBe(at);
      }
    } finally {
      hb.close();
      w.close();
    }
  });

  it("refuses to start with a write interval over half the grace period (other servers would see renewals too late)", async () => {
    const dataDir = join(tmpdir(), `nodeplane-never-created-${process.pid}-write-interval`);
    const start = NodeplaneServer.start({ listen: "127.0.0.1:0", httpListen: null, dataDir, logger: createLogger("silent"), leaseWriteIntervalMs: 20_001 });
    await expect(start).rejects.toThrow(/--lease-write-interval 20001ms is out of range: from 0 .* to half of --node-monitor-grace-period \(40000ms\)/);
    expect(existsSync(dataDir)).toBe(false);
  });
});
