/**
 * Issue #11, "verify at compaction speed": readStream read an object's footer and index again
 * for every stream it read from that object. Parsed indexes are now cached per storage
 * (bounded, least recently used out), so N streams of one SSO cost one index read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IndexCache } from '../../src/ingest/index-cache.js';
import { readStream } from '../../src/ingest/read-stream.js';
import { uploadStreamSetObject } from '../../src/ingest/upload-sso.js';
import { SqliteMetadataStore } from '../../src/metadata/index.js';
import type { IndexEntry } from '../../src/format/types.js';
import { makeBucket, makeStorage, s3Endpoint } from '../support/env.js';
import type { S3Storage } from '../../src/storage/index.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { collect, makeRecords } from '../support/records.js';

let proxy: FaultProxy;
beforeAll(async () => {
  proxy = await startFaultProxy(s3Endpoint());
});
afterAll(async () => {
  await proxy.close();
});

/**
 * One SSO of `streams` streams (`recordsEach` records of `size` bytes a stream) written directly,
 * then `read` with a storage behind the proxy, its request log cleared.
 */
async function withSsoBehindProxy(prefix: string, streams: number, recordsEach: number, size: number, read: (storage: S3Storage, metadata: SqliteMetadataStore) => Promise<void>): Promise<void> {
  const direct = await makeBucket(prefix);
  const metadata = new SqliteMetadataStore({ path: ':memory:' });
  try {
    const records = [];
    for (let s = 0; s < streams; s++) {
      await metadata.createStream({ streamId: s, epoch: 0, startOffset: 0 });
      records.push(...makeRecords(s, 0, 1, recordsEach, size));
    }
    await uploadStreamSetObject({ storage: direct, metadata, nodeId: 1, records });
    const viaProxy = makeStorage(direct.bucket, { endpoint: proxy.url });
    try {
      proxy.requests.length = 0;
      await read(viaProxy, metadata);
    } finally {
      viaProxy.close();
    }
  } finally {
    await metadata.close();
    direct.close();
  }
}

describe('index cache of the read path', () => {
  it('reading 20 streams of one SSO reads its index once', async () => {
    await withSsoBehindProxy('index-cache', 20, 3, 200, async (storage, metadata) => {
      for (let s = 0; s < 20; s++) expect(await collect(readStream({ storage, metadata, streamId: s }))).toHaveLength(3);
      // One tail read for the index, then one ranged GET of each stream's blocks.
      expect(proxy.count('GetObject')).toBe(1 + 20);
    });
  });

  it('an SSO of 400 streams: its index in one GET (the default 8 KiB guess took two)', async () => {
    await withSsoBehindProxy('index-guess', 400, 1, 10, async (storage, metadata) => {
      expect(await collect(readStream({ storage, metadata, streamId: 7 }))).toHaveLength(1);
      // One tail read with footer and index (400 x 36 B), one GET of the stream's block.
      expect(proxy.count('GetObject')).toBe(2);
    });
  });

  it('is bounded by the entries it holds, least recently used out first', () => {
    const entries = (n: number) => Array.from({ length: n }, () => ({}) as IndexEntry);
    const cache = new IndexCache(10);
    cache.set('a', entries(4));
    cache.set('b', entries(4));
    expect(cache.get('a')).toHaveLength(4); // a is now the most recent
    cache.set('c', entries(4)); // 12 > 10: b goes
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toHaveLength(4);
    expect(cache.get('c')).toHaveLength(4);
    cache.set('huge', entries(11)); // larger than the whole cache: not kept
    expect(cache.get('huge')).toBeUndefined();
    expect(cache.size).toBe(2);
  });
});
