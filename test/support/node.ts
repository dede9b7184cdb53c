/**
 * A small "ingest node" for compaction tests: a fresh bucket, an SQLite file, helpers to write
 * SSOs and to check that every live record reads back and every live object decodes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { Compactor } from '../../src/compactor/compactor.js';
import type { CompactorOptions } from '../../src/compactor/options.js';
import { decodeObject } from '../../src/format/index.js';
import type { StreamRecord } from '../../src/format/types.js';
import { readStream } from '../../src/ingest/read-stream.js';
import { uploadStreamSetObject } from '../../src/ingest/upload-sso.js';
import { SqliteMetadataStore } from '../../src/metadata/index.js';
import type { S3Storage } from '../../src/storage/s3-storage.js';
import { makeBucket, makeStorage, type TestStorageOptions } from './env.js';
import { collect, makeRecords, plain } from './records.js';

export { plain };

export const MiB = 1024 * 1024;

export interface TestNode {
  storage: S3Storage;
  metadata: SqliteMetadataStore;
  nodeId: number;
  /** Every record written, by stream, in offset order. */
  written: Map<number, StreamRecord[]>;
  write(records: StreamRecord[], opts?: { dataTimeMs?: number; blockSize?: number }): Promise<number>;
  /** Writes `n` records of `size` bytes for each stream, continuing each stream's offsets. */
  writeStreams(streams: Record<number, { n: number; size: number; count?: number }>, opts?: { dataTimeMs?: number; blockSize?: number }): Promise<number>;
  compactor(opts?: Partial<CompactorOptions>, storage?: S3Storage): Compactor;
  /** Every live record reads back identical (trim honoured) and every live object decodes. */
  verify(): Promise<void>;
  close(): Promise<void>;
}

export async function createTestNode(prefix: string, opts: { streams?: number[]; storage?: TestStorageOptions } = {}): Promise<TestNode> {
  const storage = await makeBucket(prefix, opts.storage);
  const dir = mkdtempSync(join(tmpdir(), `s3sc-${prefix}-`));
  const metadata = new SqliteMetadataStore({ path: join(dir, 'meta.db'), graceMs: 0 });
  const nodeId = 1;
  const written = new Map<number, StreamRecord[]>();
  const next = new Map<number, number>();
  const compactors: Compactor[] = [];
  for (const s of opts.streams ?? []) await metadata.createStream({ streamId: s, epoch: 0, startOffset: 0 });

  const node: TestNode = {
    storage,
    metadata,
    nodeId,
    written,
    async write(records, o = {}) {
      for (const r of records) {
        written.set(r.streamId, [...(written.get(r.streamId) ?? []), r].sort((a, b) => a.baseOffset - b.baseOffset));
        next.set(r.streamId, Math.max(next.get(r.streamId) ?? 0, r.baseOffset + r.count));
      }
      const sso = await uploadStreamSetObject({
        storage,
        metadata,
        nodeId,
        records,
        ...(o.dataTimeMs !== undefined ? { dataTimeMs: o.dataTimeMs } : {}),
        ...(o.blockSize !== undefined ? { blockSize: o.blockSize } : {}),
      });
      return sso.objectId;
    },
    async writeStreams(streams, o = {}) {
      const records: StreamRecord[] = [];
      for (const [id, spec] of Object.entries(streams)) {
        const streamId = Number(id);
        records.push(...makeRecords(streamId, next.get(streamId) ?? 0, spec.count ?? 1, spec.n, spec.size));
      }
      return node.write(records, o);
    },
    compactor(o = {}, s = storage) {
      const c = new Compactor({
        storage: s,
        metadata,
        nodeId,
        partSize: 5 * MiB,
        retryBaseDelayMs: 5,
        retryMaxDelayMs: 20,
        heartbeatTimeoutMs: 3_000,
        ...o,
      });
      compactors.push(c);
      return c;
    },
    async verify() {
      const streams = await metadata.getStreams([...written.keys()]);
      for (const s of streams) {
        const got = await collect(readStream({ storage, metadata, streamId: s.streamId }));
        const expected = s.state === 'deleted' ? [] : (written.get(s.streamId) ?? []).filter((r) => r.baseOffset + r.count > s.startOffset);
        expect(got.map(plain), `stream ${s.streamId}`).toEqual(expected.map(plain));
      }
      const live = await metadata.listAllLiveObjects!();
      for (const o of [...live.streamSetObjects, ...live.streamObjects]) {
        const key = storage.keyOf(o.objectId);
        const bytes = await storage.getObject(key);
        expect(bytes.byteLength, `size of ${key}`).toBe(o.objectSize);
        expect(() => decodeObject(bytes, key)).not.toThrow();
      }
    },
    async close() {
      for (const c of compactors) await c.close();
      await metadata.close();
      storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return node;
}

/** The same bucket, through another endpoint (a fault proxy) with other request settings. */
export function storageVia(node: TestNode, opts: TestStorageOptions): S3Storage {
  return makeStorage(node.storage.bucket, opts);
}
