// @ts-check
/**
 * The page's copy of the fleet: every node row, Lease and recent event, loaded from the
 * snapshot and kept current by the stream's frames. Shapes mirror src/dashboard/rows.ts.
 *
 * Applying is idempotent: a row is taken only when its revision is newer than the one held,
 * so a frame seen twice (it never should be) changes nothing. Every applied change is counted
 * in `stats`, which the benchmark reads.
 */

/**
 * @typedef {{name: string, rev: number, ready: string, reason: string, roles: string[], zone: string,
 *   version: string, internalIP: string, podCIDRs: string[], taints: string[], cordoned: boolean,
 *   labels: Record<string, string>, created: number}} NodeRow
 * @typedef {{name: string, rev: number, renew: number, holder: string, durationSeconds: number}} LeaseRow
 * @typedef {{key: string, rev: number, node: string, type: string, reason: string, message: string,
 *   count: number, first: number, last: number}} EventRow
 * @typedef {{kind: "node" | "lease", name: string, rev: number}} Gone
 * @typedef {{from: number, rev: number, nodes: NodeRow[], gone: Gone[], leases: LeaseRow[], events: EventRow[]}} Frame
 * @typedef {{rev: number, nodes: NodeRow[], leases: LeaseRow[], events: EventRow[]}} Snapshot
 * @typedef {{key: string, operator: "Equals" | "NotEquals" | "In" | "NotIn" | "Exists" | "DoesNotExist", values: string[]}} Requirement
 * @typedef {"Ready" | "NotReady" | "Unknown"} Status
 */

/** Events kept for the feed. */
const MAX_EVENTS = 200;

export class Fleet {
  constructor() {
    /** @type {Map<string, NodeRow>} */
    this.nodes = new Map();
    /** @type {Map<string, LeaseRow>} */
    this.leases = new Map();
    /** @type {Map<string, EventRow>} newest last */
    this.events = new Map();
    /** Every change up to this revision is applied. */
    this.rev = 0;
    /** Bumped when a node row changes (the table filters and sorts again). */
    this.rowsVersion = 0;
    /** Bumped when nodes come or go or change zone (the fleet picture lays out again). */
    this.layoutVersion = 0;
    /** Bumped when an event arrives. */
    this.eventsVersion = 0;
    /** Names of nodes whose row, Lease or events changed since the last takeChanged(). */
    /** @type {Set<string>} */
    this.changed = new Set();
    this.stats = { frames: 0, changes: 0, ignored: 0 };
  }

  /** @param {Snapshot} s */
  load(s) {
    this.nodes = new Map(s.nodes.map((n) => [n.name, n]));
    this.leases = new Map(s.leases.map((l) => [l.name, l]));
    this.events = new Map([...s.events].sort(byLast).slice(-MAX_EVENTS).map((e) => [e.key, e]));
    this.rev = s.rev;
    this.rowsVersion++;
    this.layoutVersion++;
    this.eventsVersion++;
    for (const n of this.nodes.keys()) this.changed.add(n);
  }

  /** @param {Frame} f */
  apply(f) {
    this.stats.frames++;
    for (const row of f.nodes) {
      const old = this.nodes.get(row.name);
      if (old && old.rev >= row.rev) {
        this.stats.ignored++;
        continue;
      }
      if (!old || old.zone !== row.zone) this.layoutVersion++;
      this.nodes.set(row.name, row);
      this.rowsVersion++;
      this.changed.add(row.name);
      this.stats.changes++;
    }
    for (const l of f.leases) {
      const old = this.leases.get(l.name);
      if (old && old.rev >= l.rev) {
        this.stats.ignored++;
        continue;
      }
      this.leases.set(l.name, l);
      this.changed.add(l.name);
      this.stats.changes++;
    }
    for (const g of f.gone) {
      const map = g.kind === "node" ? this.nodes : this.leases;
      const old = map.get(g.name);
      if (!old || old.rev >= g.rev) continue;
      map.delete(g.name);
      if (g.kind === "node") {
        this.rowsVersion++;
        this.layoutVersion++;
      }
      this.changed.add(g.name);
      this.stats.changes++;
    }
    for (const e of f.events) {
      const old = this.events.get(e.key);
      if (old && old.rev >= e.rev) continue;
      this.events.delete(e.key);
      this.events.set(e.key, e);
      if (this.events.size > MAX_EVENTS) this.events.delete(/** @type {string} */ (this.events.keys().next().value));
      this.eventsVersion++;
      if (e.node) this.changed.add(e.node);
      this.stats.changes++;
    }
    if (f.rev > this.rev) this.rev = f.rev;
  }

  /** Names changed since the last call. */
  takeChanged() {
    const c = this.changed;
    this.changed = new Set();
    return c;
  }
}

/**
 * Ready, NotReady (Ready False) or Unknown (Ready Unknown, or never posted).
 * @param {NodeRow} n
 * @returns {Status}
 */
export function statusOf(n) {
  return n.ready === "True" ? "Ready" : n.ready === "False" ? "NotReady" : "Unknown";
}

/**
 * How fresh a node's Lease is: "fresh", "late" (more than half its duration old: two renewals
 * missed), "silent" (older than the controller's grace period), or "none".
 * @param {LeaseRow | undefined} l
 * @param {number} now server clock, ms
 * @param {number} graceMs
 * @returns {"fresh" | "late" | "silent" | "none"}
 */
export function leaseState(l, now, graceMs) {
  if (!l || !l.renew) return "none";
  const a = now - l.renew;
  if (a > graceMs) return "silent";
  return a > (l.durationSeconds || 40) * 500 ? "late" : "fresh";
}

/**
 * Kubernetes' label selector semantics (src/validation/selector.ts matchesLabels): every
 * requirement holds; `!=` and `notin` also hold when the label is absent. The selector itself
 * is parsed by the server (GET /dashboard/v1/selector), so its syntax and errors are the API's.
 * @param {Requirement[]} reqs
 * @param {Record<string, string>} labels
 */
export function matches(reqs, labels) {
  return reqs.every((r) => {
    const value = Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
    switch (r.operator) {
      case "Exists":
        return value !== undefined;
      case "DoesNotExist":
        return value === undefined;
      case "Equals":
      case "In":
        return value !== undefined && r.values.includes(value);
      case "NotEquals":
      case "NotIn":
        return value === undefined || !r.values.includes(value);
    }
  });
}

/** @param {EventRow} a @param {EventRow} b */
function byLast(a, b) {
  return a.last - b.last || a.rev - b.rev;
}
