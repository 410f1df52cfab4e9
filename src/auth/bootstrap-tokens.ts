/**
 * Node bootstrap tokens (Kubernetes' bootstrap tokens, kept in the Store so that they survive
 * restarts and every replica sees them): `<id>.<secret>`, `[a-z0-9]{6}.[a-z0-9]{16}`, with an
 * expiry. The id is public (it names the token in lists and logs); the secret is stored only as
 * its SHA-256 hash and shown once, when the token is created.
 *
 * A valid token authenticates as `system:bootstrap:<id>` in `system:bootstrappers`, which may
 * only ask for a node certificate (see csr-signer.ts). Expired tokens stop authenticating at
 * once and are deleted by `sweep()`.
 *
 * Keys: /registry/bootstraptokens/<id> (JSON). Node names a token has obtained certificates
 * for are kept by csr-signer.ts under their own prefix.
 */
import { randomInt, timingSafeEqual } from "node:crypto";
import type { Clock } from "../clock.js";
import { InvalidError, NotFoundError, UnauthenticatedError } from "../errors.js";
import { pages } from "../store/pages.js";
import type { Store } from "../store/store.js";
import { dns1123SubdomainViolations } from "../validation/names.js";
import { authenticated, BOOTSTRAP_USER_PREFIX, GROUPS, type Identity } from "./identity.js";
import { sha256 } from "./token-file.js";

export const BOOTSTRAP_TOKEN_PATTERN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const TOKEN_PREFIX = "/registry/bootstraptokens/";
const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const DEFAULT_TOKEN_TTL_MS = 24 * 3_600_000;
/** Longest TTL a token may be given: a forgotten token should not open the cluster for ever. */
const MAX_TOKEN_TTL_MS = 365 * 24 * 3_600_000;

/** What is stored about a token (never its secret). */
export interface BootstrapTokenRecord {
  id: string;
  secretSha256: string;
  description: string;
  /** When non-empty, the only node names this token may obtain certificates for. */
  nodeNames: string[];
  createdBy: string;
  createdAt: number;
  expiresAt: number;
}

export interface CreateTokenRequest {
  /** 0 = the default (24 h). */
  ttlMs: number;
  description: string;
  nodeNames: string[];
  createdBy: string;
}

export class BootstrapTokens {
  constructor(private readonly o: { store: Store; clock: Clock }) {}

  /** Make a new token; answers it whole (the only time the secret is seen) and its record. */
  async create(req: CreateTokenRequest): Promise<{ token: string; record: BootstrapTokenRecord }> {
    const ttl = req.ttlMs === 0 ? DEFAULT_TOKEN_TTL_MS : req.ttlMs;
    if (!Number.isFinite(ttl) || ttl < 1000 || ttl > MAX_TOKEN_TTL_MS) {
      throw InvalidError.of("ttl", `${ttl / 1000}s`, `must be between 1s and ${MAX_TOKEN_TTL_MS / 3_600_000}h`);
    }
    if (req.description.length > 256) throw InvalidError.of("description", req.description, "must be at most 256 characters");
    req.nodeNames.forEach((n, i) => {
      const rules = dns1123SubdomainViolations(n);
      if (rules.length > 0) throw InvalidError.of(`node_names[${i}]`, n, rules.join("; "));
    });
    for (;;) {
      const id = randomString(6);
      const secret = randomString(16);
      const now = this.o.clock.now();
      const record: BootstrapTokenRecord = {
        id,
        secretSha256: sha256(secret),
        description: req.description,
        nodeNames: [...new Set(req.nodeNames)],
        createdBy: req.createdBy,
        createdAt: now,
        expiresAt: now + ttl,
      };
      const res = await this.o.store.txn({ compare: [{ key: TOKEN_PREFIX + id, modRevision: 0 }], ops: [{ type: "put", key: TOKEN_PREFIX + id, value: encode(record) }] });
      if (res.succeeded) return { token: `${id}.${secret}`, record };
      // 36^6 ids: a collision is rare; draw again.
    }
  }

  /** Every token, expired ones included until swept, by id. */
  async list(): Promise<BootstrapTokenRecord[]> {
    const out: BootstrapTokenRecord[] = [];
    for await (const page of pages(this.o.store, TOKEN_PREFIX, { limit: 500 })) for (const kv of page.kvs) out.push(decode(kv.value));
    return out;
  }

  async get(id: string): Promise<BootstrapTokenRecord | undefined> {
    const kv = await this.o.store.get(TOKEN_PREFIX + id);
    return kv && decode(kv.value);
  }

  /** Delete a token; answers what it was. @throws NotFoundError */
  async delete(id: string): Promise<BootstrapTokenRecord> {
    const id6 = parseId(id);
    for (;;) {
      const kv = await this.o.store.get(TOKEN_PREFIX + id6);
      if (!kv) throw new NotFoundError("bootstrap token", id6);
      const res = await this.o.store.txn({ compare: [{ key: kv.key, modRevision: kv.modRevision }], ops: [{ type: "delete", key: kv.key }] });
      if (res.succeeded) return decode(kv.value);
    }
  }

  /**
   * The identity of a bootstrap token's holder.
   * @throws UnauthenticatedError when it is unknown, its secret does not match, or it expired.
   */
  async authenticate(token: string): Promise<Identity> {
    const m = BOOTSTRAP_TOKEN_PATTERN.exec(token);
    if (!m) throw new UnauthenticatedError("malformed bootstrap token: want [a-z0-9]{6}.[a-z0-9]{16}");
    const [, id = "", secret = ""] = m;
    const record = await this.get(id);
    // Unknown and wrong secret answer alike: the id alone must not be enough to probe with.
    if (!record || !sameHash(record.secretSha256, sha256(secret))) throw new UnauthenticatedError(`bootstrap token ${JSON.stringify(id)} is not valid`);
    if (record.expiresAt <= this.o.clock.now()) {
      throw new UnauthenticatedError(`bootstrap token ${JSON.stringify(id)} expired at ${new Date(record.expiresAt).toISOString()}`);
    }
    return authenticated(BOOTSTRAP_USER_PREFIX + id, [GROUPS.bootstrappers], "bootstrap-token", { expiresAt: record.expiresAt });
  }

  /** Delete the tokens that have expired (any replica may; each delete is a compare-and-swap). Answers how many. */
  async sweep(): Promise<number> {
    const now = this.o.clock.now();
    let deleted = 0;
    for (const t of await this.list()) {
      if (t.expiresAt > now) continue;
      const kv = await this.o.store.get(TOKEN_PREFIX + t.id);
      if (!kv || decode(kv.value).expiresAt > now) continue;
      const res = await this.o.store.txn({ compare: [{ key: kv.key, modRevision: kv.modRevision }], ops: [{ type: "delete", key: kv.key }] });
      if (res.succeeded) deleted++;
    }
    return deleted;
  }
}

/** A token id as given to delete (the whole token is accepted too; only its id is used). */
function parseId(s: string): string {
  const id = s.split(".")[0] ?? "";
  if (!/^[a-z0-9]{6}$/.test(id)) throw InvalidError.of("id", id, "must be a bootstrap token id: 6 characters of [a-z0-9]");
  return id;
}

function randomString(n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

function sameHash(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

const encode = (r: BootstrapTokenRecord): Uint8Array => new TextEncoder().encode(JSON.stringify(r));
const decode = (v: Uint8Array): BootstrapTokenRecord => JSON.parse(new TextDecoder().decode(v)) as BootstrapTokenRecord;
