/**
 * The agent's recent log lines, kept in memory for `nodectl logs node NAME` (the kubelet serves
 * its logs through the API server the same way). The agent's pino logger writes every line both
 * to stderr and here; the ring keeps the last `capacity` lines (1000), each cut at 16 KiB, so it
 * never holds more than ~16 MiB however chatty or hostile the input; an answer is at most 2 MiB
 * (the newest lines that fit). Lines hold no credentials: nothing in nodeplane logs one.
 */
import { type Logger, pino } from "pino";
import type { LogLevel } from "../log.js";
import { checkTailLines, MAX_TAIL_LINES } from "../validation/tail-lines.js";

const MAX_LINE_CHARS = 16 * 1024;
/** An answer holds at most this many characters (the newest lines that fit): it must fit in a gRPC message. */
const MAX_ANSWER_CHARS = 2 * 1024 * 1024;

export class LogRing {
  private readonly lines: string[] = [];
  private next = 0;

  constructor(readonly capacity = MAX_TAIL_LINES) {}

  /** pino's stream interface: one call per log line (with its newline). */
  write(chunk: string): void {
    for (const raw of chunk.split("\n")) {
      if (raw === "") continue;
      const line = raw.length > MAX_LINE_CHARS ? `${raw.slice(0, MAX_LINE_CHARS)}…(${raw.length} chars)` : raw;
      if (this.lines.length < this.capacity) this.lines.push(line);
      else this.lines[this.next] = line;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  /**
   * The last `tailLines` lines, oldest first; 0 = every line kept.
   * @throws InvalidError on tail_lines outside 0…MAX_TAIL_LINES.
   */
  tail(tailLines: number): string[] {
    checkTailLines(tailLines);
    const ordered = this.lines.length < this.capacity ? this.lines : [...this.lines.slice(this.next), ...this.lines.slice(0, this.next)];
    const wanted = tailLines === 0 ? ordered : ordered.slice(-tailLines);
    let chars = 0;
    let from = wanted.length;
    while (from > 0 && chars + wanted[from - 1]!.length <= MAX_ANSWER_CHARS) chars += wanted[--from]!.length;
    return wanted.slice(from);
  }
}

/** The agent's logger: JSON lines on stderr (as createLogger) and into `ring`. */
export function agentLogger(level: LogLevel, ring: LogRing): Logger {
  // The logger's level decides; both streams take whatever it emits.
  const streams = [
    { level: "trace" as const, stream: pino.destination(2) },
    { level: "trace" as const, stream: ring },
  ];
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.multistream(streams));
}
