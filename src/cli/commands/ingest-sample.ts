import { rng } from '../../demo/traffic.js';
import type { StreamRecord } from '../../format/types.js';
import { uploadStreamSetObject, type UploadedStreamSetObject } from '../../ingest/upload-sso.js';
import type { CliContext } from '../context.js';
import { EXIT_OK, UsageError } from '../errors.js';
import { table, writeJson, writeOut } from '../output.js';
import { humanBytes } from '../../util/units.js';
import { parseInteger, parseSize } from '../parse.js';

export interface IngestSampleFlags {
  streams: string;
  objects: string;
  bytes: string;
  recordSize: string;
  blockSize: string;
  firstStreamId?: string;
  skew: string;
  seed: string;
}

/**
 * Creates N streams and uploads M stream set objects of synthetic records, as an ingest node
 * would: stream sizes follow a Zipf-like skew (stream i gets a share ∝ 1/(i+1)^skew), so a few
 * streams are large enough to be split into stream objects and the rest get merged.
 */
export async function ingestSampleCommand(ctx: CliContext, flags: IngestSampleFlags): Promise<number> {
  const nStreams = parseInteger('--streams', flags.streams, 1, 100_000);
  const nObjects = parseInteger('--objects', flags.objects, 1, 100_000);
  const totalBytes = parseSize('--bytes', flags.bytes);
  const recordSize = parseSize('--record-size', flags.recordSize);
  const blockSize = parseSize('--block-size', flags.blockSize);
  const seed = parseInteger('--seed', flags.seed, 0, 2 ** 32 - 1);
  const skew = Number(flags.skew);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(flags.skew) || !Number.isFinite(skew)) throw new UsageError('--skew', `expected a number >= 0 such as 1.2, got ${JSON.stringify(flags.skew)}`);
  if (recordSize < 1) throw new UsageError('--record-size', 'must be at least 1 byte');
  if (blockSize < 1) throw new UsageError('--block-size', 'must be at least 1 byte');
  if (totalBytes < nObjects) throw new UsageError('--bytes', `must be at least one byte per object (${nObjects}), got ${totalBytes}`);
  if (totalBytes > 8 * 1024 ** 3) throw new UsageError('--bytes', `at most 8GiB of sample data, got ${humanBytes(totalBytes)}`);

  const metadata = await ctx.metadata({ mustExist: false });
  const storage = await ctx.storage();
  const g = ctx.globals;
  const rnd = rng(seed); // mulberry32, as the demo's traffic: a seed reproduces a sample

  let firstStreamId: number;
  if (flags.firstStreamId !== undefined) firstStreamId = parseInteger('--first-stream-id', flags.firstStreamId, 0);
  else {
    const existing = (await metadata.listStreams?.()) ?? [];
    firstStreamId = existing.reduce((m, s) => Math.max(m, s.streamId + 1), 0);
  }
  const streamIds = Array.from({ length: nStreams }, (_, i) => firstStreamId + i);
  for (const streamId of streamIds) await metadata.createStream({ streamId, epoch: 0, startOffset: 0 });

  const weights = streamIds.map((_, i) => 1 / Math.pow(i + 1, skew));
  const weightSum = weights.reduce((a, b) => a + b, 0);
  const nextOffset = new Map(streamIds.map((id) => [id, 0]));
  const uploaded: UploadedStreamSetObject[] = [];
  let written = 0;
  const perObject = Math.floor(totalBytes / nObjects);
  const bar = ctx.terminal.progress({ label: 'ingesting', unit: 'bytes' });
  bar.start(totalBytes, `0/${nObjects} objects`);
  try {
    for (let o = 0; o < nObjects; o++) {
      const budget = o === nObjects - 1 ? totalBytes - written : perObject;
      const records: StreamRecord[] = [];
      let used = 0;
      for (let i = 0; i < nStreams; i++) {
        // Every stream gets a share; the last stream takes the rounding remainder.
        let share = i === nStreams - 1 ? budget - used : Math.floor((budget * weights[i]!) / weightSum);
        if (share <= 0) continue;
        used += share;
        const streamId = streamIds[i]!;
        while (share > 0) {
          const size = Math.min(share, Math.max(1, Math.round(recordSize * (0.5 + rnd()))));
          const payload = new Uint8Array(size);
          for (let b = 0; b < size; b += 4) {
            const v = (rnd() * 4294967296) >>> 0;
            payload[b] = v & 0xff;
            if (b + 1 < size) payload[b + 1] = (v >>> 8) & 0xff;
            if (b + 2 < size) payload[b + 2] = (v >>> 16) & 0xff;
            if (b + 3 < size) payload[b + 3] = v >>> 24;
          }
          const count = 1 + Math.floor(rnd() * 10);
          const base = nextOffset.get(streamId)!;
          records.push({ streamId, epoch: 0, baseOffset: base, count, payload });
          nextOffset.set(streamId, base + count);
          share -= size;
        }
      }
      if (records.length === 0) continue;
      const sso = await uploadStreamSetObject({ storage, metadata, nodeId: g.nodeId, records, blockSize });
      written += used;
      uploaded.push(sso);
      ctx.logger.info({ objectId: sso.objectId, bytes: sso.objectSize, streams: sso.streamRanges.length }, 'uploaded sample SSO');
      bar.update(written, `${o + 1}/${nObjects} objects`);
    }
  } finally {
    bar.stop();
  }

  if (g.json) {
    await writeJson({
      nodeId: g.nodeId,
      streams: streamIds.map((streamId) => ({ streamId, endOffset: nextOffset.get(streamId)! })),
      objects: uploaded.map((u) => ({ objectId: u.objectId, key: u.key, objectSize: u.objectSize, streams: u.streamRanges.length })),
      payloadBytes: written,
    });
    return EXIT_OK;
  }
  const out = [
    `ingest-sample: ${nStreams} stream(s) ${streamIds[0]}..${streamIds[streamIds.length - 1]}, ${uploaded.length} SSO(s) for node ${g.nodeId}, ` +
      `${humanBytes(written)} of payload (${humanBytes(uploaded.reduce((a, u) => a + u.objectSize, 0))} in objects)`,
    table(
      ['object', 'key', 'size', 'streams'],
      uploaded.map((u) => [u.objectId, u.key, humanBytes(u.objectSize), u.streamRanges.length]),
    ),
  ];
  await writeOut(out.join('\n'));
  return EXIT_OK;
}
