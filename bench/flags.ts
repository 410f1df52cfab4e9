/**
 * Reading a benchmark's flags: each flag may also come from the environment as
 * PREFIX_NAME (e.g. SCALE_NODES=2000 for --nodes); numbers are checked against their range.
 */

type Values = Record<string, string | boolean | undefined>;

export interface FlagReader<K extends string> {
  /** The flag's text, or its environment variable's. */
  raw(name: K): string | undefined;
  /** The flag as a number in [min, max] (an integer unless `integer` is false), else `def`. */
  num(name: K, def: number, min: number, max: number, integer?: boolean): number;
}

export function flagReader<V extends Values>(values: V, envPrefix: string): FlagReader<Extract<keyof V, string>> {
  const raw = (name: Extract<keyof V, string>): string | undefined => {
    const v = values[name];
    return typeof v === "string" ? v : process.env[`${envPrefix}_${name.toUpperCase().replace(/-/g, "_")}`];
  };
  const num = (name: Extract<keyof V, string>, def: number, min: number, max: number, integer = true): number => {
    const r = raw(name);
    const v = r === undefined ? def : Number(r);
    if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new Error(`--${name} ${r}: want ${integer ? "an integer" : "a number"} in [${min}, ${max}]`);
    }
    return v;
  };
  return { raw, num };
}
