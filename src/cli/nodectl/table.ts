/**
 * Text layout as kubectl does it, pure: Go's text/tabwriter (cells end with a tab, columns
 * are aligned over blocks of consecutive lines that have them, the last cell of a line is not
 * padded), Kubernetes' human durations (duration.HumanDuration) and RFC 1123 times.
 */

export interface TabOptions {
  /** Smallest column width, padding included (kubectl's tables: 6; describe: 0). */
  minWidth: number;
  /** Spaces added to the widest cell of a column (kubectl's tables: 3; describe: 2). */
  padding: number;
}

/** kubectl's printers.GetNewTabWriter. */
const TABLE: TabOptions = { minWidth: 6, padding: 3 };
/** kubectl describe's tabbedString. */
export const DESCRIBE: TabOptions = { minWidth: 0, padding: 2 };

const width = (s: string): number => [...s].length;

/**
 * Lay out tab-separated text exactly as Go's tabwriter (flags 0, pad char ' '): a column
 * block is a run of consecutive lines that have a tab-terminated cell in that column.
 */
export function tabwrite(text: string, opts: TabOptions): string {
  const lines = text.split("\n").map((l) => l.split("\t"));
  const widths: number[] = [];
  let out = "";

  const writeLines = (from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const cells = lines[i]!;
      cells.forEach((cell, j) => {
        out += cell;
        if (j < widths.length && j < cells.length - 1) out += " ".repeat(Math.max(0, widths[j]! - width(cell)));
      });
      if (i + 1 < lines.length) out += "\n";
    }
  };

  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    for (let cur = line0; cur < line1; cur++) {
      if (column >= lines[cur]!.length - 1) continue;
      // A block of lines with a cell in this column starts here.
      writeLines(line0, cur);
      line0 = cur;
      let w = opts.minWidth;
      for (; cur < line1; cur++) {
        const cells = lines[cur]!;
        if (column >= cells.length - 1) break;
        w = Math.max(w, width(cells[column]!) + opts.padding);
      }
      widths.push(w);
      format(line0, cur);
      widths.pop();
      line0 = cur;
    }
    writeLines(line0, line1);
  };

  format(0, lines.length);
  return out;
}

/** Rows of cells as an aligned table (every row the same shape), ending with a newline. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return "";
  return tabwrite(rows.map((r) => r.join("\t")).join("\n") + "\n", TABLE);
}

/**
 * A table printed a row at a time (watch mode): the first rows fix the column widths, later
 * rows use them and widen a column only when a cell would not fit (kubectl's tabwriter
 * remembers widths across flushes the same way, without ever running cells together).
 */
export class TableStream {
  private widths: number[] = [];

  /** The first rows (header included), aligned together. */
  start(rows: readonly (readonly string[])[]): string {
    for (const row of rows) this.fit(row);
    return rows.map((r) => this.line(r)).join("");
  }

  /** One more row. */
  row(cells: readonly string[]): string {
    this.fit(cells);
    return this.line(cells);
  }

  private fit(cells: readonly string[]): void {
    cells.forEach((cell, j) => {
      if (j < cells.length - 1) this.widths[j] = Math.max(this.widths[j] ?? TABLE.minWidth, width(cell) + TABLE.padding);
    });
  }

  private line(cells: readonly string[]): string {
    return cells.map((c, j) => (j < cells.length - 1 ? c + " ".repeat(this.widths[j]! - width(c)) : c)).join("") + "\n";
  }
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad2 = (n: number): string => String(n).padStart(2, "0");

/** Go's time.RFC1123Z in UTC: "Wed, 25 Nov 2026 12:00:00 +0000"; "<unset>" when unset. */
export function rfc1123(time: Date | undefined): string {
  if (!time) return "<unset>";
  const t = time;
  return (
    `${DAYS[t.getUTCDay()]}, ${pad2(t.getUTCDate())} ${MONTHS[t.getUTCMonth()]} ${String(t.getUTCFullYear()).padStart(4, "0")} ` +
    `${pad2(t.getUTCHours())}:${pad2(t.getUTCMinutes())}:${pad2(t.getUTCSeconds())} +0000`
  );
}
