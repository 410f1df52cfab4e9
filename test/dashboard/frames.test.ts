/** Frames: coalescing, the shared ring's cursors and budget, and a frame cut for a resume. */
import { describe, expect, it } from "vitest";
import { FrameBuilder, FrameRing, frameText, type FrameBody } from "../../src/dashboard/frames.js";
import type { LeaseRow, NodeRow } from "../../src/dashboard/rows.js";

const node = (name: string, rev: number, extra: Partial<NodeRow> = {}): NodeRow => ({
  name,
  rev,
  ready: "True",
  reason: "",
  roles: [],
  zone: "(no zone)",
  version: "",
  internalIP: "",
  podCIDRs: [],
  taints: [],
  cordoned: false,
  labels: {},
  created: 0,
  ...extra,
});
const lease = (name: string, rev: number): LeaseRow => ({ name, rev, renew: rev * 1000, holder: name, durationSeconds: 40 });
const body = (nodes: NodeRow[] = [], leases: LeaseRow[] = []): FrameBody => ({ nodes, gone: [], leases, events: [] });
const parse = (text: string): { id: string; data: { from: number; rev: number } & FrameBody } => {
  const id = /^id: (\d+)$/m.exec(text)![1]!;
  return { id, data: JSON.parse(/^data: (.*)$/m.exec(text)![1]!) as { from: number; rev: number } & FrameBody };
};

describe("FrameBuilder", () => {
  it("keeps the latest row of each object, and a deletion replaces the node's row", () => {
    const b = new FrameBuilder();
    b.node(node("a", 3));
    b.lease(lease("a", 4));
    b.node(node("a", 5, { cordoned: true }));
    b.lease(lease("a", 6));
    b.node(node("b", 7));
    b.removed({ kind: "node", name: "b", rev: 8 });
    const got = b.take();
    expect(got.nodes).toEqual([node("a", 5, { cordoned: true })]);
    expect(got.leases).toEqual([lease("a", 6)]);
    expect(got.gone).toEqual([{ kind: "node", name: "b", rev: 8 }]);
    expect(b.isEmpty).toBe(true);
  });

  it("a node created again after its deletion in one frame is a row, not a deletion", () => {
    const b = new FrameBuilder();
    b.removed({ kind: "node", name: "a", rev: 3 });
    b.node(node("a", 4));
    expect(b.take()).toEqual(body([node("a", 4)]));
  });
});

describe("frameText", () => {
  it("is one SSE message whose id is the frame's last revision", () => {
    const { id, data } = parse(frameText(10, 14, body([node("a", 12), node("b", 14)])));
    expect(id).toBe("14");
    expect(data.from).toBe(10);
    expect(data.nodes.map((n) => n.name)).toEqual(["a", "b"]);
  });

  it("cut for a page that has everything up to a revision inside the frame: only the rows after it", () => {
    const { id, data } = parse(frameText(10, 14, body([node("a", 12), node("b", 14)], [lease("c", 11), lease("d", 13)]), 12));
    expect(id).toBe("14");
    expect(data.from).toBe(12);
    expect(data.nodes.map((n) => n.name)).toEqual(["b"]);
    expect(data.leases.map((l) => l.name)).toEqual(["d"]);
  });
});

describe("FrameRing", () => {
  it("finds the first frame after a revision; frames keep their seq as older ones are added in front", () => {
    const ring = new FrameRing(10, 1 << 20);
    ring.append(body([node("a", 12)]), 12);
    ring.append(body([node("b", 15)]), 15);
    expect(ring.seqAfter(10)).toBe(0);
    expect(ring.seqAfter(12)).toBe(1);
    expect(ring.seqAfter(13)).toBe(1);
    expect(ring.seqAfter(15)).toBe(2);
    ring.prepend(4, [{ body: body([node("c", 6)]), to: 6 }, { body: body([node("d", 9)]), to: 10 }]);
    expect(ring.from).toBe(4);
    expect(ring.at(0)!.to).toBe(12);
    expect(ring.seqAfter(4)).toBe(-2);
    expect(ring.seqAfter(7)).toBe(-1);
    expect(ring.at(-1)!.from).toBe(6);
    expect(ring.at(0)!.from).toBe(10);
  });

  it("drops the oldest frames past its byte budget and says where replay now starts", () => {
    const one = frameText(0, 1, body([node("a", 1)])).length;
    const ring = new FrameRing(0, one * 2 + 10);
    for (let rev = 1; rev <= 5; rev++) ring.append(body([node("a", rev)]), rev);
    expect(ring.at(0)).toBeUndefined();
    expect(ring.from).toBe(3);
    expect(ring.seqAfter(3)).toBe(3);
    expect(ring.bytesFrom(3)).toBe(ring.size);
    expect(ring.bytesFrom(4)).toBe(ring.at(4)!.text.length);
    expect(ring.bytesFrom(5)).toBe(0);
  });
});
