import { MetadataError } from '../errors.js';
import { decodeDataBlocks, indexReadGuessFor, readObjectIndex } from '../format/index.js';
import type { StreamRecord } from '../format/types.js';
import type { MetadataStore } from '../metadata/types.js';
import type { ObjectStorage } from '../storage/types.js';
import { throwIfAborted } from '../util/async.js';
import { coalesceRanges } from '../util/ranges.js';
import { indexHoldsRange } from '../plan/index-holds.js';
import { indexCacheOf } from './index-cache.js';
import { checkNonNegativeInt } from '../util/validate.js';

export interface ReadStreamOptions {
  storage: ObjectStorage;
  metadata: MetadataStore;
  streamId: number;
  /** Default: the stream's start offset (trimmed data is never returned). */
  startOffset?: number;
  /** Exclusive. Default: the stream's end offset. */
  endOffset?: number;
  /** Largest single range GET. Default 16 MiB. */
  maxReadSize?: number;
  signal?: AbortSignal;
}

interface Source {
  objectId: number;
  objectSize: number;
  startOffset: number;
  endOffset: number;
  /** Stream ranges metadata lists for the object: what its index read should cover. */
  streams: number;
}

/**
 * Yields a stream's records in offset order, across stream set objects and stream objects,
 * from `startOffset` (or the trim point) up to `endOffset`. A record that straddles the start is
 * yielded whole, as the format stores it. Reads only the index entries that intersect the range.
 */
export async function* readStream(opts: ReadStreamOptions): AsyncGenerator<StreamRecord> {
  const { storage, metadata, signal } = opts;
  const streamId = checkNonNegativeInt('streamId', opts.streamId);
  const [stream] = await metadata.getStreams([streamId]);
  if (!stream) throw new MetadataError('ERR_METADATA_STREAM_NOT_FOUND', `stream ${streamId} does not exist`);
  if (stream.state === 'deleted') return;
  const start = Math.max(stream.startOffset, opts.startOffset === undefined ? 0 : checkNonNegativeInt('startOffset', opts.startOffset));
  const end = opts.endOffset === undefined ? stream.endOffset : checkNonNegativeInt('endOffset', opts.endOffset);
  if (start >= end) return;
  const maxReadSize = opts.maxReadSize ?? 16 * 1024 * 1024;

  const sources: Source[] = [];
  for (const so of await metadata.listStreamObjects({ streamId })) {
    sources.push({ objectId: so.objectId, objectSize: so.objectSize, startOffset: so.startOffset, endOffset: so.endOffset, streams: 1 });
  }
  for (const sso of await metadata.listStreamSetObjects({ streamId })) {
    for (const r of sso.ranges) {
      if (r.streamId === streamId) sources.push({ objectId: sso.objectId, objectSize: sso.objectSize, startOffset: r.startOffset, endOffset: r.endOffset, streams: sso.ranges.length });
    }
  }
  sources.sort((a, b) => a.startOffset - b.startOffset || a.endOffset - b.endOffset);

  // `next` is the first offset not yet yielded: a source that overlaps what was already yielded
  // (possible only while a commit races this read) contributes only what is new.
  let next = start;
  // Indexes are read once per object across reads of this storage (and an SSO with several
  // ranges of this stream is one object).
  const indexes = indexCacheOf(storage);
  for (const src of sources) {
    if (src.endOffset <= next || src.startOffset >= end) continue;
    throwIfAborted(signal);
    const key = storage.keyOf(src.objectId);
    const cacheKey = `${key}#${src.objectSize}`;
    let index = indexes.get(cacheKey);
    if (!index) {
      // Sized by the object's streams: an SSO of 400 streams has a 14 KiB index, past the
      // format's default guess (8 KiB for a small object), which cost it a second GET.
      index = await readObjectIndex((s, e) => storage.getRange(key, s, e, { signal }), src.objectSize, key, { minGuess: indexReadGuessFor(src.objectSize, src.streams) });
      indexes.set(cacheKey, index);
    }
    // Only this source's range (another object may hold the offsets between two ranges of one
    // SSO), found in one pass over the (cached) index.
    const inRange = index.filter((e) => e.streamId === streamId && e.endOffset > src.startOffset && e.startOffset < src.endOffset);
    // Metadata promised this range: an index that does not hold it is an error, never silence.
    const problem = indexHoldsRange(inRange, { streamId, startOffset: src.startOffset, endOffset: src.endOffset });
    if (problem !== null) {
      throw new MetadataError('ERR_METADATA_INDEX_MISMATCH', `stream ${streamId}: object ${src.objectId} (${key}): ${problem}; the object may be damaged or the metadata wrong`);
    }
    const entries = inRange.filter((e) => e.endOffset > next && e.startOffset < end);
    for (const group of coalesceRanges(entries, (e) => e.position, (e) => e.size, maxReadSize)) {
      const first = group[0]!;
      const last = group[group.length - 1]!;
      const bytes = await storage.getRange(key, first.position, last.position + last.size, { signal });
      for (const entry of group) {
        for (const record of decodeDataBlocks(bytes, entry, key, first.position)) {
          if (record.baseOffset + record.count <= next || record.baseOffset >= end) continue;
          yield record;
          next = record.baseOffset + record.count;
        }
      }
    }
  }
}
