/** Flag value parsers shared by the commands; each throws a message naming the flag. */
import { InvalidArgumentError, Option } from "commander";

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

/** One host:port, or several (replicas of one cluster) separated by commas: "a:50051,b:50051". */
export function parseAddresses(value: string): string {
  const list = value.split(",").map((a) => a.trim());
  if (list.some((a) => a === "")) throw new InvalidArgumentError(`${JSON.stringify(value)} has an empty address: want host:port, or several separated by commas`);
  return list.map(parseAddress).join(",");
}

/** A rate per second, 0 allowed (0 = never). */
export function parseRate(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a rate: a number of events per second, 0 or more (e.g. 0.1)`);
  }
  return n;
}

/** A fraction in (0, 1]. */
export function parseFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0 || n > 1) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a fraction between 0 (excluded) and 1 (e.g. 0.55)`);
  }
  return n;
}

const KNOWN_CONTROLLERS = ["nodelifecycle"];

/** Kubernetes' --controllers syntax: "*" for all, "name" to enable, "-name" to disable. */
export function parseControllers(value: string): string[] {
  const on = new Set<string>();
  for (const item of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (item === "*") KNOWN_CONTROLLERS.forEach((c) => on.add(c));
    else if (item.startsWith("-") && KNOWN_CONTROLLERS.includes(item.slice(1))) on.delete(item.slice(1));
    else if (KNOWN_CONTROLLERS.includes(item)) on.add(item);
    else throw new InvalidArgumentError(`unknown controller ${JSON.stringify(item)}: known are ${KNOWN_CONTROLLERS.join(", ")} (use * or -name)`);
  }
  return [...on];
}

/** "true" / "false" (the kubelet's --flag=false form). */
export function parseBool(value: string): boolean {
  if (value === "true") return true;
  if (value === "false") return false;
  throw new InvalidArgumentError(`${JSON.stringify(value)} is not true or false`);
}

/** "90000" ms → "1m30s", for help texts. */
function formatDuration(ms: number): string {
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}ms`);
  return parts.join("");
}

/** A duration flag whose help shows its default as a duration ("5s"), not milliseconds. */
export function durationOption(flags: string, description: string, defaultMs: number): Option {
  return new Option(flags, description).argParser(parseDuration).default(defaultMs, formatDuration(defaultMs));
}
