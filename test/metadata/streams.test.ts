import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteMetadataStore } from '../../src/metadata/index.js';
import { manualClock, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

describe('streams', () => {
  it('create, get, trim, close, delete', async () => {
    const store = new SqliteMetadataStore({ path: join(dir, 'meta.db') });
    expect(await store.createStream({ streamId: 7, epoch: 2, startOffset: 100 })).toEqual({
      streamId: 7,
      epoch: 2,
      startOffset: 100,
      endOffset: 100,
      state: 'opened',
    });
    await store.createStream({ streamId: 3, epoch: 0, startOffset: 0 });
    await expect(store.createStream({ streamId: 7, epoch: 0, startOffset: 0 })).rejects.toMatchObject({
      code: 'ERR_METADATA_STREAM_EXISTS',
      message: expect.stringContaining('stream 7'),
    });

    // getStreams: request order, unknown ids omitted, duplicates once.
    expect((await store.getStreams([7, 99, 3, 7])).map((s) => s.streamId)).toEqual([7, 3]);
    expect(await store.getStreams([])).toEqual([]);

    // Commits advance the end offset.
    await store.commitStreamSetObject({
      nodeId: 1,
      objectId: await store.prepareObjectIds(1),
      objectSize: 10,
      streamRanges: [{ streamId: 7, startOffset: 100, endOffset: 150 }],
      streamObjects: [],
      compactedObjectIds: [],
    });
    expect((await store.getStreams([7]))[0]).toMatchObject({ startOffset: 100, endOffset: 150 });

    // trim forward; backwards is a no-op; past the end moves the end too.
    await store.trimStream(7, 120);
    expect((await store.getStreams([7]))[0]).toMatchObject({ startOffset: 120, endOffset: 150 });
    await store.trimStream(7, 110);
    expect((await store.getStreams([7]))[0]).toMatchObject({ startOffset: 120, endOffset: 150 });
    await store.trimStream(7, 200);
    expect((await store.getStreams([7]))[0]).toMatchObject({ startOffset: 200, endOffset: 200 });

    await store.closeStream(7);
    expect((await store.getStreams([7]))[0]!.state).toBe('closed');
    await store.deleteStream(7);
    await store.deleteStream(7); // idempotent
    expect((await store.getStreams([7]))[0]!.state).toBe('deleted');
    await store.closeStream(7);
    expect((await store.getStreams([7]))[0]!.state).toBe('deleted');
    expect((await store.listStreams()).map((s) => [s.streamId, s.state])).toEqual([
      [3, 'opened'],
      [7, 'deleted'],
    ]);

    for (const op of [() => store.trimStream(42, 1), () => store.deleteStream(42), () => store.closeStream(42)]) {
      await expect(op()).rejects.toMatchObject({ code: 'ERR_METADATA_STREAM_NOT_FOUND', message: expect.stringContaining('42') });
    }
    await store.close();
  });

  it('validates at the boundary, naming the field', async () => {
    const store = new SqliteMetadataStore({ path: ':memory:' });
    await expect(store.createStream({ streamId: -1, epoch: 0, startOffset: 0 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      option: 'streamId',
    });
    await expect(store.createStream({ streamId: 1, epoch: 0.5, startOffset: 0 })).rejects.toMatchObject({ option: 'epoch' });
    await expect(store.createStream({ streamId: 1, epoch: 0, startOffset: 2 ** 53 })).rejects.toMatchObject({ option: 'startOffset' });
    await expect(store.trimStream(1, Number.NaN)).rejects.toMatchObject({ option: 'newStartOffset' });
    await expect(store.getStreams([1, '2' as unknown as number])).rejects.toMatchObject({ option: 'streamIds[1]' });
    await expect(store.prepareObjectIds(0)).rejects.toMatchObject({ option: 'count' });
    await expect(store.listPendingDeletions({ nowMs: 0, limit: 0 })).rejects.toMatchObject({ option: 'limit' });
    expect(() => new SqliteMetadataStore({ path: '' })).toThrow(expect.objectContaining({ option: 'path' }));
    expect(() => new SqliteMetadataStore({ path: ':memory:', graceMs: -1 })).toThrow(expect.objectContaining({ option: 'graceMs' }));
    await store.close();
  });

  it('trim and delete retire the stream objects left without live data', async () => {
    const clock = manualClock();
    const store = new SqliteMetadataStore({ path: ':memory:', now: clock.now, graceMs: 1000 });
    await store.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    const first = await store.prepareObjectIds(3);
    await store.commitStreamSetObject({
      nodeId: 1,
      objectId: -1,
      objectSize: 0,
      streamRanges: [],
      streamObjects: [0, 1, 2].map((i) => ({ objectId: first + i, streamId: 1, startOffset: i * 10, endOffset: i * 10 + 10, objectSize: 5 })),
      compactedObjectIds: [],
    });
    await store.trimStream(1, 15); // [0,10) is gone, [10,20) straddles and stays
    expect((await store.listStreamObjects({ streamId: 1 })).map((o) => o.objectId)).toEqual([first + 1, first + 2]);
    expect(await store.listPendingDeletions({ nowMs: clock.now() + 1000 })).toEqual([{ objectId: first, dueAtMs: clock.now() + 1000 }]);
    clock.advance(1);
    await store.deleteStream(1);
    expect(await store.listStreamObjects({ streamId: 1 })).toEqual([]);
    expect((await store.listPendingDeletions({ nowMs: clock.now() + 1000 })).map((p) => p.objectId)).toEqual([first, first + 1, first + 2]);
    await store.close();
  });
});

describe('object ids', () => {
  it('are consecutive, positive, and never reused after reopening the file', async () => {
    const path = join(dir, 'ids.db');
    let store = new SqliteMetadataStore({ path });
    const a = await store.prepareObjectIds(3);
    expect(a).toBe(1);
    const b = await store.prepareObjectIds(1);
    expect(b).toBe(4);
    await store.close();

    store = new SqliteMetadataStore({ path });
    const c = await store.prepareObjectIds(5);
    expect(c).toBe(5);
    await store.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    // A host committing an id it chose itself pushes the sequence past it.
    await store.commitStreamSetObject({
      nodeId: 1,
      objectId: 100,
      objectSize: 1,
      streamRanges: [{ streamId: 1, startOffset: 0, endOffset: 1 }],
      streamObjects: [],
      compactedObjectIds: [],
    });
    await store.close();
    store = new SqliteMetadataStore({ path });
    expect(await store.prepareObjectIds(1)).toBe(101);
    await store.close();
  });

  it('isObjectKnown: live, deleting, prepared-and-unexpired; not expired, unknown or completed', async () => {
    const clock = manualClock();
    const store = new SqliteMetadataStore({ path: join(dir, 'k.db'), now: clock.now, graceMs: 100, preparedTtlMs: 1000 });
    await store.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    const first = await store.prepareObjectIds(4);
    const short = await store.prepareObjectIds(1, { ttlMs: 10 });
    expect(await store.isObjectKnown(first + 3)).toBe(true);
    expect(await store.isObjectKnown(short)).toBe(true);
    expect(await store.isObjectKnown(short + 1)).toBe(false);
    expect(await store.isObjectKnown(0)).toBe(false);
    clock.advance(10);
    expect(await store.isObjectKnown(short)).toBe(false); // reservation expired

    const range = { streamId: 1, startOffset: 0, endOffset: 10 };
    await store.commitStreamSetObject({ nodeId: 1, objectId: first, objectSize: 1, streamRanges: [range], streamObjects: [], compactedObjectIds: [] });
    await store.commitStreamSetObject({
      nodeId: 1,
      objectId: first + 1,
      objectSize: 1,
      streamRanges: [range],
      streamObjects: [],
      compactedObjectIds: [first],
    });
    clock.advance(5000); // all reservations expired
    expect(await store.isObjectKnown(first)).toBe(true); // deleting
    expect(await store.isObjectKnown(first + 1)).toBe(true); // live
    expect(await store.isObjectKnown(first + 2)).toBe(false); // prepared, never used, expired
    await store.completeDeletions([first]);
    await store.completeDeletions([first, 12345]); // idempotent, unknown ids ignored
    expect(await store.isObjectKnown(first)).toBe(false);

    // An expired reservation cannot be committed: its object may have been collected.
    await expect(
      store.commitStreamSetObject({ nodeId: 1, objectId: first + 2, objectSize: 1, streamRanges: [range], streamObjects: [], compactedObjectIds: [] }),
    ).rejects.toMatchObject({ code: 'ERR_METADATA_INVALID_COMMIT', message: expect.stringContaining(`${first + 2}`) });
    await store.close();
  });
});
