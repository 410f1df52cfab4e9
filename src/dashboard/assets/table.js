// @ts-check
/**
 * The nodes table, virtualized: only the rows in view exist in the document (about 40 of
 * them, reused as the view scrolls), so 10,000 or 100,000 rows cost the same to show. Rows
 * are filtered and sorted by the page (app.js) and handed over whole; cells are updated as
 * text only when their value changed, so a button stays the same element while the fleet
 * changes around it.
 */
import { age, h, naturalKey } from "./dom.js";
import { statusOf } from "./model.js";

/** @typedef {import("./model.js").NodeRow} NodeRow */
/** @typedef {import("./model.js").LeaseRow} LeaseRow */
/** @typedef {{el: HTMLElement, cells: HTMLElement[], button: HTMLButtonElement | undefined, name: string, index: number}} Slot */
/**
 * @typedef {{key: string, title: string, text: (n: NodeRow, lease: LeaseRow | undefined, now: number) => string,
 *   sort: (n: NodeRow, lease: LeaseRow | undefined) => string | number}} Column
 */

const ROW_HEIGHT = 28;
/** Rows drawn beyond the visible ones on each side (smooth scrolling). */
const OVERSCAN = 6;

const list = (/** @type {string[]} */ xs) => (xs.length ? xs.join(",") : "<none>");

/** @type {Column[]} */
export const COLUMNS = [
  { key: "name", title: "Name", text: (n) => n.name, sort: (n) => n.name },
  { key: "status", title: "Status", text: (n) => statusOf(n), sort: (n) => statusOf(n) },
  { key: "roles", title: "Roles", text: (n) => list(n.roles), sort: (n) => n.roles.join(",") },
  { key: "zone", title: "Zone", text: (n) => n.zone, sort: (n) => n.zone },
  { key: "version", title: "Version", text: (n) => n.version || "—", sort: (n) => n.version },
  { key: "internalIP", title: "Internal IP", text: (n) => n.internalIP || "—", sort: (n) => n.internalIP },
  { key: "podCIDRs", title: "Pod CIDRs", text: (n) => list(n.podCIDRs), sort: (n) => n.podCIDRs.join(",") },
  { key: "lease", title: "Lease age", text: (_n, l, now) => (l?.renew ? age(now - l.renew) : "—"), sort: (_n, l) => -(l?.renew ?? 0) },
  { key: "taints", title: "Taints", text: (n) => list(n.taints), sort: (n) => n.taints.join(",") },
  { key: "cordoned", title: "Cordoned", text: (n) => (n.cordoned ? "yes" : "no"), sort: (n) => (n.cordoned ? 1 : 0) },
];

export class NodesTable {
  /**
   * @param {HTMLElement} root
   * @param {{onPick: (name: string) => void, onCordon: (name: string, cordon: boolean) => void, onSort: () => void}} handlers
   */
  constructor(root, handlers) {
    this.handlers = handlers;
    this.sortKey = "name";
    this.sortDir = 1;
    this.canCordon = false;
    /** @type {NodeRow[]} */
    this.rows = [];
    /** @type {Map<string, LeaseRow>} */
    this.leases = new Map();
    this.now = 0;
    /** @type {Slot[]} */
    this.slots = [];
    /** Sort keys per column, per row object. @type {Map<string, WeakMap<NodeRow, string>>} */
    this.keys = new Map();
    /** @type {WeakMap<NodeRow, string>} */
    this.nameKeys = new WeakMap();
    this.head = h("div", { class: "tr thead", role: "row" });
    this.body = h("div", { class: "tbody", role: "rowgroup", tabindex: "0" });
    this.spacer = h("div", { class: "spacer" });
    this.body.append(this.spacer);
    root.setAttribute("role", "table");
    root.setAttribute("aria-label", "Nodes");
    root.append(h("div", { role: "rowgroup" }, this.head), this.body);
    this.body.addEventListener("scroll", () => this.draw());
    this.body.addEventListener("click", (e) => this.click(e));
    this.body.addEventListener("keydown", (e) => {
      const slot = this.slots.find((s) => s.el === document.activeElement);
      if (e.key === "Enter" && slot?.name) this.handlers.onPick(slot.name);
    });
    this.drawHead();
  }

  /** @param {boolean} can */
  setCanCordon(can) {
    if (can === this.canCordon) return;
    this.canCordon = can;
    this.head.classList.toggle("with-actions", can);
    for (const s of this.slots.splice(0)) s.el.remove();
    this.drawHead();
    this.draw();
  }

  /**
   * Sort rows in place by the current column (then by name), in natural order (node-2 before
   * node-10). Rows arrive in their previous order, which the sort finishes in near-linear time;
   * string keys are made comparable with `<` once per row object (rows are replaced, never
   * changed), since a collator's compare is too slow for 10,000 rows several times a second.
   * @param {NodeRow[]} rows
   * @param {Map<string, LeaseRow>} leases
   */
  sort(rows, leases) {
    const col = COLUMNS.find((c) => c.key === this.sortKey) ?? /** @type {Column} */ (COLUMNS[0]);
    let cache = this.keys.get(col.key);
    if (!cache) this.keys.set(col.key, (cache = new WeakMap()));
    const keyOf = (/** @type {NodeRow} */ n) => {
      const k = col.sort(n, leases.get(n.name));
      if (typeof k === "number") return k;
      let nat = cache.get(n);
      if (nat === undefined) cache.set(n, (nat = naturalKey(k)));
      return nat;
    };
    const nameKey = (/** @type {NodeRow} */ n) => {
      let nat = this.nameKeys.get(n);
      if (nat === undefined) this.nameKeys.set(n, (nat = naturalKey(n.name)));
      return nat;
    };
    const keyed = rows.map((n) => ({ n, k: keyOf(n), name: nameKey(n) }));
    const dir = this.sortDir;
    keyed.sort((a, b) => (a.k < b.k ? -dir : a.k > b.k ? dir : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (let i = 0; i < keyed.length; i++) rows[i] = /** @type {{n: NodeRow}} */ (keyed[i]).n;
  }

  /**
   * @param {NodeRow[]} rows filtered and sorted
   * @param {Map<string, LeaseRow>} leases
   * @param {number} now server clock, ms
   */
  show(rows, leases, now) {
    this.rows = rows;
    this.leases = leases;
    this.now = now;
    const height = `${rows.length * ROW_HEIGHT}px`;
    if (this.spacer.style.height !== height) {
      this.spacer.style.height = height;
      this.body.parentElement?.setAttribute("aria-rowcount", String(rows.length + 1));
    }
    this.draw();
  }

  drawHead() {
    this.head.replaceChildren(
      ...COLUMNS.map((c) => {
        const sorted = c.key === this.sortKey;
        const b = h("button", { type: "button", "data-sort": c.key }, c.title, sorted ? (this.sortDir > 0 ? " ▲" : " ▼") : "");
        b.addEventListener("click", () => {
          if (this.sortKey === c.key) this.sortDir = -this.sortDir;
          else [this.sortKey, this.sortDir] = [c.key, 1];
          this.drawHead();
          this.handlers.onSort();
        });
        return h("div", { role: "columnheader", "aria-sort": sorted ? (this.sortDir > 0 ? "ascending" : "descending") : "none" }, b);
      }),
      ...(this.canCordon ? [h("div", { role: "columnheader" }, "Actions")] : []),
    );
  }

  /**
   * Put the rows in view into the reused row elements. Row i always goes to element i mod the
   * element count, so a row on screen keeps its element while the view scrolls.
   */
  draw() {
    const count = Math.ceil((this.body.clientHeight || 400) / ROW_HEIGHT) + 2 * OVERSCAN;
    const first = Math.max(0, Math.min(Math.floor(this.body.scrollTop / ROW_HEIGHT) - OVERSCAN, this.rows.length - count));
    if (this.slots.length !== count) {
      for (const s of this.slots.splice(0)) s.el.remove();
      while (this.slots.length < count) this.slots.push(this.makeSlot());
    }
    for (let j = 0; j < count; j++) {
      const index = first + j;
      const slot = /** @type {Slot} */ (this.slots[index % count]);
      const n = this.rows[index];
      if (!n) {
        if (!slot.el.hidden) slot.el.hidden = true;
        slot.name = "";
        slot.index = -1;
        continue;
      }
      if (slot.el.hidden) slot.el.hidden = false;
      // Only what changed is written: every write to an element makes the browser look at it again.
      if (slot.name !== n.name || slot.index !== index) {
        slot.name = n.name;
        slot.index = index;
        slot.el.style.top = `${index * ROW_HEIGHT}px`;
        slot.el.setAttribute("aria-rowindex", String(index + 2));
        slot.el.dataset.node = n.name;
      }
      const status = statusOf(n);
      if (slot.el.dataset.status !== status) slot.el.dataset.status = status;
      const lease = this.leases.get(n.name);
      COLUMNS.forEach((c, i) => {
        const text = c.text(n, lease, this.now);
        const cell = /** @type {HTMLElement} */ (slot.cells[i]);
        if (cell.textContent !== text) cell.textContent = text;
      });
      if (slot.button) {
        const label = n.cordoned ? "Uncordon" : "Cordon";
        if (slot.button.textContent !== label) slot.button.textContent = label;
      }
    }
  }

  /** @returns {Slot} */
  makeSlot() {
    const cells = COLUMNS.map((c) => h("div", { role: "cell", class: `c-${c.key}` }));
    const button = this.canCordon ? h("button", { type: "button", class: "cordon" }) : undefined;
    const el = h("div", { class: "tr", role: "row", tabindex: "-1" }, cells, button ? h("div", { role: "cell" }, button) : null);
    if (this.canCordon) el.classList.add("with-actions");
    this.spacer.append(el);
    return { el, cells, button, name: "", index: -1 };
  }

  /** @param {MouseEvent} e */
  click(e) {
    const target = /** @type {HTMLElement} */ (e.target);
    const slot = this.slots.find((s) => s.el.contains(target));
    if (!slot?.name) return;
    if (slot.button && slot.button.contains(target)) {
      const row = this.rows.find((r) => r.name === slot.name);
      if (row) this.handlers.onCordon(row.name, !row.cordoned);
      return;
    }
    this.handlers.onPick(slot.name);
  }
}
