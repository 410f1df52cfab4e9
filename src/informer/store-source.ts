/**
 * A ListerWatcher over one key prefix of the Store: the server's informers (nodes, Leases, pod
 * CIDR blocks) read through it. Names are keys without the prefix; `decode` turns a stored value
 * into what the informer keeps (the whole object, or only the part its readers need).
 */
import { CompactedError, InvalidError } from "../errors.js";
import type { KeyValue, Store, WatchEvent } from "../store/store.js";
import type { FailureKind, ListerWatcher, ListPage, SourceChange, SourceItem, WatchBatch } from "./source.js";

export interface StoreSourceOptions<T> {
  store: Store;
  prefix: string;
  /** `previous`: the informer's object for the key's previous version (see SourceItem.decode). */
  decode: (kv: KeyValue, previous?: T) => T;
  /** Hand each watched change's stored bytes on to the informer's handlers (SourceItem.stored). */
  passStored?: boolean;
  /** Keys per store read (default 500); between reads the event loop answers calls. */
  pageSize?: number;
}

export function storeSource<T>(o: StoreSourceOptions<T>): ListerWatcher<T> {
  const nameOf = (key: string): string => key.slice(o.prefix.length);
  const item = (kv: KeyValue) => ({ name: nameOf(kv.key), revision: kv.modRevision, decode: (previous?: T) => o.decode(kv, previous) });
  // With `passStored`, a watched change carries its bytes on (see SourceItem.stored): their own
  // copy when they are a view into a larger buffer (an etcd watch response), so that a reader
  // keeping them does not keep the whole response.
  const watched = (kv: KeyValue) => {
    const it: SourceItem<T> = item(kv);
    if (o.passStored) it.stored = kv.value.byteLength === kv.value.buffer.byteLength ? kv.value : new Uint8Array(kv.value);
    return it;
  };
  return {
    async list(next: string | undefined): Promise<ListPage<T>> {
      const from = next === undefined ? undefined : parseNext(next);
      const page = await o.store.list(o.prefix, { revision: from?.revision, startAfter: from?.after, limit: o.pageSize ?? 500 });
      const last = page.kvs.at(-1)?.key;
      return {
        items: page.kvs.map(item),
        revision: page.revision,
        next: page.more && last !== undefined ? `${page.revision}:${last}` : undefined,
      };
    },

    watch(afterRevision: number, sink: (batch: WatchBatch<T>) => void, signal: AbortSignal): Promise<void> {
      const change = (ev: WatchEvent): SourceChange<T> =>
        ev.type === "put"
          ? { type: "put", ...watched(ev.kv) }
          : { type: "delete", name: nameOf(ev.kv.key), revision: ev.kv.modRevision };
      return new Promise<void>((resolve, reject) => {
        if (signal.aborted) return resolve();
        const watch = o.store.watch(o.prefix, afterRevision, {
          onEvents: (events) => {
            if (!signal.aborted) sink({ changes: events.map(change), revision: events.at(-1)!.kv.modRevision });
          },
          onProgress: (revision) => {
            if (!signal.aborted) sink({ changes: [], revision });
          },
          onError: reject,
        });
        signal.addEventListener(
          "abort",
          () => {
            watch.cancel();
            resolve();
          },
          { once: true },
        );
      });
    },

    classify(err: unknown): FailureKind {
      // Compacted past our revision, or a revision the store does not have (its data was replaced).
      return err instanceof CompactedError || err instanceof InvalidError ? "relist" : "retry";
    },
  };
}

function parseNext(next: string): { revision: number; after: string } {
  const colon = next.indexOf(":");
  return { revision: Number(next.slice(0, colon)), after: next.slice(colon + 1) };
}
