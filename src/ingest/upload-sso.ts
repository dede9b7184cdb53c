import { MetadataError, OptionsError, toCompactorError } from '../errors.js';
import { INT32_MAX, encodeObject } from '../format/index.js';
import type { StreamRecord } from '../format/types.js';
import type { MetadataStore, StreamRange } from '../metadata/types.js';
import type { ObjectStorage } from '../storage/types.js';
import { checkPartSizeForStorage } from '../storage/part-size.js';
import { uploadObject } from '../storage/upload-object.js';
import { throwIfAborted } from '../util/async.js';
import { checkNonNegativeInt, checkPositiveInt } from '../util/validate.js';

export interface UploadStreamSetObjectOptions {
  storage: ObjectStorage;
  metadata: MetadataStore;
  nodeId: number;
  /** Any order; each stream's records must not overlap (gaps are fine: sparse offsets). */
  records: readonly StreamRecord[];
  /** Target bytes of one data block (a block never splits a record). Default 512 KiB. */
  blockSize?: number;
  /** Objects above this go up as multipart uploads with parts of this size. Default 16 MiB. */
  partSize?: number;
  /** Data time of the object, for compaction ordering and force split. Default now. */
  dataTimeMs?: number;
  signal?: AbortSignal;
}

export interface UploadedStreamSetObject {
  objectId: number;
  key: string;
  objectSize: number;
  streamRanges: StreamRange[];
}

const DEFAULT_BLOCK_SIZE = 512 * 1024;
const DEFAULT_PART_SIZE = 16 * 1024 * 1024;

/**
 * What an ingest node calls to persist a WAL batch: encode the records as one stream set object,
 * upload it, and register it in metadata. Nothing is committed unless the object is fully
 * uploaded; a failed multipart upload is aborted, and an object whose commit fails is deleted
 * (best effort: garbage collection removes it otherwise).
 */
export async function uploadStreamSetObject(opts: UploadStreamSetObjectOptions): Promise<UploadedStreamSetObject> {
  const { storage, metadata, signal } = opts;
  const nodeId = checkNonNegativeInt('nodeId', opts.nodeId);
  const blockSize = checkPositiveInt('blockSize', opts.blockSize ?? DEFAULT_BLOCK_SIZE);
  const partSize = checkPositiveInt('partSize', opts.partSize ?? DEFAULT_PART_SIZE);
  checkPartSizeForStorage(storage, partSize);
  if (!Array.isArray(opts.records) || opts.records.length === 0) {
    throw new OptionsError('records', 'must be a non-empty array of stream records');
  }
  throwIfAborted(signal);

  const { blocks, ranges } = cutBlocks(opts.records, blockSize);
  await checkStreamsWritable(metadata, ranges);
  const bytes = encodeObject(blocks);

  const objectId = await metadata.prepareObjectIds(1);
  const key = storage.keyOf(objectId);
  await uploadObject(storage, key, bytes, { partSize, signal });
  try {
    await metadata.commitStreamSetObject({
      nodeId,
      objectId,
      objectSize: bytes.byteLength,
      streamRanges: ranges,
      streamObjects: [],
      compactedObjectIds: [],
      ...(opts.dataTimeMs !== undefined ? { dataTimeMs: opts.dataTimeMs } : {}),
    });
  } catch (err) {
    // The connection broke with the COMMIT in flight: read back whether it happened before
    // deleting anything (a committed object deleted is data lost).
    if ((err as { code?: string }).code === 'ERR_METADATA_OUTCOME_UNKNOWN') {
      const committed = await metadata
        .listStreamSetObjects({ nodeId, withRanges: false })
        .then((l) => l.some((o) => o.objectId === objectId))
        .catch(() => undefined);
      if (committed === true) return { objectId, key, objectSize: bytes.byteLength, streamRanges: ranges };
      if (committed === undefined) throw toCompactorError(err); // unknown: left for GC
    }
    await storage.deleteObjects([key]).catch(() => {});
    throw toCompactorError(err);
  }
  return { objectId, key, objectSize: bytes.byteLength, streamRanges: ranges };
}

/**
 * Sorts records by (stream, offset) and cuts them into blocks of one stream each, about
 * `blockSize` bytes. Each stream gets one range, from its first record to the end of its last:
 * gaps between records are sparse offsets (compacted topics), legal inside a block and covered
 * by the range, as AutoMQ's writer does. Overlapping records are refused.
 */
export function cutBlocks(records: readonly StreamRecord[], blockSize: number): { blocks: { records: StreamRecord[] }[]; ranges: StreamRange[] } {
  const sorted = [...records].sort((a, b) => a.streamId - b.streamId || a.baseOffset - b.baseOffset);
  const blocks: { records: StreamRecord[] }[] = [];
  const ranges: StreamRange[] = [];
  let current: StreamRecord[] = [];
  let currentBytes = 0;
  let range: StreamRange | undefined;
  for (const r of sorted) {
    const sameStream = range !== undefined && range.streamId === r.streamId;
    if (sameStream && r.baseOffset < range!.endOffset) {
      throw new OptionsError(
        'records',
        `stream ${r.streamId} has overlapping records at offset ${r.baseOffset} (previous record ends at ${range!.endOffset})`,
      );
    }
    const recordBytes = 33 + r.payload.byteLength;
    // A block's offset span is an int32 on disk: a huge gap starts a new block.
    const spanTooLong = current.length > 0 && r.baseOffset + r.count - current[0]!.baseOffset > INT32_MAX;
    if (!sameStream || spanTooLong || (current.length > 0 && currentBytes + recordBytes > blockSize)) {
      if (current.length > 0) blocks.push({ records: current });
      current = [];
      currentBytes = 0;
    }
    if (!sameStream) {
      range = { streamId: r.streamId, startOffset: r.baseOffset, endOffset: r.baseOffset + r.count };
      ranges.push(range);
    } else {
      range!.endOffset = r.baseOffset + r.count;
    }
    current.push(r);
    currentBytes += recordBytes;
  }
  if (current.length > 0) blocks.push({ records: current });
  return { blocks, ranges };
}

async function checkStreamsWritable(metadata: MetadataStore, ranges: readonly StreamRange[]): Promise<void> {
  const ids = [...new Set(ranges.map((r) => r.streamId))];
  const streams = new Map((await metadata.getStreams(ids)).map((s) => [s.streamId, s]));
  for (const id of ids) {
    const s = streams.get(id);
    if (!s) throw new MetadataError('ERR_METADATA_STREAM_NOT_FOUND', `stream ${id} does not exist: create it with metadata.createStream() before writing to it`);
    if (s.state !== 'opened') throw new MetadataError('ERR_METADATA_STREAM_NOT_FOUND', `stream ${id} is ${s.state}: only opened streams accept writes`);
  }
}
