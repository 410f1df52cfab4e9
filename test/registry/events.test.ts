/** EventRecorder: repeats fold into one event with a count; events expire an hour after their last occurrence. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock.js";
import { EventRecorder } from "../../src/registry/events.js";
import { SqliteStore } from "../../src/store/sqlite.js";

let dir: string;
let store: SqliteStore;
const clock = new FakeClock(Date.UTC(2026, 5, 1));
let events: EventRecorder;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodeplane-events-"));
  store = await SqliteStore.open({ dir });
  events = new EventRecorder({ store, clock, source: "test" });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("EventRecorder", () => {
  it("folds repeats of one reason on one node into one event with a count", async () => {
    const t0 = clock.now();
    await events.record({ nodeName: "n1", type: "Warning", reason: "NodeNotReady", message: "first" });
    clock.advance(5_000);
    await events.record({ nodeName: "n1", type: "Warning", reason: "NodeNotReady", message: "second" });
    await events.record({ nodeName: "n2", type: "Normal", reason: "NodeReady", message: "other node" });
    await events.record({ nodeName: "", type: "Warning", reason: "ZoneStateChanged", message: "zone a", about: "a" });
    const n1 = await events.list("n1");
    expect(n1).toHaveLength(1);
    expect(n1[0]).toMatchObject({ nodeName: "n1", reason: "NodeNotReady", message: "second", count: 2, source: "test" });
    expect(n1[0]!.firstTimestamp?.getTime()).toBe(t0);
    expect(n1[0]!.lastTimestamp?.getTime()).toBe(t0 + 5_000);
    expect((await events.list("")).map((e) => e.reason).sort()).toEqual(["NodeNotReady", "NodeReady", "ZoneStateChanged"]);
  });

  it("expires events an hour after their last occurrence", async () => {
    await events.record({ nodeName: "old", type: "Normal", reason: "NodeReady", message: "" });
    clock.advance(30 * 60_000);
    await events.record({ nodeName: "recent", type: "Normal", reason: "NodeReady", message: "" });
    clock.advance(30 * 60_000 + 1);
    expect(await events.expire()).toBe(1);
    expect((await events.list("")).map((e) => e.nodeName)).toEqual(["recent"]);
  });
});
