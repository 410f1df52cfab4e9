/**
 * Every key under a prefix, a page at a time (each page one Store.list of at most `limit` keys,
 * the next starting after the last key of the one before), for readers that walk a whole kind:
 * bootstrap tokens, events, the watch cache's list, the stored Leases at start.
 */
import type { ListResult, Store } from "./store.js";

export interface PagesOptions {
  /** Keys per read. */
  limit: number;
  /** Read every page at this revision (absent: the first page at the current one). */
  revision?: number;
  /** Read the pages after the first at the first page's revision: one consistent snapshot. */
  pinned?: boolean;
}

export async function* pages(store: Store, prefix: string, opts: PagesOptions): AsyncGenerator<ListResult> {
  let revision = opts.revision;
  let after: string | undefined;
  for (;;) {
    const page = await store.list(prefix, { revision, startAfter: after, limit: opts.limit });
    if (opts.pinned) revision = page.revision;
    yield page;
    const last = page.kvs.at(-1);
    if (!page.more || !last) return;
    after = last.key;
  }
}
