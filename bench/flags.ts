/**
 * The one flag reader of the benchmarks. A benchmark reads each flag once, where it needs it,
 * with its default, range and a line of help; `done()` then answers --help (the flags read,
 * with their defaults) or refuses anything on the command line that no one read.
 *
 * Syntax: `--name VALUE`, `--name=VALUE`, or `--name` alone for a boolean. Every flag may also
 * come from the environment as PREFIX_NAME (e.g. SCALE_NODES=2000 for --nodes; "1" or "true"
 * for a boolean). --quick (a smoke run of about a minute) is read by every benchmark.
 */
import path from "node:path";
import { ROOT } from "./harness.js";

export class Flags {
  readonly quick: boolean;
  private readonly used = new Set<number>();
  private readonly help: string[] = [];

  constructor(
    private readonly script: string,
    private readonly envPrefix: string,
    private readonly argv: string[] = process.argv.slice(2),
  ) {
    this.quick = this.bool("quick", "a smoke run of about a minute: small sizes, short windows; writes no results file unless --out");
  }

  private envOf(name: string): string | undefined {
    return process.env[`${this.envPrefix}_${name.toUpperCase().replace(/-/g, "_")}`];
  }

  /** `--name` on the command line (the last one wins; every one is marked as read), and its value when `withValue`. */
  private find(name: string, withValue: boolean): { value: string | undefined; found: boolean } {
    let out: { value: string | undefined; found: boolean } = { value: undefined, found: false };
    this.argv.forEach((a, i) => {
      if (withValue && a.startsWith(`--${name}=`)) out = { value: a.slice(name.length + 3), found: true };
      else if (a !== `--${name}`) return;
      else if (!withValue) out = { value: undefined, found: true };
      else {
        const v = this.argv[i + 1];
        if (v === undefined || v.startsWith("--")) throw new Error(`--${name}: wants a value`);
        this.used.add(i + 1);
        out = { value: v, found: true };
      }
      this.used.add(i);
    });
    return out;
  }

  /** A string flag; `undefined` when neither given nor defaulted. */
  str<D extends string | undefined>(name: string, def: D, help: string, meta = "V"): string | D {
    this.help.push(column(`  --${name} ${meta}`) + help + (def ? ` (default ${def})` : ""));
    return this.find(name, true).value ?? this.envOf(name) ?? def;
  }

  bool(name: string, help: string): boolean {
    this.help.push(column(`  --${name}`) + help);
    return this.find(name, false).found || ["1", "true"].includes(this.envOf(name) ?? "");
  }

  /** A number in [min, max] (an integer unless `integer` is false). */
  num(name: string, def: number, min: number, max: number, help: string, integer = true): number {
    const raw = this.str(name, String(def), help, "N");
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new Error(`--${name} ${raw}: want ${integer ? "an integer" : "a number"} in [${min}, ${max}]`);
    }
    return v;
  }

  /** Comma-separated words, each one of `allowed` when given. */
  list(name: string, def: string, help: string, allowed?: readonly string[]): string[] {
    const words = this.str(name, def, help).split(",").map((s) => s.trim()).filter(Boolean);
    const bad = allowed && words.find((w) => !allowed.includes(w));
    if (bad) throw new Error(`--${name}: unknown ${bad} (want some of ${allowed.join(",")})`);
    return words;
  }

  /** --out: the results file, bench/RESULTS-NAME.md by default (none on a quick run). */
  out(name: string): string {
    return this.str("out", this.quick ? "" : path.join(ROOT, `bench/RESULTS-${name}.md`), 'results file ("" = nowhere)');
  }

  /** --quiet-wait, --max-other: before each measurement, how long to wait for a quieter machine (it is shared). */
  quiet(): { waitS: number; maxOtherPct: number } {
    return {
      waitS: this.num("quiet-wait", this.quick ? 5 : 15, 0, 600, "wait up to S s while other processes take more than --max-other", false),
      maxOtherPct: this.num("max-other", 50, 0, 10_000, "% of a core other processes may take (see --quiet-wait)", false),
    };
  }

  /** After every flag was read: --help prints them and exits; anything unread is an error. */
  done(): void {
    if (this.argv.includes("--help") || this.argv.includes("-h")) {
      process.stdout.write(`usage: node dist/bench/${this.script} [flags]   (or env ${this.envPrefix}_NAME)\n${this.help.join("\n")}\n`);
      process.exit(0);
    }
    const stray = this.argv.filter((_, i) => !this.used.has(i));
    if (stray.length > 0) throw new Error(`${this.script}: unknown flag or stray value: ${stray.join(" ")} (--help lists the flags)`);
  }
}

/** A help line's flag column: 24 wide, and at least two spaces before the text for longer flags. */
function column(flag: string): string {
  return flag.length <= 22 ? flag.padEnd(24) : `${flag}  `;
}
