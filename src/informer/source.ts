/**
 * What a Reflector reads from: a ListerWatcher lists the objects of one kind at one revision, in
 * pages, and watches the changes after a revision (client-go's ListerWatcher). Two exist: over
 * the Store, in the server (store-source.ts), and over gRPC, in the SDK (src/client/informer.ts).
 *
 * Items carry their own revision (the revision of their last change) and decode lazily, so a
 * relist can keep the objects it already holds at the same revision without decoding them again.
 */

/** One object of a list page or a watch event. */
export interface SourceItem<T> {
  name: string;
  /** The revision of the object's last change. */
  revision: number;
  /** `previous`: the reader's object for the name's previous version, for a decoder that shares its unchanged parts. */
  decode(previous?: T): T;
  /**
   * The object's bytes as stored, when the source has them (the Store's; not the SDK's). Handed
   * to handlers with a watched change only, for a reader that sends the object on as it is (the
   * watch cache, until it has sent it); the informer keeps none.
   */
  stored?: Uint8Array;
}

export interface ListPage<T> {
  items: SourceItem<T>[];
  /** The revision every page of this list is consistent with. */
  revision: number;
  /** Pass to the next list call for the next page; undefined on the last one. */
  next?: string;
}

export type SourceChange<T> =
  | ({ type: "put" } & SourceItem<T>)
  /** `last` is the object's last state as the source reports it, if it does. */
  | { type: "delete"; name: string; revision: number; last?: T };

/** Changes in revision order; `revision` is how far the source vouches the batch reaches (≥ its last change). */
export interface WatchBatch<T> {
  changes: SourceChange<T>[];
  revision: number;
}

/** Why a list or watch failed, as far as the reflector cares. */
export type FailureKind =
  /** The revision is no longer (or not yet) served: list again before watching. */
  | "relist"
  /** Anything else: wait, then watch again from the last revision applied. */
  | "retry";

export interface ListerWatcher<T> {
  /** One page; `next` from the previous page, undefined for the first. */
  list(next: string | undefined, signal: AbortSignal): Promise<ListPage<T>>;
  /**
   * Hand `sink` every change after `afterRevision`, in order, none twice, as it arrives (a store
   * watch calls it in the same turn as the commit it reports: readers see a write before the
   * writer's answer). Rejects when the watch fails; resolves when the source ends it cleanly or
   * the signal aborts (then `sink` is not called again).
   */
  watch(afterRevision: number, sink: (batch: WatchBatch<T>) => void, signal: AbortSignal): Promise<void>;
  classify(err: unknown): FailureKind;
}
