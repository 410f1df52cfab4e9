/**
 * Static bearer tokens from `--token-auth-file`, in kube-apiserver's CSV format: one line per
 * token, `token,user,uid[,"group1,group2"]`. Blank lines and lines starting with `#` are
 * skipped. Tokens are kept only as SHA-256 hashes in memory, so a lookup compares hashes and
 * never the secret itself.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { authenticated, type Identity } from "./identity.js";

export const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

export class TokenFile {
  private constructor(private readonly byHash: ReadonlyMap<string, Identity>) {}

  /** @throws Error naming the file, the line and what is wrong (never the token). */
  static read(path: string): TokenFile {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`--token-auth-file ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return TokenFile.parse(text, `--token-auth-file ${path}`);
  }

  static parse(text: string, source: string): TokenFile {
    const byHash = new Map<string, Identity>();
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === "" || line.trimStart().startsWith("#")) return;
      const where = `${source}: line ${i + 1}`;
      const fields = parseCsvLine(line, where);
      if (fields.length < 3) throw new Error(`${where}: want token,user,uid[,"group1,group2"], found ${fields.length} field(s)`);
      const [token = "", user = "", uid = "", groups = ""] = fields;
      if (token === "") throw new Error(`${where}: the token is empty`);
      if (user === "") throw new Error(`${where}: the user is empty`);
      const hash = sha256(token);
      if (byHash.has(hash)) throw new Error(`${where}: this token is already given to another line`);
      const groupList = groups.split(",").map((g) => g.trim()).filter(Boolean);
      byHash.set(hash, authenticated(user, groupList, "token", { uid }));
    });
    return new TokenFile(byHash);
  }

  get size(): number {
    return this.byHash.size;
  }

  /** The identity a token stands for, or undefined. */
  lookup(token: string): Identity | undefined {
    return this.byHash.get(sha256(token));
  }
}

/** One CSV record (RFC 4180 quoting, leading spaces trimmed as kube-apiserver's reader does). */
function parseCsvLine(line: string, where: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === " " || line[i] === "\t") i++;
    let field = "";
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new Error(`${where}: a quoted field is not closed`);
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ",") throw new Error(`${where}: unexpected text after a quoted field`);
    } else {
      const end = line.indexOf(",", i);
      field = (end < 0 ? line.slice(i) : line.slice(i, end)).trimEnd();
      i = end < 0 ? line.length : end;
    }
    fields.push(field);
    if (i >= line.length) return fields;
    i++; // the comma
  }
}
