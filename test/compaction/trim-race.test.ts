/**
 * Trim and delete racing with compaction commits (issue #12): while a compactor runs, another
 * connection trims streams and deletes one; after every run, no live stream object and no live
 * SSO range lies below its stream's start offset (or belongs to a deleted stream), and every
 * stream still reads back what was written from its start on. On SQLite and on PostgreSQL.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Compactor } from '../../src/compactor/compactor.js';
import type { StreamRecord } from '../../src/format/types.js';
import { readStream } from '../../src/ingest/read-stream.js';
import { uploadStreamSetObject } from '../../src/ingest/upload-sso.js';
import { PostgresMetadataStore, SqliteMetadataStore, type MetadataStore } from '../../src/metadata/index.js';
import { tempDir } from '../metadata/helpers.js';
import { makeBucket } from '../support/env.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../support/pg.js';
import { collect, makeRecords, plain } from '../support/records.js';

const STREAMS = [1, 2, 3, 4, 5, 6];
const ROUNDS = 8;
const databases: TestDatabase[] = [];
const cleanups: (() => void)[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
  for (const c of cleanups) c();
});

const kinds: { name: string; available: boolean; open(): Promise<[MetadataStore, MetadataStore]> }[] = [
  {
    name: 'SQLite',
    available: true,
    async open() {
      const { dir, cleanup } = tempDir();
      cleanups.push(cleanup);
      const path = join(dir, 'meta.db');
      return [new SqliteMetadataStore({ path, graceMs: 0 }), new SqliteMetadataStore({ path, graceMs: 0 })];
    },
  },
  {
    name: 'PostgreSQL',
    available: pgAvailable,
    async open() {
      const db = await createTestDatabase('trim');
      databases.push(db);
      return [await PostgresMetadataStore.open({ connectionString: db.url, graceMs: 0 }), await PostgresMetadataStore.open({ connectionString: db.url, graceMs: 0 })];
    },
  },
];

for (const kind of kinds) {
  describe.skipIf(!kind.available)(`trim and delete racing with commits: ${kind.name}`, () => {
    it(`${ROUNDS} runs with trims and a delete in flight: nothing live below a start, every record from the start on reads back`, async () => {
      const [metadata, other] = await kind.open();
      const storage = await makeBucket('trimrace');
      const written = new Map<number, StreamRecord[]>(STREAMS.map((s) => [s, []]));
      const next = new Map<number, number>(STREAMS.map((s) => [s, 0]));
      for (const s of STREAMS) await metadata.createStream({ streamId: s, epoch: 0, startOffset: 0 });
      const deleted = new Set<number>();
      const ingest = async (i: number) => {
        const records = STREAMS.filter((s) => !deleted.has(s)).flatMap((s) => {
          const base = next.get(s)!;
          const recs = makeRecords(s, base, 4, 4, 1500 + ((i * s) % 5) * 700);
          next.set(s, base + 16);
          written.get(s)!.push(...recs);
          return recs;
        });
        await uploadStreamSetObject({ storage, metadata, nodeId: 1, records, blockSize: 2048 });
      };
      const compactor = new Compactor({ storage, metadata, nodeId: 1, streamSplitSize: 16 * 1024, retryBaseDelayMs: 5 });
      const outcomes: string[] = [];
      try {
        for (let round = 0; round < ROUNDS; round++) {
          for (let k = 0; k < 3; k++) await ingest(round * 3 + k);
          const run = compactor.compactOnce().then(
            (r) => outcomes.push(r.committed ? 'committed' : 'idle'),
            (e: { code?: string }) => outcomes.push(e.code ?? 'error'),
          );
          // Trims (and, once, a delete) from another connection while the run reads, writes and commits.
          for (const [j, s] of STREAMS.entries()) {
            if (round === 3 && s === 6) {
              deleted.add(6);
              await other.deleteStream(6);
            }
            else if ((round + j) % 2 === 0) await other.trimStream(s, Math.max(0, next.get(s)! - 20 - ((round * 7 + j) % 24)));
          }
          await run;
          await checkInvariants(metadata);
        }
        expect(outcomes.filter((o) => o === 'committed').length).toBeGreaterThan(0);
        for (const o of outcomes) expect(['committed', 'idle', 'ERR_PLAN_COVERAGE', 'ERR_METADATA_OBJECT_NOT_LIVE']).toContain(o);
        // Every stream reads back what was written from its start on (a record straddling the start whole).
        for (const [s] of STREAMS.entries()) {
          const id = STREAMS[s]!;
          const [meta] = await metadata.getStreams([id]);
          const back = (await collect(readStream({ storage, metadata, streamId: id }))).map(plain);
          const expected = meta!.state === 'deleted' ? [] : written.get(id)!.filter((r) => r.baseOffset + r.count > meta!.startOffset).map(plain);
          expect(back, `stream ${id}`).toEqual(expected);
        }
      } finally {
        await compactor.close();
        await metadata.close();
        await other.close();
        storage.close();
      }
    }, 180_000);
  });
}

async function checkInvariants(metadata: MetadataStore): Promise<void> {
  const streams = new Map((await metadata.listStreams!()).map((s) => [s.streamId, s]));
  const live = await metadata.listAllLiveObjects!();
  for (const o of live.streamSetObjects) {
    for (const r of o.ranges) {
      const s = streams.get(r.streamId)!;
      expect(s.state, `SSO ${o.objectId} has a range of deleted stream ${r.streamId}`).not.toBe('deleted');
      expect(r.startOffset, `SSO ${o.objectId}: stream ${r.streamId} range [${r.startOffset}, ${r.endOffset}) below start ${s.startOffset}`).toBeGreaterThanOrEqual(s.startOffset);
    }
  }
  for (const so of live.streamObjects) {
    const s = streams.get(so.streamId)!;
    expect(s.state, `stream object ${so.objectId} of deleted stream ${so.streamId} is live`).not.toBe('deleted');
    expect(so.endOffset, `stream object ${so.objectId} [${so.startOffset}, ${so.endOffset}) wholly below start ${s.startOffset}`).toBeGreaterThan(s.startOffset);
  }
}
