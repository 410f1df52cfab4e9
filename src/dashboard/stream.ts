/**
 * The dashboard's live stream: Server-Sent Events, one connection per open page.
 *
 * Wire (text/event-stream):
 * - first `retry: 1000` and a `hello` event: the server's clock (the page measures lease ages
 *   on it), the revision and the zone states;
 * - then one message per frame (src/dashboard/frames.ts), `id:` = the last revision it covers;
 * - `zones` when a zone's disruption state changes (no id: not a position in the stream);
 * - `relist` (then the end) when the page must load the fleet again: its Last-Event-ID was
 *   compacted away or is unknown to this store;
 * - `logout` (then the end) when the session's token stopped authenticating;
 * - a `: ping` comment when idle, so proxies and dead peers are noticed.
 *
 * Bounded: each connection is a cursor into the feed's shared frames, so an open page costs no
 * queue. A page whose unsent frames pass `maxLagBytes` (it reads too slowly) is cut off, as the
 * gRPC watch cuts off a slow watcher; its EventSource reconnects and resumes from its last id.
 * At most `maxStreams` connections are open; more are answered 503 with Retry-After.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Sessions } from "./auth.js";
import type { FeedListener, FleetFeed } from "./feed.js";
import { type Frame, frameText } from "./frames.js";

/** A zone as the page shows it: region/zone and the lifecycle controller's state. */
export interface ZoneView {
  zone: string;
  state: string;
}

export interface StreamsOptions {
  feed: FleetFeed;
  sessions: Sessions;
  /** The zone states now; undefined when no lifecycle controller runs. */
  zones: () => ZoneView[] | undefined;
  maxStreams?: number;
  maxLagBytes?: number;
  pingMs?: number;
  /** How long a disconnected page waits before reconnecting (the SSE `retry:` field). */
  retryMs?: number;
  metrics?: Registry;
}

export class Streams {
  private readonly open = new Set<Connection>();
  private readonly timer: NodeJS.Timeout;
  private readonly o: Required<Omit<StreamsOptions, "metrics">>;
  private zonesText = "";
  private readonly cutOff: Counter | undefined;
  private closed = false;

  constructor(opts: StreamsOptions) {
    this.o = {
      feed: opts.feed,
      sessions: opts.sessions,
      zones: opts.zones,
      maxStreams: opts.maxStreams ?? 10_000,
      maxLagBytes: opts.maxLagBytes ?? 8 * 1024 * 1024,
      pingMs: opts.pingMs ?? 15_000,
      retryMs: opts.retryMs ?? 1000,
    };
    this.zonesText = JSON.stringify(opts.zones() ?? null);
    const streams = this.open;
    if (opts.metrics) {
      new Gauge({
        name: "nodeplane_dashboard_streams",
        help: "Open dashboard event streams (browser pages).",
        registers: [opts.metrics],
        collect() {
          this.set(streams.size);
        },
      });
      this.cutOff = new Counter({
        name: "nodeplane_dashboard_streams_cut_off_total",
        help: "Dashboard streams ended because the page read too slowly.",
        registers: [opts.metrics],
      });
    }
    // One timer for every connection: zone changes each second, pings and re-authentication.
    let ticks = 0;
    const pingEvery = Math.max(1, Math.round(this.o.pingMs / 1000));
    this.timer = setInterval(() => {
      this.broadcastZones();
      if (++ticks % pingEvery === 0) for (const c of this.open) void c.ping();
    }, Math.min(1000, this.o.pingMs));
    this.timer.unref();
  }

  get count(): number {
    return this.open.size;
  }

  /** Serve one stream to a caller already authorized; `after` = the revision the page has. */
  async serve(req: IncomingMessage, res: ServerResponse, after: number | undefined): Promise<void> {
    if (this.closed || this.open.size >= this.o.maxStreams) {
      res.writeHead(503, { "content-type": "application/json", "retry-after": "5" });
      res.end(JSON.stringify({ error: { code: 503, reason: "ServiceUnavailable", message: `too many dashboard streams open (limit ${this.o.maxStreams}); retry later` } }));
      return;
    }
    const c = new Connection(req, res, this);
    this.open.add(c);
    res.once("close", () => {
      this.open.delete(c);
      c.close();
    });
    await this.o.feed.start();
    const from = after ?? this.o.feed.rev;
    const resume = await this.o.feed.resume(from);
    if (c.isClosed) return;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    });
    res.socket?.setNoDelay(true);
    res.write(`retry: ${this.o.retryMs}\nevent: hello\ndata: ${JSON.stringify({ now: Date.now(), rev: this.o.feed.rev, zones: this.o.zones() ?? null })}\n\n`);
    if ("relist" in resume) {
      res.end(`event: relist\ndata: ${JSON.stringify({ reason: resume.relist })}\n\n`);
      return;
    }
    c.begin(resume.seq, from);
  }

  /** End every stream (shutdown). */
  closeAll(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const c of [...this.open]) c.end();
  }

  // For connections.

  get feed(): FleetFeed {
    return this.o.feed;
  }

  get sessions(): Sessions {
    return this.o.sessions;
  }

  get maxLagBytes(): number {
    return this.o.maxLagBytes;
  }

  get pingMs(): number {
    return this.o.pingMs;
  }

  slowReader(): void {
    this.cutOff?.inc();
  }

  private broadcastZones(): void {
    const zones = this.o.zones();
    const text = JSON.stringify(zones ?? null);
    if (text === this.zonesText) return;
    this.zonesText = text;
    const msg = `event: zones\ndata: ${JSON.stringify({ now: Date.now(), zones: zones ?? null })}\n\n`;
    for (const c of this.open) c.send(msg);
  }
}

class Connection implements FeedListener {
  private cursor = 0;
  /** The revision the page has every change up to. */
  private after = 0;
  private started = false;
  private blocked = false;
  private closed = false;
  private lastWrite = Date.now();
  private unlisten: (() => void) | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly streams: Streams,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  begin(seq: number, after: number): void {
    this.cursor = seq;
    this.after = after;
    this.started = true;
    this.unlisten = this.streams.feed.listen(this);
    this.pump();
  }

  frame(_f: Frame): void {
    if (this.blocked && this.streams.feed.lagBytes(this.cursor) > this.streams.maxLagBytes) {
      this.streams.slowReader();
      // Its EventSource reconnects with its last id and resumes from the frames kept.
      this.res.destroy();
      return;
    }
    this.pump();
  }

  /** The feed starts over: the page reconnects and resumes (or relists). */
  reset(): void {
    this.end();
  }

  /** An out-of-band message (zones), unless the connection is backed up. */
  send(text: string): void {
    if (!this.started || this.closed || this.blocked) return;
    this.write(text);
  }

  async ping(): Promise<void> {
    if (!this.started || this.closed) return;
    if (this.streams.sessions.enabled && !(await this.streams.sessions.caller(this.req))) {
      this.res.end(`event: logout\ndata: {}\n\n`);
      return;
    }
    if (!this.blocked && Date.now() - this.lastWrite >= this.streams.pingMs / 2) this.write(": ping\n\n");
  }

  end(): void {
    if (!this.closed) this.res.end();
    this.close();
  }

  close(): void {
    this.closed = true;
    this.unlisten?.();
    this.unlisten = undefined;
  }

  private pump(): void {
    const feed = this.streams.feed;
    while (!this.closed && !this.blocked && this.cursor < feed.nextSeq) {
      const f = feed.frameAt(this.cursor);
      if (!f) {
        // Fell out of the kept frames: end; the reconnect resumes from the store's history or relists.
        this.streams.slowReader();
        this.res.destroy();
        return;
      }
      const text = f.from >= this.after ? f.text : frameText(f.from, f.to, f.body, this.after);
      this.cursor++;
      if (f.to > this.after) this.after = f.to;
      if (!this.write(text)) {
        this.blocked = true;
        this.res.once("drain", () => {
          this.blocked = false;
          this.pump();
        });
      }
    }
  }

  private write(text: string): boolean {
    this.lastWrite = Date.now();
    return this.res.write(text);
  }
}
