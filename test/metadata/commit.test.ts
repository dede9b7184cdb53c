import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { SqliteMetadataStore, type CommitStreamSetObjectRequest } from '../../src/metadata/index.js';
import { dumpDatabase, manualClock, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

const GRACE = 60_000;

async function setup() {
  const clock = manualClock(1_000_000);
  const path = join(dir, 'meta.db');
  const store = new SqliteMetadataStore({ path, now: clock.now, graceMs: GRACE });
  for (const streamId of [1, 2, 3]) await store.createStream({ streamId, epoch: 0, startOffset: 0 });
  /** Registers a fresh SSO (what an ingest node does) at the current clock. */
  const ingest = async (ranges: [number, number, number][]) => {
    const objectId = await store.prepareObjectIds(1);
    await store.commitStreamSetObject({
      nodeId: 1,
      objectId,
      objectSize: 100,
      streamRanges: ranges.map(([streamId, startOffset, endOffset]) => ({ streamId, startOffset, endOffset })),
      streamObjects: [],
      compactedObjectIds: [],
    });
    return objectId;
  };
  /** Everything observable through the API, plus every row of every table. */
  const snapshot = async () => ({
    live: await store.listAllLiveObjects(),
    node1: await store.listStreamSetObjects({ nodeId: 1 }),
    so: await Promise.all([1, 2, 3].map((streamId) => store.listStreamObjects({ streamId }))),
    pending: await store.listPendingDeletions({ nowMs: Number.MAX_SAFE_INTEGER }),
    streams: await store.listStreams(),
    rows: dumpDatabase(path),
  });
  return { clock, path, store, ingest, snapshot };
}

describe('commitStreamSetObject', () => {
  it('registers fresh SSOs: orderId = objectId, dataTimeMs = now, stream ends advance, ranges sorted', async () => {
    const { clock, store, ingest } = await setup();
    const a = await ingest([[2, 0, 5], [1, 0, 10]]);
    clock.advance(10);
    const b = await ingest([[1, 10, 20]]);
    expect(await store.listStreamSetObjects({ nodeId: 1 })).toEqual([
      { objectId: a, nodeId: 1, orderId: a, dataTimeMs: 1_000_000, objectSize: 100, ranges: [{ streamId: 1, startOffset: 0, endOffset: 10 }, { streamId: 2, startOffset: 0, endOffset: 5 }] },
      { objectId: b, nodeId: 1, orderId: b, dataTimeMs: 1_000_010, objectSize: 100, ranges: [{ streamId: 1, startOffset: 10, endOffset: 20 }] },
    ]);
    expect(await store.listStreamSetObjects({ nodeId: 2 })).toEqual([]);
    expect((await store.getStreams([1, 2, 3])).map((s) => s.endOffset)).toEqual([20, 5, 0]);
  });

  it('compaction: new SSO inherits the smallest orderId and dataTimeMs; compacted become pending deletions after the grace period', async () => {
    const { clock, store, ingest } = await setup();
    const a = await ingest([[1, 0, 10], [2, 0, 10]]);
    clock.advance(100);
    const b = await ingest([[1, 10, 20], [3, 0, 4]]);
    clock.advance(100);
    const c = await ingest([[1, 20, 30]]);
    clock.advance(1000);
    const t = clock.now();
    const first = await store.prepareObjectIds(3);
    // b (orderId b, time +100) and c (+200) are compacted; a is left alone.
    await store.commitStreamSetObject({
      nodeId: 1,
      objectId: first,
      objectSize: 50,
      streamRanges: [{ streamId: 1, startOffset: 10, endOffset: 30 }],
      streamObjects: [{ objectId: first + 1, streamId: 3, startOffset: 0, endOffset: 4, objectSize: 9 }],
      compactedObjectIds: [b, c],
    });
    const ssos = await store.listStreamSetObjects({ nodeId: 1 });
    expect(ssos.map((o) => [o.objectId, o.orderId, o.dataTimeMs])).toEqual([
      [a, a, 1_000_000],
      [first, b, 1_000_100],
    ]);
    // The SO's data time comes from the compacted SSO holding its data (b).
    expect(await store.listStreamObjects({ streamId: 3 })).toEqual([
      { objectId: first + 1, streamId: 3, startOffset: 0, endOffset: 4, objectSize: 9, dataTimeMs: 1_000_100 },
    ]);
    expect(await store.listPendingDeletions({ nowMs: t + GRACE - 1 })).toEqual([]);
    expect(await store.listPendingDeletions({ nowMs: t + GRACE })).toEqual([
      { objectId: b, dueAtMs: t + GRACE },
      { objectId: c, dueAtMs: t + GRACE },
    ]);
    expect(await store.listPendingDeletions({ nowMs: t + GRACE, limit: 1 })).toEqual([{ objectId: b, dueAtMs: t + GRACE }]);
    // first + 2 was prepared but not used: still reserved; the used ids are no longer "prepared".
    expect(await store.isObjectKnown(first + 2)).toBe(true);

    // Explicit orderId / dataTimeMs win; objectId -1 = only stream objects.
    clock.advance(5);
    const [x, y] = [await store.prepareObjectIds(1), await store.prepareObjectIds(1)];
    await store.commitStreamSetObject({
      nodeId: 1,
      objectId: x,
      objectSize: 1,
      streamRanges: [{ streamId: 2, startOffset: 0, endOffset: 10 }, { streamId: 1, startOffset: 0, endOffset: 30 }],
      streamObjects: [],
      compactedObjectIds: [a, first],
      orderId: 7,
      dataTimeMs: 42,
    });
    await store.commitStreamSetObject({
      nodeId: 1,
      objectId: -1,
      objectSize: 0,
      streamRanges: [],
      streamObjects: [{ objectId: y, streamId: 1, startOffset: 0, endOffset: 30, objectSize: 3, dataTimeMs: 5 }],
      compactedObjectIds: [x],
    });
    expect(await store.listStreamSetObjects({ nodeId: 1 })).toEqual([]);
    expect(await store.listStreamObjects({ streamId: 1 })).toEqual([{ objectId: y, streamId: 1, startOffset: 0, endOffset: 30, objectSize: 3, dataTimeMs: 5 }]);
    const pending = await store.listPendingDeletions({ nowMs: Number.MAX_SAFE_INTEGER });
    expect(pending.map((p) => p.objectId).sort((p, q) => p - q)).toEqual([a, b, c, first, x].sort((p, q) => p - q));

    // completeDeletions forgets them; idempotent; never removes live objects.
    await store.completeDeletions([b, c, y]);
    await store.completeDeletions([b, c]);
    expect((await store.listPendingDeletions({ nowMs: Number.MAX_SAFE_INTEGER })).map((p) => p.objectId).sort((p, q) => p - q)).toEqual(
      [a, first, x].sort((p, q) => p - q),
    );
    expect(await store.listStreamObjects({ streamId: 1 })).toHaveLength(1);
  });

  it('a commit naming objects that are no longer live is refused whole and names them', async () => {
    const { store, ingest, snapshot } = await setup();
    const a = await ingest([[1, 0, 10]]);
    const b = await ingest([[1, 10, 20]]);
    const c = await ingest([[1, 20, 30]]);
    const n = await store.prepareObjectIds(2);
    await store.commitStreamSetObject({ nodeId: 1, objectId: n, objectSize: 1, streamRanges: [{ streamId: 1, startOffset: 0, endOffset: 20 }], streamObjects: [], compactedObjectIds: [a, b] });
    const so = n + 1;
    const before = await snapshot();
    const err = await store
      .commitStreamSetObject({
        nodeId: 1,
        objectId: await store.prepareObjectIds(1),
        objectSize: 1,
        streamRanges: [{ streamId: 1, startOffset: 0, endOffset: 30 }],
        streamObjects: [{ objectId: so, streamId: 2, startOffset: 0, endOffset: 1, objectSize: 1 }],
        // c and n are live; b was compacted already; 999 never existed.
        compactedObjectIds: [b, c, n, 999],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect(err).toMatchObject({ code: 'ERR_METADATA_OBJECT_NOT_LIVE' });
    const message = (err as Error).message;
    expect(message).toContain(`${b} (already removed`);
    expect(message).toContain('999 (unknown)');
    expect(message).not.toContain(`${c} (`);
    const after = await snapshot();
    // Only the prepare above moved the sequence; strip id bookkeeping to compare the rest exactly.
    expect({ ...after, rows: { ...after.rows, id_sequence: [], prepared_ids: [] } }).toEqual({
      ...before,
      rows: { ...before.rows, id_sequence: [], prepared_ids: [] },
    });
  });

  it('a duplicate id discovered after some inserts rolls back everything', async () => {
    const { store, ingest, snapshot } = await setup();
    const a = await ingest([[1, 0, 10], [2, 0, 5]]);
    const b = await ingest([[1, 10, 20]]);
    const first = await store.prepareObjectIds(3);
    const before = await snapshot();
    // Applied in order: a and b marked deleting, SSO `first` and its ranges inserted, SO first+1
    // inserted, then SO with id b conflicts with an existing object.
    await expect(
      store.commitStreamSetObject({
        nodeId: 1,
        objectId: first,
        objectSize: 1,
        streamRanges: [{ streamId: 1, startOffset: 0, endOffset: 40 }],
        streamObjects: [
          { objectId: first + 1, streamId: 2, startOffset: 0, endOffset: 5, objectSize: 1 },
          { objectId: 9999, streamId: 3, startOffset: 0, endOffset: 7, objectSize: 1 },
          { objectId: a, streamId: 3, startOffset: 7, endOffset: 9, objectSize: 1 },
        ],
        compactedObjectIds: [b],
      }),
    ).rejects.toMatchObject({ code: 'ERR_METADATA_INVALID_COMMIT', message: expect.stringContaining(`object id ${a} already exists`) });
    expect(await snapshot()).toEqual(before);
    // The ids are still reserved and usable.
    expect(await store.isObjectKnown(first)).toBe(true);
    await store.commitStreamSetObject({
      nodeId: 1,
      objectId: first,
      objectSize: 1,
      streamRanges: [{ streamId: 1, startOffset: 0, endOffset: 20 }],
      streamObjects: [],
      compactedObjectIds: [a, b],
    });
    expect((await store.listStreamSetObjects({ nodeId: 1 })).map((o) => o.objectId)).toEqual([first]);
  });

  it('refuses malformed commits without changing anything', async () => {
    const { store, ingest, snapshot } = await setup();
    const a = await ingest([[1, 0, 10]]);
    const id = await store.prepareObjectIds(2);
    const base: CommitStreamSetObjectRequest = {
      nodeId: 1,
      objectId: id,
      objectSize: 1,
      streamRanges: [{ streamId: 1, startOffset: 0, endOffset: 10 }],
      streamObjects: [],
      compactedObjectIds: [a],
    };
    const before = await snapshot();
    const cases: [Partial<CommitStreamSetObjectRequest>, Record<string, unknown>][] = [
      [{ streamRanges: [{ streamId: 1, startOffset: 5, endOffset: 5 }] }, { code: 'ERR_METADATA_INVALID_COMMIT' }],
      [{ streamRanges: [{ streamId: 1, startOffset: 0, endOffset: 5 }, { streamId: 1, startOffset: 5, endOffset: 9 }] }, { code: 'ERR_METADATA_INVALID_COMMIT' }],
      [{ objectId: -1 }, { code: 'ERR_METADATA_INVALID_COMMIT' }],
      [{ objectId: a }, { code: 'ERR_METADATA_INVALID_COMMIT' }],
      [{ compactedObjectIds: [a, a] }, { code: 'ERR_METADATA_INVALID_COMMIT' }],
      [{ streamObjects: [{ objectId: id, streamId: 2, startOffset: 0, endOffset: 1, objectSize: 1 }] }, { code: 'ERR_METADATA_INVALID_COMMIT' }],
      [{ streamObjects: [{ objectId: id + 1, streamId: 2, startOffset: 3, endOffset: 1, objectSize: 1 }] }, { code: 'ERR_METADATA_INVALID_COMMIT' }],
      [{ objectId: -2 }, { code: 'ERR_INVALID_OPTION', option: 'objectId' }],
      [{ nodeId: 1.5 }, { code: 'ERR_INVALID_OPTION', option: 'nodeId' }],
      [{ streamRanges: [{ streamId: 1, startOffset: -1, endOffset: 3 }] }, { option: 'streamRanges[0].startOffset' }],
      [{ streamObjects: [{ objectId: id + 1, streamId: 2, startOffset: 0, endOffset: 1, objectSize: Number.NaN }] }, { option: 'streamObjects[0].objectSize' }],
      [{ compactedObjectIds: [a, 2 ** 60] }, { option: 'compactedObjectIds[1]' }],
      [{ orderId: -3 }, { option: 'orderId' }],
    ];
    for (const [patch, expected] of cases) {
      await expect(store.commitStreamSetObject({ ...base, ...patch }), JSON.stringify(patch)).rejects.toMatchObject(expected);
    }
    expect(await snapshot()).toEqual(before);
    await store.commitStreamSetObject(base);
  });

  it('records a stream object of a stream deleted (or trimmed past it) during the compaction as a pending deletion', async () => {
    const { clock, store, ingest } = await setup();
    const a = await ingest([[1, 0, 10], [2, 0, 10], [3, 0, 10]]);
    await store.deleteStream(2);
    await store.trimStream(3, 10);
    const id = await store.prepareObjectIds(4);
    await store.commitStreamSetObject({
      nodeId: 1,
      objectId: -1,
      objectSize: 0,
      streamRanges: [],
      streamObjects: [
        { objectId: id, streamId: 1, startOffset: 0, endOffset: 10, objectSize: 1 },
        { objectId: id + 1, streamId: 2, startOffset: 0, endOffset: 10, objectSize: 1 },
        { objectId: id + 2, streamId: 3, startOffset: 0, endOffset: 10, objectSize: 1 },
      ],
      compactedObjectIds: [a],
    });
    expect((await store.listStreamObjects({ streamId: 1 })).map((o) => o.objectId)).toEqual([id]);
    expect(await store.listStreamObjects({ streamId: 2 })).toEqual([]);
    expect(await store.listStreamObjects({ streamId: 3 })).toEqual([]);
    expect((await store.listPendingDeletions({ nowMs: clock.now() + GRACE })).map((p) => p.objectId)).toEqual([a, id + 1, id + 2]);
    expect(await store.isObjectKnown(id + 1)).toBe(true);
  });

  it('is durable across reopen', async () => {
    const { path, store, ingest } = await setup();
    await ingest([[1, 0, 10]]);
    const live = await store.listAllLiveObjects();
    await store.close();
    const again = new SqliteMetadataStore({ path });
    expect(await again.listAllLiveObjects()).toEqual(live);
    expect((await again.getStreams([1]))[0]!.endOffset).toBe(10);
    await again.close();
  });
});
