/**
 * Frames: what the dashboard's stream sends. A frame holds every change to nodes, leases and
 * node events with a store revision in (from, to], coalesced to the latest row of each object,
 * and goes out as one Server-Sent Event with `id: to`. The browser's EventSource sends the last
 * id back as Last-Event-ID when it reconnects; the stream then resumes with the frames after
 * it. Every row carries its own revision, so a reconnect that lands inside a frame gets that
 * frame cut down to the rows after its id: no gap, no duplicate.
 *
 * Coalescing is what lets a browser follow 10,000 nodes: each renews its Lease every 10 s, and
 * a frame every ~250 ms carries each renewed Lease once, instead of one message per write.
 *
 * FrameRing keeps recent frames, shared by every connection (each holds only a cursor), up
 * to a byte budget; older frames are dropped from the front.
 */
import type { EventRow, LeaseRow, NodeRow } from "./rows.js";

/** An object that went away (a deleted node, or a deleted Lease). */
export interface Gone {
  kind: "node" | "lease";
  name: string;
  rev: number;
}

export interface FrameBody {
  nodes: NodeRow[];
  gone: Gone[];
  leases: LeaseRow[];
  events: EventRow[];
}

export interface Frame {
  /** Position in the ring: consecutive, so a connection's cursor is a number. */
  readonly seq: number;
  /** Changes with revision in (from, to]. */
  readonly from: number;
  readonly to: number;
  readonly body: FrameBody;
  /** The SSE message (made once, shared by every connection). */
  readonly text: string;
  /** Bytes of frame text before this one, counted from any fixed point (for lag in bytes). */
  readonly offset: number;
}

/** The SSE message for a frame, or for the part of it after `after`. */
export function frameText(from: number, to: number, body: FrameBody, after = from): string {
  const newer = <T extends { rev: number }>(rows: T[]): T[] => (after <= from ? rows : rows.filter((r) => r.rev > after));
  const part: FrameBody = { nodes: newer(body.nodes), gone: newer(body.gone), leases: newer(body.leases), events: newer(body.events) };
  return `id: ${to}\ndata: ${JSON.stringify({ from: Math.max(from, after), rev: to, ...part })}\n\n`;
}

/** Collects changes, latest row per object, until taken as a frame. */
export class FrameBuilder {
  private nodes = new Map<string, NodeRow>();
  private gone = new Map<string, Gone>();
  private leases = new Map<string, LeaseRow>();
  private events = new Map<string, EventRow>();
  /** The highest revision added since the last take. */
  last = 0;

  get isEmpty(): boolean {
    return this.nodes.size + this.gone.size + this.leases.size + this.events.size === 0;
  }

  get size(): number {
    return this.nodes.size + this.gone.size + this.leases.size + this.events.size;
  }

  node(row: NodeRow): void {
    this.gone.delete(`node/${row.name}`);
    this.nodes.set(row.name, row);
    this.saw(row.rev);
  }

  lease(row: LeaseRow): void {
    this.gone.delete(`lease/${row.name}`);
    this.leases.set(row.name, row);
    this.saw(row.rev);
  }

  removed(g: Gone): void {
    (g.kind === "node" ? this.nodes : this.leases).delete(g.name);
    this.gone.set(`${g.kind}/${g.name}`, g);
    this.saw(g.rev);
  }

  event(row: EventRow): void {
    this.events.set(row.key, row);
    this.saw(row.rev);
  }

  /** The body collected so far; the builder starts empty again. */
  take(): FrameBody {
    const body = { nodes: [...this.nodes.values()], gone: [...this.gone.values()], leases: [...this.leases.values()], events: [...this.events.values()] };
    this.nodes = new Map();
    this.gone = new Map();
    this.leases = new Map();
    this.events = new Map();
    this.last = 0;
    return body;
  }

  private saw(rev: number): void {
    if (rev > this.last) this.last = rev;
  }
}

export class FrameRing {
  private frames: Frame[] = [];
  /** seq of frames[0] (or of the next frame while empty). */
  private firstSeq = 0;
  private bytes = 0;
  /** Offset after the newest frame. */
  private total = 0;

  /**
   * @param start every change after this revision is in the ring (or still to be appended)
   * @param maxBytes budget of frame text kept; the oldest frames go first
   */
  constructor(
    private start: number,
    private readonly maxBytes: number,
  ) {}

  /** Changes after this revision can be replayed from the ring. */
  get from(): number {
    return this.start;
  }

  /** The seq the next appended frame gets. */
  get nextSeq(): number {
    return this.firstSeq + this.frames.length;
  }

  get size(): number {
    return this.bytes;
  }

  /** The revision the newest frame ends at (the start while empty). */
  get to(): number {
    return this.frames.at(-1)?.to ?? this.start;
  }

  /** A frame by seq, if still kept. */
  at(seq: number): Frame | undefined {
    return this.frames[seq - this.firstSeq];
  }

  /** The seq of the first frame with changes after `rev` (nextSeq when there is none yet). Needs rev >= from. */
  seqAfter(rev: number): number {
    let lo = 0;
    let hi = this.frames.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.frames[mid]!.to > rev) hi = mid;
      else lo = mid + 1;
    }
    return this.firstSeq + lo;
  }

  /** Bytes of frame text from `seq` to the newest frame (a connection's lag). */
  bytesFrom(seq: number): number {
    const f = this.at(seq);
    return f ? this.total - f.offset : seq < this.firstSeq ? this.bytes : 0;
  }

  /** Add the newest frame: changes in (to, upTo]. */
  append(body: FrameBody, upTo: number): Frame {
    const from = this.to;
    const frame: Frame = { seq: this.nextSeq, from, to: upTo, body, text: frameText(from, upTo, body), offset: this.total };
    this.frames.push(frame);
    this.bytes += frame.text.length;
    this.total += frame.text.length;
    this.evict();
    return frame;
  }

  /**
   * Add older frames (from history) in front: `bodies` in revision order, the first starting
   * at `start`, the last ending at the ring's current start.
   */
  prepend(start: number, bodies: { body: FrameBody; to: number }[]): void {
    const texts = bodies.map(({ body, to }, i) => frameText(i === 0 ? start : bodies[i - 1]!.to, to, body));
    const added = texts.reduce((n, t) => n + t.length, 0);
    let offset = (this.frames[0]?.offset ?? this.total) - added;
    const older = bodies.map(({ body, to }, i): Frame => {
      const f = { seq: this.firstSeq - bodies.length + i, from: i === 0 ? start : bodies[i - 1]!.to, to, body, text: texts[i]!, offset };
      offset += f.text.length;
      return f;
    });
    this.frames = [...older, ...this.frames];
    this.firstSeq -= older.length;
    this.start = start;
    this.bytes += added;
    this.evict();
  }

  /** Forget every frame; replay starts after `start` again. */
  reset(start: number): void {
    this.firstSeq = this.nextSeq;
    this.frames = [];
    this.bytes = 0;
    this.start = start;
  }

  private evict(): void {
    let drop = 0;
    while (this.bytes > this.maxBytes && drop < this.frames.length - 1) {
      this.bytes -= this.frames[drop]!.text.length;
      drop++;
    }
    if (drop === 0) return;
    this.start = this.frames[drop - 1]!.to;
    this.frames = this.frames.slice(drop);
    this.firstSeq += drop;
  }
}
