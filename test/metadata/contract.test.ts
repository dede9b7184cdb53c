/**
 * The MetadataStore contract, one suite for every store (issue #12): SQLite (a file, two
 * connections to it for the concurrency cases), the same on a thread of its own, and
 * PostgreSQL (a fresh database on the run's server, two pools). Clocks are real: due times are compared with bounds, never set by hand.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { PostgresMetadataStore, SqliteMetadataStore, SqliteThreadStore, type MetadataStore, type StreamRange } from '../../src/metadata/index.js';
import { createTestDatabase, pgAvailable, pgSkipReason, type TestDatabase } from '../support/pg.js';
import { tempDir } from './helpers.js';

const GRACE = 60_000;

interface Kind {
  name: string;
  available: boolean;
  /** A fresh, empty store and a way to open another connection to the same data. */
  fresh(): Promise<{ store: MetadataStore; another(): Promise<MetadataStore>; done(): Promise<void> }>;
}

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
});

/** A kind whose connections `connect` opens to a fresh place (a file, a database) that `drop` removes. */
function kind(name: string, available: boolean, place: () => Promise<{ connect(): Promise<MetadataStore>; drop(): void }>): Kind {
  return {
    name,
    available,
    async fresh() {
      const { connect, drop } = await place();
      const opened: MetadataStore[] = [];
      const open = async () => {
        const s = await connect();
        opened.push(s);
        return s;
      };
      return {
        store: await open(),
        another: open,
        async done() {
          for (const s of opened) await s.close();
          drop();
        },
      };
    },
  };
}

/** A SQLite file in a fresh folder. */
const sqliteFile = (connect: (path: string) => Promise<MetadataStore>) => async () => {
  const { dir, cleanup } = tempDir();
  const path = join(dir, 'meta.db');
  return { connect: () => connect(path), drop: cleanup };
};

const kinds: Kind[] = [
  kind('SQLite', true, sqliteFile(async (path) => new SqliteMetadataStore({ path, graceMs: GRACE }))),
  kind('SQLite on its own thread', true, sqliteFile((path) => SqliteThreadStore.open({ path, graceMs: GRACE }))),
  kind('PostgreSQL', pgAvailable, async () => {
    const db = await createTestDatabase('contract');
    databases.push(db);
    return { connect: () => PostgresMetadataStore.open({ connectionString: db.url, graceMs: GRACE }), drop: () => {} };
  }),
];

if (!pgAvailable) console.warn(`[contract.test] PostgreSQL cases SKIPPED: ${pgSkipReason}`);

const r = (streamId: number, startOffset: number, endOffset: number): StreamRange => ({ streamId, startOffset, endOffset });

for (const kind of kinds) {
  describe.skipIf(!kind.available)(`MetadataStore contract: ${kind.name}`, () => {
    let store: MetadataStore;
    let another: () => Promise<MetadataStore>;
    let done: () => Promise<void>;
    beforeEach(async () => {
      ({ store, another, done } = await kind.fresh());
      for (const streamId of [1, 2, 3]) await store.createStream({ streamId, epoch: 0, startOffset: 0 });
    });
    afterEach(async () => done());

    const ingest = async (s: MetadataStore, ranges: StreamRange[], nodeId = 1) => {
      const objectId = await s.prepareObjectIds(1);
      await s.commitStreamSetObject({ nodeId, objectId, objectSize: 100, streamRanges: ranges, streamObjects: [], compactedObjectIds: [] });
      return objectId;
    };

    it('streams: create, get, trim, close, delete; typed errors for an existing or a missing stream', async () => {
      expect(await store.getStreams([2, 1, 2, 99])).toEqual([
        { streamId: 2, epoch: 0, startOffset: 0, endOffset: 0, state: 'opened' },
        { streamId: 1, epoch: 0, startOffset: 0, endOffset: 0, state: 'opened' },
      ]);
      await expect(store.createStream({ streamId: 1, epoch: 0, startOffset: 0 })).rejects.toMatchObject({ code: 'ERR_METADATA_STREAM_EXISTS' });
      await expect(store.trimStream(99, 5)).rejects.toMatchObject({ code: 'ERR_METADATA_STREAM_NOT_FOUND' });
      await ingest(store, [r(1, 0, 10)]);
      await store.trimStream(1, 4);
      await store.trimStream(1, 2); // never backwards
      await store.closeStream(2);
      await store.deleteStream(3);
      await store.deleteStream(3);
      expect(await store.listStreams!()).toEqual([
        { streamId: 1, epoch: 0, startOffset: 4, endOffset: 10, state: 'opened' },
        { streamId: 2, epoch: 0, startOffset: 0, endOffset: 0, state: 'closed' },
        { streamId: 3, epoch: 0, startOffset: 0, endOffset: 0, state: 'deleted' },
      ]);
      // Trimming past the end moves the end along.
      await store.trimStream(1, 20);
      expect((await store.getStreams([1]))[0]).toMatchObject({ startOffset: 20, endOffset: 20 });
    });

    it('object ids: consecutive, and disjoint across two connections preparing at once', async () => {
      const first = await store.prepareObjectIds(3);
      expect(await store.prepareObjectIds(1)).toBe(first + 3);
      const other = await another();
      const got = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).prepareObjectIds(5)));
      const ids = got.flatMap((f) => [f, f + 1, f + 2, f + 3, f + 4]);
      expect(new Set(ids).size).toBe(100);
      expect(Math.min(...got)).toBeGreaterThan(first + 3);
    });

    it('fresh SSOs: orderId = objectId, stream ends advance, listed by node and by stream, with or without ranges', async () => {
      const a = await ingest(store, [r(2, 0, 5), r(1, 0, 5)]);
      const b = await ingest(store, [r(2, 5, 9), r(3, 0, 4)], 2);
      const c = await ingest(store, [r(3, 4, 8)]);
      const node1 = await store.listStreamSetObjects({ nodeId: 1 });
      expect(node1.map((o) => [o.objectId, o.orderId])).toEqual([
        [a, a],
        [c, c],
      ]);
      expect(node1[0]!.ranges).toEqual([r(1, 0, 5), r(2, 0, 5)]);
      expect((await store.listStreamSetObjects({ streamId: 3 })).map((o) => o.objectId)).toEqual([b, c]);
      expect((await store.listStreamSetObjects({ nodeId: 2, streamId: 2 })).map((o) => o.objectId)).toEqual([b]);
      expect((await store.listStreamSetObjects({ nodeId: 1, withRanges: false })).map((o) => o.objectId)).toEqual([a, c]);
      expect((await store.getStreams([1, 2, 3])).map((s) => s.endOffset)).toEqual([5, 9, 8]);
      expect((await store.getStreamsOfNode!(2)).map((s) => s.streamId)).toEqual([2, 3]);
      // By object, a slice at a time (optional; the SQLite store has it, as its loads block the host's thread).
      if (kind.name === 'SQLite') expect(store.listSsoRanges).toBeTypeOf('function');
      if (store.listSsoRanges) {
        const byId = await store.listSsoRanges([c, a, 999_999]);
        expect([...byId.keys()]).toEqual([c, a]);
        expect(byId.get(a)).toEqual(node1[0]!.ranges);
        expect(byId.get(c)).toEqual([r(3, 4, 8)]);
        await expect(store.listSsoRanges([-1])).rejects.toMatchObject({ name: 'OptionsError' });
      }
    });

    it('a compaction: the new SSO inherits the oldest orderId and data time; the compacted wait out the grace period', async () => {
      const a = await ingest(store, [r(1, 0, 5), r(2, 0, 5)]);
      const b = await ingest(store, [r(1, 5, 9), r(2, 5, 7)]);
      const [sa, sb] = await store.listStreamSetObjects({ nodeId: 1 });
      const before = Date.now();
      const id = await store.prepareObjectIds(2);
      await store.commitStreamSetObject({
        nodeId: 1,
        objectId: id,
        objectSize: 150,
        streamRanges: [r(2, 0, 7)],
        streamObjects: [{ objectId: id + 1, streamId: 1, startOffset: 0, endOffset: 9, objectSize: 60 }],
        compactedObjectIds: [a, b],
      });
      const [merged] = await store.listStreamSetObjects({ nodeId: 1 });
      expect(merged).toMatchObject({ objectId: id, orderId: a, dataTimeMs: Math.min(sa!.dataTimeMs, sb!.dataTimeMs), ranges: [r(2, 0, 7)] });
      expect(await store.listStreamObjects({ streamId: 1 })).toEqual([{ objectId: id + 1, streamId: 1, startOffset: 0, endOffset: 9, objectSize: 60, dataTimeMs: sa!.dataTimeMs }]);
      expect(await store.listPendingDeletions({ nowMs: before + GRACE - 1000 })).toEqual([]);
      // Without a time, the store's own clock (PostgreSQL: the database's) decides: not due yet.
      expect(await store.listPendingDeletions({})).toEqual([]);
      const due = await store.listPendingDeletions({ nowMs: Date.now() + GRACE + 1000 });
      expect(due.map((p) => p.objectId)).toEqual([a, b]);
      expect(due[0]!.dueAtMs).toBeGreaterThanOrEqual(before + GRACE - 1000);
      expect(await store.isObjectKnown(a)).toBe(true);
      await store.completeDeletions([a, b, id]); // a live id is never removed
      expect(await store.isObjectKnown(a)).toBe(false);
      expect(await store.isObjectKnown(id)).toBe(true);
      expect((await store.listAllLiveObjects!()).streamSetObjects.map((o) => o.objectId)).toEqual([id]);
    });

    it('two commits compacting the same SSO at once: exactly one wins, the other changes nothing', async () => {
      const a = await ingest(store, [r(1, 0, 5)]);
      const b = await ingest(store, [r(1, 5, 9)]);
      const other = await another();
      const ids = await Promise.all([store.prepareObjectIds(1), other.prepareObjectIds(1)]);
      const results = await Promise.allSettled(
        [store, other].map((s, i) =>
          s.commitStreamSetObject({ nodeId: 1, objectId: ids[i]!, objectSize: 10, streamRanges: [r(1, 0, 9)], streamObjects: [], compactedObjectIds: [a, b] }),
        ),
      );
      expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
      const lost = results.find((x) => x.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(MetadataError);
      expect(lost.reason.code).toBe('ERR_METADATA_OBJECT_NOT_LIVE');
      expect((await store.listStreamSetObjects({ nodeId: 1 })).map((o) => o.objectId)).toHaveLength(1);
    });

    it('refuses a commit of the wrong shape, an existing id or a dead SSO whole, naming them', async () => {
      const a = await ingest(store, [r(1, 0, 5)]);
      const id = await store.prepareObjectIds(2);
      const base = { nodeId: 1, objectSize: 10, streamObjects: [], compactedObjectIds: [] as number[] };
      await expect(store.commitStreamSetObject({ ...base, objectId: id, streamRanges: [r(1, 5, 5)] })).rejects.toMatchObject({ code: 'ERR_METADATA_INVALID_COMMIT' });
      await expect(store.commitStreamSetObject({ ...base, objectId: a, streamRanges: [r(1, 5, 6)] })).rejects.toMatchObject({ code: 'ERR_METADATA_INVALID_COMMIT', message: expect.stringContaining(`object id ${a} already exists`) });
      await expect(store.commitStreamSetObject({ ...base, objectId: id, streamRanges: [r(1, 0, 5)], compactedObjectIds: [a, 999] })).rejects.toMatchObject({
        code: 'ERR_METADATA_OBJECT_NOT_LIVE',
        message: expect.stringContaining('999 (unknown)'),
      });
      // Nothing of the refused commits stayed: a is live, id was never used.
      expect((await store.listStreamSetObjects({})).map((o) => o.objectId)).toEqual([a]);
      await store.commitStreamSetObject({ ...base, objectId: id, streamRanges: [r(1, 0, 5)], compactedObjectIds: [a] });
      await expect(store.commitStreamSetObject({ ...base, objectId: id + 1, streamRanges: [r(1, 0, 5)], compactedObjectIds: [a] })).rejects.toMatchObject({
        code: 'ERR_METADATA_OBJECT_NOT_LIVE',
        message: expect.stringContaining(`${a} (already removed, pending deletion)`),
      });
    });

    it('a stream object of a stream deleted or trimmed past it during the run is recorded as a pending deletion', async () => {
      const a = await ingest(store, [r(1, 0, 5), r(2, 0, 5), r(3, 0, 5)]);
      await store.deleteStream(2);
      await store.trimStream(3, 5);
      const id = await store.prepareObjectIds(3);
      await store.commitStreamSetObject({
        nodeId: 1,
        objectId: -1,
        objectSize: 0,
        streamRanges: [],
        streamObjects: [1, 2, 3].map((s, i) => ({ objectId: id + i, streamId: s, startOffset: 0, endOffset: 5, objectSize: 10 })),
        compactedObjectIds: [a],
      });
      expect((await store.listAllLiveObjects!()).streamObjects.map((o) => o.streamId)).toEqual([1]);
      expect((await store.listPendingDeletions({ nowMs: Date.now() + GRACE + 1000 })).map((p) => p.objectId)).toEqual([a, id + 1, id + 2]);
    });

    it('no SSO range stays below a stream\'s start: a trim drops or clips them, a delete drops them, a commit records none', async () => {
      const a = await ingest(store, [r(1, 0, 10), r(2, 0, 10), r(3, 0, 10)]);
      await store.trimStream(1, 4);
      await store.trimStream(2, 10);
      await store.deleteStream(3);
      expect((await store.listStreamSetObjects({ nodeId: 1 }))[0]!.ranges).toEqual([r(1, 4, 10)]);
      // A compaction planned before the trims commits its ranges as they were: metadata keeps only what is live now.
      await store.trimStream(1, 6);
      const id = await store.prepareObjectIds(1);
      await store.commitStreamSetObject({ nodeId: 1, objectId: id, objectSize: 10, streamRanges: [r(1, 0, 10), r(2, 0, 10), r(3, 0, 10)], streamObjects: [], compactedObjectIds: [a] });
      const [merged] = await store.listStreamSetObjects({ nodeId: 1 });
      expect(merged).toMatchObject({ objectId: id, ranges: [r(1, 6, 10)] });
      expect((await store.listStreamSetObjects({ streamId: 2 })).length).toBe(0);
    });

    it('isObjectKnown: live, pending and prepared ids are known, others not', async () => {
      const prepared = await store.prepareObjectIds(2);
      expect(await store.isObjectKnown(prepared + 1)).toBe(true);
      expect(await store.isObjectKnown(prepared + 2)).toBe(false);
      const expired = await store.prepareObjectIds(1, { ttlMs: 0 });
      expect(await store.isObjectKnown(expired)).toBe(false);
      await expect(
        store.commitStreamSetObject({ nodeId: 1, objectId: expired, objectSize: 1, streamRanges: [r(1, 0, 1)], streamObjects: [], compactedObjectIds: [] }),
      ).rejects.toMatchObject({ code: 'ERR_METADATA_INVALID_COMMIT', message: expect.stringContaining('expired') });
    });

    it('quarantine keeps the first cause; a node lease held by another is ERR_METADATA_NODE_BUSY naming it', async () => {
      await store.quarantineObject!({ objectId: 5, code: 'ERR_PLAN_OVERLAP', reason: 'first' });
      await store.quarantineObject!({ objectId: 5, code: 'ERR_X', reason: 'second' });
      expect(await store.listQuarantined!()).toEqual([{ objectId: 5, code: 'ERR_PLAN_OVERLAP', reason: 'first', atMs: expect.any(Number) }]);
      expect(await store.releaseQuarantined!(5)).toBe(true);
      expect(await store.releaseQuarantined!(5)).toBe(false);
      await store.acquireNodeLease!({ nodeId: 1, holder: 'a', ttlMs: 60_000 });
      await store.acquireNodeLease!({ nodeId: 1, holder: 'a', ttlMs: 60_000 });
      const other = await another();
      await expect(other.acquireNodeLease!({ nodeId: 1, holder: 'b', ttlMs: 60_000 })).rejects.toMatchObject({
        code: 'ERR_METADATA_NODE_BUSY',
        message: expect.stringContaining('another compactor holds node 1 (a,'),
      });
      await store.releaseNodeLease!({ nodeId: 1, holder: 'a' });
      await other.acquireNodeLease!({ nodeId: 1, holder: 'b', ttlMs: 60_000 });
    });

    it('fencing: each claim raises the epoch; a commit under an older epoch is ERR_METADATA_FENCED and changes nothing', async () => {
      const a = await ingest(store, [r(1, 0, 5)]);
      const old = await store.claimNode!({ nodeId: 1, holder: 'zombie' });
      const other = await another();
      const current = await other.claimNode!({ nodeId: 1, holder: 'new' });
      expect(current.epoch).toBe(old.epoch + 1);
      expect((await store.claimNode!({ nodeId: 2, holder: 'x' })).epoch).toBe(1);
      const id = await store.prepareObjectIds(2);
      const commit = (s: MetadataStore, objectId: number, epoch: number) =>
        s.commitStreamSetObject({ nodeId: 1, objectId, objectSize: 10, streamRanges: [r(1, 0, 5)], streamObjects: [], compactedObjectIds: [a], fence: { epoch } });
      const err = await commit(store, id, old.epoch).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MetadataError);
      expect(err).toMatchObject({ code: 'ERR_METADATA_FENCED', retryable: false, message: expect.stringContaining('new, epoch') });
      expect((await store.listStreamSetObjects({ nodeId: 1 })).map((o) => o.objectId)).toEqual([a]);
      await commit(other, id + 1, current.epoch);
      expect((await store.listStreamSetObjects({ nodeId: 1 })).map((o) => o.objectId)).toEqual([id + 1]);
    });

    it('validates at the boundary, naming the field', async () => {
      await expect(store.getStreams([-1])).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', message: expect.stringContaining('streamIds[0]') });
      await expect(store.prepareObjectIds(0)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', message: expect.stringContaining('count') });
    });
  });
}
