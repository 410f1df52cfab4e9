/** Flag value parsers shared by the commands; each throws a message naming the flag. */
import { InvalidArgumentError } from "commander";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go/Kubernetes-style durations: "500ms", "5s", "1m30s", "2h". Answers milliseconds. */
export function parseDuration(value: string): number {
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== value) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a duration (e.g. 500ms, 5s, 1m30s)`);
  }
  return parts.reduce((ms, p) => ms + Number(p[1]) * UNITS[p[2]!]!, 0);
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a positive whole number`);
  }
  return n;
}

/** Sizes in bytes with an optional binary suffix: "4194304", "4Mi", "512Ki". */
export function parseBytes(value: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(value);
  if (!m) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a size (e.g. 4Mi, 65536)`);
  const mult = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * mult;
}

/** host:port, as a listener address. */
export function parseAddress(value: string): string {
  if (!/^(\[[^\]]+\]|[^:\s]*):\d{1,5}$/.test(value) || Number(value.split(":").at(-1)) > 65535) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not host:port (e.g. 127.0.0.1:50051)`);
  }
  return value;
}
