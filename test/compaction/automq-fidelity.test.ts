/**
 * Issue #8: read, compact and write what AutoMQ itself writes. The objects here are the bytes
 * AutoMQ's own ObjectWriter produced (test/fixtures/vectors), registered as SSOs the way an
 * AutoMQ node would have, then compacted on the real server through the public API.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeBlocks, decodeObject, type IndexEntry, type StreamRecord } from '../../src/format/index.js';
import { readStream } from '../../src/ingest/read-stream.js';
import type { StreamRange } from '../../src/metadata/types.js';
import { readVector } from '../format/fixtures.js';
import { createTestNode, type TestNode } from '../support/node.js';
import { collect, payload, plain } from '../support/records.js';

let nodes: TestNode[] = [];
afterEach(async () => {
  for (const n of nodes) await n.close();
  nodes = [];
});

async function node(prefix: string, streams: number[]): Promise<TestNode> {
  const n = await createTestNode(prefix, { streams });
  nodes.push(n);
  return n;
}

/** Uploads AutoMQ-written bytes as an SSO of the node, with the ranges its index gives. */
async function registerAutomqObject(n: TestNode, bytes: Uint8Array): Promise<number> {
  const { entries, records } = decodeObject(bytes);
  const ranges = new Map<number, StreamRange>();
  for (const e of entries) {
    const r = ranges.get(e.streamId);
    if (r) r.endOffset = e.endOffset;
    else ranges.set(e.streamId, { streamId: e.streamId, startOffset: e.startOffset, endOffset: e.endOffset });
  }
  for (const r of records) n.written.set(r.streamId, [...(n.written.get(r.streamId) ?? []), r].sort((a, b) => a.baseOffset - b.baseOffset));
  const objectId = await n.metadata.prepareObjectIds(1);
  await n.storage.putObject(n.storage.keyOf(objectId), bytes);
  await n.metadata.commitStreamSetObject({
    nodeId: n.nodeId,
    objectId,
    objectSize: bytes.byteLength,
    streamRanges: [...ranges.values()].sort((a, b) => a.streamId - b.streamId),
    streamObjects: [],
    compactedObjectIds: [],
  });
  return objectId;
}

/** Every live object's entries: each one's recordCount is the number of record batches it covers. */
async function expectEntriesCountRecords(n: TestNode): Promise<IndexEntry[]> {
  const live = await n.metadata.listAllLiveObjects!();
  const all: IndexEntry[] = [];
  for (const o of [...live.streamSetObjects, ...live.streamObjects]) {
    const key = n.storage.keyOf(o.objectId);
    const bytes = await n.storage.getObject(key);
    const { entries } = decodeObject(bytes, key);
    for (const e of entries) {
      const batches = decodeBlocks(bytes.subarray(e.position, e.position + e.size), key, e.position).reduce((k, b) => k + b.records.length, 0);
      expect(e.recordCount, `entry of stream ${e.streamId} [${e.startOffset}, ${e.endOffset}) in ${key}`).toBe(batches);
      all.push(e);
    }
  }
  return all;
}

describe('AutoMQ-written objects through compaction (issue #8)', () => {
  it('regression: the three object vectors compact with streamSplitSize 100 (AutoMQ testCompact) and read back', async () => {
    const n = await node('automq-compact', [0, 1, 2]);
    const ids = [];
    for (const f of ['object-0.bin', 'object-1.bin', 'object-2.bin']) ids.push(await registerAutomqObject(n, readVector(f)));
    const report = await n.compactor({ streamSplitSize: 100 }).compactOnce();
    expect(report.committed).toBe(true);
    expect(report.compactedObjectIds).toEqual(ids);
    expect(report.streamObjects.length).toBeGreaterThan(0);
    await n.verify();
    const entries = await expectEntriesCountRecords(n);
    // Records covering many offsets are still one record each: the counts are batches.
    expect(entries.some((e) => e.endOffset - e.startOffset > e.recordCount)).toBe(true);
  });

  it('regression: sparse-offsets.bin compacts with another SSO and reads back, gaps kept as gaps', async () => {
    const n = await node('automq-sparse', [5, 6]);
    await registerAutomqObject(n, readVector('sparse-offsets.bin'));
    // A later SSO continuing both streams, so the two share streams and are merged.
    await n.write([
      { streamId: 5, epoch: 0, baseOffset: 1001, count: 1, payload: payload(30, 1) },
      { streamId: 5, epoch: 0, baseOffset: 2000, count: 1, payload: payload(30, 2) },
      { streamId: 6, epoch: 0, baseOffset: 5, count: 2, payload: payload(30, 3) },
    ]);
    const report = await n.compactor().compactOnce();
    expect(report.committed).toBe(true);
    const [sso] = await n.metadata.listStreamSetObjects({ nodeId: n.nodeId });
    expect(sso!.ranges).toEqual([
      { streamId: 5, startOffset: 0, endOffset: 2001 },
      { streamId: 6, startOffset: 0, endOffset: 7 },
    ]);
    const s5 = await collect(readStream({ storage: n.storage, metadata: n.metadata, streamId: 5 }));
    expect(s5.map((r) => r.baseOffset)).toEqual([0, 1, 10, 11, 1000, 1001, 2000]);
    await n.verify();
    await expectEntriesCountRecords(n);
  });

  it('regression: a run that commits nothing says why, in the report and the events', async () => {
    const n = await node('automq-idle', [0, 1, 2, 5, 6]);
    const a = await registerAutomqObject(n, readVector('object-2.bin')); // streams 1, 2
    const b = await registerAutomqObject(n, readVector('sparse-offsets.bin')); // streams 5, 6
    const compactor = n.compactor();
    const events: string[] = [];
    const sub = compactor.events$.subscribe((e) => events.push(e.type));
    const report = await compactor.compactOnce();
    sub.unsubscribe();
    expect(report.committed).toBe(false);
    expect(report.untouched.map((u) => u.objectId).sort()).toEqual([a, b].sort());
    expect(report.idleReason).toMatch(/share no stream/);
    expect(report.idleReason).toContain(String(a));
    expect(events).toContain('run.idle');

    const empty = await node('automq-idle-empty', []);
    const none = await empty.compactor().compactOnce();
    expect(none.committed).toBe(false);
    expect(none.idleReason).toBe(`node ${empty.nodeId} has no live stream set object`);
  });
});

/** Random sparse streams: records of random counts with random gaps, cut into SSOs in offset order. */
const sparseBatches = fc
  .array(
    fc.record({
      streamId: fc.integer({ min: 1, max: 3 }),
      records: fc.array(
        fc.record({ gap: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 50 })), count: fc.integer({ min: 1, max: 5 }), size: fc.integer({ min: 1, max: 3000 }) }),
        { minLength: 1, maxLength: 12 },
      ),
    }),
    { minLength: 2, maxLength: 6 },
  )
  .map((batches) => {
    const next = new Map<number, number>();
    let seed = 0;
    return batches.map((b) =>
      b.records.map((r): StreamRecord => {
        const base = (next.get(b.streamId) ?? 0) + r.gap;
        next.set(b.streamId, base + r.count);
        return { streamId: b.streamId, epoch: 0, baseOffset: base, count: r.count, payload: payload(r.size, seed++) };
      }),
    );
  });

describe('sparse offsets end to end (property, real server)', () => {
  it('ingest -> compact (stream objects and an SSO) -> readStream returns exactly the records written', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(sparseBatches, fc.integer({ min: 200, max: 20_000 }), async (batches, streamSplitSize) => {
        const n = await createTestNode(`sparse-prop-${run++}`, { streams: [1, 2, 3] });
        try {
          // One SSO per batch; batches of one stream share it, so those SSOs are merged or split.
          for (const batch of batches) await n.write(batch, { blockSize: 4096 });
          const report = await n.compactor({ streamSplitSize }).compactOnce();
          expect(report.idleReason === undefined).toBe(report.committed);
          for (const [streamId, expected] of n.written) {
            const got = await collect(readStream({ storage: n.storage, metadata: n.metadata, streamId }));
            expect(got.map(plain), `stream ${streamId}`).toEqual(expected.map(plain));
          }
          await n.verify();
          await expectEntriesCountRecords(n);
        } finally {
          await n.close();
        }
      }),
      { numRuns: 8 },
    );
  });
});
