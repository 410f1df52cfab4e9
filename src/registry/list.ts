/**
 * ListNodes and ListLeases: selectors applied server-side, pages of `limit` matching objects,
 * every page read at the first page's revision (a continue token whose revision was compacted
 * fails with CompactedError, which the transport answers OUT_OF_RANGE).
 *
 * Every answer fits in one message (`maxMessageBytes`, the server's --max-message-size):
 * - a page (`limit` > 0) ends early, with a continue token, when the next object would not fit
 *   (Kubernetes allows fewer than `limit` items per page; a client follows the token as always);
 * - an unpaged list (`limit` 0: everything in one answer) that would not fit is refused with
 *   RESOURCE_EXHAUSTED naming its size and the limit, instead of a transport failure;
 * - a stored node too large to answer whole is answered as a stand-in (src/registry/size.ts).
 */
import type { Node } from "../gen/nodeplane/v1/node.js";
import type { KeyValue, Store } from "../store/store.js";
import { InvalidError, ResourceExhaustedError } from "../errors.js";
import type { Lease } from "../gen/nodeplane/v1/lease.js";
import { decodeLease, decodeNode } from "../model/codec.js";
import { formatRevision } from "../model/revision.js";
import { LEASE_PREFIX, NODE_PREFIX } from "../model/keys.js";
import { compileFilter } from "../model/filter.js";
import { decodeContinue, encodeContinue } from "./paging.js";
import { answerLimitFor, standIn } from "./size.js";

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
/** Room in a list answer for its resource_version and continue token (a key is at most ~270 bytes). */
const LIST_RESERVE_BYTES = 4096;
/** What one object adds to a list answer beyond its stored bytes: its resource_version, tag and length. */
const PER_ITEM_BYTES = 32;
/** What a stand-in adds (its identity and the annotation saying why). */
const STAND_IN_BYTES = 1024;

function checkLimit(limit: number): void {
  if (limit < 0 || !Number.isInteger(limit)) {
    throw InvalidError.of("limit", String(limit), "must be 0 (no limit) or a positive number");
  }
}

function tooLarge(what: string, count: number, bytes: number, maxMessageBytes: number): ResourceExhaustedError {
  return new ResourceExhaustedError(
    `${what} without a limit would answer ${count} objects in about ${bytes} bytes, more than the largest message of ${maxMessageBytes} bytes ` +
      "(--max-message-size): use limit (e.g. 500) and continue_token to page",
  );
}

export async function listNodes(store: Store, req: ListNodesRequest, maxMessageBytes: number): Promise<ListNodesResult> {
  checkLimit(req.limit);
  const filter = compileFilter(req.labelSelector, req.fieldSelector);
  const start = req.continueToken ? decodeContinue(req.continueToken) : undefined;
  const budget = maxMessageBytes - LIST_RESERVE_BYTES;
  const answerLimit = answerLimitFor(maxMessageBytes);
  let revision = start?.revision;
  let after = start?.after;
  const nodes: Node[] = [];
  let bytes = 0;
  const want = req.limit;
  for (;;) {
    const chunk = want === 0 ? 0 : Math.max(CHUNK, want - nodes.length);
    const page = await store.list(NODE_PREFIX, { revision, startAfter: after, limit: chunk });
    revision = page.revision;
    for (let i = 0; i < page.kvs.length; i++) {
      const kv = page.kvs[i]!;
      const node = decodeNode(kv);
      if (filter.matches(node)) {
        const fits = kv.value.length <= answerLimit;
        const size = fits ? kv.value.length + PER_ITEM_BYTES : STAND_IN_BYTES;
        if (bytes + size > budget) {
          if (want === 0) {
            const rest = page.kvs.slice(i).filter((k) => filter.everything || filter.matches(decodeNode(k)));
            throw tooLarge("ListNodes", nodes.length + rest.length, bytes + rest.reduce((n, k) => n + k.value.length + PER_ITEM_BYTES, 0), maxMessageBytes);
          }
          // The page is full before `limit`: the next page starts with this node.
          return { nodes, resourceVersion: formatRevision(revision), continueToken: encodeContinue({ revision, after: after! }) };
        }
        nodes.push(fits ? node : standIn(node, kv.value.length, answerLimit));
        bytes += size;
      }
      after = kv.key;
      if (want > 0 && nodes.length === want) {
        const rest = page.kvs.slice(i + 1);
        const more = page.more || (filter.everything ? rest.length > 0 : rest.some((k) => filter.matches(decodeNode(k))));
        return { nodes, resourceVersion: formatRevision(revision), continueToken: more ? encodeContinue({ revision, after }) : "" };
      }
    }
    if (!page.more) return { nodes, resourceVersion: formatRevision(revision), continueToken: "" };
  }
}

/** ListLeases: every node's Lease in pages at one revision (no selectors), within one message as above. */
export async function listLeases(
  store: Store,
  req: { limit: number; continueToken: string },
  maxMessageBytes: number,
): Promise<{ leases: Lease[]; resourceVersion: string; continueToken: string }> {
  checkLimit(req.limit);
  const start = req.continueToken ? decodeContinue(req.continueToken) : undefined;
  const page = await store.list(LEASE_PREFIX, { revision: start?.revision, startAfter: start?.after, limit: req.limit });
  const budget = maxMessageBytes - LIST_RESERVE_BYTES;
  let kvs: KeyValue[] = page.kvs;
  let more = page.more;
  let bytes = 0;
  for (let i = 0; i < kvs.length; i++) {
    bytes += kvs[i]!.value.length + PER_ITEM_BYTES;
    if (bytes <= budget) continue;
    if (req.limit === 0) throw tooLarge("ListLeases", kvs.length, kvs.reduce((n, k) => n + k.value.length + PER_ITEM_BYTES, 0), maxMessageBytes);
    kvs = kvs.slice(0, Math.max(i, 1));
    more = true;
    break;
  }
  const last = kvs.at(-1)?.key;
  return {
    leases: kvs.map(decodeLease),
    resourceVersion: formatRevision(page.revision),
    continueToken: more && last ? encodeContinue({ revision: page.revision, after: last }) : "",
  };
}
