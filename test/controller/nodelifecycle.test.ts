/** The node lifecycle controller, one behaviour of BEHAVIOUR.md "Health monitoring" per test, on a fake clock. */
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { TokenBucket } from "../../src/controller/zones.js";
import { Node } from "../../src/gen/nodeplane/v1/node.js";
import { leaseKey, nodeKey } from "../../src/model/keys.js";
import { type HeldStore, heldStore } from "../support/held-store.js";
import { names, World, zone } from "./support.js";

let w: World;
afterEach(async () => {
  await w?.close();
});

const GRACE = 40_000;
const STARTUP = 60_000;

describe("health: probe times and grace periods", () => {
  it("is not Unknown one step before the grace ends, and Unknown right after", async () => {
    w = await World.create();
    await w.healthy("n1");
    await w.step();
    await w.step(GRACE);
    expect(await w.readyStatus("n1")).toBe("True");
    await w.step(1);
    const node = await w.node("n1");
    const byType = Object.fromEntries(node.status.conditions.map((c) => [c.type, c]));
    expect(byType.Ready).toMatchObject({ status: "Unknown", reason: "NodeStatusUnknown", message: "Node agent stopped posting node status." });
    expect(byType.Ready!.lastTransitionTime?.getTime()).toBe(w.clock.now());
    for (const type of ["MemoryPressure", "DiskPressure", "PIDPressure"]) {
      expect(byType[type]).toMatchObject({ status: "Unknown", reason: "NodeStatusNeverUpdated", message: "Node agent never posted node status." });
    }
    expect(byType.NetworkUnavailable).toBeUndefined();
  });

  it("gives a node that never posted Ready the startup grace instead", async () => {
    w = await World.create();
    await w.registry.createNode(Node.fromPartial({ metadata: { name: "new" } }));
    await w.step();
    await w.step(STARTUP);
    expect(await w.readyStatus("new")).toBeUndefined();
    await w.step(1);
    const ready = (await w.node("new")).status.conditions.find((c) => c.type === "Ready");
    expect(ready).toMatchObject({ status: "Unknown", reason: "NodeStatusNeverUpdated" });
  });

  it("keeps a node healthy on lease renewals alone", async () => {
    w = await World.create();
    await w.healthy("lease-only");
    await w.step();
    for (let i = 0; i < 10; i++) {
      await w.step(10_000);
      await w.registry.renewLease("lease-only", "", 0);
      await w.step(); // a pass at once: the controller observes the renewal when it happens
    }
    await w.step(GRACE);
    expect(await w.readyStatus("lease-only")).toBe("True");
    await w.step(1);
    expect(await w.readyStatus("lease-only")).toBe("Unknown");
  });

  it("keeps a node healthy on status heartbeats alone", async () => {
    w = await World.create();
    await w.healthy("status-only");
    await w.step();
    for (let i = 0; i < 10; i++) {
      await w.step(30_000);
      await w.post("status-only");
      await w.step();
    }
    await w.step(GRACE);
    expect(await w.readyStatus("status-only")).toBe("True");
    await w.step(1);
    expect(await w.readyStatus("status-only")).toBe("Unknown");
  });

  it("leaves NetworkUnavailable as it is", async () => {
    w = await World.create();
    await w.registry.register({
      ...Node.fromPartial({
        metadata: { name: "net" },
        status: { conditions: [w.ready("True"), { type: "NetworkUnavailable", status: "False", reason: "RouteCreated" }] },
      }),
    });
    await w.step();
    await w.step(GRACE + 1);
    const net = (await w.node("net")).status.conditions.find((c) => c.type === "NetworkUnavailable");
    expect(net).toMatchObject({ status: "False", reason: "RouteCreated" });
  });

  it("gives every node a full grace period after a controller restart", async () => {
    w = await World.create();
    await w.healthy("survivor");
    await w.step();
    await w.step(35_000);
    await w.startController();
    await w.step();
    await w.step(GRACE);
    expect(await w.readyStatus("survivor")).toBe("True");
    await w.step(1);
    expect(await w.readyStatus("survivor")).toBe("Unknown");
  });

  it("goes on past a node deleted while the pass waited for an earlier node's write", async () => {
    let held!: HeldStore;
    w = await World.create({}, { wrap: (s) => (held = heldStore(s)).store });
    await w.healthy("a");
    await w.healthy("b");
    await w.step();
    w.clock.advance(GRACE + 1);
    const release = held.hold();
    const pass = w.ctl.monitor();
    await held.waiting(1); // the pass waits for a's write (Ready Unknown), b still ahead of it
    const res = await w.store.txn({ compare: [], ops: [{ type: "delete", key: nodeKey("b") }, { type: "delete", key: leaseKey("b") }] });
    if (!res.succeeded) throw new Error("delete failed");
    expect(await w.informers.nodes.waitFor(res.revision)).toBe(true);
    release();
    await pass;
    expect(await w.readyStatus("a")).toBe("Unknown");
    await expect(w.registry.getNode("b")).rejects.toThrow(/not found/);
  });

  it("looks at passSliceNodes nodes per event-loop turn, and judges the nodes of every slice", async () => {
    w = await World.create({ passSliceNodes: 2 });
    for (const name of ["s1", "s2", "s3", "s4", "s5"]) await w.healthy(name);
    await w.step();
    await w.step(GRACE + 1);
    // Every node went silent: each is judged, whichever slice it is in.
    for (const name of ["s1", "s2", "s3", "s4", "s5"]) expect(await w.readyStatus(name)).toBe("Unknown");
    // A pass with nothing to change leaves the turn between slices (5 nodes: after 2 and 4).
    let turns = 0;
    let done = false;
    const tick = (): void => {
      if (done) return;
      turns++;
      setImmediate(tick);
    };
    await w.settle();
    const pass = w.ctl.monitor().finally(() => (done = true));
    setImmediate(tick);
    await pass;
    expect(turns).toBe(2);
  });

  it("keeps checking a node that never becomes healthy until it is deleted", async () => {
    w = await World.create();
    await w.companion();
    await w.registry.createNode(Node.fromPartial({ metadata: { name: "invalid" } }));
    await w.step();
    await w.run(STARTUP + 120_000, 5_000);
    expect(await w.readyStatus("invalid")).toBe("Unknown");
    expect(await w.taints("invalid")).toEqual(["node.kubernetes.io/unreachable:NoExecute", "node.kubernetes.io/unreachable:NoSchedule"]);
    await w.registry.deleteNode("invalid", "");
    await w.run(10_000, 5_000);
    const events = await w.events.list("invalid");
    const lastEvent = Math.max(...events.map((e) => e.lastTimestamp!.getTime()));
    expect(lastEvent).toBeLessThan(w.clock.now() - 5_000);
  });
});

describe("taints from conditions", () => {
  const rows: { name: string; condition?: [string, string]; unschedulable?: boolean; taint: string }[] = [
    { name: "Ready False", condition: ["Ready", "False"], taint: "node.kubernetes.io/not-ready:NoSchedule" },
    { name: "Ready Unknown", condition: ["Ready", "Unknown"], taint: "node.kubernetes.io/unreachable:NoSchedule" },
    { name: "MemoryPressure True", condition: ["MemoryPressure", "True"], taint: "node.kubernetes.io/memory-pressure:NoSchedule" },
    { name: "DiskPressure True", condition: ["DiskPressure", "True"], taint: "node.kubernetes.io/disk-pressure:NoSchedule" },
    { name: "PIDPressure True", condition: ["PIDPressure", "True"], taint: "node.kubernetes.io/pid-pressure:NoSchedule" },
    { name: "NetworkUnavailable True", condition: ["NetworkUnavailable", "True"], taint: "node.kubernetes.io/network-unavailable:NoSchedule" },
    { name: "spec.unschedulable", unschedulable: true, taint: "node.kubernetes.io/unschedulable:NoSchedule" },
  ];
  it.each(rows)("$name → $taint, and removed when it clears", async ({ condition, unschedulable, taint }) => {
    w = await World.create();
    await w.healthy("c");
    await w.step();
    if (condition) await w.post("c", [condition[0] === "Ready" ? w.ready(condition[1]) : w.ready("True"), ...(condition[0] === "Ready" ? [] : [{ type: condition[0], status: condition[1] }])]);
    if (unschedulable) {
      const node = await w.node("c");
      await w.registry.updateNode({ ...node, spec: { ...node.spec, unschedulable: true } });
    }
    await w.settle();
    expect(await w.taints("c")).toContain(taint);
    if (condition) await w.post("c");
    if (unschedulable) {
      const node = await w.node("c");
      await w.registry.updateNode({ ...node, spec: { ...node.spec, unschedulable: false } });
    }
    await w.settle();
    expect((await w.taints("c")).filter((t) => t.endsWith(":NoSchedule"))).toEqual([]);
  });

  it("leaves taints it does not own alone", async () => {
    w = await World.create();
    await w.companion();
    await w.healthy("mixed");
    const node = await w.node("mixed");
    await w.registry.updateNode({ ...node, spec: { ...node.spec, taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule", timeAdded: undefined }] } });
    await w.post("mixed", [w.ready("False")]);
    await w.step();
    expect(await w.taints("mixed")).toEqual(["dedicated:NoSchedule", "node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/not-ready:NoSchedule"]);
  });
});

describe("NoExecute taints", () => {
  it("adds unreachable when a node goes silent, removes every taint on recovery, with events", async () => {
    w = await World.create();
    await w.companion();
    await w.healthy("r");
    await w.step();
    await w.step(GRACE + 1);
    expect(await w.taints("r")).toEqual(["node.kubernetes.io/unreachable:NoExecute", "node.kubernetes.io/unreachable:NoSchedule"]);
    await w.post("r");
    await w.step(1000);
    expect(await w.taints("r")).toEqual([]);
    const reasons = (await w.events.list("r")).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(["NodeNotReady", "TaintAdded", "TaintRemoved", "NodeReady"]));
  });

  it("swaps not-ready and unreachable at once, never carrying both", async () => {
    w = await World.create({ nodeEvictionRate: 0.001 });
    await w.companion();
    await w.healthy("s");
    await w.post("s", [w.ready("False")]);
    await w.step();
    expect(await w.taints("s")).toEqual(["node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/not-ready:NoSchedule"]);
    // The zone's one token is spent: a swap must not wait for the rate.
    await w.step(GRACE + 1);
    expect(await w.taints("s")).toEqual(["node.kubernetes.io/unreachable:NoExecute", "node.kubernetes.io/unreachable:NoSchedule"]);
    await w.post("s", [w.ready("False")]);
    await w.step(1);
    expect(await w.taints("s")).toEqual(["node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/not-ready:NoSchedule"]);
  });
});

describe("zones", () => {
  async function fleet(prefix: string, n: number, labels: Record<string, string>): Promise<string[]> {
    const list = names(prefix, n);
    for (const name of list) await w.healthy(name, labels);
    return list;
  }
  /** Keep these nodes alive while time passes. */
  const keepAlive = async (alive: string[]): Promise<void> => {
    for (const name of alive) await w.registry.renewLease(name, "", 0);
  };
  async function runAlive(total: number, alive: string[], stepMs = 1000): Promise<void> {
    for (let t = 0; t < total; t += stepMs) {
      await keepAlive(alive);
      await w.step(stepMs);
    }
  }

  it("Normal zone: silent nodes get NoExecute one per 10 s", async () => {
    w = await World.create();
    const silent = await fleet("silent", 10, zone("a"));
    const alive = await fleet("alive", 20, zone("a"));
    await w.step();
    await runAlive(GRACE + 1000, alive);
    expect([...w.ctl.zones().values()]).toEqual(["Normal"]);
    const counts: number[] = [];
    for (let i = 0; i < 5; i++) {
      counts.push(await w.noExecuteCount(silent));
      await runAlive(10_000, alive);
    }
    expect(counts).toEqual([1, 2, 3, 4, 5]);
  });

  it("PartialDisruption in a zone of at most 50 nodes stops tainting", async () => {
    w = await World.create();
    const silent = await fleet("p", 12, zone("b"));
    const alive = await fleet("q", 8, zone("b"));
    await w.step();
    await runAlive(GRACE + 100_000, alive, 5000);
    expect([...w.ctl.zones().values()]).toEqual(["PartialDisruption"]);
    expect(await w.noExecuteCount(silent)).toBeLessThanOrEqual(1);
    const before = await w.noExecuteCount(silent);
    await runAlive(100_000, alive, 5000);
    expect(await w.noExecuteCount(silent)).toBe(before);
  });

  it("PartialDisruption in a zone of more than 50 nodes taints at 0.01/s", async () => {
    w = await World.create();
    const silent = await fleet("big", 40, zone("c"));
    const alive = await fleet("ok", 20, zone("c"));
    await w.step();
    await runAlive(GRACE + 5000, alive, 5000);
    expect([...w.ctl.zones().values()]).toEqual(["PartialDisruption"]);
    const start = await w.noExecuteCount(silent);
    await runAlive(200_000, alive, 5000);
    expect((await w.noExecuteCount(silent)) - start).toBe(2);
  });

  it("FullDisruption of one zone taints at 0.1/s while another zone is healthy", async () => {
    w = await World.create();
    const down = await fleet("down", 5, zone("d"));
    const up = await fleet("up", 3, zone("e"));
    await w.step();
    await runAlive(GRACE + 1000, up);
    expect(new Set(w.ctl.zones().values())).toEqual(new Set(["FullDisruption", "Normal"]));
    const start = await w.noExecuteCount(down);
    await runAlive(30_000, up);
    expect((await w.noExecuteCount(down)) - start).toBe(3);
  });

  it("every zone fully disrupted: removes the NoExecute taints, adds none; leaving it gives fresh probe times", async () => {
    w = await World.create();
    const a = await fleet("za", 4, zone("a"));
    const b = await fleet("zb", 4, zone("b"));
    await w.step();
    // Zone b goes down first and gets tainted; then zone a goes down too.
    await runAlive(GRACE + 25_000, a);
    expect(await w.noExecuteCount(b)).toBeGreaterThan(0);
    await w.run(GRACE + 60_000);
    expect([...w.ctl.zones().values()]).toEqual(["FullDisruption", "FullDisruption"]);
    expect(await w.noExecuteCount([...a, ...b])).toBe(0);
    // One node comes back: the mode ends, every node gets a fresh probe time, and tainting
    // resumes at each zone's rate (a: PartialDisruption of 4 nodes → none; b: FullDisruption → 0.1/s).
    await w.post("za-0");
    await w.step(1000);
    expect(w.ctl.zones()).toEqual(new Map([...w.ctl.zones().keys()].map((k) => [k, k.endsWith(":a") ? "PartialDisruption" : "FullDisruption"])));
    for (const name of [...a, ...b]) expect(w.ctl.probeTime(name), name).toBe(w.clock.now());
    // The paused bucket had no token: the first taint comes one interval (10 s) later.
    expect(await w.noExecuteCount([...a, ...b])).toBe(0);
    await runAlive(10_000, ["za-0"]);
    expect(await w.noExecuteCount(a)).toBe(0);
    expect(await w.noExecuteCount(b)).toBe(1);
    await runAlive(10_000, ["za-0"]);
    expect(await w.noExecuteCount(b)).toBe(2);
    const events = await w.events.list("");
    expect(events.filter((e) => e.reason === "ZoneStateChanged").length).toBeGreaterThan(0);
  });

  it("does not count nodes labelled exclude-disruption", async () => {
    w = await World.create();
    await fleet("ex", 4, { ...zone("x"), "node.kubernetes.io/exclude-disruption": "" });
    const alive = await fleet("in", 1, zone("x"));
    await w.step();
    await runAlive(GRACE + 1000, alive);
    expect([...w.ctl.zones().values()]).toEqual(["Normal"]);
  });
});

describe("full-disruption mode edge cases", () => {
  const EXCLUDED = { "node.kubernetes.io/exclude-disruption": "" };

  it("still taints nodes of a zone made only of excluded nodes after an episode", async () => {
    w = await World.create();
    const ab = ["a-0", "a-1", "b-0", "b-1"];
    for (const n of ab) await w.healthy(n, zone(n[0]!));
    for (const n of ["ex-0", "ex-1"]) {
      await w.healthy(n, { ...zone("x"), ...EXCLUDED });
      w.alive.add(n);
    }
    await w.step();
    await w.run(GRACE + 5000);
    expect([...w.ctl.zones().values()]).toEqual(["FullDisruption", "FullDisruption"]);
    for (const n of ab) {
      await w.post(n);
      w.alive.add(n);
    }
    await w.step(1000);
    expect([...w.ctl.zones().values()]).toEqual(["Normal", "Normal"]);
    w.alive.delete("ex-0");
    await w.run(GRACE + 60_000);
    expect(await w.readyStatus("ex-0")).toBe("Unknown");
    expect(await w.taints("ex-0")).toContain("node.kubernetes.io/unreachable:NoExecute");
  });

  it("takes off a NoExecute taint whose removal lost a race when the mode began", async () => {
    w = await World.create();
    const a = names("a", 3);
    const b = names("b", 3);
    for (const n of a) {
      await w.healthy(n, zone("a"));
      w.alive.add(n);
    }
    for (const n of b) await w.healthy(n, zone("b"));
    await w.step();
    const notReady = async (list: string[]): Promise<void> => {
      for (const n of list) await w.post(n, [w.ready("False")]);
    };
    for (let i = 0; i < 40; i++) {
      await notReady(b);
      await w.step(1000);
    }
    expect(await w.noExecuteCount(b)).toBe(3);
    // Zone b's agents keep posting NotReady; one post lands between the controller's read and its write.
    let interfere = true;
    const updateNode = w.registry.updateNode.bind(w.registry);
    w.registry.updateNode = async (n) => {
      const removing = !(n.spec?.taints ?? []).some((t) => t.effect === "NoExecute");
      if (interfere && removing && b.includes(n.metadata!.name)) await notReady([n.metadata!.name]);
      return updateNode(n);
    };
    await notReady(a);
    w.alive.clear();
    await w.step(1000);
    interfere = false;
    expect([...w.ctl.zones().values()]).toEqual(["FullDisruption", "FullDisruption"]);
    await notReady([...a, ...b]);
    await w.step(1000);
    expect(await w.noExecuteCount([...a, ...b])).toBe(0);
  });
});

describe("TokenBucket", () => {
  it("swaps rates as Kubernetes' SwapLimiter: a new bucket is full only if the old one had a token", () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket(0.1, clock);
    expect(bucket.tryTake()).toBe(true);
    bucket.setRate(0);
    bucket.setRate(0.1);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(10_000);
    expect(bucket.tryTake()).toBe(true);
    clock.advance(10_000);
    bucket.setRate(0.01); // the old bucket had a token: taken by the swap, the new one starts full
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
  });
});
