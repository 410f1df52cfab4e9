/**
 * DataDirLock: one server per --data-dir (issue 11, defect 5: a second server on the same
 * directory used to start, report ready and serve a split view).
 *
 * The lock is an exclusive POSIX (fcntl) lock on `nodeplane.lock`, taken and held through
 * SQLite: a database opened with locking_mode=EXCLUSIVE keeps the lock of its first write until
 * the connection closes. The kernel drops it when the process ends however it ends (kill -9
 * included), so a crashed server never leaves the directory locked; SQLite also coordinates
 * connections within one process, so a second server in the same process is refused too.
 *
 * Beside it, `nodeplane.lock.holder` (JSON: pid, host, listen address, start time) names the
 * holder for the message a refused server prints. It is information only: the lock decides.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";

const LOCK_FILE = "nodeplane.lock";
const HOLDER_FILE = "nodeplane.lock.holder";

interface LockHolder {
  pid: number;
  host: string;
  /** The gRPC address it serves (the flag until it is bound, then the bound address). */
  listen: string;
  /** ISO time it took the lock. */
  started: string;
}

/** The directory is held by another process (or another server in this one). */
class DataDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder | undefined,
  ) {
    const who = holder
      ? `another nodeplane server (pid ${holder.pid} on host ${holder.host}, listening on ${holder.listen}, since ${holder.started})`
      : `another process (${path.join(dir, HOLDER_FILE)} does not say which)`;
    super(`data directory ${dir} is in use by ${who}: stop it first, or give this server another --data-dir`);
    this.name = "DataDirInUseError";
  }
}

export class DataDirLock {
  private released = false;

  private constructor(
    private readonly db: Database.Database,
    private readonly dir: string,
    private holder: LockHolder,
  ) {}

  /**
   * Take the lock on `dir` (created if missing) for a server that will listen on `listen`.
   * @throws DataDirInUseError when another process or server holds it; Error for other failures.
   */
  static acquire(dir: string, listen: string): DataDirLock {
    fs.mkdirSync(dir, { recursive: true });
    const db = new Database(path.join(dir, LOCK_FILE), { timeout: 0 });
    try {
      db.pragma("locking_mode = EXCLUSIVE");
      db.pragma("journal_mode = MEMORY");
      // The first write takes the exclusive lock; locking_mode=EXCLUSIVE keeps it until close.
      db.exec("CREATE TABLE IF NOT EXISTS lock (id INTEGER PRIMARY KEY, taken TEXT NOT NULL)");
      db.prepare("INSERT OR REPLACE INTO lock (id, taken) VALUES (1, ?)").run(new Date().toISOString());
    } catch (err) {
      db.close();
      if ((err as { code?: unknown }).code === "SQLITE_BUSY") throw new DataDirInUseError(dir, readHolder(dir));
      throw err;
    }
    const lock = new DataDirLock(db, dir, { pid: process.pid, host: os.hostname(), listen, started: new Date().toISOString() });
    lock.writeHolder();
    return lock;
  }

  /** Record the address actually bound (e.g. the port chosen for :0). */
  setListen(listen: string): void {
    if (this.released) return;
    this.holder = { ...this.holder, listen };
    this.writeHolder();
  }

  /** Release the lock (idempotent). The holder file is left: it names the last holder. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.db.close();
  }

  private writeHolder(): void {
    const file = path.join(this.dir, HOLDER_FILE);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(this.holder)}\n`);
    fs.renameSync(tmp, file);
  }
}

function readHolder(dir: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(path.join(dir, HOLDER_FILE), "utf8")) as Partial<LockHolder>;
    if (typeof parsed.pid !== "number" || typeof parsed.host !== "string") return undefined;
    return { pid: parsed.pid, host: parsed.host, listen: String(parsed.listen ?? "?"), started: String(parsed.started ?? "?") };
  } catch {
    return undefined;
  }
}
