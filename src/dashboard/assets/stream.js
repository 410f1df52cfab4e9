// @ts-check
/**
 * The live stream (src/dashboard/stream.ts on the server), through the browser's EventSource:
 * it reconnects by itself after a dropped connection or a server restart and sends the last
 * frame id it saw as Last-Event-ID, so the server resumes right after it. When the EventSource
 * gives up (the server answered an error), the page opens a new one from the revision it has.
 */

/** @typedef {import("./model.js").Frame} Frame */
/** @typedef {{zone: string, state: string}} ZoneView */
/** @typedef {{now: number, zones: ZoneView[] | null}} ZonesMsg */
/**
 * @typedef {{onFrame: (f: Frame) => void, onZones: (z: ZonesMsg) => void, onRelist: (reason: string) => void,
 *   onLost: () => void, onStatus: (s: "connecting" | "live" | "reconnecting") => void}} Handlers
 */

/** Frame ids kept for inspection (window.nodeplaneDashboard.stream.ids). */
const KEEP_IDS = 1000;

export class LiveStream {
  /** @param {Handlers} handlers */
  constructor(handlers) {
    this.handlers = handlers;
    /** @type {EventSource | undefined} */
    this.source = undefined;
    /** The ids of the frames received, oldest first (a resume shows as no gap and no repeat here). */
    /** @type {number[]} */
    this.ids = [];
    this.connects = 0;
  }

  /** @param {number} after the revision the page has every change up to */
  open(after) {
    this.close();
    this.handlers.onStatus("connecting");
    const es = new EventSource(`/dashboard/v1/stream?after=${after}`);
    this.source = es;
    es.addEventListener("hello", (e) => {
      this.connects++;
      this.handlers.onStatus("live");
      this.handlers.onZones(JSON.parse(/** @type {MessageEvent<string>} */ (e).data));
    });
    es.addEventListener("zones", (e) => this.handlers.onZones(JSON.parse(/** @type {MessageEvent<string>} */ (e).data)));
    es.addEventListener("message", (e) => {
      this.ids.push(Number(e.lastEventId));
      if (this.ids.length > KEEP_IDS) this.ids.splice(0, this.ids.length - KEEP_IDS);
      this.handlers.onFrame(JSON.parse(e.data));
    });
    es.addEventListener("relist", (e) => {
      this.close();
      this.handlers.onRelist(JSON.parse(/** @type {MessageEvent<string>} */ (e).data).reason ?? "");
    });
    es.addEventListener("logout", () => {
      this.close();
      this.handlers.onLost();
    });
    es.addEventListener("error", () => {
      if (es !== this.source) return;
      if (es.readyState === EventSource.CLOSED) {
        // The server answered with an error (session gone, too many streams): the page decides.
        this.close();
        this.handlers.onLost();
      } else this.handlers.onStatus("reconnecting");
    });
  }

  close() {
    this.source?.close();
    this.source = undefined;
  }
}
