/**
 * The fuzz suite's identities with authentication on: the server runs `--tls` on its own PKI
 * (made here at test time by the server's own code and put in each fresh data dir before the
 * server starts, which then uses it as its own) with the test token file; the fuzz bodies come
 * as one of
 *
 * - an operator: a bearer token in group nodeplane:operators (per-call metadata, and the
 *   `authorization` header at the wire level) over TLS. Asserted: the suite's assertions only;
 * - a node: a client certificate CN=system:node:fuzz-seed-0, O=system:nodes signed by the
 *   cluster CA. Asserted besides (nodeOracle): every request about anything but its own Node
 *   and Lease is refused PERMISSION_DENIED, and one naming another node that exists gets the
 *   very answer the same request naming a node that does not exist gets;
 * - anonymous: TLS, no certificate, no token. Asserted besides (anonymousOracle): every call
 *   but the health probes is answered UNAUTHENTICATED, with the same message whatever the body;
 *   at the wire level (anonymousWireCheck), no gRPC status but UNAUTHENTICATED and no message.
 *
 * Seeding and probes go through an admin credential (system:masters) on a connection of their
 * own. Per-identity request rates are off (--max-requests-per-second-per-identity 0): the fuzz
 * sends thousands of calls a second, and a limit would answer nearly all of them
 * RESOURCE_EXHAUSTED before anything else looks at them; every other limit keeps its default.
 */
import * as grpc from "@grpc/grpc-js";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tlsCredentials } from "../../src/auth/client-credentials.js";
import { ensureServerPki, servingHosts } from "../../src/auth/pki-files.js";
import { PUBLIC_METHODS, RPC_TABLE } from "../../src/auth/rpc-table.js";
import { NodeServiceService } from "../../src/gen/nodeplane/v1/service.js";
import { clientCertificate, TOKENS, writeTokenFile } from "../support/auth.js";
import type { Case, Failure, Oracle } from "./campaign.js";
import { SEED_NODES } from "./rpcs.js";
import { FUZZ_CHANNEL_OPTIONS, type FuzzIdentity, type Outcome } from "./target.js";
import type { WireCheck } from "./wire-suite.js";

/** The node the node identity is: a seed node, so that its own Node and Lease exist. */
export const OWN_NODE = SEED_NODES[0];

export interface AuthIdentity {
  who: FuzzIdentity;
  /** What this identity's answers must satisfy beyond the suite's assertions: to bodies… */
  oracle?: Oracle;
  /** …and at the wire level. */
  wireCheck?: WireCheck;
}

export interface AuthIdentities {
  operator: AuthIdentity;
  node: AuthIdentity;
  anonymous: AuthIdentity;
  /** Removes the PKI and token file (servers are stopped by their targets). */
  close(): void;
}

interface Tls {
  ca: string;
  cert?: string;
  key?: string;
}

export async function authIdentities(): Promise<AuthIdentities> {
  const dir = mkdtempSync(join(tmpdir(), "nodeplane-fuzz-pki-"));
  const pkiDir = join(dir, "pki");
  // The names the server itself wants on its serving certificate for --listen 127.0.0.1: it
  // then keeps the one made here.
  const { pki } = await ensureServerPki(pkiDir, servingHosts(["127.0.0.1"], []), Date.now());
  const tokenFile = writeTokenFile(dir);
  // Valid for a week: a long run (NODEPLANE_FUZZ_ITERATIONS=50000) takes hours.
  const nodeCert = await clientCertificate(pki.issuer, `system:node:${OWN_NODE}`, ["system:nodes"], { notAfter: new Date(Date.now() + 7 * 24 * 3_600_000) });
  const serverArgs = ["--tls", "--token-auth-file", tokenFile, "--write-kubeconfig", "", "--max-requests-per-second-per-identity", "0"];
  const prepare = (dataDir: string): void => cpSync(pkiDir, join(dataDir, "pki"), { recursive: true });
  const admin = tlsIdentity("admin", { ca: pki.caPem, ...pki.admin }, serverArgs, prepare);
  const control = { openGrpc: admin.openGrpc, metadata: admin.metadata };
  return {
    operator: { who: { ...tlsIdentity("operator (token)", { ca: pki.caPem }, serverArgs, prepare, TOKENS.operator), control } },
    node: { who: { ...tlsIdentity(`node ${OWN_NODE} (client certificate)`, { ca: pki.caPem, ...nodeCert }, serverArgs, prepare), control }, oracle: nodeOracle(OWN_NODE) },
    anonymous: { who: { ...tlsIdentity("anonymous (authentication on)", { ca: pki.caPem }, serverArgs, prepare), control }, oracle: anonymousOracle, wireCheck: anonymousWireCheck },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function tlsIdentity(name: string, tls: Tls, serverArgs: string[], prepare: (dataDir: string) => void, token?: string): FuzzIdentity {
  return {
    name,
    serverArgs,
    prepare,
    openGrpc: (address) => new grpc.Client(address, tlsCredentials(tls), FUZZ_CHANNEL_OPTIONS),
    metadata: () => {
      const md = new grpc.Metadata();
      if (token) md.set("authorization", `Bearer ${token}`);
      return md;
    },
    openHttp2: (port) => http2.connect(`https://127.0.0.1:${port}`, tls),
    headers: () => (token ? { authorization: `Bearer ${token}` } : {}),
  };
}

const { status } = grpc;

/** Anonymous: every call but the health probes is refused UNAUTHENTICATED, always with the same message. */
const anonymousOracle: Oracle = (_target, rpc, cases, outcomes) => {
  if (PUBLIC_METHODS.has(rpc.path)) return Promise.resolve([]);
  const failures: Failure[] = [];
  let message: string | undefined;
  cases.forEach((c, i) => {
    const o = outcomes[i]!;
    if (o.code !== status.UNAUTHENTICATED) {
      failures.push({ what: `anonymous call answered ${status[o.code]}, not UNAUTHENTICATED`, example: c, detail: o.details });
    } else if ((message ??= o.details) !== o.details) {
      failures.push({ what: "UNAUTHENTICATED messages differ between bodies", example: c, detail: `${JSON.stringify(o.details)} vs ${JSON.stringify(message)}` });
    }
  });
  return Promise.resolve(failures);
};

/** Anonymous at the wire level: no stream but a health probe's is answered with anything but UNAUTHENTICATED. */
const anonymousWireCheck: WireCheck = (rpc, o) => {
  if (PUBLIC_METHODS.has(rpc.path)) return undefined;
  if (o.kind === "first message") return "anonymous stream answered with a message";
  if (o.kind === "status" && o.code !== status.UNAUTHENTICATED) return `anonymous call answered ${status[o.code]} ${o.details.slice(0, 120)}, not UNAUTHENTICATED`;
  return undefined;
};

/** Each NodeService method's request decoder: the server's own. */
const DECODERS = new Map<string, (b: Buffer) => Record<string, unknown>>(Object.values(NodeServiceService).map((d) => [d.path, d.requestDeserialize as (b: Buffer) => Record<string, unknown>]));

/** Seed nodes the node identity does not own, each with a name of the same length that never exists. */
const TWIN_NAMES: [string, string][] = SEED_NODES.filter((n) => n !== OWN_NODE).map((n, i) => [n, `fuzz-seed-${9 - i}`]);

/** Twin pairs replayed per batch (each costs two calls). */
const MAX_TWINS = 40;

/**
 * A node: whatever the body, a request the server can decode whose object (as the RPC table
 * reads it from the request: the node, the lease, the events' node, the name a list or watch is
 * pinned to — "" when unpinned) is not the node's own is refused PERMISSION_DENIED: never
 * NOT_FOUND, ALREADY_EXISTS, ABORTED, OK or a validation error, which would say something about
 * the stored object (Nodes may not read other Nodes here, unlike Kubernetes' kubelets, so a read
 * of another Node is covered too). And no leak in the message either: such a request naming a
 * node that exists (another seed node) is replayed together with its twin, the same bytes naming
 * a node that does not exist (same length, so the encoding stays valid); both answers must be
 * the same but for the name, and neither may change the store.
 */
function nodeOracle(own: string): Oracle {
  return async (target, rpc, cases, outcomes) => {
    const decode = DECODERS.get(rpc.path);
    const access = RPC_TABLE[rpc.path];
    if (!decode || !access) return []; // health, reflection: not about any node
    const failures: Failure[] = [];
    const twins: Case[] = [];
    cases.forEach((c, i) => {
      const subject = subjectOf(decode, access.name, c.body);
      if (subject === undefined || subject === own) return;
      const o = outcomes[i]!;
      if (o.code !== status.PERMISSION_DENIED) {
        const about = subject.length > 60 ? `${JSON.stringify(subject.slice(0, 60))}…` : JSON.stringify(subject);
        failures.push({ what: `a request about an object not the node's own answered ${status[o.code]}`, example: c, detail: `about ${about}: ${o.details}` });
      }
      if (twins.length < MAX_TWINS && hasTwin(c.body)) twins.push(c);
    });
    if (twins.length === 0) return failures;
    const before = await target.revision();
    for (const c of twins) {
      const existing = await target.call(rpc, c.body);
      const missing = await target.call(rpc, twinOf(c.body));
      const a = shown(existing);
      const b = untwin(shown(missing));
      if (a !== b) failures.push({ what: "an existing node's answer differs from a missing node's (a leak)", example: c, detail: `existing: ${a}\nmissing (names swapped back): ${b}` });
    }
    const after = await target.revision();
    if (after !== before) failures.push({ what: "store changed by requests about other nodes", example: twins[0]!, detail: `revision ${before} → ${after}` });
    return failures;
  };
}

/** The name the server authorizes `body` against, or undefined when it cannot decode it. */
function subjectOf(decode: (b: Buffer) => Record<string, unknown>, name: (req: Record<string, unknown>) => string, body: Uint8Array): string | undefined {
  try {
    return name(decode(Buffer.from(body)));
  } catch {
    return undefined;
  }
}

/** Names an existing other node, and no twin name already (which swapping back would confuse). */
const hasTwin = (body: Uint8Array): boolean => {
  const b = Buffer.from(body);
  return TWIN_NAMES.some(([n]) => b.includes(n)) && !TWIN_NAMES.some(([, t]) => b.includes(t));
};

function twinOf(body: Uint8Array): Uint8Array {
  const b = Buffer.from(body); // a copy
  for (const [name, twin] of TWIN_NAMES) {
    for (let at = b.indexOf(name); at >= 0; at = b.indexOf(name, at + name.length)) b.write(twin, at, "latin1");
  }
  return b;
}

const untwin = (text: string): string => TWIN_NAMES.reduce((t, [name, twin]) => t.replaceAll(twin, name), text);

const shown = (o: Outcome): string => `${status[o.code]} ${o.details}`;
