/**
 * Reads every stream of a traffic run back and checks it against the digests the generator kept
 * (`ingestTraffic`), with the metadata snapshot and the index cache that keep that pass cheap.
 */
import { createHash } from 'node:crypto';
import type { MetadataStore } from '../metadata/types.js';
import type { ObjectStorage } from '../storage/types.js';
import { readStream } from '../ingest/read-stream.js';
import { digestRecord, mapLimit, type StreamDigest } from './traffic.js';

export interface VerifyResult {
  streams: number;
  records: number;
  bytes: number;
  /** Streams whose read-back differs (all of them counted; `mismatches` describes the first few). */
  failedStreams: number;
  mismatches: string[];
  durationMs: number;
}

/**
 * A read-only view of `metadata` for a verification pass that runs while nothing writes:
 * `listStreamSetObjects({ streamId })` is answered from one snapshot of the live SSOs instead of
 * one query per stream. (SqliteMetadataStore answers a per-stream call by loading every live
 * SSO with all its ranges and filtering in JS, so `readStream` over N streams costs
 * N x all ranges; see the demo notes.)
 */
export function snapshotMetadata(metadata: MetadataStore): MetadataStore {
  let all: ReturnType<MetadataStore['listStreamSetObjects']> | undefined;
  const list: MetadataStore['listStreamSetObjects'] = async (req = {}) => {
    if (req.nodeId !== undefined) return metadata.listStreamSetObjects(req);
    all ??= metadata.listStreamSetObjects({});
    const ssos = await all;
    return req.streamId === undefined ? ssos : ssos.filter((o) => o.ranges.some((r) => r.streamId === req.streamId));
  };
  return new Proxy(metadata, {
    get(target, prop) {
      if (prop === 'listStreamSetObjects') return list;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * `storage` with small range reads (object indexes and footers: objects are immutable) served
 * from a bounded cache, so reading many streams of one big object reads its index once.
 */
export function cachingStorage(storage: ObjectStorage, opts: { maxEntryBytes?: number; maxBytes?: number } = {}): ObjectStorage {
  const maxEntry = opts.maxEntryBytes ?? 1024 * 1024;
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  const cache = new Map<string, Promise<Uint8Array>>();
  let cached = 0;
  const getRange: ObjectStorage['getRange'] = (key, start, end, ro) => {
    if (end - start > maxEntry || cached + (end - start) > maxBytes) return storage.getRange(key, start, end, ro);
    const k = `${key}\0${start}\0${end}`;
    let p = cache.get(k);
    if (!p) {
      cached += end - start;
      p = storage.getRange(key, start, end, ro);
      p.catch(() => {
        cache.delete(k);
        cached -= end - start;
      });
      cache.set(k, p);
    }
    return p;
  };
  return new Proxy(storage, {
    get(target, prop) {
      if (prop === 'getRange') return getRange;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * Reads every stream back with `readStream` and compares it with its digest. `fast` (default
 * true) reads through `snapshotMetadata` and `cachingStorage`: same records, far fewer
 * metadata scans and index GETs.
 */
export async function verifyTraffic(opts: {
  storage: ObjectStorage;
  metadata: MetadataStore;
  digests: Map<number, StreamDigest>;
  concurrency?: number;
  maxMismatches?: number;
  fast?: boolean;
}): Promise<VerifyResult> {
  const started = performance.now();
  const fast = opts.fast ?? true;
  const storage = fast ? cachingStorage(opts.storage) : opts.storage;
  const metadata = fast ? snapshotMetadata(opts.metadata) : opts.metadata;
  const header = Buffer.alloc(16);
  const mismatches: string[] = [];
  let records = 0;
  let bytes = 0;
  let failedStreams = 0;
  const ids = [...opts.digests.keys()];
  await mapLimit(ids, opts.concurrency ?? 8, async (streamId) => {
    const want = opts.digests.get(streamId)!;
    const h = createHash('md5');
    let n = 0;
    let b = 0;
    let end = 0;
    let expected = 0;
    let gap = '';
    for await (const r of readStream({ storage, metadata, streamId })) {
      if (r.baseOffset !== expected && !gap) gap = `record at offset ${r.baseOffset}, expected ${expected}`;
      expected = r.baseOffset + r.count;
      digestRecord(h, header, r.baseOffset, r.count, r.payload);
      n++;
      b += r.payload.byteLength;
      end = r.baseOffset + r.count;
    }
    records += n;
    bytes += b;
    const got = h.digest('hex');
    if (gap || n !== want.records || b !== want.bytes || end !== want.endOffset || got !== want.md5) {
      failedStreams++;
      if (mismatches.length < (opts.maxMismatches ?? 10)) {
        mismatches.push(
          `stream ${streamId}: ${gap || `read ${n} records / ${b} B / end ${end} / md5 ${got.slice(0, 8)}, wrote ${want.records} / ${want.bytes} B / end ${want.endOffset} / md5 ${want.md5.slice(0, 8)}`}`,
        );
      }
    }
  });
  return { streams: ids.length, records, bytes, failedStreams, mismatches, durationMs: performance.now() - started };
}
