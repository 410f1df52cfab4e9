/**
 * The parts behind the agent's endpoint, in process: the log ring (order, capacity, cut lines,
 * bad tail_lines), the checks (on a fake clock), the usage sampler (injected readers, fake
 * clock), and the signer's rules for serving certificates (only for the node itself, never for
 * a bootstrap token; serverAuth; no host names).
 */
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runChecks } from "../../src/agent/checks.js";
import { LogRing } from "../../src/agent/log-ring.js";
import { UsageSampler } from "../../src/agent/usage.js";
import { createCsr, generateKeyPair } from "../../src/auth/pki.js";
import { AuthClient } from "../../src/client/auth-client.js";
import { RpcError } from "../../src/client/errors.js";
import { FakeClock } from "../../src/clock.js";
import { InvalidError } from "../../src/errors.js";
import { type AuthHarness, startAuthHarness } from "../support/auth.js";

describe("LogRing", () => {
  it("keeps the last lines, oldest first, and answers a tail", () => {
    const ring = new LogRing(3);
    for (const n of [1, 2, 3, 4, 5]) ring.write(`{"n":${n}}\n`);
    expect(ring.tail(0)).toEqual(['{"n":3}', '{"n":4}', '{"n":5}']);
    expect(ring.tail(2)).toEqual(['{"n":4}', '{"n":5}']);
    expect(ring.tail(10)).toEqual(['{"n":3}', '{"n":4}', '{"n":5}']);
  });

  it("cuts a huge line and refuses a bad tail_lines", () => {
    const ring = new LogRing(2);
    ring.write(`${"x".repeat(20_000)}\n`);
    expect(ring.tail(1)[0]).toMatch(/^x{16384}…\(20000 chars\)$/);
    for (const bad of [-1, 1001, 1.5]) expect(() => ring.tail(bad)).toThrow(InvalidError);
    expect(() => ring.tail(1001)).toThrow(/tail_lines: "1001": must be a whole number from 1 to 1000/);
  });
});

describe("runChecks", () => {
  const clock = new FakeClock(1_000_000);
  const base = { clock, leaseDurationMs: 40_000, statusUpdateFrequencyMs: 10_000, statusReportFrequencyMs: 60_000 };
  const conditions = () => [{ type: "DiskPressure", status: "True", reason: "", message: "free space under the threshold" }];

  it.each([
    ["a fresh agent", { registeredAt: 0, renewedAt: 0, statusSentAt: 0 }, { registered: false, lease: false, status: false }],
    ["a healthy agent", { registeredAt: 990_000, renewedAt: 995_000, statusSentAt: 990_000 }, { registered: true, lease: true, status: true }],
    ["a stale lease and status", { registeredAt: 100_000, renewedAt: 900_000, statusSentAt: 100_000 }, { registered: true, lease: false, status: false }],
  ])("%s", (_name, progress, want) => {
    const out = runChecks({ ...base, progress, conditions, certificates: () => [{ name: "certificate", notAfter: new Date(2_000_000) }] });
    const ok = Object.fromEntries(out.map((c) => [c.name, c.ok]));
    expect(ok).toEqual({ ...want, disk: false, certificate: true });
    expect(out.find((c) => c.name === "disk")?.message).toBe("DiskPressure True: free space under the threshold");
  });

  it("an expired certificate fails its check", () => {
    const out = runChecks({ ...base, progress: { registeredAt: 1, renewedAt: 1, statusSentAt: 1 }, conditions: () => [], certificates: () => [{ name: "serving-certificate", notAfter: new Date(999_000) }] });
    expect(out.find((c) => c.name === "serving-certificate")).toEqual({ name: "serving-certificate", ok: false, message: "expired at 1970-01-01T00:16:39.000Z" });
  });
});

describe("UsageSampler", () => {
  it("averages CPU over the window since the last sample at least a second old", () => {
    const clock = new FakeClock(0);
    let busyMs = 0;
    const sampler = new UsageSampler({
      rootDir: "/data",
      clock,
      periodMs: 10_000,
      readers: {
        cpuBusyMs: () => busyMs,
        memory: () => ({ totalBytes: 8_000, availableBytes: 3_000 }),
        filesystem: () => ({ capacityBytes: 100, usedBytes: 40, availableBytes: 55, inodes: 10, inodesFree: 7 }),
      },
    });
    sampler.start();
    busyMs = 5_000; // 0.5 cores over 10 s
    clock.advance(10_000);
    busyMs = 5_250; // 0.5 s later, 0.25 s busy more: too short a window, so from the sample before
    clock.advance(500);
    const u = sampler.usage();
    expect(u.cpu?.usageNanoCores).toBe(500_000_000n);
    expect(u.window).toEqual({ seconds: 10n, nanos: 500_000_000 });
    expect(u.memory).toEqual({ workingSetBytes: 5_000n, availableBytes: 3_000n, capacityBytes: 8_000n });
    expect(u.filesystem).toEqual({ path: "/data", capacityBytes: 100n, usedBytes: 40n, availableBytes: 55n, inodes: 10n, inodesFree: 7n });
    sampler.stop();
  });
});

describe("serving certificates", () => {
  let h: AuthHarness;
  beforeAll(async () => {
    h = await startAuthHarness();
  });
  afterAll(() => h.close());
  const csr = async (name: string): Promise<string> => createCsr(await generateKeyPair(), { commonName: `system:node:${name}`, organizations: ["system:nodes"] });
  const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => "OK", (e: unknown) => (e instanceof RpcError ? e.message : String(e)));

  it("are signed for the node itself, with serverAuth and no host names", async () => {
    const node = (await h.node("s1")) as AuthClient;
    const res = await node.signNodeCertificate("s1", await csr("s1"), { usage: "serving" });
    const cert = new X509Certificate(res.certificate);
    expect(cert.subject.split("\n")).toEqual(["CN=system:node:s1", "O=system:nodes"]);
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    expect(cert.subjectAltName).toBeUndefined();
    expect(cert.checkIssued(new X509Certificate(h.caPem))).toBe(true);
  });

  it("are refused for another node and for a bootstrap token", async () => {
    const node = await h.node("s1");
    expect(await outcome(node.signNodeCertificate("s2", await csr("s2"), { usage: "serving" }))).toMatch(/^PERMISSION_DENIED: .*system:node:s1.* cannot create a certificate for node "s2"/);
    const token = (await h.operator.createBootstrapToken({ ttlMs: 3_600_000 })).token;
    const bootstrap = h.client({ token });
    expect(await outcome(bootstrap.signNodeCertificate("s3", await csr("s3"), { usage: "serving" }))).toMatch(/^PERMISSION_DENIED: .*cannot get a serving certificate for node "s3": a bootstrap token gets the client certificate only/);
  });
});
