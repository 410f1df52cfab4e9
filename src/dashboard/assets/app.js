// @ts-check
/**
 * The page: log in if the server asks for it, load the fleet, follow the stream, and redraw at
 * most once per animation frame (plus once a second, as lease ages grow). The summary, zones,
 * fleet picture, table, event feed and detail view all read the one Fleet model.
 *
 * window.nodeplaneDashboard exposes the model, the views and render timings for tests and the
 * benchmark (bench/dashboard.ts).
 */
import { DetailView } from "./detail.js";
import { byId, h, when } from "./dom.js";
import { FleetView } from "./fleet.js";
import { Fleet, matches } from "./model.js";
import { LiveStream } from "./stream.js";
import { NodesTable } from "./table.js";

/** @typedef {import("./model.js").NodeRow} NodeRow */
/** @typedef {import("./model.js").Requirement} Requirement */
/** @typedef {{user: string, groups: string[], authEnabled: boolean, canCordon: boolean, csrfToken: string, graceMs: number | null}} Session */

const fleet = new Fleet();
const state = {
  /** @type {Session | undefined} */
  session: undefined,
  /** server clock − this clock, ms */
  skew: 0,
  graceMs: 40_000,
  /** @type {Map<string, string>} */
  zones: new Map(),
  zonesKnown: false,
  /** @type {Requirement[]} */
  selector: [],
  nameFilter: "",
  /** What the table's rows were made from (redo them when it changes). */
  tableKey: "",
  /** @type {NodeRow[]} */
  tableRows: [],
  eventsVersion: -1,
  /** The event feed's items by event key, with the revision each shows. */
  eventItems: /** @type {Map<string, {li: HTMLElement, rev: number}>} */ (new Map()),
  scheduled: false,
  lastDetailRefresh: 0,
};
/**
 * Render timings and, for the benchmark, when each frame arrived and each revision was painted
 * (wall clock, ms; the last 5,000 of each).
 */
const stats = {
  renders: 0,
  renderMs: /** @type {number[]} */ ([]),
  firstRender: 0,
  relists: 0,
  arrivals: /** @type {{rev: number, at: number}[]} */ ([]),
  paints: /** @type {{rev: number, at: number}[]} */ ([]),
  /** How long each part of the first complete render and of the last render took (ms). */
  firstParts: /** @type {Record<string, number>} */ ({}),
  lastParts: /** @type {Record<string, number>} */ ({}),
};

/**
 * @template T
 * @param {T[]} list
 * @param {T} item
 */
function keep(list, item) {
  list.push(item);
  if (list.length > 10_000) list.splice(0, 5_000);
}

const fleetView = new FleetView(byId("fleet", HTMLCanvasElement), byId("tip", HTMLElement), (name) => void detail.show(name));
const table = new NodesTable(byId("table", HTMLElement), {
  onPick: (name) => void detail.show(name),
  onCordon: (name, on) => void cordon(name, on),
  onSort: () => {
    state.tableKey = "";
    schedule();
  },
});
const detail = new DetailView(byId("detail", HTMLElement), {
  onCordon: (name, on) => void cordon(name, on),
  onClose: () => detail.close(),
});
const stream = new LiveStream({
  onFrame: (f) => {
    keep(stats.arrivals, { rev: f.rev, at: Date.now() });
    fleet.apply(f);
    schedule();
  },
  onZones: (z) => {
    state.skew = z.now - Date.now();
    state.zonesKnown = z.zones !== null;
    state.zones = new Map((z.zones ?? []).map((x) => [x.zone, x.state]));
    schedule();
  },
  onRelist: (reason) => {
    stats.relists++;
    toast(`reloading the fleet: ${reason}`);
    void load();
  },
  onLost: () => void lost(),
  onStatus: (s) => setConnection(s === "live" ? "live" : s === "connecting" ? "connecting…" : "reconnecting…"),
});

Object.assign(window, { nodeplaneDashboard: { fleet, fleetView, table, stream, stats } });

/** @param {string} text */
function setConnection(text) {
  const el = byId("conn", HTMLElement);
  el.textContent = text;
  el.dataset.state = text === "live" ? "live" : "down";
}

/** @param {string} text */
function toast(text) {
  const el = byId("toast", HTMLElement);
  el.textContent = text;
  el.hidden = false;
  clearTimeout(Number(el.dataset.timer));
  el.dataset.timer = String(setTimeout(() => (el.hidden = true), 5000));
}

/**
 * GET/POST JSON; a non-2xx answer throws the server's message.
 * @param {string} path
 * @param {RequestInit} [init]
 */
async function api(path, init) {
  const res = await fetch(path, { ...init, headers: { accept: "application/json", ...init?.headers } });
  const body = res.status === 204 ? {} : await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(body?.error?.message ?? `HTTP ${res.status}`), { status: res.status });
  return body;
}

/** @param {string} path */
function post(path, body = {}) {
  return api(path, { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": state.session?.csrfToken ?? "" }, body: JSON.stringify(body) });
}

async function main() {
  try {
    begin(/** @type {Session} */ (await api("/dashboard/v1/session")));
  } catch (err) {
    if (/** @type {{status?: number}} */ (err).status === 401) showLogin();
    else {
      setConnection("disconnected");
      toast(`cannot reach the server: ${/** @type {Error} */ (err).message}`);
      setTimeout(() => void main(), 2000);
    }
  }
}

function showLogin() {
  stream.close();
  byId("main", HTMLElement).hidden = true;
  byId("login", HTMLElement).hidden = false;
  setConnection("logged out");
  byId("token", HTMLInputElement).focus();
}

/** @param {Session} s */
function begin(s) {
  state.session = s;
  state.graceMs = s.graceMs ?? 40_000;
  byId("login", HTMLElement).hidden = true;
  byId("main", HTMLElement).hidden = false;
  const role = s.canCordon ? "operator" : "viewer (read-only)";
  byId("who", HTMLElement).textContent = s.authEnabled ? `${s.user} · ${role}` : `authentication off · ${role}`;
  byId("logout", HTMLButtonElement).hidden = !s.authEnabled;
  table.setCanCordon(s.canCordon);
  detail.canCordon = s.canCordon;
  void load();
}

/** Load the snapshot, then follow the stream from its revision. */
async function load() {
  try {
    fleet.load(await api("/dashboard/v1/snapshot"));
    state.tableKey = "";
    stream.open(fleet.rev);
    schedule();
  } catch (err) {
    if (/** @type {{status?: number}} */ (err).status === 401) return showLogin();
    toast(`loading the fleet failed: ${/** @type {Error} */ (err).message}`);
    setTimeout(() => void load(), 2000);
  }
}

/** The stream was refused or ended for good: logged out, or resume from what we have. */
async function lost() {
  setConnection("reconnecting…");
  try {
    await api("/dashboard/v1/session");
    setTimeout(() => stream.open(fleet.rev), 1000);
  } catch (err) {
    if (/** @type {{status?: number}} */ (err).status === 401) showLogin();
    else setTimeout(() => void lost(), 2000);
  }
}

/**
 * @param {string} name
 * @param {boolean} on
 */
async function cordon(name, on) {
  try {
    await post(`/dashboard/v1/nodes/${encodeURIComponent(name)}/${on ? "cordon" : "uncordon"}`);
    toast(`node/${name} ${on ? "cordoned" : "uncordoned"}`);
    if (detail.name === name) void detail.show(name);
  } catch (err) {
    toast(`${on ? "cordon" : "uncordon"} ${name} failed: ${/** @type {Error} */ (err).message}`);
  }
}

function schedule() {
  if (state.scheduled) return;
  state.scheduled = true;
  requestAnimationFrame(render);
}

function render() {
  state.scheduled = false;
  if (!state.session) return;
  const started = performance.now();
  const now = Date.now() + state.skew;
  /** @type {Record<string, number>} */
  const parts = {};
  let mark = started;
  const part = (/** @type {string} */ name) => {
    const t = performance.now();
    parts[name] = t - mark;
    mark = t;
  };
  renderSummary(fleetView.render(fleet, state.zones, now, state.graceMs));
  part("fleet");
  renderZones();
  part("zones");
  renderTable(now);
  part("table");
  renderEvents(now);
  part("events");
  stats.lastParts = parts;
  const changed = fleet.takeChanged();
  if (detail.name && changed.has(detail.name) && started - state.lastDetailRefresh > 1000) {
    state.lastDetailRefresh = started;
    void detail.show(detail.name);
  }
  detail.skew = state.skew;
  const ms = performance.now() - started;
  stats.renders++;
  keep(stats.renderMs, ms);
  keep(stats.paints, { rev: fleet.rev, at: Date.now() });
  if (!stats.firstRender && fleet.rev > 0) {
    stats.firstRender = performance.now();
    stats.firstParts = parts;
    performance.mark("nodeplane:first-render");
    document.body.dataset.ready = "true";
  }
}

/** @param {Record<string, number>} counts */
function renderSummary(counts) {
  for (const [k, v] of Object.entries(counts)) {
    const dd = document.querySelector(`#counts dd[data-count="${k}"]`);
    if (dd && dd.textContent !== String(v)) dd.textContent = String(v);
  }
}

function renderZones() {
  const list = byId("zones", HTMLElement);
  const items = fleetView.blocks.map((b) => {
    const s = state.zonesKnown ? (state.zones.get(b.zone) ?? "Initial") : "—";
    return h("li", { "data-zone": b.zone, "data-state": s }, h("span", { class: "zone" }, b.zone), h("span", { class: "state" }, s), h("span", { class: "n" }, `${b.ready}/${b.names.length} Ready`));
  });
  const key = items.map((i) => i.textContent).join("\n");
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...items);
}

/** @param {number} now */
function renderTable(now) {
  const key = `${fleet.rowsVersion}|${JSON.stringify(state.selector)}|${state.nameFilter}|${table.sortKey}|${table.sortDir}`;
  if (key !== state.tableKey) {
    state.tableKey = key;
    const passes = (/** @type {NodeRow} */ n) =>
      (!state.nameFilter || n.name.includes(state.nameFilter)) && (state.selector.length === 0 || matches(state.selector, n.labels));
    // The previous order first (the sort then has little to do), then nodes new to the table.
    /** @type {NodeRow[]} */
    const rows = [];
    /** @type {Set<string>} */
    const taken = new Set();
    for (const old of state.tableRows) {
      const n = fleet.nodes.get(old.name);
      if (n && passes(n)) rows.push(n);
      taken.add(old.name);
    }
    for (const n of fleet.nodes.values()) if (!taken.has(n.name) && passes(n)) rows.push(n);
    table.sort(rows, fleet.leases);
    state.tableRows = rows;
    byId("shown", HTMLElement).textContent = `${rows.length} of ${fleet.nodes.size}`;
  }
  table.show(state.tableRows, fleet.leases, now);
}

/**
 * The event feed, newest first. Only events that changed since the last render are built and
 * moved to the top (they are the newest); the others keep their elements.
 * @param {number} now
 */
function renderEvents(now) {
  if (fleet.eventsVersion === state.eventsVersion) return;
  state.eventsVersion = fleet.eventsVersion;
  const list = byId("events", HTMLElement);
  for (const [key, shown] of state.eventItems) {
    if (fleet.events.get(key)?.rev === shown.rev) continue;
    shown.li.remove();
    state.eventItems.delete(key);
  }
  // fleet.events runs from the least to the most recently changed: prepending puts the newest first.
  for (const e of fleet.events.values()) {
    if (state.eventItems.has(e.key)) continue;
    const nodeButton = e.node ? h("button", { type: "button", class: "node" }, e.node) : h("span", { class: "node" }, "cluster");
    if (e.node) nodeButton.addEventListener("click", () => void detail.show(e.node));
    const li = h(
      "li",
      { class: `ev ${e.type === "Warning" ? "warning" : "normal"}`, "data-reason": e.reason, "data-node": e.node },
      h("time", { title: when(e.last) }, when(e.last).slice(11)),
      nodeButton,
      h("b", null, e.reason),
      h("span", { class: "msg" }, e.message),
      e.count > 1 ? h("span", { class: "count" }, `×${e.count}`) : null,
    );
    list.prepend(li);
    state.eventItems.set(e.key, { li, rev: e.rev });
  }
  byId("events-age", HTMLElement).textContent = fleet.events.size ? `newest ${when(now).slice(11)}` : "none yet";
}

// Filters: the label selector is parsed by the server (the API's syntax and error messages).
let selectorTimer = 0;
byId("selector", HTMLInputElement).addEventListener("input", (e) => {
  clearTimeout(selectorTimer);
  const input = /** @type {HTMLInputElement} */ (e.target);
  selectorTimer = setTimeout(async () => {
    const text = input.value;
    const error = byId("selector-error", HTMLElement);
    try {
      const parsed = text.trim() ? await api(`/dashboard/v1/selector?labelSelector=${encodeURIComponent(text)}`) : { requirements: [] };
      if (input.value !== text) return;
      state.selector = parsed.requirements;
      error.textContent = "";
      input.removeAttribute("aria-invalid");
    } catch (err) {
      if (input.value !== text) return;
      error.textContent = /** @type {Error} */ (err).message;
      input.setAttribute("aria-invalid", "true");
    }
    schedule();
  }, 200);
});
byId("name-filter", HTMLInputElement).addEventListener("input", (e) => {
  state.nameFilter = /** @type {HTMLInputElement} */ (e.target).value.trim();
  schedule();
});
byId("filters", HTMLFormElement).addEventListener("submit", (e) => e.preventDefault());

byId("login-form", HTMLFormElement).addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = byId("token", HTMLInputElement);
  const error = byId("login-error", HTMLElement);
  try {
    const s = await api("/dashboard/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: token.value }) });
    token.value = "";
    error.textContent = "";
    begin(s);
  } catch (err) {
    error.textContent = /** @type {Error} */ (err).message;
  }
});
byId("logout", HTMLButtonElement).addEventListener("click", async () => {
  await post("/dashboard/logout").catch(() => undefined);
  state.session = undefined;
  detail.close();
  showLogin();
});
window.addEventListener("resize", schedule);
setInterval(schedule, 1000);
void main();
