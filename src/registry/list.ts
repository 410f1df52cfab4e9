/**
 * ListNodes: selectors applied server-side, pages of `limit` matching nodes, every page read
 * at the first page's revision (a continue token whose revision was compacted fails with
 * CompactedError, which the transport answers OUT_OF_RANGE).
 */
import type { Node } from "../gen/nodeplane/v1/node.js";
import type { Store } from "../store/store.js";
import { InvalidError } from "../errors.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import { decodeLease, decodeNode } from "../model/codec.js";
import { formatRevision } from "../model/revision.js";
import { LEASE_PREFIX, NODE_PREFIX } from "../model/keys.js";
import { compileFilter } from "../model/filter.js";
import { decodeContinue, encodeContinue } from "./paging.js";

export interface ListNodesRequest {
  labelSelector: string;
  fieldSelector: string;
  limit: number;
  continueToken: string;
}

export interface ListNodesResult {
  nodes: Node[];
  resourceVersion: string;
  continueToken: string;
}

/** How many keys one store read covers while filling a page. */
const CHUNK = 500;

export async function listNodes(store: Store, req: ListNodesRequest): Promise<ListNodesResult> {
  if (req.limit < 0 || !Number.isInteger(req.limit)) {
    throw InvalidError.of("limit", String(req.limit), "must be 0 (no limit) or a positive number");
  }
  const filter = compileFilter(req.labelSelector, req.fieldSelector);
  const start = req.continueToken ? decodeContinue(req.continueToken) : undefined;
  let revision = start?.revision;
  let after = start?.after;
  const nodes: Node[] = [];
  const want = req.limit;
  for (;;) {
    const chunk = want === 0 ? 0 : Math.max(CHUNK, want - nodes.length);
    const page = await store.list(NODE_PREFIX, { revision, startAfter: after, limit: chunk });
    revision = page.revision;
    for (let i = 0; i < page.kvs.length; i++) {
      const kv = page.kvs[i]!;
      after = kv.key;
      const node = decodeNode(kv);
      if (!filter.matches(node)) continue;
      nodes.push(node);
      if (want > 0 && nodes.length === want) {
        const rest = page.kvs.slice(i + 1);
        const more = page.more || (filter.everything ? rest.length > 0 : rest.some((k) => filter.matches(decodeNode(k))));
        return { nodes, resourceVersion: formatRevision(revision), continueToken: more ? encodeContinue({ revision, after }) : "" };
      }
    }
    if (!page.more) return { nodes, resourceVersion: formatRevision(revision), continueToken: "" };
  }
}

/** ListLeases: every node's Lease in pages at one revision (no selectors). */
export async function listLeases(
  store: Store,
  req: { limit: number; continueToken: string },
): Promise<{ leases: Lease[]; resourceVersion: string; continueToken: string }> {
  if (req.limit < 0 || !Number.isInteger(req.limit)) {
    throw InvalidError.of("limit", String(req.limit), "must be 0 (no limit) or a positive number");
  }
  const start = req.continueToken ? decodeContinue(req.continueToken) : undefined;
  const page = await store.list(LEASE_PREFIX, { revision: start?.revision, startAfter: start?.after, limit: req.limit });
  const last = page.kvs.at(-1)?.key;
  return {
    leases: page.kvs.map(decodeLease),
    resourceVersion: formatRevision(page.revision),
    continueToken: page.more && last ? encodeContinue({ revision: page.revision, after: last }) : "",
  };
}
