/**
 * The Store conformance suite: one suite, written only against the Store interface
 * (src/store/store.ts), that every backend runs unchanged (kine runs Kubernetes' storage
 * tests against each driver the same way).
 *
 *   describeStoreConformance("sqlite", { open, reopen, cleanup });
 *
 * Each test opens a store, works under a key prefix of its own, closes the store and calls
 * `cleanup`. Tests assume no one else writes the store while they run (they compare
 * revisions), but not that it starts empty or at any particular revision. They wait on
 * delivered events and resolved promises, never on time.
 */
import { afterEach, beforeEach, describe } from "vitest";
import type { Store } from "../../src/store/store.js";
import { describeCompact } from "./conformance-compact.js";
import { describeTxn } from "./conformance-kv.js";
import { describeLife } from "./conformance-life.js";
import { describeList } from "./conformance-list.js";
import { describeWatch } from "./conformance-watch.js";

export interface StoreFactory {
  /** A store for one test. It may hold other data, but no one else writes it during the test. */
  open(): Promise<Store>;
  /** The same data again, after the test closed the store `open()` returned. */
  reopen?(): Promise<Store>;
  /** Release everything opened since the last cleanup (the test has closed its store). */
  cleanup(): Promise<void>;
}

let suiteRun = 0;

/** The store under test and a key prefix no other test uses. */
export class Harness {
  private current: Store | undefined;
  prefix = "";

  constructor(private readonly factory: StoreFactory) {
    beforeEach(async () => {
      this.current = await factory.open();
      this.prefix = `/conformance/${++suiteRun}-${Math.random().toString(36).slice(2, 8)}/`;
    });
    afterEach(async () => {
      await this.current?.close();
      this.current = undefined;
      await factory.cleanup();
    });
  }

  get store(): Store {
    if (!this.current) throw new Error("no store is open");
    return this.current;
  }

  get canReopen(): boolean {
    return this.factory.reopen !== undefined;
  }

  /** Close the store and open it again over the same data. */
  async reopen(): Promise<Store> {
    await this.store.close();
    this.current = undefined;
    this.current = await this.factory.reopen!();
    return this.current;
  }

  key(name: string): string {
    return this.prefix + name;
  }
}

export function describeStoreConformance(name: string, factory: StoreFactory): void {
  describe(`Store conformance: ${name}`, () => {
    const h = new Harness(factory);
    describeTxn(h);
    describeList(h);
    describeWatch(h);
    describeCompact(h);
    describeLife(h);
  });
}
