/**
 * The files of a SqliteStore and what opening them may find (issue 11, defect 7: a 0-byte
 * database used to start silently as an empty store, and a damaged one took writes).
 *
 * - `nodeplane.db` is created whole or not at all: built under a temporary name (schema
 *   committed, WAL checkpointed) and renamed into place. So an existing `nodeplane.db` always
 *   held a store, and a 0-byte or header-less one is damage, never a half-made new store.
 * - `nodeplane.db.marker` is written once the store is created: a directory with the marker
 *   and no database lost its store (refused: restore it, or remove the marker to start empty);
 *   one with neither is new. A store from before the marker existed gets one on its first open.
 * - Before anything writes to an existing file, the writer runs PRAGMA quick_check on it
 *   (sqlite-writer.ts); a file that fails is refused with the repair path below.
 *
 * Every refusal is a DamagedStoreError whose message says what was found and what to do.
 */
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { SCHEMA } from "./sqlite-sql.js";

export const DB_FILE = "nodeplane.db";
const MARKER_FILE = "nodeplane.db.marker";
const SQLITE_HEADER = "SQLite format 3\0";

/** The store's files are not usable as found; the message says why and what to do. */
export class DamagedStoreError extends Error {
  override readonly name = "DamagedStoreError";
}

/** What to tell an operator whose store file is damaged: recover it, restore it, or start empty. */
export function repairAdvice(file: string): string {
  return (
    `with nodeplane stopped, recover what SQLite can still read into a new file with ` +
    `\`sqlite3 ${file} .recover | sqlite3 ${file}.recovered\`, check it and move it into place ` +
    `(with ${file}-wal and ${file}-shm removed), or restore a backup; or move the damaged file aside ` +
    `(\`mv ${file} ${file}.damaged\`) to start with an empty store (its nodes are lost)`
  );
}

interface Marker {
  created: string;
}

function readMarker(dir: string): Marker | undefined {
  const file = path.join(dir, MARKER_FILE);
  if (!fs.existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<Marker>;
    return { created: String(parsed.created ?? "an unknown date") };
  } catch {
    return { created: "an unknown date" };
  }
}

/** Write a file whole (temporary name, fsync, rename, fsync of the directory). */
function writeDurably(file: string, data: string | Uint8Array | undefined, from?: string): void {
  const tmp = from ?? `${file}.${process.pid}.tmp`;
  if (data !== undefined) {
    const fd = fs.openSync(tmp, "w");
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  fs.renameSync(tmp, file);
  const dirFd = fs.openSync(path.dirname(file), "r");
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

function writeMarker(dir: string): void {
  const marker: Marker = { created: new Date().toISOString() };
  const note = "nodeplane created nodeplane.db in this directory; if that file is missing or empty, the store was lost";
  writeDurably(path.join(dir, MARKER_FILE), `${JSON.stringify({ ...marker, note })}\n`);
}

/**
 * Make sure `dir` holds a store file fit to open: create one if the directory is new, else check
 * what is there (size, header, marker). The content check (quick_check) is the writer's.
 * @throws DamagedStoreError with what was found and the repair path.
 */
export function prepareStoreFile(dir: string): void {
  const file = path.join(dir, DB_FILE);
  const marker = readMarker(dir);
  if (!fs.existsSync(file)) {
    if (marker) {
      throw new DamagedStoreError(
        `the SQLite store ${file} is missing, but ${path.join(dir, MARKER_FILE)} says a store was created here on ${marker.created}: ` +
          `restore ${DB_FILE} (with its -wal file) from a backup; or, to start with an empty store, remove ${path.join(dir, MARKER_FILE)}`,
      );
    }
    createStoreFile(file);
    writeMarker(dir);
    return;
  }
  const size = fs.statSync(file).size;
  if (size === 0) {
    const since = marker ? `; a store was created here on ${marker.created}` : "";
    throw new DamagedStoreError(
      `the SQLite store ${file} is empty (0 bytes)${since}: its data is gone. Restore it from a backup; ` +
        `or move it aside (\`mv ${file} ${file}.empty\`) to start with an empty store`,
    );
  }
  const header = Buffer.alloc(SQLITE_HEADER.length);
  const fd = fs.openSync(file, "r");
  try {
    fs.readSync(fd, header, 0, header.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (header.toString("latin1") !== SQLITE_HEADER) {
    throw new DamagedStoreError(`the SQLite store ${file} is not a database (it does not start with the SQLite header): ${repairAdvice(file)}`);
  }
  // A store from before the marker: from now on its loss is noticed too.
  if (!marker) writeMarker(dir);
}

/** A new store file with its schema, appearing whole at `file`. */
function createStoreFile(file: string): void {
  const tmp = `${file}.${process.pid}.creating`;
  for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(f, { force: true });
  const db = new Database(tmp);
  try {
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (mode !== "wal") throw new Error(`journal_mode is ${String(mode)}, WAL is required`);
    db.pragma("synchronous = FULL");
    db.exec(SCHEMA);
  } finally {
    // Closing the last connection checkpoints the WAL into the file and removes it.
    db.close();
  }
  writeDurably(file, undefined, tmp);
}
