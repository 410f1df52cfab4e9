/**
 * EtcdStore: the conformance suite on a real etcd (one member for the whole file, a fresh
 * etcd prefix per test), plus what only etcd shows.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { EtcdStore } from "../../src/store/etcd.js";
import { type EtcdCluster, startEtcd } from "../support/etcd.js";
import { describeStoreConformance, type StoreFactory } from "./conformance.js";

let etcd: EtcdCluster | undefined;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

/** A prefix no other test uses; all of one length, so that none is a prefix of another. */
function freshPrefix(): string {
  return `/np-test-${randomBytes(6).toString("hex")}`;
}

function etcdFactory(): StoreFactory {
  let prefix = "";
  return {
    open: () => EtcdStore.open({ endpoints: etcd!.endpoints, prefix: (prefix = freshPrefix()) }),
    reopen: () => EtcdStore.open({ endpoints: etcd!.endpoints, prefix }),
    cleanup: async () => {},
  };
}

describeStoreConformance("etcd", etcdFactory());
