/**
 * Releasing the node lease when a run ends, or when a started compactor stops, while a renewal
 * is still in flight. On PostgreSQL the two calls run on different connections and the renewal
 * can land second: it took the lease again, and the node stayed busy for a whole ttl after the
 * run (seen in test/compaction/fencing.test.ts under load: the next compactor of the node was
 * refused with ERR_METADATA_NODE_BUSY). Here a real SQLite store's renewal is held at the store's
 * door until the release was asked for, which is the order PostgreSQL can produce.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { holdRunLease, LeaseKeeper, type LeaseRequest } from '../../src/compactor/node-lease.js';
import { SqliteMetadataStore } from '../../src/metadata/index.js';
import type { MetadataStore } from '../../src/metadata/types.js';
import { deferred, withDeadline } from '../../src/util/async.js';

const log = pino({ level: 'silent' });
const req: LeaseRequest = { nodeId: 1, holder: 'compactor A', ttlMs: 600, preemptAdopter: true };
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** A real store whose renewals (every acquire after the first) wait at its door until `open()`; `entered` settles when one is waiting. */
async function heldStore() {
  const dir = mkdtempSync(join(tmpdir(), 's3sc-lease-'));
  const store = new SqliteMetadataStore({ path: join(dir, 'm.db') });
  cleanup = async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  const door = deferred<void>();
  const entered = deferred<void>();
  let calls = 0;
  const held: MetadataStore = Object.assign(Object.create(store) as MetadataStore, {
    acquireNodeLease: async (r: Parameters<NonNullable<MetadataStore['acquireNodeLease']>>[0]) => {
      if (++calls > 1) {
        entered.resolve();
        await door.promise;
      }
      return store.acquireNodeLease(r);
    },
  });
  return { store, held, entered: entered.promise, open: () => door.resolve() };
}

describe('node lease release with a renewal in flight', () => {
  it('regression: a run lease renewed while the run ends is released after that renewal, and the node is free', async () => {
    const { store, held, entered, open } = await heldStore();
    const lease = await holdRunLease(held, req, new AbortController(), log, new LeaseKeeper(held, req, log));
    await withDeadline(entered, 5_000, 'a renewal to reach the store');
    const stopped = lease!.stop();
    open();
    await withDeadline(stopped, 5_000, 'the lease to be released');
    await expect(store.acquireNodeLease({ nodeId: 1, holder: 'compactor B', ttlMs: 60_000 })).resolves.toBeUndefined();
  });

  it('regression: a started compactor that stops with a renewal in flight leaves the node free', async () => {
    const { store, held, entered, open } = await heldStore();
    await store.acquireNodeLease(req);
    const keeper = new LeaseKeeper(held, req, log);
    keeper.start();
    await withDeadline(entered, 5_000, 'a renewal to reach the store');
    const stopped = keeper.stop();
    open();
    await withDeadline(stopped, 5_000, 'the lease to be released');
    await expect(store.acquireNodeLease({ nodeId: 1, holder: 'compactor B', ttlMs: 60_000 })).resolves.toBeUndefined();
  });
});
