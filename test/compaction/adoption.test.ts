/**
 * Adoption (issue #12, opt-in `adoptExpiredNodes`) on PostgreSQL: a node stops renewing its
 * lease; another node's compactor adopts it and compacts its SSOs under the dead node's id
 * (orderId and data time kept); the home node comes back, takes its lease and its id back, and
 * the adopter's run of it in flight is fenced and cleans up after itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filter, firstValueFrom } from 'rxjs';
import { Compactor } from '../../src/compactor/compactor.js';
import type { CompactorEvent } from '../../src/compactor/events.js';
import { collectGarbage } from '../../src/compactor/gc.js';
import { parseObjectKey } from '../../src/format/index.js';
import type { StreamRecord } from '../../src/format/types.js';
import { readStream } from '../../src/ingest/read-stream.js';
import { uploadStreamSetObject } from '../../src/ingest/upload-sso.js';
import { PostgresMetadataStore } from '../../src/metadata/index.js';
import type { S3Storage } from '../../src/storage/s3-storage.js';
import { makeBucket, makeStorage, s3Endpoint } from '../support/env.js';
import { fault, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../support/pg.js';
import { collect, makeRecords, plain } from '../support/records.js';

const STREAMS = [1, 2, 3, 4];

describe.skipIf(!pgAvailable)('adoption of an expired node', () => {
  let db: TestDatabase;
  let store: PostgresMetadataStore;
  let storage: S3Storage;
  let slow: S3Storage;
  let proxy: FaultProxy;
  const written = new Map<number, StreamRecord[]>(STREAMS.map((s) => [s, []]));
  const next = new Map<number, number>(STREAMS.map((s) => [s, 0]));

  beforeAll(async () => {
    db = await createTestDatabase('adopt');
    store = await PostgresMetadataStore.open({ connectionString: db.url, graceMs: 0 });
    storage = await makeBucket('adopt');
    proxy = await startFaultProxy(s3Endpoint());
    slow = makeStorage(storage.bucket, { endpoint: proxy.url, requestTimeoutMs: 10_000 });
    for (const s of STREAMS) await store.createStream({ streamId: s, epoch: 0, startOffset: 0 });
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    storage?.close();
    slow?.close();
    await proxy?.close();
    await db?.drop();
  });

  async function ingest(nodeId: number, i: number): Promise<void> {
    const records = STREAMS.flatMap((s) => {
      const base = next.get(s)!;
      const recs = makeRecords(s, base, 3, 3, 2000 + ((i + s) % 4) * 900);
      next.set(s, base + 9);
      written.get(s)!.push(...recs);
      return recs;
    });
    await uploadStreamSetObject({ storage, metadata: store, nodeId, records, blockSize: 4096, dataTimeMs: Date.now() - (100 - i) * 1000 });
  }

  it('adopts, compacts under the dead id keeping orderId and data time, then yields to the returning home node', async () => {
    for (let i = 0; i < 4; i++) await ingest(1, i);
    for (let i = 4; i < 6; i++) await ingest(2, i);
    // Node 1's compactor held its lease, then died: the lease is never renewed.
    await store.acquireNodeLease({ nodeId: 1, holder: 'home of node 1 (dead)', ttlMs: 300 });
    const deadline = Date.now() + 10_000;
    while (!(await store.listExpiredNodes({ excludeNodeId: 2 })).includes(1)) {
      expect(Date.now(), 'the dead lease never expired').toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 75));
    }
    const before = await store.listStreamSetObjects({ nodeId: 1 });
    expect(before).toHaveLength(4);

    const adopter = new Compactor({ storage: slow, metadata: store, nodeId: 2, adoptExpiredNodes: true, streamSplitSize: 1024 * 1024, retryBaseDelayMs: 5 });
    const events: CompactorEvent[] = [];
    adopter.events$.subscribe((e) => events.push(e));
    try {
      expect((await adopter.compactOnce()).committed).toBe(true);
      const adopted = await adopter.adoptOnce();
      expect(adopted).toMatchObject({ nodeId: 1, committed: true });
      expect([...adopted!.compactedObjectIds].sort((a, b) => a - b)).toEqual(before.map((o) => o.objectId).sort((a, b) => a - b));
      const merged = await store.listStreamSetObjects({ nodeId: 1 });
      expect(merged).toHaveLength(1);
      expect(merged[0]).toMatchObject({
        objectId: adopted!.newObjectId,
        orderId: Math.min(...before.map((o) => o.orderId)),
        dataTimeMs: Math.min(...before.map((o) => o.dataTimeMs)),
      });
      // While the adopter has it, node 1 is not expired: no second adopter takes it.
      expect(await store.listExpiredNodes({ excludeNodeId: 3 })).not.toContain(1);

      // The home node comes back (its WAL goes on) while the adopter's next run of it is in flight.
      for (let i = 6; i < 9; i++) await ingest(1, i);
      proxy.addRule({ op: ['PutObject', 'CompleteMultipartUpload'], times: Infinity, action: fault.delay(1_500) });
      const planned = firstValueFrom(adopter.events$.pipe(filter((e) => e.type === 'run.planned')));
      const adoptRun = adopter.adoptOnce();
      await planned;
      // Scheduled, as a node's compactor runs: it holds its lease while it lives.
      const home = new Compactor({ storage, metadata: store, nodeId: 1, streamSplitSize: 1024 * 1024, retryBaseDelayMs: 5, interval: 3_600_000 });
      try {
        const committed = firstValueFrom(home.events$.pipe(filter((e) => e.type === 'run.committed' || e.type === 'run.failed')));
        home.start();
        expect((await committed).type).toBe('run.committed');
        expect(await adoptRun).toBeUndefined();
        const fenced = events.filter((e): e is Extract<CompactorEvent, { type: 'run.failed' }> => e.type === 'run.failed');
        expect(fenced.map((e) => e.error.code)).toEqual(['ERR_METADATA_FENCED']);
        proxy.clear();
        // The adoption is over, and node 1 is alive again: nothing to adopt.
        expect(await adopter.adoptOnce()).toBeUndefined();
      } finally {
        await home.close();
      }
    } finally {
      await adopter.close();
    }

    // Nothing of the fenced run stayed; every record reads back; node 1's data stayed node 1's.
    await collectGarbage(storage, store, { safetyAgeMs: 0, force: true });
    for (const o of await storage.listObjects()) expect(await store.isObjectKnown(parseObjectKey(o.key)!.objectId), o.key).toBe(true);
    for (const s of STREAMS) expect((await collect(readStream({ storage, metadata: store, streamId: s }))).map(plain), `stream ${s}`).toEqual(written.get(s)!.map(plain));
    expect((await store.listStreamSetObjects({ nodeId: 1 })).length).toBe(1);
  }, 120_000);
});
