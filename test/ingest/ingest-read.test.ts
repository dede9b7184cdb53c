import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetadataError, OptionsError, StorageError } from '../../src/errors.js';
import { readStream } from '../../src/ingest/read-stream.js';
import { uploadStreamSetObject } from '../../src/ingest/upload-sso.js';
import { SqliteMetadataStore } from '../../src/metadata/index.js';
import type { StreamRecord } from '../../src/format/types.js';
import { makeBucket, s3Endpoint } from '../support/env.js';
import { fault, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { collect, makeRecords, payload, plain } from '../support/records.js';

describe('uploadStreamSetObject + readStream on the real S3 server', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3Endpoint());
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('round-trips random record sets, in any input order, through one SSO each', async () => {
    const storage = await makeBucket('ingest-prop');
    const metadata = new SqliteMetadataStore({ path: ':memory:' });
    for (let s = 0; s < 6; s++) await metadata.createStream({ streamId: s, epoch: 0, startOffset: 0 });
    const next = new Map<number, number>();
    const written = new Map<number, StreamRecord[]>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ streamId: fc.integer({ min: 0, max: 5 }), count: fc.integer({ min: 1, max: 50 }), size: fc.integer({ min: 0, max: 3000 }) }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 64, max: 8192 }),
        async (specs, blockSize) => {
          const records: StreamRecord[] = specs.map((s, i) => {
            const base = next.get(s.streamId) ?? 0;
            next.set(s.streamId, base + s.count);
            return { streamId: s.streamId, epoch: 0, baseOffset: base, count: s.count, payload: payload(s.size, i) };
          });
          for (const r of records) written.set(r.streamId, [...(written.get(r.streamId) ?? []), r]);
          // Shuffled: the ingest path sorts.
          const shuffled = [...records].reverse();
          await uploadStreamSetObject({ storage, metadata, nodeId: 1, records: shuffled, blockSize });
          for (const [streamId, expected] of written) {
            const got = await collect(readStream({ storage, metadata, streamId }));
            expect(got.map(plain)).toEqual(expected.map(plain));
          }
        },
      ),
      { numRuns: 12 },
    );
    await metadata.close();
    storage.close();
  });

  it('reads a sub-range and honours trim (a straddling record comes back whole)', async () => {
    const storage = await makeBucket('ingest-trim');
    const metadata = new SqliteMetadataStore({ path: ':memory:' });
    await metadata.createStream({ streamId: 7, epoch: 0, startOffset: 0 });
    const records = makeRecords(7, 0, 10, 10, 100); // offsets [0,100) in records of 10
    await uploadStreamSetObject({ storage, metadata, nodeId: 1, records: records.slice(0, 5) });
    await uploadStreamSetObject({ storage, metadata, nodeId: 1, records: records.slice(5) });
    expect((await collect(readStream({ storage, metadata, streamId: 7, startOffset: 35, endOffset: 62 }))).map((r) => r.baseOffset)).toEqual([30, 40, 50, 60]);
    await metadata.trimStream(7, 45);
    expect((await collect(readStream({ storage, metadata, streamId: 7 }))).map((r) => r.baseOffset)).toEqual([40, 50, 60, 70, 80, 90]);
    await metadata.deleteStream(7);
    expect(await collect(readStream({ storage, metadata, streamId: 7 }))).toEqual([]);
    await metadata.close();
    storage.close();
  });

  it('uploads objects above the part size as multipart and reads them back', async () => {
    const storage = await makeBucket('ingest-mpu');
    const metadata = new SqliteMetadataStore({ path: ':memory:' });
    await metadata.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    const records = makeRecords(1, 0, 1, 12, 1024 * 1024); // 12 MiB
    const sso = await uploadStreamSetObject({ storage, metadata, nodeId: 1, records, partSize: 5 * 1024 * 1024 });
    expect(sso.objectSize).toBeGreaterThan(12 * 1024 * 1024);
    const got = await collect(readStream({ storage, metadata, streamId: 1 }));
    expect(got.map(plain)).toEqual(records.map(plain));
    await metadata.close();
    storage.close();
  });

  it('a failed multipart upload commits nothing and leaves no unfinished upload', async () => {
    const storage = await makeBucket('ingest-fail', { endpoint: proxy.url, maxAttempts: 1 });
    const metadata = new SqliteMetadataStore({ path: ':memory:' });
    await metadata.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    const rule = proxy.addRule({ op: 'UploadPart', skip: 1, times: Infinity, action: fault.status(403, 'AccessDenied') });
    const records = makeRecords(1, 0, 1, 11, 1024 * 1024);
    const err = await uploadStreamSetObject({ storage, metadata, nodeId: 1, records, partSize: 5 * 1024 * 1024 }).catch((e: unknown) => e);
    rule.remove();
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).retryable).toBe(false);
    expect(await metadata.listStreamSetObjects({ nodeId: 1 })).toEqual([]);
    expect(await storage.listMultipartUploads()).toEqual([]);
    expect(await storage.listObjects()).toEqual([]);
    await metadata.close();
    storage.close();
  });

  it('rejects bad input with errors that name the problem', async () => {
    const storage = await makeBucket('ingest-bad');
    const metadata = new SqliteMetadataStore({ path: ':memory:' });
    await metadata.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    await expect(uploadStreamSetObject({ storage, metadata, nodeId: 1, records: [] })).rejects.toThrow(OptionsError);
    const overlapping = [...makeRecords(1, 0, 10, 2, 10), ...makeRecords(1, 5, 10, 1, 10)];
    await expect(uploadStreamSetObject({ storage, metadata, nodeId: 1, records: overlapping })).rejects.toThrow(/overlapping records at offset 5/);
    await expect(uploadStreamSetObject({ storage, metadata, nodeId: 1, records: makeRecords(99, 0, 1, 1, 1) })).rejects.toThrow(MetadataError);
    await expect(uploadStreamSetObject({ storage, metadata, nodeId: -1, records: makeRecords(1, 0, 1, 1, 1) })).rejects.toThrow(/nodeId/);
    expect(await storage.listObjects()).toEqual([]);
    await metadata.close();
    storage.close();
  });
});
