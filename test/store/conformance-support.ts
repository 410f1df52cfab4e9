/**
 * Helpers for the Store conformance suite: byte helpers, and a recording watch listener that
 * tests await (deferred promises, never sleeps).
 */
import { expect } from "vitest";
import type { KeyValue, Store, WatchEvent, WatchListener } from "../../src/store/store.js";

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (v: Uint8Array): string => new TextDecoder().decode(v);

/** Unconditional put; returns its revision. */
export async function put(store: Store, key: string, value: string): Promise<number> {
  const res = await store.txn({ compare: [], ops: [{ type: "put", key, value: bytes(value) }] });
  if (!res.succeeded) throw new Error(`unconditional put of ${key} failed`);
  return res.revision;
}

/** Unconditional delete; returns its revision. */
export async function del(store: Store, key: string): Promise<number> {
  const res = await store.txn({ compare: [], ops: [{ type: "delete", key }] });
  if (!res.succeeded) throw new Error(`unconditional delete of ${key} failed`);
  return res.revision;
}

/** A KeyValue as plain comparable data (values as text). */
export function plain(kv: KeyValue | undefined): { key: string; value: string; createRevision: number; modRevision: number } | undefined {
  return kv && { key: kv.key, value: text(kv.value), createRevision: kv.createRevision, modRevision: kv.modRevision };
}

/** An event as plain comparable data: type, key, value, revision, and prev's value/revision. */
function summary(e: WatchEvent): string {
  const prev = e.prev ? ` prev=${text(e.prev.value)}@${e.prev.modRevision}` : "";
  const value = e.type === "put" ? `=${text(e.kv.value)}` : "";
  return `${e.type} ${e.kv.key}${value}@${e.kv.modRevision}${prev}`;
}

const WAIT_MS = 10_000;

/**
 * Records what a watch delivers, and what it must not do: calls after onError, progress
 * below what was delivered, events out of order. Tests assert `problems` is empty.
 */
export class Recorder implements WatchListener {
  readonly events: WatchEvent[] = [];
  readonly progress: number[] = [];
  readonly problems: string[] = [];
  error: Error | undefined;
  /** The highest revision known to be fully delivered (by an event or by progress). */
  reached = 0;
  /** Set by tests to catch a call made while they are inside a store method. */
  forbidden = false;
  private waiters: { done(): boolean; resolve(): void }[] = [];

  onEvents(events: WatchEvent[]): void {
    this.check("onEvents");
    if (events.length === 0) this.problems.push("onEvents with no events");
    for (const e of events) {
      if (e.kv.modRevision < this.reached) this.problems.push(`event at ${e.kv.modRevision} after revision ${this.reached}`);
      this.reached = e.kv.modRevision;
      this.events.push(e);
    }
    this.wake();
  }

  onProgress(revision: number): void {
    this.check("onProgress");
    if (revision < this.reached) this.problems.push(`progress ${revision} after revision ${this.reached}`);
    this.reached = Math.max(this.reached, revision);
    this.progress.push(revision);
    this.wake();
  }

  onError(err: Error): void {
    this.check("onError");
    this.error = err;
    this.wake();
  }

  /** Resolves once everything up to `revision` has been delivered; rejects if the watch ends first. */
  untilRevision(revision: number): Promise<void> {
    return this.until(`revision ${revision}`, () => this.reached >= revision);
  }

  /** Resolves with the error that ended the watch. */
  async ended(): Promise<Error> {
    await this.until("the watch to end", () => this.error !== undefined, true);
    return this.error!;
  }

  /** Event summaries (see `summary`). */
  get summaries(): string[] {
    return this.events.map(summary);
  }

  expectClean(): void {
    expect(this.problems).toEqual([]);
  }

  private until(what: string, done: () => boolean, errorIsTheGoal = false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`timed out waiting for ${what}; reached ${this.reached}, ${this.events.length} events`));
      }, WAIT_MS);
      const waiter = {
        done: () => {
          if (!errorIsTheGoal && this.error && !done()) {
            reject(new Error(`watch ended before ${what}: ${this.error.message}`));
            return true;
          }
          return done();
        },
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      if (waiter.done()) waiter.resolve();
      else this.waiters.push(waiter);
    });
  }

  private check(call: string): void {
    if (this.error) this.problems.push(`${call} after onError`);
    if (this.forbidden) this.problems.push(`${call} called synchronously inside a store call`);
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.done()) return true;
      w.resolve();
      return false;
    });
  }
}
