/**
 * Which node names a bootstrap token may get certificates for (in process, on a fake clock):
 * only free names; a claimed name is kept from other tokens for an hour or until its token is
 * gone; a token made with node names is held to them; the CSR must be exactly a node's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCsr, generateKeyPair } from "../../src/auth/pki.js";
import { RpcError } from "../../src/client/errors.js";
import { FakeClock } from "../../src/clock.js";
import { type AuthHarness, startAuthHarness } from "../support/auth.js";

const csr = async (cn: string, o = ["system:nodes"]): Promise<string> => createCsr(await generateKeyPair(), { commonName: cn, organizations: o });
const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => "OK", (e: unknown) => (e instanceof RpcError ? e.message : String(e)));

describe("bootstrap token claims", () => {
  let h: AuthHarness;
  const clock = new FakeClock(Date.now());
  beforeAll(async () => {
    h = await startAuthHarness({}, { clock });
  });
  afterAll(() => h.close());
  const holder = async (opts: { nodeNames?: string[] } = {}) => h.client({ token: (await h.operator.createBootstrapToken({ ttlMs: 24 * 3_600_000, ...opts })).token });

  it("a claimed name is kept from other tokens for an hour, or until its token is deleted", async () => {
    const a = await holder();
    const b = await holder();
    expect(await outcome(a.signNodeCertificate("c1", await csr("system:node:c1")))).toBe("OK");
    expect(await outcome(a.signNodeCertificate("c1", await csr("system:node:c1")))).toBe("OK"); // the same token again
    expect(await outcome(b.signNodeCertificate("c1", await csr("system:node:c1")))).toMatch(/^PERMISSION_DENIED: .*cannot get a certificate for node "c1": the name is taken/);
    clock.advance(3_600_000);
    expect(await outcome(b.signNodeCertificate("c1", await csr("system:node:c1")))).toBe("OK");

    const c = await holder();
    const d = await holder();
    expect(await outcome(c.signNodeCertificate("c2", await csr("system:node:c2")))).toBe("OK");
    expect(await outcome(d.signNodeCertificate("c2", await csr("system:node:c2")))).toMatch(/the name is taken/);
    const { id } = (await c.whoAmI()).user.match(/^system:bootstrap:(?<id>.+)$/)!.groups!;
    await h.operator.deleteBootstrapToken(id!);
    expect(await outcome(d.signNodeCertificate("c2", await csr("system:node:c2")))).toBe("OK");
  });

  it("a token made for some node names is held to them", async () => {
    const only = await holder({ nodeNames: ["rack7-a"] });
    expect(await outcome(only.signNodeCertificate("rack7-a", await csr("system:node:rack7-a")))).toBe("OK");
    expect(await outcome(only.signNodeCertificate("rack7-b", await csr("system:node:rack7-b")))).toMatch(/this bootstrap token is only for node names rack7-a$/);
  });

  it("the CSR must be exactly a node's: CN system:node:<name>, O system:nodes and nothing else", async () => {
    const t = await holder();
    expect(await outcome(t.signNodeCertificate("x1", await csr("system:node:x2")))).toBe(
      'INVALID_ARGUMENT: certificate_signing_request: "system:node:x2": its CN must be "system:node:x1", not "system:node:x2"',
    );
    expect(await outcome(t.signNodeCertificate("x1", await csr("system:node:x1", ["system:nodes", "system:masters"])))).toBe(
      'INVALID_ARGUMENT: certificate_signing_request: "system:node:x1": its only O must be "system:nodes"',
    );
    expect(await outcome(t.signNodeCertificate("Bad_Name", await csr("system:node:Bad_Name")))).toMatch(/^INVALID_ARGUMENT: node_name: "Bad_Name": /);
    expect(await outcome(t.signNodeCertificate("x1", "garbage"))).toMatch(/^INVALID_ARGUMENT: certificate_signing_request: "garbage": is not a PEM certificate signing request/);
  });
});
