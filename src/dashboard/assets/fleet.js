// @ts-check
/**
 * The fleet picture: one cell per node on a canvas, grouped by zone, so 10,000+ nodes fit on
 * one screen and redraw in a few milliseconds (DOM elements per node would not).
 *
 * A cell's outline is its Ready status (green Ready, amber NotReady, red Unknown); its fill
 * says how fresh its Lease is: solid when fresh, pale when late (two renewals missed), empty
 * when silent (older than the grace period) or absent. A node that stops heartbeating turns
 * into a hole at once, then red when the lifecycle controller marks it Unknown. A dark dot
 * marks a cordoned node.
 */
import { age, sortNatural } from "./dom.js";
import { leaseState, statusOf } from "./model.js";

/** @typedef {import("./model.js").Fleet} Fleet */
/** @typedef {import("./model.js").NodeRow} NodeRow */
/** @typedef {{zone: string, state: string}} ZoneView */
/** @typedef {{zone: string, names: string[], top: number, cells: number, ready: number}} Block */

export const STATUS_COLORS = { Ready: "#2da44e", NotReady: "#d4a72c", Unknown: "#e5534b" };
const ZONE_COLORS = /** @type {Record<string, string>} */ ({ Normal: "#1a7f37", PartialDisruption: "#9a6700", FullDisruption: "#cf222e" });
const PAD = 8;
const HEADER = 22;
const GAP = 1;

export class FleetView {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {HTMLElement} tip
   * @param {(name: string) => void} onPick
   */
  constructor(canvas, tip, onPick) {
    this.canvas = canvas;
    this.tip = tip;
    /** @type {Block[]} */
    this.blocks = [];
    this.size = 10;
    this.cols = 1;
    this.layoutKey = "";
    /** @type {Fleet | undefined} */
    this.fleet = undefined;
    this.now = 0;
    this.graceMs = 40_000;
    canvas.addEventListener("mousemove", (e) => this.hover(e.offsetX, e.offsetY, e));
    canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
    canvas.addEventListener("click", (e) => {
      const name = this.nameAt(e.offsetX, e.offsetY);
      if (name) onPick(name);
    });
  }

  /**
   * Lay out (when nodes came, went or moved zone, or the width changed) and draw every cell;
   * answers the counts the summary shows (counted on the way).
   * @param {Fleet} fleet
   * @param {Map<string, string>} zoneStates zone → state, from the lifecycle controller
   * @param {number} now server clock, ms
   * @param {number} graceMs
   */
  render(fleet, zoneStates, now, graceMs) {
    this.fleet = fleet;
    this.now = now;
    this.graceMs = graceMs;
    const width = Math.max(200, this.canvas.parentElement?.clientWidth ?? 800);
    const key = `${fleet.layoutVersion}/${width}`;
    if (key !== this.layoutKey) this.layout(fleet, width);
    this.layoutKey = key;
    const s = this.size;
    const dpr = window.devicePixelRatio || 1;
    const ctx = /** @type {CanvasRenderingContext2D} */ (this.canvas.getContext("2d", { alpha: false }));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, width, this.canvas.height / dpr);
    // Cells are sorted into buckets by look, then drawn bucket by bucket: a canvas parses its
    // fill style on every change, which costs more than the drawing for 10,000 cells.
    /** @type {Record<string, {fresh: number[], late: number[], hollow: number[]}>} */
    const buckets = { Ready: { fresh: [], late: [], hollow: [] }, NotReady: { fresh: [], late: [], hollow: [] }, Unknown: { fresh: [], late: [], hollow: [] } };
    /** @type {number[]} */
    const cordoned = [];
    const counts = { Nodes: 0, Ready: 0, NotReady: 0, Unknown: 0, Cordoned: 0, Silent: 0 };
    for (const b of this.blocks) {
      b.ready = 0;
      for (let i = 0; i < b.names.length; i++) {
        const n = fleet.nodes.get(/** @type {string} */ (b.names[i]));
        if (!n) continue;
        const status = statusOf(n);
        const lease = leaseState(fleet.leases.get(n.name), now, graceMs);
        counts.Nodes++;
        counts[status]++;
        if (status === "Ready") b.ready++;
        if (lease === "silent") counts.Silent++;
        const x = PAD + (i % this.cols) * (s + GAP);
        const y = b.top + HEADER + Math.floor(i / this.cols) * (s + GAP);
        const bucket = /** @type {{fresh: number[], late: number[], hollow: number[]}} */ (buckets[status]);
        (lease === "fresh" ? bucket.fresh : lease === "late" ? bucket.late : bucket.hollow).push(x, y);
        if (n.cordoned) {
          counts.Cordoned++;
          cordoned.push(x, y);
        }
      }
    }
    for (const [status, bucket] of Object.entries(buckets)) {
      ctx.fillStyle = STATUS_COLORS[/** @type {import("./model.js").Status} */ (status)];
      const f = bucket.fresh;
      for (let k = 0; k < f.length; k += 2) ctx.fillRect(/** @type {number} */ (f[k]), /** @type {number} */ (f[k + 1]), s, s);
      // Outlines as strips: exact pixels, no anti-aliasing.
      for (const list of [bucket.late, bucket.hollow]) {
        for (let k = 0; k < list.length; k += 2) {
          const x = /** @type {number} */ (list[k]);
          const y = /** @type {number} */ (list[k + 1]);
          ctx.fillRect(x, y, s, 1);
          ctx.fillRect(x, y + s - 1, s, 1);
          ctx.fillRect(x, y, 1, s);
          ctx.fillRect(x + s - 1, y, 1, s);
        }
      }
      ctx.globalAlpha = 0.4;
      const l = bucket.late;
      for (let k = 0; k < l.length; k += 2) ctx.fillRect(/** @type {number} */ (l[k]) + 1, /** @type {number} */ (l[k + 1]) + 1, s - 2, s - 2);
      ctx.globalAlpha = 1;
    }
    if (s >= 5) {
      ctx.fillStyle = "#24292f";
      const d = Math.max(1, Math.floor(s / 3));
      const off = Math.floor((s - d) / 2);
      for (let k = 0; k < cordoned.length; k += 2) ctx.fillRect(/** @type {number} */ (cordoned[k]) + off, /** @type {number} */ (cordoned[k + 1]) + off, d, d);
    }
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    for (const b of this.blocks) {
      const state = zoneStates.get(b.zone);
      ctx.fillStyle = "#24292f";
      const label = `${b.zone}  ·  ${b.ready}/${b.names.length} Ready`;
      ctx.fillText(label, PAD, b.top + HEADER / 2);
      if (state) {
        ctx.fillStyle = ZONE_COLORS[state] ?? "#57606a";
        ctx.fillText(state, PAD + ctx.measureText(label).width + 12, b.top + HEADER / 2);
      }
    }
    return counts;
  }

  /**
   * Where a node's cell is, in CSS pixels of the canvas (undefined if it is not drawn).
   * @param {string} name
   */
  cellRect(name) {
    for (const b of this.blocks) {
      const i = b.names.indexOf(name);
      if (i >= 0) {
        return { x: PAD + (i % this.cols) * (this.size + GAP), y: b.top + HEADER + Math.floor(i / this.cols) * (this.size + GAP), size: this.size };
      }
    }
    return undefined;
  }

  /**
   * @param {Fleet} fleet
   * @param {number} width
   */
  layout(fleet, width) {
    /** @type {Map<string, string[]>} */
    const zones = new Map();
    for (const n of fleet.nodes.values()) {
      let names = zones.get(n.zone);
      if (!names) zones.set(n.zone, (names = []));
      names.push(n.name);
    }
    const count = fleet.nodes.size;
    this.size = count <= 300 ? 16 : count <= 2000 ? 10 : count <= 12_000 ? 6 : count <= 50_000 ? 4 : 3;
    this.cols = Math.max(1, Math.floor((width - 2 * PAD + GAP) / (this.size + GAP)));
    const named = sortNatural([...zones.keys()].filter((z) => z !== "(no zone)"));
    const order = zones.has("(no zone)") ? [...named, "(no zone)"] : named;
    this.blocks = [];
    let top = 4;
    for (const zone of order) {
      const names = sortNatural(/** @type {string[]} */ (zones.get(zone)));
      this.blocks.push({ zone, names, top, cells: names.length, ready: 0 });
      top += HEADER + Math.ceil(names.length / this.cols) * (this.size + GAP) + 10;
    }
    const dpr = window.devicePixelRatio || 1;
    const height = Math.max(top, 40);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
  }

  /**
   * @param {number} x
   * @param {number} y
   */
  nameAt(x, y) {
    for (const b of this.blocks) {
      const rows = Math.ceil(b.names.length / this.cols);
      const y0 = b.top + HEADER;
      if (y < y0 || y >= y0 + rows * (this.size + GAP)) continue;
      const col = Math.floor((x - PAD) / (this.size + GAP));
      if (col < 0 || col >= this.cols) return undefined;
      return b.names[Math.floor((y - y0) / (this.size + GAP)) * this.cols + col];
    }
    return undefined;
  }

  /**
   * @param {number} x
   * @param {number} y
   * @param {MouseEvent} e
   */
  hover(x, y, e) {
    const name = this.nameAt(x, y);
    const n = name === undefined ? undefined : this.fleet?.nodes.get(name);
    if (!n || !this.fleet) {
      this.tip.hidden = true;
      this.canvas.style.cursor = "default";
      return;
    }
    this.canvas.style.cursor = "pointer";
    const lease = this.fleet.leases.get(n.name);
    const lines = [
      n.name,
      `${statusOf(n)}${n.reason ? ` (${n.reason})` : ""}${n.cordoned ? ", cordoned" : ""}`,
      `zone ${n.zone}`,
      `lease ${lease?.renew ? `renewed ${age(this.now - lease.renew)} ago` : "none"}`,
    ];
    this.tip.textContent = lines.join("\n");
    this.tip.hidden = false;
    const wrap = this.canvas.parentElement?.getBoundingClientRect();
    this.tip.style.left = `${e.clientX - (wrap?.left ?? 0) + 14}px`;
    this.tip.style.top = `${e.clientY - (wrap?.top ?? 0) + 14}px`;
  }
}
