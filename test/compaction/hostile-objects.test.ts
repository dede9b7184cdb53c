/**
 * Issue #10, "nothing lost, nothing spread": damaged data inside an SSO, metadata that promises
 * what an object does not hold, and an object whose offsets overlap another's. Each case once
 * either copied the damage into a new object (and scheduled the evidence for deletion), read as
 * silence, or stopped the node's compaction for good. Now the object is left out and quarantined
 * (kept live, never deleted by compaction), everything else commits, and the report, the events
 * and the metadata say which object, where and why.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { decodeObject, encodeObject, type StreamRecord } from '../../src/format/index.js';
import { readStream } from '../../src/ingest/read-stream.js';
import { createTestNode, type TestNode } from '../support/node.js';
import { collect, makeRecords } from '../support/records.js';

let nodes: TestNode[] = [];
afterEach(async () => {
  for (const n of nodes) await n.close();
  nodes = [];
});

async function node(prefix: string): Promise<TestNode> {
  const n = await createTestNode(prefix, { streams: [1, 2, 3] });
  nodes.push(n);
  return n;
}

/** Three SSOs continuing streams 1-3; returns their ids (the middle one is the victim). */
async function threeSsos(n: TestNode): Promise<[number, number, number]> {
  const ids: number[] = [];
  for (let i = 0; i < 3; i++) ids.push(await n.writeStreams({ 1: { n: 3, size: 200 }, 2: { n: 2, size: 300 }, 3: { n: 1, size: 100 } }));
  return ids as [number, number, number];
}

/** Rewrites an object in place with `mutate` applied to its bytes (same size: its index still reads). */
async function damage(n: TestNode, objectId: number, mutate: (view: DataView, firstBlock: number) => void): Promise<Uint8Array> {
  const key = n.storage.keyOf(objectId);
  const bytes = await n.storage.getObject(key);
  const original = bytes.slice();
  const { entries } = decodeObject(bytes, key);
  mutate(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), entries[0]!.position);
  await n.storage.putObject(key, bytes);
  return original;
}


describe('damaged data inside an SSO is never copied (issue #10)', () => {
  const BLOCK = 10;
  const cases: [string, string, (v: DataView, p: number) => void][] = [
    ['a bad block magic', 'ERR_FORMAT_BLOCK_MAGIC', (v, p) => v.setUint8(p, 0x00)],
    ['a bad record magic', 'ERR_FORMAT_RECORD_MAGIC', (v, p) => v.setUint8(p + BLOCK, 0x00)],
    ['a block length that disagrees with its records', 'ERR_FORMAT_LENGTH_MISMATCH', (v, p) => v.setInt32(p + 6, v.getInt32(p + 6) - 1)],
    ['a block record count that disagrees with its records', 'ERR_FORMAT_LENGTH_MISMATCH', (v, p) => v.setInt32(p + 2, v.getInt32(p + 2) + 1)],
    ['a record with a 2 GiB payload length', 'ERR_FORMAT_LENGTH_MISMATCH', (v, p) => v.setInt32(p + BLOCK + 29, 0x7fffffff)],
    ['a record of another stream under an entry', 'ERR_FORMAT_LENGTH_MISMATCH', (v, p) => v.setBigInt64(p + BLOCK + 1, 99n)],
  ];
  for (const [name, code, mutate] of cases) {
    it(`regression: ${name} quarantines its object; the rest commits and the evidence stays`, async () => {
      const n = await node(`damage-${code}-${name.length}`);
      const [a, victim, c] = await threeSsos(n);
      const original = await damage(n, victim, mutate);
      const compactor = n.compactor();
      const events: string[] = [];
      const sub = compactor.events$.subscribe((e) => events.push(e.type));
      const report = await compactor.compactOnce();
      sub.unsubscribe();

      expect(report.committed).toBe(true);
      expect(report.compactedObjectIds).toEqual([a, c]);
      expect(report.quarantined).toHaveLength(1);
      const q = report.quarantined[0]!;
      expect(q).toMatchObject({ objectId: victim, code });
      expect(q.reason).toContain(n.storage.keyOf(victim));
      expect(q.reason).toMatch(/byte \d+/);
      expect(events).toContain('object.quarantined');
      expect((await n.metadata.listQuarantined()).map((x) => [x.objectId, x.code])).toEqual([[victim, code]]);

      // The damaged object is still live and untouched in the bucket; every output decodes.
      const live = await n.metadata.listAllLiveObjects();
      expect(live.streamSetObjects.map((o) => o.objectId)).toContain(victim);
      expect(await n.storage.headObject(n.storage.keyOf(victim))).toBeDefined();
      for (const o of [...live.streamSetObjects, ...live.streamObjects]) {
        if (o.objectId === victim) continue;
        const key = n.storage.keyOf(o.objectId);
        const bytes = await n.storage.getObject(key);
        expect(() => decodeObject(bytes, key), key).not.toThrow();
      }

      // Later runs leave it out, saying why.
      const again = await n.compactor().compactOnce();
      expect(again.skipped.find((s) => s.objectId === victim)?.reason).toMatch(/^quarantined since /);

      // An operator repairs it and releases it: the next run compacts it, and everything reads back.
      await n.storage.putObject(n.storage.keyOf(victim), original);
      expect(await n.metadata.releaseQuarantined(victim)).toBe(true);
      const healed = await n.compactor().compactOnce();
      expect(healed.compactedObjectIds).toContain(victim);
      await n.verify();
    });
  }
});

/** Uploads `records` as one SSO but registers `ranges` for it in metadata (a lying metadata). */
async function lyingSso(n: TestNode, records: StreamRecord[], ranges: { streamId: number; startOffset: number; endOffset: number }[]): Promise<number> {
  const bytes = encodeObject([{ records }]);
  const objectId = await n.metadata.prepareObjectIds(1);
  await n.storage.putObject(n.storage.keyOf(objectId), bytes);
  await n.metadata.commitStreamSetObject({ nodeId: n.nodeId, objectId, objectSize: bytes.byteLength, streamRanges: ranges, streamObjects: [], compactedObjectIds: [] });
  return objectId;
}

describe('metadata against the index (issue #10)', () => {
  it('regression: a range metadata promises but the index does not hold is a typed error, and compaction leaves the object out', async () => {
    const n = await node('lying-metadata');
    await n.write(makeRecords(1, 0, 1, 6, 100)); // [0,6)
    // Metadata says [6,8); the object holds [8,10).
    const liar = await lyingSso(n, makeRecords(1, 8, 1, 2, 100), [{ streamId: 1, startOffset: 6, endOffset: 8 }]);
    const err = await collect(readStream({ storage: n.storage, metadata: n.metadata, streamId: 1, startOffset: 6, endOffset: 8 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect(err).toMatchObject({ code: 'ERR_METADATA_INDEX_MISMATCH' });
    expect((err as Error).message).toContain(`object ${liar}`);
    expect((err as Error).message).toContain('stream 1 [6, 8)');

    await n.write(makeRecords(1, 10, 1, 2, 100)); // a healthy neighbour to merge with
    const report = await n.compactor().compactOnce();
    expect(report.compactedObjectIds).not.toContain(liar);
    expect(report.quarantined.map((q) => [q.objectId, q.code])).toEqual([[liar, 'ERR_PLAN_METADATA_MISMATCH']]);
    expect((await n.metadata.listStreamSetObjects({ nodeId: n.nodeId })).map((o) => o.objectId)).toContain(liar);
  });

  it('regression: an SSO overlapping a healthy one is quarantined, and the node keeps compacting run after run', async () => {
    const n = await node('poison-overlap');
    const healthy = await n.write([...makeRecords(1, 0, 1, 5, 100), ...makeRecords(2, 0, 1, 2, 100)]);
    const poison = await lyingSso(n, makeRecords(1, 3, 1, 5, 100), [{ streamId: 1, startOffset: 3, endOffset: 8 }]); // [3,8) overlaps [0,5)
    const other = await n.write([...makeRecords(2, 2, 1, 2, 100), ...makeRecords(3, 0, 1, 2, 100)]);
    const first = await n.compactor().compactOnce();
    expect(first.committed).toBe(true);
    expect(first.compactedObjectIds).toEqual([healthy, other]);
    expect(first.quarantined.map((q) => [q.objectId, q.code])).toEqual([[poison, 'ERR_PLAN_OVERLAP']]);
    expect(first.quarantined[0]!.reason).toContain(`object ${healthy}`);
    await n.write([...makeRecords(2, 4, 1, 2, 100), ...makeRecords(3, 2, 1, 2, 100)]);
    const second = await n.compactor().compactOnce();
    expect(second.committed).toBe(true);
    expect(second.skipped.map((s) => s.objectId)).toContain(poison);
  });
});
