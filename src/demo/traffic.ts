/**
 * Synthetic ingest traffic for the demo and the benchmarks: `streams` streams with Zipf-like
 * skewed sizes written as `objects` stream set objects (each a short range of many streams),
 * `totalBytes` of payload in all. Payloads are slices of one shared random buffer (no per-record
 * allocation); every stream keeps a compact digest (records, end offset, bytes, MD5 of
 * offsets + payloads) so a read-back can be verified without keeping the data.
 */
import { createHash, randomFillSync, type Hash } from 'node:crypto';
import type { StreamRecord } from '../format/types.js';
import type { MetadataStore } from '../metadata/types.js';
import type { ObjectStorage } from '../storage/types.js';
import { uploadStreamSetObject } from '../ingest/upload-sso.js';

export interface TrafficOptions {
  streams: number;
  objects: number;
  /** Payload bytes in all (record headers and object indexes come on top). */
  totalBytes: number;
  /** Zipf exponent of stream sizes (1 = classic Zipf). Default 1. */
  zipf?: number;
  /** Largest record payload. Default 16 KiB. */
  maxRecordBytes?: number;
  /** Smallest record payload (a stream with less per object appears in some objects only). Default 1 KiB. */
  minRecordBytes?: number;
  seed?: number;
  /** First stream id. Default 0. */
  firstStreamId?: number;
}

/** Deterministic PRNG (mulberry32); also seeds the CLI's ingest-sample. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface StreamDigest {
  records: number;
  bytes: number;
  endOffset: number;
  md5: string;
}

const SHARED_POOL_BYTES = 16 * 1024 * 1024;

/**
 * Generates SSO after SSO (call `next()` in order; each call returns the records of the next
 * object). Each stream's offsets are contiguous across objects.
 */
export class TrafficGenerator {
  readonly opts: Required<TrafficOptions>;
  /** Payload bytes of each stream over the whole run (index = streamId - firstStreamId). */
  readonly streamBytes: Float64Array;
  private readonly rand: () => number;
  private readonly pool: Buffer;
  private readonly nextOffset: Float64Array;
  private readonly hashes: (Hash | undefined)[];
  private readonly recordCounts: Float64Array;
  private readonly byteCounts: Float64Array;
  private readonly header = Buffer.alloc(16);
  private produced = 0;
  bytesGenerated = 0;
  recordsGenerated = 0;

  constructor(opts: TrafficOptions) {
    this.opts = { zipf: 1, maxRecordBytes: 16 * 1024, minRecordBytes: 1024, seed: 42, firstStreamId: 0, ...opts };
    const { streams, zipf, seed } = this.opts;
    this.rand = rng(seed);
    this.pool = Buffer.allocUnsafe(SHARED_POOL_BYTES);
    randomFillSync(this.pool);
    // Zipf weights by rank, ranks shuffled over stream ids so big streams are spread out.
    const ranks = Array.from({ length: streams }, (_, i) => i + 1);
    for (let i = ranks.length - 1; i > 0; i--) {
      const j = Math.floor(this.rand() * (i + 1));
      [ranks[i], ranks[j]] = [ranks[j]!, ranks[i]!];
    }
    let sum = 0;
    for (let r = 1; r <= streams; r++) sum += 1 / Math.pow(r, zipf);
    this.streamBytes = new Float64Array(streams);
    for (let s = 0; s < streams; s++) this.streamBytes[s] = (this.opts.totalBytes * (1 / Math.pow(ranks[s]!, zipf))) / sum;
    this.nextOffset = new Float64Array(streams);
    this.recordCounts = new Float64Array(streams);
    this.byteCounts = new Float64Array(streams);
    this.hashes = new Array(streams).fill(undefined);
  }

  get done(): boolean {
    return this.produced >= this.opts.objects;
  }

  /** Records of the next SSO, in (stream, offset) order; updates the streams' digests. */
  next(): StreamRecord[] {
    if (this.done) throw new Error('traffic: all objects produced');
    this.produced++;
    const { streams, objects, minRecordBytes, maxRecordBytes, firstStreamId } = this.opts;
    const out: StreamRecord[] = [];
    for (let s = 0; s < streams; s++) {
      // This object's share of the stream, jittered ±50 %.
      let bytes = (this.streamBytes[s]! / objects) * (0.5 + this.rand());
      if (bytes < minRecordBytes) {
        // Small streams appear in some objects only (same expected bytes).
        if (this.rand() * minRecordBytes >= bytes) continue;
        bytes = minRecordBytes;
      }
      let left = Math.round(bytes);
      while (left > 0) {
        let size = Math.min(left, minRecordBytes + Math.floor(this.rand() * (maxRecordBytes - minRecordBytes)));
        if (left - size < minRecordBytes / 2) size = left; // no tiny tail record
        left -= size;
        out.push(this.record(s, firstStreamId + s, size));
      }
    }
    return out;
  }

  private record(s: number, streamId: number, size: number): StreamRecord {
    const count = 1 + Math.floor(size / 512); // a batch of ~512 B messages
    const baseOffset = this.nextOffset[s]!;
    this.nextOffset[s] = baseOffset + count;
    const start = Math.floor(this.rand() * (SHARED_POOL_BYTES - size));
    const payload = this.pool.subarray(start, start + size);
    const h = (this.hashes[s] ??= createHash('md5'));
    digestRecord(h, this.header, baseOffset, count, payload);
    this.recordCounts[s]!++;
    this.byteCounts[s]! += size;
    this.bytesGenerated += size;
    this.recordsGenerated++;
    return { streamId, epoch: 0, baseOffset, count, payload };
  }

  /** The digest of every stream that got data (call once, after the last `next()`). */
  digests(): Map<number, StreamDigest> {
    const m = new Map<number, StreamDigest>();
    for (let s = 0; s < this.opts.streams; s++) {
      const h = this.hashes[s];
      if (!h) continue;
      m.set(this.opts.firstStreamId + s, {
        records: this.recordCounts[s]!,
        bytes: this.byteCounts[s]!,
        endOffset: this.nextOffset[s]!,
        md5: h.digest('hex'),
      });
    }
    return m;
  }
}

export function digestRecord(h: Hash, header: Buffer, baseOffset: number, count: number, payload: Uint8Array): void {
  header.writeDoubleLE(baseOffset, 0);
  header.writeUInt32LE(count, 8);
  header.writeUInt32LE(payload.byteLength, 12);
  h.update(header);
  h.update(payload);
}

/** Runs `fn` over `items` with at most `n` in flight; the first error rejects (after in-flight ones settle). */
export async function mapLimit<T>(items: readonly T[], n: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const lane = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
  if (failed !== undefined) throw failed;
}

export interface IngestResult {
  objects: number;
  records: number;
  payloadBytes: number;
  objectBytes: number;
  digests: Map<number, StreamDigest>;
  durationMs: number;
}

/**
 * Creates the streams and uploads the generator's objects with `uploadStreamSetObject`,
 * `concurrency` at a time (objects are generated in order, so offsets stay contiguous).
 */
export async function ingestTraffic(opts: {
  storage: ObjectStorage;
  metadata: MetadataStore;
  nodeId: number;
  traffic: TrafficOptions;
  concurrency?: number;
  partSize?: number;
  onObject?: (done: number, total: number) => void;
}): Promise<IngestResult> {
  const started = performance.now();
  const gen = new TrafficGenerator(opts.traffic);
  const { streams, objects, firstStreamId } = gen.opts;
  for (let s = 0; s < streams; s++) await opts.metadata.createStream({ streamId: firstStreamId + s, epoch: 0, startOffset: 0 });
  const now = Date.now();
  let objectBytes = 0;
  let done = 0;
  await mapLimit(
    Array.from({ length: objects }, (_, i) => i),
    opts.concurrency ?? 4,
    async (i) => {
      const records = gen.next(); // synchronous: objects are generated in index order
      const sso = await uploadStreamSetObject({
        storage: opts.storage,
        metadata: opts.metadata,
        nodeId: opts.nodeId,
        records,
        // Oldest first, a millisecond apart, all well within forceSplitAfterMs.
        dataTimeMs: now - (objects - i),
        ...(opts.partSize !== undefined ? { partSize: opts.partSize } : {}),
      });
      objectBytes += sso.objectSize;
      opts.onObject?.(++done, objects);
    },
  );
  return {
    objects,
    records: gen.recordsGenerated,
    payloadBytes: gen.bytesGenerated,
    objectBytes,
    digests: gen.digests(),
    durationMs: performance.now() - started,
  };
}
