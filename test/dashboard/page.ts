/**
 * Functions the browser tests run inside the page (page.evaluate / waitForFunction). Playwright
 * sends each one's source to the page, so each stands alone: no imports, no closures. The test
 * program is type-checked without the DOM library, so the little of the DOM they touch is
 * declared here.
 */

interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement> & { length: number };
};
declare const window: {
  devicePixelRatio: number;
  __xss?: number;
  nodeplaneDashboard: {
    fleetView: { cellRect(name: string): { x: number; y: number; size: number } | undefined; canvas: PageElement };
    fleet: { stats: { frames: number; changes: number; ignored: number } };
    stream: { ids: number[]; connects: number };
    stats: { relists: number };
  };
};

/** The [r, g, b] of a node's cell outline on the fleet canvas. */
export function cellColor(name: string): number[] | undefined {
  const view = window.nodeplaneDashboard.fleetView;
  const r = view.cellRect(name);
  if (!r) return undefined;
  const dpr = window.devicePixelRatio || 1;
  const px = view.canvas.getContext("2d")!.getImageData(Math.floor(r.x * dpr), Math.floor((r.y + Math.floor(r.size / 2)) * dpr), 1, 1).data;
  return [px[0]!, px[1]!, px[2]!];
}

/** True once the node's table row says `status` and its cell outline has color `rgb`. */
export function cellAndRowAre([name, status, rgb]: readonly [string, string, readonly number[]]): boolean {
  const row = document.querySelector(`#table [role=row][data-node="${name}"] .c-status`);
  const view = window.nodeplaneDashboard.fleetView;
  const r = view.cellRect(name);
  if (!row || !r) return false;
  const dpr = window.devicePixelRatio || 1;
  const px = view.canvas.getContext("2d")!.getImageData(Math.floor(r.x * dpr), Math.floor((r.y + Math.floor(r.size / 2)) * dpr), 1, 1).data;
  return row.textContent === status && px[0] === rgb[0] && px[1] === rgb[1] && px[2] === rgb[2];
}

/** True once the element's text is exactly `text`. */
export function textIs([selector, text]: readonly [string, string]): boolean {
  return document.querySelector(selector)?.textContent === text;
}

/** True once the element's text starts with `prefix`. */
export function textStartsWith([selector, prefix]: readonly [string, string]): boolean {
  return document.querySelector(selector)?.textContent?.startsWith(prefix) ?? false;
}

/** True once the element has some text. */
export function hasText(selector: string): boolean {
  return (document.querySelector(selector)?.textContent ?? "") !== "";
}

/** Names of the table rows on screen. */
export function shownNodes(): string[] {
  return [...document.querySelectorAll("#table [role=row][data-node]:not([hidden])")].map((r) => r.dataset.node!);
}

/** What hostile input could have done: script effects, elements made from data, and the text shown. */
export function hostileTraces(): { xss: number | undefined; injected: number; detail: (string | null)[]; version: string | null | undefined; event: string | null | undefined } {
  return {
    xss: window.__xss,
    injected: document.querySelectorAll("main img, main script, main svg, #detail img, #detail script, #detail svg, #detail td b, #events .msg b").length,
    detail: [...document.querySelectorAll("#detail td")].map((td) => td.textContent),
    version: document.querySelector('#table [role=row][data-node="xss-1"] .c-version')?.textContent,
    event: document.querySelector('#events li[data-reason="NodeNotReady"][data-node="xss-1"] .msg')?.textContent,
  };
}

/** What the page's stream and model saw: frame ids, connections, rows ignored as already applied, relists. */
export function streamRecord(): { ids: number[]; connects: number; ignored: number; relists: number } {
  const d = window.nodeplaneDashboard;
  return { ids: [...d.stream.ids], connects: d.stream.connects, ignored: d.fleet.stats.ignored, relists: d.stats.relists };
}
