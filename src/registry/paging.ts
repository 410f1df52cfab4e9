/**
 * Continue tokens: every page of a list is read at the first page's revision, so the token
 * carries that revision and the last key returned. Tokens are opaque to clients.
 */
import { InvalidError } from "../errors.js";

export interface ContinueToken {
  revision: number;
  after: string;
}

export function encodeContinue(token: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 1, r: token.revision, a: token.after })).toString("base64url");
}

export function decodeContinue(token: string): ContinueToken {
  const bad = (): InvalidError =>
    InvalidError.of("continue_token", token, "must be a continue_token returned by an earlier ListNodes call");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (typeof parsed !== "object" || parsed === null) throw bad();
  const { v, r, a } = parsed as Record<string, unknown>;
  if (v !== 1 || typeof r !== "number" || !Number.isSafeInteger(r) || r < 0 || typeof a !== "string") throw bad();
  return { revision: r, after: a };
}
