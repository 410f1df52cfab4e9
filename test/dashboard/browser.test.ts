/**
 * The dashboard end to end in a real browser: Debian's Chromium driven by playwright-core
 * against a real server with SDK agents heartbeating. Every wait is on the page's state (a
 * cell's pixel, a row's text, the SDK's watch), bounded by a timeout.
 */
import { mkdirSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeAgent } from "../../src/agent/agent.js";
import type { MachineStatus } from "../../src/agent/machine.js";
import { InvalidArgumentError } from "../../src/client/errors.js";
import { type Node, NodeCondition, NodeSystemInfo } from "../../src/gen/nodeplane/v1/node.js";
import { launchChromium } from "../support/browser.js";
import { agentNode, startHarness } from "../support/server.js";
import { type Fleet, GRACE_MS, logIn, machine, MONITOR_MS, rgb, startFleet } from "./fleet.js";
import { cellAndRowAre, cellColor, hasText, hostileTraces, shownNodes, streamRecord, textIs, textStartsWith } from "./page.js";

const OPERATOR = "operator-token-0123456789";
const VIEWER = "viewer-token-0123456789";
const UNKNOWN_RED = rgb("#e5534b");
const READY_GREEN = rgb("#2da44e");

let browser: Browser;
let fleet: Fleet;

beforeAll(async () => {
  [browser, fleet] = await Promise.all([launchChromium(), startFleet(24)]);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await fleet?.close();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.on("pageerror", (err) => {
    throw err;
  });
  return page;
}

const rowStatus = (page: Page, name: string): Promise<string | null> =>
  page.locator(`#table [role=row][data-node="${name}"] .c-status`).textContent({ timeout: 10_000 });

/** The SDK's view of a node, once `pred` holds (a watch from its current state). */
async function nodeWhen(name: string, pred: (n: Node) => boolean): Promise<Node> {
  for await (const ev of fleet.h.client.watch({ fieldSelector: `metadata.name=${name}`, sendInitialEvents: true }, { timeoutMs: 15_000 })) {
    if (ev.type !== "BOOKMARK" && pred(ev.node)) return ev.node;
  }
  throw new Error(`watch of ${name} ended`);
}

describe("the dashboard in Chromium", () => {
  it("shows the fleet live: a node whose heartbeats stop turns Unknown in its cell and row (screenshot written)", async () => {
    const page = await newPage();
    await logIn(page, fleet.url, OPERATOR);
    await page.waitForFunction(textIs, ['#counts dd[data-count="Ready"]', "24"] as const);
    expect(await page.locator("#who").textContent()).toBe("olivia · operator");
    expect(await page.evaluate(cellColor, "node-7")).toEqual(READY_GREEN);
    expect(await rowStatus(page, "node-7")).toBe("Ready");
    expect(await page.locator('#zones li[data-zone="eu-west/zone-a"] .n').textContent()).toBe("8/8 Ready");

    await fleet.agents.get("node-7")!.stop();
    const stopped = Date.now();
    // The controller marks it Unknown after the grace period and one monitor period; the page follows.
    await page.waitForFunction(cellAndRowAre, ["node-7", "Unknown", UNKNOWN_RED] as const, { timeout: 10 * (GRACE_MS + MONITOR_MS) });
    const seenAfter = Date.now() - stopped;
    expect(await page.evaluate(cellColor, "node-7")).toEqual(UNKNOWN_RED);
    expect(await page.locator('#counts dd[data-count="Unknown"]').textContent()).toBe("1");
    // The controller's NodeNotReady event reaches the live feed.
    await page.locator('#events li[data-reason="NodeNotReady"][data-node="node-7"]').first().waitFor({ timeout: 10_000 });
    // The detail view: the condition with its reason, the Lease's holder, the event.
    await page.locator('#table [role=row][data-node="node-7"] .c-name').click();
    await page.locator("#detail h2", { hasText: "node-7" }).waitFor();
    await page.locator("#detail td", { hasText: "NodeStatusUnknown" }).first().waitFor();
    expect(await page.locator("#detail table.pairs td", { hasText: /^node-7$/ }).count()).toBeGreaterThan(0);
    await page.locator("#detail td", { hasText: "NodeNotReady" }).first().waitFor();
    await page.locator("#detail .close").click();
    mkdirSync("test-artifacts", { recursive: true });
    await page.screenshot({ path: "test-artifacts/dashboard.png" });
    console.log(`node-7 shown Unknown ${seenAfter} ms after its agent stopped (grace ${GRACE_MS} ms + monitor period ${MONITOR_MS} ms)`);
    await page.context().close();
  });

  it("lets an operator cordon and uncordon a node from the page", async () => {
    const page = await newPage();
    await logIn(page, fleet.url, OPERATOR);
    const button = page.locator('#table [role=row][data-node="node-3"] button.cordon');
    expect(await button.textContent()).toBe("Cordon");
    await button.click();
    await nodeWhen("node-3", (n) => n.spec?.unschedulable === true);
    await page.waitForFunction(textIs, ['#table [role=row][data-node="node-3"] .c-cordoned', "yes"] as const);
    expect(await button.textContent()).toBe("Uncordon");
    await button.click();
    await nodeWhen("node-3", (n) => n.spec?.unschedulable === false);
    await page.waitForFunction(textIs, ['#table [role=row][data-node="node-3"] .c-cordoned', "no"] as const);
    await page.context().close();
  });

  it("shows a viewer no buttons, and the server refuses a cordon forged from the viewer's page", async () => {
    const page = await newPage();
    await logIn(page, fleet.url, VIEWER);
    expect(await page.locator("#who").textContent()).toBe("victor · viewer (read-only)");
    await page.locator('#table [role=row][data-node="node-2"] .c-name').click();
    await page.locator("#detail h2", { hasText: "node-2" }).waitFor();
    await page.locator("#detail td", { hasText: "AgentReady" }).first().waitFor();
    expect(await page.locator("button.cordon").count()).toBe(0);
    expect(await page.locator("#table [role=columnheader]", { hasText: "Actions" }).count()).toBe(0);

    const forged = await page.evaluate(async () => {
      const session = (await (await fetch("/dashboard/v1/session")).json()) as { csrfToken: string };
      const post = (headers: Record<string, string>) =>
        fetch("/dashboard/v1/nodes/node-2/cordon", { method: "POST", headers, body: "{}" }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: { message: string } } }));
      return {
        withToken: await post({ "content-type": "application/json", "x-csrf-token": session.csrfToken }),
        withoutToken: await post({ "content-type": "application/json" }),
      };
    });
    expect(forged.withToken.status).toBe(403);
    expect(forged.withToken.body.error.message).toBe('user "victor" (groups nodeplane:viewers) may not patch nodes "node-2"');
    expect(forged.withoutToken.status).toBe(403);
    expect((await fleet.h.client.getNode("node-2")).spec?.unschedulable).toBe(false);
    await page.context().close();
  });

  it("puts every node field into the page as text: markup in annotations, condition messages, node info and events stays inert", async () => {
    const payload = `<img src=x onerror="window.__xss=1">`;
    const script = `<script>window.__xss=2</script>`;
    const svg = `"><svg onload="window.__xss=3">`;
    const { client } = fleet.h;
    await expect(client.register(agentNode("xss-label", { metadata: { name: "xss-label", labels: { team: payload } } }))).rejects.toBeInstanceOf(InvalidArgumentError);
    // An agent reporting hostile node info, later a hostile NotReady condition.
    const healthy = machine(99, "xss-1");
    let ready = NodeCondition.fromPartial({ type: "Ready", status: "True", reason: "AgentReady" });
    const probe = (): MachineStatus => ({ ...healthy(), nodeInfo: NodeSystemInfo.fromPartial({ osImage: svg, kernelVersion: payload, agentVersion: script }), conditions: [ready] });
    const agent = new NodeAgent({ client, nodeName: "xss-1", probe, leaseDurationSeconds: 1, statusUpdateFrequencyMs: 200 });
    fleet.agents.set("xss-1", agent);
    agent.start();
    await agent.registered;
    const node = await client.getNode("xss-1");
    await client.updateNode({ ...node, metadata: { ...node.metadata!, annotations: { note: payload, "example.com/raw": script } } });
    const page = await newPage();
    await logIn(page, fleet.url, OPERATOR);
    // Ready → False with hostile words: the controller's NodeNotReady event repeats the message.
    ready = NodeCondition.fromPartial({ type: "Ready", status: "False", reason: "Bad<b>Reason</b>", message: script });
    await page.locator('#events li[data-reason="NodeNotReady"][data-node="xss-1"]').first().waitFor({ timeout: 10_000 });
    await page.locator('#table [role=row][data-node="xss-1"] .c-name').click();
    await page.locator("#detail td", { hasText: "Bad<b>Reason</b>" }).first().waitFor();
    const seen = await page.evaluate(hostileTraces);
    expect(seen.xss).toBeUndefined();
    expect(seen.injected).toBe(0);
    for (const text of [payload, script, svg]) expect(seen.detail).toContain(text);
    expect(seen.version).toBe(script);
    expect(seen.event).toContain(script);
    await page.context().close();
  });

  it("filters the table by a label selector with the API's meaning, and shows a bad selector's error from the API", async () => {
    const page = await newPage();
    await logIn(page, fleet.url, OPERATOR);
    for (const selector of ["topology.kubernetes.io/zone=zone-b", "tier notin (web),!node-role.kubernetes.io/control-plane", "tier!=db,topology.kubernetes.io/zone in (zone-a,zone-c)", "node-role.kubernetes.io/control-plane"]) {
      const want = (await fleet.h.client.listAllNodes({ labelSelector: selector })).nodes.map((n) => n.metadata!.name).sort();
      await page.locator("#selector").fill(selector);
      await page.waitForFunction(textStartsWith, ["#shown", `${want.length} of `] as const);
      const shown = await page.evaluate(shownNodes);
      expect(shown.sort()).toEqual(want);
    }
    const bad = "tier in (web";
    const apiError = await fleet.h.client.listAllNodes({ labelSelector: bad }).then(
      () => "",
      (err: Error) => err.message,
    );
    await page.locator("#selector").fill(bad);
    await page.waitForFunction(hasText, "#selector-error");
    expect(apiError).toContain("label_selector");
    // The SDK's message carries the gRPC code in front; the rest is the API's own words.
    expect(await page.locator("#selector-error").textContent()).toBe(apiError.replace(/^INVALID_ARGUMENT: /, ""));
    expect(await page.locator("#selector").getAttribute("aria-invalid")).toBe("true");
    await page.context().close();
  });

  it("resumes after a server restart: a change made while it was down arrives once, without reloading the fleet", async () => {
    // Auth off (today's default), no controller: only the changes the test makes.
    const h = await startHarness({ httpListen: "127.0.0.1:0", dashboard: { frameMs: 50 } });
    const page = await newPage();
    try {
      for (let i = 1; i <= 5; i++) await h.client.register(agentNode(`r-${i}`));
      const port = h.server.httpPort!;
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForSelector("body[data-ready=true]");
      expect(await page.locator("#who").textContent()).toBe("authentication off · operator");
      const cordon = async (name: string): Promise<void> => {
        const n = await h.client.getNode(name);
        await h.client.updateNode({ ...n, spec: { ...n.spec!, unschedulable: true } });
      };
      await cordon("r-1");
      await page.waitForFunction(textIs, ['#table [role=row][data-node="r-1"] .c-cordoned', "yes"] as const);
      const before = await page.evaluate(streamRecord);

      // Down: a server without its HTTP side takes a change the page cannot see yet.
      await h.restart({ httpListen: null });
      await cordon("r-2");
      // Back on the same port: the page's EventSource reconnects and sends its Last-Event-ID.
      await h.restart({ httpListen: `127.0.0.1:${port}` });
      await page.waitForFunction(textIs, ['#table [role=row][data-node="r-2"] .c-cordoned', "yes"] as const, { timeout: 20_000 });
      await cordon("r-3");
      await page.waitForFunction(textIs, ['#table [role=row][data-node="r-3"] .c-cordoned', "yes"] as const);

      const after = await page.evaluate(streamRecord);
      expect(after.connects).toBeGreaterThan(before.connects);
      expect(after.relists).toBe(0);
      // No row arrived twice (the model counts rows it already had), and frame ids only grow.
      expect(after.ignored).toBe(0);
      expect(after.ids).toEqual([...after.ids].sort((a, b) => a - b));
      expect(new Set(after.ids).size).toBe(after.ids.length);
      expect(after.ids.length).toBeGreaterThan(before.ids.length);
    } finally {
      await page.context().close();
      await h.close();
    }
  });
});
