/**
 * Golden output of `nodectl get nodes` (default, wide, --show-labels with a label selector,
 * json, yaml) and `nodectl describe node`, compared exactly. The fleet is built on a real
 * server whose clock is a FakeClock (test/nodectl/fixture.ts) and nodectl is told the same
 * `now`, so ages and times never move. The commands run in-process (the binary's own `run`),
 * and the pure printing layer is checked against the same goldens.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeNode, printNodeTable } from "../../src/cli/nodectl/print.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { type Fleet, NOW, startFleet } from "./fixture.js";
import { nodectl } from "./support.js";

let f: Fleet;
beforeAll(async () => {
  f = await startFleet();
});
afterAll(async () => {
  await f.h.close();
});

/** Lines of expected output (quoted one by one, so trailing spaces stay visible). */
const lines = (...l: string[]): string => l.join("\n") + "\n";

async function run(...args: string[]): Promise<string> {
  const r = await nodectl(["--server", f.server, ...args], { now: () => NOW });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return r.stdout;
}

const GET_NODES = lines(
  "NAME       STATUS                       ROLES           AGE     VERSION",
  "cp-1       Ready                        control-plane   2d3h    nodeplane-agent/0.1.0",
  "worker-1   NotReady                     worker          5m45s   0.1.0",
  "worker-2   Unknown,SchedulingDisabled   worker          45s     ",
);

const DESCRIBE_WORKER_1 = lines(
  "Name:               worker-1",
  "Roles:              worker",
  "Labels:             kubernetes.io/hostname=worker-1",
  "                    kubernetes.io/os=linux",
  "                    node-role.kubernetes.io/worker=",
  "                    tier=web",
  "                    topology.kubernetes.io/zone=zone-b",
  "Annotations:        nodeplane.io/agent-labels: kubernetes.io/hostname,kubernetes.io/os,node-role.kubernetes.io/worker,tier,topology.kubernetes.io/zone",
  "CreationTimestamp:  Wed, 25 Nov 2026 11:54:15 +0000",
  "Taints:             node.kubernetes.io/not-ready:NoExecute",
  "Unschedulable:      false",
  "Lease:",
  "  HolderIdentity:  worker-1",
  "  AcquireTime:     Wed, 25 Nov 2026 11:54:15 +0000",
  "  RenewTime:       Wed, 25 Nov 2026 11:54:15 +0000",
  "Conditions:",
  "  Type             Status  LastHeartbeatTime                 LastTransitionTime                Reason                     Message",
  "  ----             ------  -----------------                 ------------------                ------                     -------",
  "  Ready            False   Wed, 25 Nov 2026 11:54:15 +0000   Wed, 25 Nov 2026 11:54:15 +0000   AgentNotReady              container runtime is down",
  "  MemoryPressure   False   Wed, 25 Nov 2026 11:54:15 +0000   Wed, 25 Nov 2026 11:54:15 +0000   AgentHasSufficientMemory   agent has sufficient memory available",
  "Addresses:",
  "  InternalIP:  10.0.0.7",
  "  Hostname:    worker-1",
  "Capacity:",
  "  cpu:     4",
  "  memory:  16Gi",
  "  pods:    110",
  "Allocatable:",
  "  cpu:     3800m",
  "  memory:  15Gi",
  "  pods:    110",
  "System Info:",
  "  Machine ID:                 ",
  "  System UUID:                ",
  "  Boot ID:                    ",
  "  Kernel Version:             6.1.0",
  "  OS Image:                   Debian GNU/Linux 12",
  "  Operating System:           linux",
  "  Architecture:               amd64",
  "  Container Runtime Version:  ",
  "  Agent Version:              0.1.0",
  "PodCIDR:                      10.244.1.0/24",
  "PodCIDRs:                     10.244.1.0/24",
  "ProviderID:                   inventory://rack1/m7",
  "Events:",
  "  Type     Reason          Age                    From                       Message",
  "  ----     ------          ----                   ----                       -------",
  "  Normal   RegisteredNode  5m15s                  node-lifecycle-controller  Node worker-1 event: Registered Node worker-1 in Controller",
  "  Warning  NodeNotReady    2m15s (x2 over 4m15s)  node-lifecycle-controller  Node worker-1 status is now: NodeNotReady",
);

describe("nodectl get nodes (golden)", () => {
  it("default columns: NAME, STATUS, ROLES, AGE, VERSION", async () => {
    expect(await run("get", "nodes")).toBe(GET_NODES);
    // The pure printing layer gives the same text from the same nodes and `now`.
    const { nodes } = await f.h.client.listAllNodes();
    expect(printNodeTable(nodes, NOW)).toBe(GET_NODES);
  });

  it("-o wide adds INTERNAL-IP, EXTERNAL-IP, OS-IMAGE, KERNEL-VERSION", async () => {
    expect(await run("get", "nodes", "-o", "wide")).toBe(
      lines(
        "NAME       STATUS                       ROLES           AGE     VERSION                 INTERNAL-IP   EXTERNAL-IP    OS-IMAGE                         KERNEL-VERSION",
        "cp-1       Ready                        control-plane   2d3h    nodeplane-agent/0.1.0   10.0.0.10     203.0.113.10   Debian GNU/Linux 12 (bookworm)   6.1.0-18-amd64",
        "worker-1   NotReady                     worker          5m45s   0.1.0                   10.0.0.7      <none>         Debian GNU/Linux 12              6.1.0",
        "worker-2   Unknown,SchedulingDisabled   worker          45s                             <none>        <none>         <unknown>                        <unknown>",
      ),
    );
  });

  it("-l selects by label; --show-labels adds LABELS", async () => {
    expect(await run("get", "nodes", "-l", "node-role.kubernetes.io/worker")).toBe(
      lines(
        "NAME       STATUS                       ROLES    AGE     VERSION",
        "worker-1   NotReady                     worker   5m45s   0.1.0",
        "worker-2   Unknown,SchedulingDisabled   worker   45s     ",
      ),
    );
    expect(await run("get", "nodes", "-l", "topology.kubernetes.io/zone in (zone-a,zone-c)", "--show-labels")).toBe(
      lines(
        "NAME   STATUS   ROLES           AGE    VERSION                 LABELS",
        "cp-1   Ready    control-plane   2d3h   nodeplane-agent/0.1.0   kubernetes.io/hostname=cp-1,kubernetes.io/os=linux,node-role.kubernetes.io/control-plane=,topology.kubernetes.io/zone=zone-a",
      ),
    );
    expect(await run("get", "nodes", "-l", "!node-role.kubernetes.io/control-plane,tier!=web", "--no-headers")).toBe(
      lines("worker-2   Unknown,SchedulingDisabled   worker   45s   "),
    );
  });

  it("-o json: one NAME prints the node alone, in the proto's JSON names", async () => {
    const n = await f.h.client.getNode("worker-2");
    expect(await run("get", "nodes", "worker-2", "-o", "json")).toBe(`{
    "metadata": {
        "name": "worker-2",
        "uid": "${n.metadata!.uid}",
        "resourceVersion": "${n.metadata!.resourceVersion}",
        "generation": "1",
        "creationTimestamp": "2026-11-25T11:59:15.000Z",
        "labels": {
            "node-role.kubernetes.io/worker": "",
            "tier": "storage"
        }
    },
    "spec": {
        "unschedulable": true,
        "taints": [
            {
                "key": "dedicated",
                "value": "storage",
                "effect": "NoSchedule"
            }
        ]
    },
    "status": {}
}
`);
  });

  it("-o json without a NAME prints a NodeList that reads back as the same nodes", async () => {
    const doc = JSON.parse(await run("get", "nodes", "-o", "json")) as { kind: string; items: unknown[] };
    expect(doc.kind).toBe("NodeList");
    const { nodes } = await f.h.client.listAllNodes();
    expect(doc.items.map((i) => Node.fromJSON(i))).toEqual(nodes);
  });

  it("-o yaml with a selector prints a NodeList", async () => {
    const n = await f.h.client.getNode("worker-2");
    expect(await run("get", "nodes", "-l", "tier=storage", "-o", "yaml")).toBe(
      lines(
        "kind: NodeList",
        "items:",
        "- metadata:",
        "    name: worker-2",
        `    uid: ${n.metadata!.uid}`,
        `    resourceVersion: "${n.metadata!.resourceVersion}"`,
        '    generation: "1"',
        "    creationTimestamp: 2026-11-25T11:59:15.000Z",
        "    labels:",
        '      node-role.kubernetes.io/worker: ""',
        "      tier: storage",
        "  spec:",
        "    unschedulable: true",
        "    taints:",
        "    - key: dedicated",
        "      value: storage",
        "      effect: NoSchedule",
        "  status: {}",
      ),
    );
  });

  it("nothing matching: a note on stderr, or an empty NodeList for -o json", async () => {
    expect(await nodectl(["--server", f.server, "get", "nodes", "-l", "tier=none"], { now: () => NOW })).toEqual({ code: 0, stdout: "", stderr: "No resources found\n" });
    expect(await run("get", "nodes", "-l", "tier=none", "-o", "json")).toBe('{\n    "kind": "NodeList",\n    "items": []\n}\n');
  });

  it("get leases: NAME, HOLDER, AGE since the last renewal", async () => {
    expect(await run("get", "leases")).toBe(lines("NAME       HOLDER     AGE", "cp-1       cp-1       10s", "worker-1   worker-1   5m45s"));
  });
});

describe("nodectl describe node (golden)", () => {
  it("a node with taints, a lease, conditions, pod CIDRs and events", async () => {
    expect(await run("describe", "node", "worker-1")).toBe(DESCRIBE_WORKER_1);
    // The pure printing layer, from the same objects.
    const [node, lease, events] = await Promise.all([f.h.client.getNode("worker-1"), f.h.client.getLease("worker-1"), f.h.client.listEvents("worker-1")]);
    expect(describeNode(node, lease, events, NOW)).toBe(DESCRIBE_WORKER_1);
  });

  it("several nodes: full system info and annotations; a node created by hand has no lease and no status", async () => {
    expect(await run("describe", "nodes", "cp-1", "worker-2")).toBe(
      lines(
        "Name:               cp-1",
        "Roles:              control-plane",
        "Labels:             kubernetes.io/hostname=cp-1",
        "                    kubernetes.io/os=linux",
        "                    node-role.kubernetes.io/control-plane=",
        "                    topology.kubernetes.io/zone=zone-a",
        "Annotations:        nodeplane.io/agent-labels: kubernetes.io/hostname,kubernetes.io/os,node-role.kubernetes.io/control-plane,topology.kubernetes.io/zone",
        "                    nodeplane.io/owner: platform-team",
        "CreationTimestamp:  Mon, 23 Nov 2026 08:54:15 +0000",
        "Taints:             <none>",
        "Unschedulable:      false",
        "Lease:",
        "  HolderIdentity:  cp-1",
        "  AcquireTime:     Mon, 23 Nov 2026 08:54:15 +0000",
        "  RenewTime:       Wed, 25 Nov 2026 11:59:50 +0000",
        "Conditions:",
        "  Type    Status  LastHeartbeatTime                 LastTransitionTime                Reason       Message",
        "  ----    ------  -----------------                 ------------------                ------       -------",
        "  Ready   True    Mon, 23 Nov 2026 08:54:15 +0000   Mon, 23 Nov 2026 08:54:15 +0000   AgentReady   agent is posting ready status",
        "Addresses:",
        "  InternalIP:  10.0.0.10",
        "  ExternalIP:  203.0.113.10",
        "  Hostname:    cp-1",
        "Capacity:",
        "  cpu:     4",
        "  memory:  16Gi",
        "  pods:    110",
        "Allocatable:",
        "  cpu:     3800m",
        "  memory:  15Gi",
        "  pods:    110",
        "System Info:",
        "  Machine ID:                 0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "  System UUID:                4c4c4544-0042-3510-8052-b4c04f4e3232",
        "  Boot ID:                    b7c3a1d2-9e8f-4a5b-8c7d-6e5f4a3b2c1d",
        "  Kernel Version:             6.1.0-18-amd64",
        "  OS Image:                   Debian GNU/Linux 12 (bookworm)",
        "  Operating System:           linux",
        "  Architecture:               amd64",
        "  Container Runtime Version:  containerd://1.7.13",
        "  Agent Version:              nodeplane-agent/0.1.0",
        "Events:                       <none>",
        "",
        "",
        "Name:               worker-2",
        "Roles:              worker",
        "Labels:             node-role.kubernetes.io/worker=",
        "                    tier=storage",
        "Annotations:        <none>",
        "CreationTimestamp:  Wed, 25 Nov 2026 11:59:15 +0000",
        "Taints:             dedicated=storage:NoSchedule",
        "Unschedulable:      true",
        "Addresses:",
        "System Info:",
        "  Machine ID:                 ",
        "  System UUID:                ",
        "  Boot ID:                    ",
        "  Kernel Version:             ",
        "  OS Image:                   ",
        "  Operating System:           ",
        "  Architecture:               ",
        "  Container Runtime Version:  ",
        "  Agent Version:              ",
        "Events:                       <none>",
      ),
    );
  });
});
