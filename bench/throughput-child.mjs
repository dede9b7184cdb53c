// One approach of the throughput benchmark, alone in its own process (so its peak RSS and its
// event-loop delay are its own). Input: one JSON argument (`compactorOptions` overrides the
// compactor's options: cursor-memory.mjs); output: one JSON line on stdout.
//
//   compactor        Compactor.compactOnce() (reader/merger/uploader on worker threads)
//   raw              the practical ceiling: the same objects range-read (<= 16 MiB GETs) and
//                    multipart-uploaded as one object with the SDK at the same concurrency
//                    (4 GETs, 4 parts in flight), no processing at all
//   straightforward  one thread: GET whole objects one by one, concatenate the blocks in
//                    (stream, offset) order in memory with an index, upload with lib-storage Upload
//
// Floors (bench/ceiling.mjs): the raw copy plus only the work the spec and the design card make
// every compactor do before its first upload, at no cost of its own beyond that work:
//   rawAfterIndex    every source's index read first (one tail GET each, 16 in flight, parsed,
//                    as the planner reads them: compaction.md rule 1) while a worker thread loads
//                    the SDK (the actors' thread), then the raw copy: the range-reading path
//   rawReadFirst     every GET of the raw copy done (while the thread boots) before its first
//                    upload, then the uploads: the path that reads objects whole (their indexes
//                    come with their bytes)
//   rawIndexOverlap  the index reads beside the raw copy, nothing waiting on them: not a schedule
//                    a compactor can run (its output order needs the indexes), a relaxation of one
//
// With `warm` (compactor and raw only): the process first ingests a small warm-up set of other
// streams and compacts (or raw-copies) it, then ingests the measured data itself and measures a
// second run: a compactor that stays up between scheduled runs, its threads booted and its code
// compiled, against a raw copy whose code is as warm. The compactor's measured run also reads
// the SSO its warm-up wrote (counted in its bytes read); the raw copy reads the measured data only.
import { MiB, rssSampler } from './lib.mjs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { GetObjectCommand, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, AbortMultipartUploadCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Compactor, S3Storage, SqliteMetadataStore, SqliteThreadStore, createS3Client, readObjectIndex, ObjectWriter } from '../dist/index.js';
import { INDEX_MIN_GUESS } from '../dist/format/index.js';
import { forEachConcurrent } from '../dist/util/async.js';
import { ingestTraffic } from '../dist/demo/traffic.js';

const cfg = JSON.parse(process.argv[2]);
const s3cfg = {
  bucket: cfg.bucket,
  namespace: 'DEFAULT',
  endpoint: cfg.endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'demo', secretAccessKey: 'demo' },
  forcePathStyle: true,
};
// `store`: 'thread' (SqliteThreadStore, the default) or 'host' (SqliteMetadataStore, its
// connection on the host's thread).
const metadata = cfg.store === 'host' ? new SqliteMetadataStore({ path: cfg.dbPath }) : await SqliteThreadStore.open({ path: cfg.dbPath });
const storage = new S3Storage(s3cfg);
const listSources = async (except = new Set()) =>
  (await metadata.listStreamSetObjects({ nodeId: cfg.nodeId })).filter((o) => !except.has(o.objectId)).map((o) => ({ key: storage.keyOf(o.objectId), size: o.objectSize }));
/** The compactor of a warm run: built and run once before the measured run. */
let warmCompactor;
const sources = cfg.warm ? await warmUp() : await listSources();

const eld = monitorEventLoopDelay({ resolution: 1 });
const rss = rssSampler(10);
const rssBefore = process.memoryUsage.rss();
eld.enable();
// The histogram records a delay from its timer's second tick on (the first only sets where the
// next is measured from): a block before that tick goes unseen. A run's synchronous start (lease,
// node claim, candidate listing on an embedded SQLite store) came before it, and no table showed
// it until the measurement waited for two ticks first.
await new Promise((r) => setTimeout(r, 3));
const t0 = performance.now();
const cpu0 = process.cpuUsage();
let out;
try {
  out = await ({ compactor, raw, straightforward, rawAfterIndex, rawReadFirst, rawIndexOverlap })[cfg.approach]();
} finally {
  eld.disable();
}
const wallMs = performance.now() - t0;
// Every thread of the process (the compactor's workers included), user + system.
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
const peakRss = Math.max(rss.stop(), process.resourceUsage().maxRSS * 1024);
await metadata.close();
storage.close();
process.stdout.write(
  JSON.stringify({
    approach: cfg.approach,
    wallMs,
    mibPerS: out.bytesRead / MiB / (wallMs / 1000),
    peakRssMiB: peakRss / MiB,
    rssBeforeMiB: rssBefore / MiB,
    rssGrowthMiB: (peakRss - rssBefore) / MiB,
    cpuMs,
    cpuMsPerMiB: cpuMs / (out.bytesRead / MiB),
    eventLoop: { p50Ms: eld.percentile(50) / 1e6, p99Ms: eld.percentile(99) / 1e6, maxMs: eld.max / 1e6, meanMs: eld.mean / 1e6 },
    ...out,
  }) + '\n',
);
process.exit(0);

function newCompactor() {
  return new Compactor({ storage, metadata, nodeId: cfg.nodeId, memoryLimit: cfg.memoryLimit, partSize: cfg.partSize, ...cfg.compactorOptions });
}

/** Warm-up (see the top of the file); returns the sources of the measured raw copy. */
async function warmUp() {
  const ingestStorage = new S3Storage({ ...s3cfg, endpoint: cfg.warm.ingestEndpoint });
  const ingest = (traffic) => ingestTraffic({ storage: ingestStorage, metadata, nodeId: cfg.nodeId, traffic, partSize: cfg.partSize, concurrency: 4 });
  try {
    await ingest({ streams: 400, objects: 9, totalBytes: 16 * MiB, zipf: 1, seed: 3, firstStreamId: 1_000_000 });
    const before = new Set((await metadata.listStreamSetObjects({ nodeId: cfg.nodeId })).map((o) => o.objectId));
    if (cfg.approach === 'compactor') {
      warmCompactor = newCompactor();
      if (!(await warmCompactor.compactOnce()).committed) throw new Error('warm-up: nothing committed');
    } else if (cfg.approach === 'raw') {
      await raw(await listSources());
    } else {
      throw new Error(`no warm run for ${cfg.approach}`);
    }
    await ingest(cfg.warm.traffic);
    return await listSources(before);
  } finally {
    ingestStorage.close();
  }
}

async function compactor() {
  const c = warmCompactor ?? newCompactor();
  if (process.env.S3SC_BENCH_TRACE) {
    // A timeline on stderr: run phases and every S3 request (start offset, duration, bytes).
    const t0 = performance.now();
    const at = () => (performance.now() - t0).toFixed(0).padStart(6);
    c.events$.subscribe((e) => {
      if (e.type === 's3.requests') for (const r of e.requests) process.stderr.write(`${at()} req ${r.operation} ${Math.round(r.durationMs)}ms ${r.bytes ?? ''}\n`);
      else if (e.type !== 'bytes') process.stderr.write(`${at()} ${e.type} ${e.iteration ?? ''}\n`);
    });
  }
  // Where the time goes: until the plan (thread boot when cold, index reads, planning), and the
  // requests the run sent, by operation (the planner's index reads included).
  const t0 = performance.now();
  let plannedMs;
  const requests = {};
  const counting = c.events$.subscribe((e) => {
    if (e.type === 'run.planned') plannedMs ??= performance.now() - t0;
    else if (e.type === 's3.requests') for (const q of e.requests) requests[q.operation] = (requests[q.operation] ?? 0) + 1;
  });
  try {
    const r = await c.compactOnce();
    if (!r.committed) throw new Error('nothing committed');
    counting.unsubscribe();
    return {
      plannedMs,
      requests,
      bytesRead: r.bytesRead,
      bytesWritten: r.bytesWritten,
      iterations: r.iterations,
      restarts: r.restarts,
      streamObjects: r.streamObjects.length,
      compacted: r.compactedObjectIds.length,
      peakBudgetMiB: r.peakBudgetBytes / MiB,
      memoryLimitMiB: cfg.memoryLimit / MiB,
      budgetInUseAfter: c.budget.inUse,
      durationMs: r.durationMs,
    };
  } finally {
    await c.close();
  }
}

async function raw(srcs = sources, { readFirst = false } = {}) {
  const client = createS3Client(s3cfg);
  const maxGet = 16 * MiB;
  const partSize = cfg.partSize;
  const inFlight = 4;
  const chunks = [];
  for (const s of srcs) for (let p = 0; p < s.size; p += maxGet) chunks.push({ key: s.key, start: p, end: Math.min(s.size, p + maxGet) });
  const Key = `raw-copy/${Date.now()}`;
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: cfg.bucket, Key }));
  let bytesRead = 0;
  let bytesWritten = 0;
  const parts = [];
  const uploads = [];
  let part = Buffer.allocUnsafeSlow(partSize);
  let fill = 0;
  const uploadPart = async (buf) => {
    const PartNumber = parts.length + 1;
    parts.push(undefined);
    while (uploads.length >= inFlight) await uploads.shift();
    const p = client.send(new UploadPartCommand({ Bucket: cfg.bucket, Key, UploadId, PartNumber, Body: buf })).then((r) => {
      parts[PartNumber - 1] = { PartNumber, ETag: r.ETag };
      bytesWritten += buf.byteLength;
    });
    p.catch(() => {});
    uploads.push(p);
  };
  const get = (c) => getRange(client, c.key, c.start, c.end);
  // The GETs' bodies in order, `inFlight` at a time; with `readFirst`, all of them before the first.
  async function* bodies() {
    const pending = [];
    let next = 0;
    const all = [];
    while (next < chunks.length && pending.length < inFlight) pending.push(get(chunks[next++]));
    while (pending.length > 0) {
      const bytes = await pending.shift();
      if (next < chunks.length) pending.push(get(chunks[next++]));
      if (readFirst) all.push(bytes);
      else yield bytes;
    }
    yield* all;
  }
  try {
    for await (const bytes of bodies()) {
      bytesRead += bytes.byteLength;
      let off = 0;
      while (off < bytes.byteLength) {
        const n = Math.min(partSize - fill, bytes.byteLength - off);
        part.set(bytes.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === partSize) {
          await uploadPart(part);
          part = Buffer.allocUnsafeSlow(partSize);
          fill = 0;
        }
      }
    }
    if (fill > 0) await uploadPart(part.subarray(0, fill));
    await Promise.all(uploads);
    await client.send(new CompleteMultipartUploadCommand({ Bucket: cfg.bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: cfg.bucket, Key, UploadId })).catch(() => {});
    throw err;
  } finally {
    client.destroy();
  }
  return { bytesRead, bytesWritten, objects: srcs.length, requests: { GetObject: chunks.length, UploadPart: parts.length, other: 2 } };
}

/** Bytes [start, end) of an object, with one ranged GET. */
function getRange(client, key, start, end) {
  return client.send(new GetObjectCommand({ Bucket: cfg.bucket, Key: key, Range: `bytes=${start}-${end - 1}` })).then((r) => r.Body.transformToByteArray());
}

/** Every source's index as the planner reads it: one tail GET each (64 KiB at least), 16 in flight (the default `indexReadConcurrency`), parsed. */
async function readIndexes(srcs = sources) {
  const client = createS3Client(s3cfg);
  const fetchRange = (key) => (start, end) => getRange(client, key, start, end);
  let entries = 0;
  try {
    await forEachConcurrent(srcs, 16, async (s) => {
      entries += (await readObjectIndex(fetchRange(s.key), s.size, s.key, { minGuess: INDEX_MIN_GUESS })).length;
    });
    return entries;
  } finally {
    client.destroy();
  }
}

/** A worker thread that loads the SDK, as the actors' thread must before its first request. */
function bootThread() {
  const sdk = import.meta.resolve('@aws-sdk/client-s3');
  const w = new Worker(`import(${JSON.stringify(sdk)}).then((m) => new m.S3Client({ region: 'us-east-1' }))`, { eval: true });
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('exit', resolve);
  });
}

async function rawAfterIndex() {
  const [indexEntries] = await Promise.all([readIndexes(), bootThread()]);
  return { ...(await raw()), indexEntries };
}

async function rawReadFirst() {
  const [out] = await Promise.all([raw(sources, { readFirst: true }), bootThread()]);
  return out;
}

async function rawIndexOverlap() {
  const [out, indexEntries] = await Promise.all([raw(), readIndexes()]);
  return { ...out, indexEntries };
}

async function straightforward() {
  const client = createS3Client(s3cfg);
  let bytesRead = 0;
  const blocks = [];
  try {
    for (const s of sources) {
      const r = await client.send(new GetObjectCommand({ Bucket: cfg.bucket, Key: s.key }));
      const bytes = await r.Body.transformToByteArray();
      bytesRead += bytes.byteLength;
      const entries = await readObjectIndex(async (a, b) => bytes.subarray(a, b), bytes.byteLength, s.key);
      for (const e of entries) blocks.push({ e, bytes });
    }
    blocks.sort((a, b) => a.e.streamId - b.e.streamId || a.e.startOffset - b.e.startOffset);
    const writer = new ObjectWriter();
    const pieces = [];
    for (const { e, bytes } of blocks) {
      writer.add({ streamId: e.streamId, startOffset: e.startOffset, endOffset: e.endOffset, recordCount: e.recordCount, size: e.size });
      pieces.push(bytes.subarray(e.position, e.position + e.size));
    }
    pieces.push(writer.finish());
    const body = Buffer.concat(pieces);
    await new Upload({ client, params: { Bucket: cfg.bucket, Key: `straightforward/${Date.now()}`, Body: body }, partSize: cfg.partSize, queueSize: 4 }).done();
    return { bytesRead, bytesWritten: body.byteLength, objects: sources.length };
  } finally {
    client.destroy();
  }
}
