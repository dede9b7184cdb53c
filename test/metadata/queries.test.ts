import { describe, expect, it } from 'vitest';
import { SqliteMetadataStore } from '../../src/metadata/index.js';

describe('listStreamSetObjects filters', () => {
  it('lists the live SSOs holding a stream, of any node or of one, with all their ranges', async () => {
    const store = new SqliteMetadataStore({ path: ':memory:' });
    for (const s of [1, 2, 3]) await store.createStream({ streamId: s, epoch: 0, startOffset: 0 });
    const commit = (nodeId: number, objectId: number, ranges: [number, number, number][], compacted: number[] = []) =>
      store.commitStreamSetObject({
        nodeId,
        objectId,
        objectSize: 100,
        streamRanges: ranges.map(([streamId, startOffset, endOffset]) => ({ streamId, startOffset, endOffset })),
        streamObjects: [],
        compactedObjectIds: compacted,
      });
    await commit(1, 10, [[1, 0, 5], [2, 0, 5]]);
    await commit(2, 11, [[2, 5, 9], [3, 0, 4]]);
    await commit(1, 12, [[3, 4, 8]]);
    const ids = async (req: { nodeId?: number; streamId?: number }) => (await store.listStreamSetObjects(req)).map((o) => o.objectId);
    expect(await ids({ streamId: 2 })).toEqual([10, 11]);
    expect(await ids({ streamId: 3 })).toEqual([11, 12]);
    expect(await ids({ streamId: 3, nodeId: 1 })).toEqual([12]);
    expect(await ids({})).toEqual([10, 11, 12]);
    expect((await store.listStreamSetObjects({ streamId: 2 }))[1]!.ranges).toEqual([
      { streamId: 2, startOffset: 5, endOffset: 9 },
      { streamId: 3, startOffset: 0, endOffset: 4 },
    ]);
    // Compacted objects are no longer listed for their streams.
    await commit(1, 13, [[1, 0, 5], [2, 0, 5], [3, 4, 8]], [10, 12]);
    expect(await ids({ streamId: 1 })).toEqual([13]);
    // Ordered by orderId: 13 inherits orderId 10 from the SSOs it compacted.
    expect(await ids({ streamId: 3 })).toEqual([13, 11]);
    // Lean listing for planning: same objects, no ranges; the node's streams from one query.
    const lean = await store.listStreamSetObjects({ nodeId: 1, withRanges: false });
    expect(lean.map((o) => [o.objectId, o.ranges])).toEqual([[13, []]]);
    expect((await store.getStreamsOfNode(1)).map((s) => s.streamId)).toEqual([1, 2, 3]);
    expect((await store.getStreamsOfNode(2)).map((s) => s.streamId)).toEqual([2, 3]);
    expect(await store.getStreamsOfNode(9)).toEqual([]);
    await store.close();
  });
});
