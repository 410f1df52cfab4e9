// @ts-check
/**
 * The node detail view: one node as GET /dashboard/v1/nodes/NAME answers it (the API's JSON
 * names: conditions with reasons and transition times, capacity and allocatable, system info,
 * addresses, taints, labels, annotations), its Lease (holder, renew time) and its events.
 * Everything is put in as text.
 */
import { age, h, when } from "./dom.js";

/**
 * @typedef {{type?: string, status?: string, reason?: string, message?: string, lastHeartbeatTime?: string, lastTransitionTime?: string}} ConditionJson
 * @typedef {{key?: string, value?: string, effect?: string, timeAdded?: string}} TaintJson
 * @typedef {{metadata?: {name?: string, uid?: string, resourceVersion?: string, creationTimestamp?: string,
 *   labels?: Record<string, string>, annotations?: Record<string, string>},
 *   spec?: {podCidrs?: string[], providerId?: string, unschedulable?: boolean, taints?: TaintJson[]},
 *   status?: {capacity?: Record<string, string>, allocatable?: Record<string, string>,
 *   addresses?: {type?: string, address?: string}[], conditions?: ConditionJson[], nodeInfo?: Record<string, string>}}} NodeJson
 * @typedef {{spec?: {holderIdentity?: string, leaseDurationSeconds?: number, acquireTime?: string, renewTime?: string, leaseTransitions?: number}}} LeaseJson
 * @typedef {{type?: string, reason?: string, message?: string, count?: number, firstTimestamp?: string, lastTimestamp?: string, source?: string}} EventJson
 * @typedef {{node: NodeJson, lease: LeaseJson | null, events: EventJson[]}} Detail
 */

/**
 * A two-column table of name → value.
 * @param {[string, string][]} rows
 */
function pairs(rows) {
  if (rows.length === 0) return h("p", { class: "none" }, "none");
  return h("table", { class: "pairs" }, h("tbody", null, rows.map(([k, v]) => h("tr", null, h("th", { scope: "row" }, k), h("td", null, v)))));
}

/**
 * A table with a header row.
 * @param {string[]} head
 * @param {string[][]} rows
 */
function grid(head, rows) {
  if (rows.length === 0) return h("p", { class: "none" }, "none");
  return h(
    "table",
    { class: "grid" },
    h("thead", null, h("tr", null, head.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", null, rows.map((r) => h("tr", null, r.map((c) => h("td", null, c))))),
  );
}

/** @param {Record<string, string> | undefined} m */
const entries = (m) => Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

export class DetailView {
  /**
   * @param {HTMLElement} panel
   * @param {{onCordon: (name: string, cordon: boolean) => void, onClose: () => void}} handlers
   */
  constructor(panel, handlers) {
    this.panel = panel;
    this.handlers = handlers;
    /** @type {string | undefined} */
    this.name = undefined;
    this.canCordon = false;
    this.skew = 0;
    this.loading = 0;
  }

  /**
   * Open (or refresh) the view of a node.
   * @param {string} name
   */
  async show(name) {
    const turn = ++this.loading;
    this.name = name;
    this.panel.hidden = false;
    const res = await fetch(`/dashboard/v1/nodes/${encodeURIComponent(name)}`, { headers: { accept: "application/json" } });
    if (turn !== this.loading || this.name !== name) return;
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      this.render(name, undefined, body?.error?.message ?? `HTTP ${res.status}`);
      return;
    }
    this.render(name, /** @type {Detail} */ (await res.json()), undefined);
  }

  close() {
    this.name = undefined;
    this.loading++;
    this.panel.hidden = true;
    this.panel.replaceChildren();
  }

  /**
   * @param {string} name
   * @param {Detail | undefined} d
   * @param {string | undefined} error
   */
  render(name, d, error) {
    const closeButton = h("button", { type: "button", class: "close", "aria-label": "Close" }, "×");
    closeButton.addEventListener("click", () => this.handlers.onClose());
    if (!d) {
      this.panel.replaceChildren(h("header", null, h("h2", null, name), closeButton), h("p", { class: "error", role: "alert" }, error ?? ""));
      return;
    }
    const { node, lease, events } = d;
    const now = Date.now() + this.skew;
    const status = node.status ?? {};
    const cordoned = node.spec?.unschedulable === true;
    const actions = [];
    if (this.canCordon) {
      const b = h("button", { type: "button", class: "cordon" }, cordoned ? "Uncordon" : "Cordon");
      b.addEventListener("click", () => this.handlers.onCordon(name, !cordoned));
      actions.push(b);
    }
    const renew = lease?.spec?.renewTime;
    this.panel.replaceChildren(
      h("header", null, h("h2", null, name), ...actions, closeButton),
      h("p", { class: "meta" }, `created ${when(node.metadata?.creationTimestamp)} · resourceVersion ${node.metadata?.resourceVersion ?? "—"}${cordoned ? " · cordoned" : ""}`),
      h("h3", null, "Conditions"),
      grid(
        ["Type", "Status", "Reason", "Message", "Last heartbeat", "Last transition"],
        (status.conditions ?? []).map((c) => [c.type ?? "", c.status ?? "", c.reason ?? "", c.message ?? "", when(c.lastHeartbeatTime), when(c.lastTransitionTime)]),
      ),
      h("h3", null, "Lease"),
      lease
        ? pairs([
            ["Holder", lease.spec?.holderIdentity ?? ""],
            ["Renew time", renew ? `${when(renew)} (${age(now - new Date(renew).getTime())} ago)` : "—"],
            ["Duration", `${lease.spec?.leaseDurationSeconds ?? 0}s`],
            ["Acquired", when(lease.spec?.acquireTime)],
            ["Transitions", String(lease.spec?.leaseTransitions ?? 0)],
          ])
        : h("p", { class: "none" }, "no Lease (the node has never heartbeated)"),
      h("h3", null, "Capacity"),
      grid(
        ["Resource", "Capacity", "Allocatable"],
        [...new Set([...Object.keys(status.capacity ?? {}), ...Object.keys(status.allocatable ?? {})])].sort().map((r) => [r, status.capacity?.[r] ?? "—", status.allocatable?.[r] ?? "—"]),
      ),
      h("h3", null, "System info"),
      pairs(entries(status.nodeInfo)),
      h("h3", null, "Addresses"),
      pairs((status.addresses ?? []).map((a) => [a.type ?? "", a.address ?? ""])),
      h("h3", null, "Taints"),
      grid(["Key", "Value", "Effect", "Added"], (node.spec?.taints ?? []).map((t) => [t.key ?? "", t.value ?? "", t.effect ?? "", when(t.timeAdded)])),
      h("h3", null, "Pod CIDRs"),
      h("p", null, (node.spec?.podCidrs ?? []).join(", ") || "none"),
      h("h3", null, "Labels"),
      pairs(entries(node.metadata?.labels)),
      h("h3", null, "Annotations"),
      pairs(entries(node.metadata?.annotations)),
      h("h3", null, "Events"),
      grid(
        ["Type", "Reason", "Age", "Count", "Message"],
        [...events].reverse().map((e) => [e.type ?? "", e.reason ?? "", e.lastTimestamp ? age(now - new Date(e.lastTimestamp).getTime()) : "—", String(e.count ?? 1), e.message ?? ""]),
      ),
    );
  }
}
