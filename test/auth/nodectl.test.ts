/**
 * nodectl with authentication on: it finds the admin kubeconfig `nodeplane serve --tls` writes
 * (~/.nodeplane/config.yaml) by itself, manages bootstrap tokens (create, list, delete, a
 * bootstrap kubeconfig for a new machine), says who it is, and takes credentials by flags;
 * a refusal is one kubectl-style line.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readKubeconfig, WRITTEN_BY } from "../../src/auth/kubeconfig.js";
import { type AuthHarness, startAuthHarness } from "../support/auth.js";
import { nodectl } from "../nodectl/support.js";
import { agentNode } from "../support/server.js";

describe("nodectl with authentication", () => {
  let h: AuthHarness;
  let home: string;
  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), "nodectl-auth-home-"));
    h = await startAuthHarness({ writeKubeconfig: join(home, ".nodeplane", "config.yaml") });
    await h.operator.register(agentNode("n1"));
  });
  afterAll(async () => {
    await h.close();
    rmSync(home, { recursive: true, force: true });
  });

  it("finds the admin kubeconfig the server wrote, and is the admin", async () => {
    expect(readFileSync(join(home, ".nodeplane", "config.yaml"), "utf8").startsWith(WRITTEN_BY)).toBe(true);
    const get = await nodectl(["get", "nodes", "-o", "name"], { home });
    expect(get).toEqual({ code: 0, stdout: "node/n1\n", stderr: "" });
    const me = await nodectl(["auth", "whoami"], { home });
    expect(me.stdout).toMatch(/Username\s+nodeplane-admin\nGroups\s+\[system:masters system:authenticated\]\nAuthenticated by\s+x509\n/);
  });

  it("token create, list and delete; the secret is printed once only", async () => {
    const created = await nodectl(["token", "create", "--ttl", "2h", "--description", "rack 7", "--node-names", "r7-a,r7-b"], { home });
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    const [id, secret] = token.split(".");
    const list = await nodectl(["token", "list"], { home });
    expect(list.stdout).toMatch(new RegExp(`^TOKEN ID\\s+TTL\\s+EXPIRES\\s+NODE NAMES\\s+CREATED BY\\s+DESCRIPTION\\n${id}\\s+(119m|120m|2h)\\s+\\S+Z\\s+r7-a,r7-b\\s+nodeplane-admin\\s+rack 7\\n$`));
    expect(list.stdout).not.toContain(secret!);
    expect(await nodectl(["token", "delete", id!], { home })).toEqual({ code: 0, stdout: `bootstrap token "${id}" deleted\n`, stderr: "" });
    expect(await nodectl(["token", "delete", id!], { home })).toEqual({ code: 1, stdout: "", stderr: `Error from server (NotFound): bootstrap token "${id}" not found\n` });
  });

  it("token create --print-bootstrap-kubeconfig: the server, its CA and the token, for the new machine", async () => {
    const out = await nodectl(["token", "create", "--print-bootstrap-kubeconfig"], { home });
    expect(out.code).toBe(0);
    const file = join(home, "bootstrap.yaml");
    writeFileSync(file, out.stdout);
    const kc = readKubeconfig(file);
    expect(kc).toMatchObject({ server: h.address, tls: true, ca: h.caPem });
    expect(kc.token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  });

  it("credentials by flags; a viewer may read but not make tokens", async () => {
    const viewer = await h.certificate("viewer-bob", ["nodeplane:viewers"]);
    writeFileSync(join(home, "v.crt"), viewer.cert);
    writeFileSync(join(home, "v.key"), viewer.key);
    writeFileSync(join(home, "ca.crt"), h.caPem);
    const flags = ["--server", `https://${h.address}`, "--certificate-authority", join(home, "ca.crt"), "--client-certificate", join(home, "v.crt"), "--client-key", join(home, "v.key")];
    const empty = join(tmpdir(), "nodectl-auth-no-home");
    expect((await nodectl([...flags, "get", "nodes", "-o", "name"], { home: empty })).stdout).toBe("node/n1\n");
    expect(await nodectl([...flags, "token", "create"], { home: empty })).toEqual({
      code: 1,
      stdout: "",
      stderr: 'Error from server (Forbidden): user "viewer-bob" (groups nodeplane:viewers) cannot create bootstrap tokens (viewers may only get, list and watch)\n',
    });
    const anonymous = await nodectl(["--server", `https://${h.address}`, "--certificate-authority", join(home, "ca.crt"), "get", "nodes"], { home: empty });
    expect(anonymous.stderr).toBe("Error from server (Unauthorized): no credentials: present a client certificate or an authorization: Bearer <token> header\n");
  });

  it("does not overwrite a config file it did not write", async () => {
    const other = mkdtempSync(join(tmpdir(), "nodectl-auth-other-"));
    mkdirSync(join(other, ".nodeplane"));
    const mine = join(other, ".nodeplane", "config.yaml");
    writeFileSync(mine, "server: 10.9.9.9:7000\n");
    const second = await startAuthHarness({ writeKubeconfig: mine });
    try {
      expect(readFileSync(mine, "utf8")).toBe("server: 10.9.9.9:7000\n");
    } finally {
      await second.close();
      rmSync(other, { recursive: true, force: true });
    }
  });
});
