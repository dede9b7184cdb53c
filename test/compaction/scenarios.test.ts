/**
 * The planning rules of docs/compaction.md, end to end: real S3 server, real worker
 * threads, real SQLite. After each run the metadata is what the spec says, every live record
 * reads back identical, and every live object decodes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Compactor } from '../../src/compactor/compactor.js';
import { readStream } from '../../src/ingest/read-stream.js';
import { collect, makeRecords } from '../support/records.js';
import { createTestNode, MiB, type TestNode } from '../support/node.js';

const KiB = 1024;
let nodes: TestNode[] = [];
async function node(prefix: string, streams: number[]): Promise<TestNode> {
  const n = await createTestNode(prefix, { streams });
  nodes.push(n);
  return n;
}
afterEach(async () => {
  for (const n of nodes) await n.close();
  nodes = [];
});

describe('compaction scenarios', () => {
  it('splits a large run into a stream object and merges small runs into one SSO', async () => {
    const n = await node('split-merge', [1, 2, 3]);
    const a = await n.writeStreams({ 1: { n: 6, size: 10 * KiB }, 2: { n: 2, size: 1 * KiB }, 3: { n: 1, size: 500 } });
    const b = await n.writeStreams({ 1: { n: 6, size: 10 * KiB }, 2: { n: 2, size: 1 * KiB } });
    const report = await n.compactor({ streamSplitSize: 100 * KiB }).compactOnce();
    expect(report.committed).toBe(true);
    expect(report.compactedObjectIds).toEqual([a, b]);
    expect(report.streamObjects.map((s) => [s.streamId, s.startOffset, s.endOffset])).toEqual([[1, 0, 12]]);
    const ssos = await n.metadata.listStreamSetObjects({ nodeId: 1 });
    expect(ssos.map((s) => s.objectId)).toEqual([report.newObjectId]);
    expect(ssos[0]!.ranges).toEqual([
      { streamId: 2, startOffset: 0, endOffset: 4 },
      { streamId: 3, startOffset: 0, endOffset: 1 },
    ]);
    expect(await n.metadata.listStreamObjects({ streamId: 1 })).toHaveLength(1);
    await n.verify();
  });

  it('a gap in a stream always ends the run before it as a stream object', async () => {
    const n = await node('gap', [1, 2]);
    await n.write([...makeRecords(1, 0, 1, 3, 100), ...makeRecords(2, 0, 1, 2, 100)]);
    await n.write([...makeRecords(1, 10, 1, 3, 100), ...makeRecords(2, 2, 1, 2, 100)]); // stream 1 skips [3,10)
    const report = await n.compactor({ streamSplitSize: 1 * MiB }).compactOnce();
    expect(report.committed).toBe(true);
    expect(report.streamObjects.map((s) => [s.streamId, s.startOffset, s.endOffset])).toEqual([[1, 0, 3]]);
    const [sso] = await n.metadata.listStreamSetObjects({ nodeId: 1 });
    expect(sso!.ranges).toEqual([
      { streamId: 1, startOffset: 10, endOffset: 13 },
      { streamId: 2, startOffset: 0, endOffset: 4 },
    ]);
    await n.verify();
  });

  it('drops trimmed blocks, keeps a straddling block whole, drops deleted streams and compacts an emptied SSO away', async () => {
    const n = await node('trim', [1, 2, 3]);
    // One record per block: each record of 10 offsets is its own block.
    const a = await n.write([...makeRecords(1, 0, 10, 5, 200), ...makeRecords(2, 0, 1, 2, 100)], { blockSize: 1 });
    const b = await n.write([...makeRecords(1, 50, 10, 5, 200), ...makeRecords(2, 2, 1, 2, 100)], { blockSize: 1 });
    const c = await n.write(makeRecords(3, 0, 1, 4, 100)); // only stream 3, deleted below
    await n.metadata.trimStream(1, 45);
    await n.metadata.deleteStream(3);
    const report = await n.compactor({ streamSplitSize: 1 * MiB }).compactOnce();
    expect(report.compactedObjectIds).toEqual([a, b, c]);
    const [sso] = await n.metadata.listStreamSetObjects({ nodeId: 1 });
    expect(sso!.ranges).toEqual([
      // [40,50) straddles 45: the block is kept whole in the object, and metadata's range begins
      // at the start (issue #12: no live range below a stream's start offset).
      { streamId: 1, startOffset: 45, endOffset: 100 },
      { streamId: 2, startOffset: 0, endOffset: 4 },
    ]);
    await n.verify();
    const records = await collect(readStream({ storage: n.storage, metadata: n.metadata, streamId: 1 }));
    expect(records[0]!.baseOffset).toBe(40); // the straddling record, whole
  });

  // Regression (issue #12, found by the two-process fencing test): the compactor read the node's
  // streams before its SSOs, and an ingest committing in between brought an SSO of a stream the
  // stream list did not have yet; planning drops the blocks of unknown streams, and the SSO was
  // compacted without them: records lost.
  it('regression: an ingest committing between the compactor\'s metadata reads loses nothing', async () => {
    const n = await node('ingest-between', [1, 2, 3]);
    await n.writeStreams({ 1: { n: 3, size: 200 } });
    await n.writeStreams({ 1: { n: 3, size: 200 } });
    // Stream 3 has no live SSO yet: the ingest below is its first, committed between the reads.
    let armed = true;
    const metadata = new Proxy(n.metadata, {
      get(target, k) {
        const v = (target as unknown as Record<string | symbol, unknown>)[k];
        if (typeof v !== 'function') return v;
        if (k !== 'listStreamSetObjects' && k !== 'getStreamsOfNode') return v.bind(target);
        return async (...args: unknown[]) => {
          const out = await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (armed) {
            armed = false;
            await n.writeStreams({ 1: { n: 1, size: 200 }, 3: { n: 4, size: 300 } });
          }
          return out;
        };
      },
    });
    const c = new Compactor({ storage: n.storage, metadata, nodeId: n.nodeId, partSize: 5 * MiB, retryBaseDelayMs: 5 });
    try {
      const report = await c.compactOnce();
      expect(armed).toBe(false);
      expect(report.committed).toBe(true);
    } finally {
      await c.close();
    }
    await n.verify();
  });

  it('leaves alone SSOs that share no stream with any other candidate', async () => {
    const n = await node('alone', [1, 2, 9]);
    const a = await n.writeStreams({ 1: { n: 2, size: 100 } });
    const b = await n.writeStreams({ 1: { n: 2, size: 100 }, 2: { n: 1, size: 100 } });
    const lone = await n.writeStreams({ 9: { n: 3, size: 100 } });
    const report = await n.compactor().compactOnce();
    expect(report.compactedObjectIds).toEqual([a, b]);
    const ids = (await n.metadata.listStreamSetObjects({ nodeId: 1 })).map((s) => s.objectId).sort((x, y) => x - y);
    expect(ids).toEqual([lone, report.newObjectId].sort((x, y) => x - y));
    await n.verify();
    // Nothing left to do: a second run commits nothing.
    const again = await n.compactor().compactOnce();
    expect(again.committed).toBe(false);
  });

  it('overlapping offsets in one stream leave the newer object out, quarantined and live; nothing of it is compacted', async () => {
    const n = await node('overlap', [1]);
    const a = await n.write(makeRecords(1, 0, 1, 5, 100));
    const b = await n.write(makeRecords(1, 3, 1, 5, 100)); // [3,8) overlaps [0,5)
    const before = await n.metadata.listStreamSetObjects({ nodeId: 1 });
    const report = await n.compactor().compactOnce();
    expect(report.committed).toBe(false);
    expect(report.quarantined.map((q) => [q.objectId, q.code])).toEqual([[b, 'ERR_PLAN_OVERLAP']]);
    expect(report.quarantined[0]!.reason).toContain(String(a));
    expect(report.idleReason).toMatch(/skipped/);
    expect(await n.metadata.listStreamSetObjects({ nodeId: 1 })).toEqual(before);
    expect((await n.storage.listObjects()).length).toBe(2);
  });

  it('the stream-object limit defers source objects to a later run', async () => {
    const n = await node('so-limit', [1, 2, 3]);
    await n.writeStreams({ 1: { n: 4, size: 20 * KiB }, 2: { n: 4, size: 20 * KiB }, 3: { n: 1, size: 10 } });
    await n.writeStreams({ 1: { n: 4, size: 20 * KiB }, 2: { n: 4, size: 20 * KiB }, 3: { n: 1, size: 10 } });
    await n.writeStreams({ 1: { n: 4, size: 20 * KiB }, 2: { n: 4, size: 20 * KiB }, 3: { n: 1, size: 10 } });
    const report = await n.compactor({ streamSplitSize: 100 * KiB, maxStreamObjectsPerCommit: 1 }).compactOnce();
    expect(report.streamObjects.length).toBeLessThanOrEqual(1);
    expect(report.deferred.length).toBeGreaterThan(0);
    await n.verify();
  });

  it('a memory limit smaller than the data gives several iterations and the same data', async () => {
    const big = await node('mem-big', [1, 2, 3, 4]);
    const small = await node('mem-small', [1, 2, 3, 4]);
    for (const n of [big, small]) {
      for (let i = 0; i < 4; i++) await n.writeStreams({ 1: { n: 3, size: 30 * KiB }, 2: { n: 2, size: 20 * KiB }, 3: { n: 4, size: 5 * KiB }, 4: { n: 1, size: 64 * KiB } });
    }
    // Streams 1, 2 and 4 become stream objects; the SSO (stream 3) is smaller than the limit, as
    // it must be: below one part, the uploader holds all of it until it closes.
    const r1 = await big.compactor({ streamSplitSize: 100 * KiB }).compactOnce();
    const r2 = await small.compactor({ streamSplitSize: 100 * KiB, memoryLimit: 200 * KiB }).compactOnce();
    expect(r1.iterations).toBe(1);
    expect(r2.iterations).toBeGreaterThan(2);
    expect(r2.peakBudgetBytes).toBeLessThanOrEqual(200 * KiB);
    expect(r2.compactedObjectIds.length).toBe(r1.compactedObjectIds.length);
    const streamsOf = async (n: TestNode) => (await n.metadata.listStreamSetObjects({ nodeId: 1 }))[0]?.ranges;
    expect(await streamsOf(small)).toEqual(await streamsOf(big));
    await big.verify();
    await small.verify();
  });

  it('force-splits an SSO older than forceSplitAfterMs into stream objects', async () => {
    const n = await node('force', [1, 2]);
    const old = await n.writeStreams({ 1: { n: 2, size: 100 }, 2: { n: 3, size: 100 } }, { dataTimeMs: Date.now() - 3 * 60 * 60_000 });
    const report = await n.compactor({ forceSplitAfterMs: 60 * 60_000 }).compactOnce();
    expect(report.compactedObjectIds).toEqual([old]);
    expect(report.newObjectId).toBe(-1);
    expect(report.streamObjects.map((s) => [s.streamId, s.startOffset, s.endOffset])).toEqual([
      [1, 0, 2],
      [2, 0, 3],
    ]);
    expect(await n.metadata.listStreamSetObjects({ nodeId: 1 })).toEqual([]);
    await n.verify();
  });
});
