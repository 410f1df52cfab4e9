/**
 * Linux cpulist syntax ("0-3,8-11", as in /sys/devices/system/node/node0/cpulist): a comma
 * separated list of CPU ids and inclusive ranges. The canonical form, which nodeplane stores
 * and the agent writes, lists ascending, non-overlapping, non-adjacent entries with no
 * whitespace; an empty string is the empty set.
 *
 * Parsing never expands ranges: a hostile "0-4000000000" costs as much as "0-3". Work is
 * bounded by the string's length, which callers cap.
 */

/** The largest CPU id accepted (Linux's NR_CPUS is at most 8192 on every architecture today). */
export const MAX_CPU_ID = 65535;

/** An inclusive range of CPU ids. */
export type CpuRange = readonly [first: number, last: number];

const ENTRY = /^(0|[1-9][0-9]{0,5})(?:-(0|[1-9][0-9]{0,5}))?$/;

/**
 * The ranges of a cpulist, in the order written, or the rule it breaks. Ranges may be out of
 * order or overlap here (sysfs files are read with this too); `canonicalViolation` says
 * whether they are in canonical form.
 */
export function parseCpuList(list: string): CpuRange[] | string {
  if (list === "") return [];
  const ranges: CpuRange[] = [];
  for (const entry of list.split(",")) {
    const m = ENTRY.exec(entry);
    if (!m) return `entry ${JSON.stringify(entry.slice(0, 16))} is not a CPU id or a range first-last (e.g. "0-3,8-11")`;
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    if (last > MAX_CPU_ID) return `CPU id ${last} is above ${MAX_CPU_ID}`;
    if (first > last) return `range ${entry} runs backwards`;
    ranges.push([first, last]);
  }
  return ranges;
}

/** Why `ranges` are not canonical (ascending, non-overlapping, not adjacent), or undefined. */
export function canonicalViolation(ranges: readonly CpuRange[]): string | undefined {
  for (let i = 1; i < ranges.length; i++) {
    const [, prevLast] = ranges[i - 1]!;
    const [first] = ranges[i]!;
    if (first <= prevLast) return `entries must ascend without overlapping: ${first} comes after ${prevLast}`;
    if (first === prevLast + 1) return `adjacent entries must be joined into one range: ${prevLast} and ${first}`;
  }
  return undefined;
}

/** How many CPUs the ranges hold (counted once each only when they do not overlap). */
export function countCpus(ranges: readonly CpuRange[]): number {
  return ranges.reduce((n, [first, last]) => n + last - first + 1, 0);
}

/** The canonical cpulist of a set of CPU ids ([0,1,2,3,8] → "0-3,8"). */
export function formatCpuList(ids: Iterable<number>): string {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(",");
}

/** Every id the ranges hold, ascending per range (callers bound the ids: at most MAX_CPU_ID + 1). */
export function expandCpuRanges(ranges: readonly CpuRange[]): number[] {
  const ids: number[] = [];
  for (const [first, last] of ranges) for (let id = first; id <= last; id++) ids.push(id);
  return ids;
}
