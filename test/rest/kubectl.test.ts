/**
 * The real kubectl (/usr/bin/kubectl, which runs the kubectl matching the server's /version)
 * against a real server on 127.0.0.1:0 through its HTTP listener: get (plain, wide, yaml,
 * selectors, watch), describe, label, taint, cordon, delete, leases, apply and create — each
 * output checked, and each change read back through gRPC with the SDK's NodeClient (one
 * registry under both views). Nothing sleeps: every wait is for a line of output or an exit.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { NotFoundError } from "../../src/client/errors.js";
import { EventRecorder } from "../../src/registry/events.js";
import type { AccessDecision, RestAttributes } from "../../src/rest/access.js";
import { startAuthHarness } from "../support/auth.js";
import { type Kubectl, kubeconfigTls, kubectlFor } from "../support/kubectl.js";
import { agentNode, type Harness, startHarness } from "../support/server.js";

let h: Harness;
let kc: Kubectl;
let recorder: EventRecorder;
/** What the access hook decides; tests about refusals set it, the rest leave it allowing. */
let decide: (attrs: RestAttributes) => AccessDecision = () => ({ allowed: true });
const seen: RestAttributes[] = [];

beforeAll(async () => {
  h = await startHarness({
    httpListen: "127.0.0.1:0",
    restAccess: (_req, attrs) => {
      seen.push(attrs);
      return decide(attrs);
    },
  });
  kc = kubectlFor(`http://127.0.0.1:${h.server.httpPort}`);
  // Events as the controllers record them, into the same store.
  recorder = new EventRecorder({ store: h.server.store, source: "node-lifecycle-controller" });
});

afterAll(async () => {
  kc?.close();
  await h?.close();
});

/** Succeeds with exactly this output. */
async function ok(args: string[], stdout: string | RegExp): Promise<void> {
  const r = await kc.run(args);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  if (typeof stdout === "string") expect(r.stdout).toBe(stdout);
  else expect(r.stdout).toMatch(stdout);
}

async function register(name: string, labels: Record<string, string> = {}): Promise<void> {
  await h.client.register(agentNode(name, { metadata: { labels } }));
}

describe("kubectl get", () => {
  it("nodes: plain, -o wide, -l, -o yaml and the short name, as kubectl prints them", async () => {
    await register("get-a", { suite: "get", team: "infra", "node-role.kubernetes.io/worker": "" });
    await register("get-b", { suite: "get", team: "web" });

    await ok(["get", "nodes", "-l", "suite=get"], /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\nget-a\s+Ready\s+worker\s+\d+s\s+0\.1\.0\nget-b\s+Ready\s+<none>\s+\d+s\s+0\.1\.0\n$/);
    await ok(
      ["get", "no", "-l", "suite=get", "-o", "wide"],
      /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME\nget-a\s+Ready\s+worker\s+\d+s\s+0\.1\.0\s+10\.0\.0\.7\s+<none>\s+Debian GNU\/Linux 12\s+6\.1\.0\s+<unknown>\n/,
    );
    await ok(["get", "nodes", "-l", "suite=get,team in (infra)", "-o", "name"], "node/get-a\n");
    await ok(["get", "nodes", "-l", "suite=get", "--show-labels", "--no-headers"], /^get-a\s+Ready\s+worker\s+\d+s\s+0\.1\.0\s+kubernetes\.io\/hostname=get-a,kubernetes\.io\/os=linux,node-role\.kubernetes\.io\/worker=,suite=get,team=infra\n/);

    const r = await kc.run(["get", "node", "get-a", "-o", "yaml"]);
    expect(r.code).toBe(0);
    const doc = parseYaml(r.stdout) as Record<string, Record<string, unknown>>;
    const viaGrpc = await h.client.getNode("get-a");
    expect(doc).toMatchObject({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "get-a", uid: viaGrpc.metadata?.uid, resourceVersion: viaGrpc.metadata?.resourceVersion, labels: { team: "infra" } },
      status: {
        capacity: { cpu: "4", memory: "16Gi", pods: "110" },
        addresses: [{ type: "InternalIP", address: "10.0.0.7" }, { type: "Hostname", address: "get-a" }],
        nodeInfo: { kubeletVersion: "0.1.0", kernelVersion: "6.1.0", osImage: "Debian GNU/Linux 12" },
        conditions: [{ type: "Ready", status: "True", reason: "AgentReady" }],
      },
    });
  });

  it("nodes -w: one header, then a row appended for each change made through gRPC while watching", async () => {
    await register("watch-a", { suite: "watch" });
    const w = kc.stream(["get", "nodes", "-l", "suite=watch", "-w"]);
    try {
      expect(await w.next()).toMatch(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$/);
      expect(await w.next()).toMatch(/^watch-a\s+Ready\s+<none>\s+\d+s\s+0\.1\.0$/);

      const node = await h.client.getNode("watch-a");
      await h.client.updateNode({ ...node, spec: { ...node.spec, unschedulable: true } });
      expect(await w.next()).toMatch(/^watch-a\s+Ready,SchedulingDisabled\s+<none>\s+\d+s\s+0\.1\.0$/);

      await h.client.updateStatus("watch-a", { ...node.status, conditions: [{ type: "Ready", status: "False", reason: "Broken" }] });
      expect(await w.next()).toMatch(/^watch-a\s+NotReady,SchedulingDisabled\s/);

      await register("watch-b", { suite: "watch" });
      expect(await w.next()).toMatch(/^watch-b\s+Ready\s/);
    } finally {
      await w.stop();
    }
    expect(w.lines.filter((l) => l.startsWith("NAME"))).toHaveLength(1);
  });

  it("leases -n kube-node-lease: each node's heartbeat, as gRPC renewed it", async () => {
    await register("lease-a");
    const renewed = await h.client.renewLease("lease-a", { holderIdentity: "agent-on-lease-a" });
    await ok(["get", "leases", "-n", "kube-node-lease", "--field-selector", "metadata.name=lease-a"], /^NAME\s+HOLDER\s+AGE\nlease-a\s+agent-on-lease-a\s+\d+s\n$/);
    expect((await kc.run(["get", "leases", "-n", "kube-node-lease"])).stdout).toMatch(/\nlease-a\s+agent-on-lease-a\s/);

    const r = await kc.run(["get", "lease", "lease-a", "-n", "kube-node-lease", "-o", "yaml"]);
    const doc = parseYaml(r.stdout) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
    expect(doc.metadata).toMatchObject({ name: "lease-a", namespace: "kube-node-lease", resourceVersion: renewed.metadata?.resourceVersion });
    expect(doc.spec).toMatchObject({ holderIdentity: "agent-on-lease-a", leaseDurationSeconds: 40, leaseTransitions: 1 });
    // MicroTime: six fractional digits, the renewal's millisecond kept.
    expect(doc.spec.renewTime).toBe(`${renewed.spec!.renewTime!.toISOString().slice(0, -1)}000Z`);

    expect(await kc.run(["get", "leases", "-n", "default"])).toEqual({ code: 0, stdout: "", stderr: "No resources found in default namespace.\n" });
  });
});

describe("kubectl describe node", () => {
  it("shows its conditions, its lease and its events (and only its own)", async () => {
    await register("desc-a");
    await h.client.renewLease("desc-a");
    await recorder.record({ nodeName: "desc-a", type: "Normal", reason: "NodeReady", message: "Node desc-a status is now: NodeReady" });
    await recorder.record({ nodeName: "desc-other", type: "Warning", reason: "NodeNotReady", message: "not this one" });

    const r = await kc.run(["describe", "node", "desc-a"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^Name:\s+desc-a\nRoles:\s+<none>\n/);
    expect(r.stdout).toMatch(/\nLease:\n\s+HolderIdentity:\s+desc-a\n\s+AcquireTime:\s+\w{3}, .+\n\s+RenewTime:\s+\w{3}, .+\n/);
    expect(r.stdout).toMatch(/\nConditions:\n\s+Type\s+Status\s+LastHeartbeatTime\s+LastTransitionTime\s+Reason\s+Message\n.*\n\s+Ready\s+True\s+.+AgentReady\s+agent is posting ready status\n/);
    expect(r.stdout).toMatch(/\nAddresses:\n\s+InternalIP:\s+10\.0\.0\.7\n\s+Hostname:\s+desc-a\n/);
    expect(r.stdout).toMatch(/\n\s+Kubelet Version:\s+0\.1\.0\n/);
    expect(r.stdout).toMatch(/\nNon-terminated Pods:\s+\(0 in total\)\n/);
    expect(r.stdout).toMatch(/\nEvents:\n\s+Type\s+Reason\s+Age\s+From\s+Message\n\s+----.*\n\s+Normal\s+NodeReady\s+\d+s\s+node-lifecycle-controller\s+Node desc-a status is now: NodeReady\n$/);
    expect(r.stdout).not.toContain("not this one");

    await ok(["get", "events", "--field-selector", "involvedObject.name=desc-a"], /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE\n\d+s\s+Normal\s+NodeReady\s+node\/desc-a\s+Node desc-a status is now: NodeReady\n$/);
  });
});

describe("kubectl changes nodes, and gRPC sees every change", () => {
  it("label, taint and untaint, cordon and uncordon (merge and strategic merge patches)", async () => {
    await register("edit-a");
    const before = await h.client.getNode("edit-a");

    await ok(["label", "node", "edit-a", "team=infra"], "node/edit-a labeled\n");
    expect((await h.client.getNode("edit-a")).metadata?.labels).toMatchObject({ team: "infra" });
    await ok(["label", "node", "edit-a", "team-"], "node/edit-a unlabeled\n");
    expect((await h.client.getNode("edit-a")).metadata?.labels).not.toHaveProperty("team");

    await ok(["taint", "node", "edit-a", "dedicated=gpu:NoSchedule", "maintenance:NoExecute"], "node/edit-a tainted\n");
    const tainted = (await h.client.getNode("edit-a")).spec!.taints;
    expect(tainted.map((t) => `${t.key}=${t.value}:${t.effect}`)).toEqual(["dedicated=gpu:NoSchedule", "maintenance=:NoExecute"]);
    expect(tainted[1]!.timeAdded).toBeInstanceOf(Date);
    await ok(["taint", "node", "edit-a", "dedicated-"], "node/edit-a untainted\n");
    // spec.taints replaced whole: the other taint stays, with its time exactly as stored.
    expect((await h.client.getNode("edit-a")).spec!.taints).toEqual([tainted[1]]);

    await ok(["cordon", "edit-a"], "node/edit-a cordoned\n");
    expect((await h.client.getNode("edit-a")).spec?.unschedulable).toBe(true);
    await ok(["uncordon", "edit-a"], "node/edit-a uncordoned\n");
    expect((await h.client.getNode("edit-a")).spec?.unschedulable).toBe(false);
    // drain: cordon, then the (always empty) pods on the node.
    await ok(["drain", "edit-a", "--ignore-daemonsets"], "node/edit-a cordoned\nnode/edit-a drained\n");
    expect((await h.client.getNode("edit-a")).spec?.unschedulable).toBe(true);
    await ok(["uncordon", "edit-a"], "node/edit-a uncordoned\n");
    const after = await h.client.getNode("edit-a");
    expect(after.spec?.unschedulable).toBe(false);
    // Every read-modify-write went through Kubernetes JSON and back: the status is untouched.
    expect(after.status).toEqual(before.status);
  });

  it("delete removes the node and its lease", async () => {
    await register("del-a");
    await ok(["delete", "node", "del-a"], 'node "del-a" deleted\n');
    await expect(h.client.getNode("del-a")).rejects.toBeInstanceOf(NotFoundError);
    await expect(h.client.getLease("del-a")).rejects.toBeInstanceOf(NotFoundError);
    const r = await kc.run(["delete", "node", "del-a"]);
    expect(r).toEqual({ code: 1, stdout: "", stderr: 'Error from server (NotFound): nodes "del-a" not found\n' });
  });

  it("apply -f creates, configures and leaves unchanged; create -f refuses a taken name and unknown fields", async () => {
    const file = join(kc.dir, "node.yaml");
    const manifest = "apiVersion: v1\nkind: Node\nmetadata:\n  name: apply-a\n  labels:\n    team: infra\nspec:\n  providerID: inventory://rack1/m1\n";
    writeFileSync(file, manifest);
    await ok(["apply", "-f", file], "node/apply-a created\n");
    expect(await h.client.getNode("apply-a")).toMatchObject({ metadata: { labels: { team: "infra" } }, spec: { providerId: "inventory://rack1/m1" } });
    await ok(["apply", "-f", file], "node/apply-a unchanged\n");

    writeFileSync(file, manifest.replace("team: infra", "tier: web") + "  taints:\n  - {key: dedicated, value: gpu, effect: NoSchedule}\n");
    await ok(["apply", "-f", file], "node/apply-a configured\n");
    const node = await h.client.getNode("apply-a");
    expect(node.metadata?.labels).toEqual({ tier: "web" });
    expect(node.spec?.taints).toEqual([{ key: "dedicated", value: "gpu", effect: "NoSchedule", timeAdded: undefined }]);
    expect(node.metadata?.annotations).toHaveProperty(["kubectl.kubernetes.io/last-applied-configuration"]);

    expect(await kc.run(["create", "-f", file])).toEqual({
      code: 1,
      stdout: "",
      stderr: `Error from server (AlreadyExists): error when creating "${file}": nodes "apply-a" already exists\n`,
    });
    writeFileSync(file, "apiVersion: v1\nkind: Node\nmetadata:\n  name: apply-b\nspec:\n  unschedulabel: true\n");
    expect(await kc.run(["create", "-f", file])).toEqual({
      code: 1,
      stdout: "",
      stderr: `Error from server (BadRequest): error when creating "${file}": strict decoding error: unknown field "spec.unschedulabel"\n`,
    });
    await expect(h.client.getNode("apply-b")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("a value the registry refuses is a 422 naming the field in Kubernetes' spelling", async () => {
    const file = join(kc.dir, "bad.yaml");
    writeFileSync(file, "apiVersion: v1\nkind: Node\nmetadata:\n  name: Bad_Name\n");
    const r = await kc.run(["create", "-f", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^The Node "Bad_Name" is invalid: metadata\.name: Invalid value: "Bad_Name": /);
  });
});

describe("access", () => {
  it("every request is checked by the access hook: a refusal is Forbidden (403) or Unauthorized (401), and nothing changes", async () => {
    await register("acc-a");
    seen.length = 0;
    decide = (attrs) =>
      attrs.verb === "patch" ? { allowed: false, code: 403, message: `user "system:node:acc-b" cannot patch resource "nodes" named "${attrs.name}"` } : { allowed: true };
    try {
      const r = await kc.run(["label", "node", "acc-a", "team=infra"]);
      expect(r).toEqual({ code: 1, stdout: "", stderr: 'Error from server (Forbidden): user "system:node:acc-b" cannot patch resource "nodes" named "acc-a"\n' });
      expect(seen).toContainEqual({ verb: "patch", resource: "nodes", name: "acc-a", rpc: "UpdateNode" });
      // Discovery too goes through the hook (with no RPC behind it: authentication only).
      expect(seen).toContainEqual({ verb: "get", resource: "discovery", rpc: undefined });
      expect((await h.client.getNode("acc-a")).metadata?.labels).not.toHaveProperty("team");

      decide = () => ({ allowed: false, code: 401, message: "no credentials" });
      const denied = await kc.run(["get", "node", "acc-a"]);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain("error: You must be logged in to the server (no credentials)");
    } finally {
      decide = () => ({ allowed: true });
    }
  });

  it("as a node identity, kubectl is refused what the authorization table forbids, and allowed its own node", async () => {
    const auth = await startAuthHarness({}, { httpListen: "127.0.0.1:0" });
    const node = kubectlFor("", kubeconfigTls(`https://127.0.0.1:${auth.server.httpPort}`, { ca: auth.caPem, ...(await auth.certificate("system:node:kn-a", ["system:nodes"])) }));
    try {
      await auth.operator.register(agentNode("kn-a"));
      await auth.operator.register(agentNode("kn-b"));
      const own = await node.run(["get", "node", "kn-a"]);
      expect(own.code, own.stderr).toBe(0);
      expect(own.stdout).toMatch(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\nkn-a\s+Ready\s/);

      const label = await node.run(["label", "node", "kn-b", "team=infra"]);
      expect(label.code).toBe(1);
      expect(label.stderr).toMatch(/^Error from server \(Forbidden\): .*system:node:kn-a.*kn-b/);
      const del = await node.run(["delete", "node", "kn-a"]);
      expect(del.code).toBe(1);
      expect(del.stderr).toMatch(/^Error from server \(Forbidden\): .*system:node:kn-a/);
      expect((await auth.operator.getNode("kn-b")).metadata?.labels).not.toHaveProperty("team");
      expect((await auth.operator.getNode("kn-a")).metadata?.name).toBe("kn-a");
    } finally {
      node.close();
      await auth.close();
    }
  });
});

describe("README", () => {
  it('"Using kubectl": its kubeconfig works as written (with this server\'s port)', async () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Using kubectl"));
    const config = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(config).toContain("server: http://127.0.0.1:8080");
    const own = kubectlFor("", config!.replace("127.0.0.1:8080", `127.0.0.1:${h.server.httpPort}`));
    try {
      await register("readme-a", { suite: "readme" });
      const r = await own.run(["get", "nodes", "-l", "suite=readme"]);
      expect(r).toMatchObject({ code: 0, stderr: "", stdout: expect.stringMatching(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\nreadme-a\s+Ready\s/) });
    } finally {
      own.close();
    }
  });
});
