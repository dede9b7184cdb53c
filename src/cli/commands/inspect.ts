import { existsSync, readFileSync, statSync } from 'node:fs';
import { FOOTER_SIZE } from '../../format/constants.js';
import { decodeFooter, decodeIndex, decodeObject } from '../../format/decode.js';
import { objectKey, parseObjectKey } from '../../format/keys.js';
import { fetchFromTail, INDEX_MIN_GUESS, indexReadGuessFor, readObjectIndex } from '../../format/read-index.js';
import type { IndexEntry } from '../../format/types.js';
import type { CliContext } from '../context.js';
import { CliError, EXIT_OK } from '../errors.js';
import { table, writeJson, writeOut } from '../output.js';
import { humanBytes } from '../../util/units.js';

interface StreamRangeSummary {
  streamId: number;
  startOffset: number;
  endOffset: number;
  entries: number;
  records: number;
  bytes: number;
}

/** Index entries grouped into contiguous per-stream ranges (a gap starts a new range). */
export function streamRanges(entries: readonly IndexEntry[]): StreamRangeSummary[] {
  const sorted = [...entries].sort((a, b) => a.streamId - b.streamId || a.startOffset - b.startOffset);
  const out: StreamRangeSummary[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && last.streamId === e.streamId && last.endOffset === e.startOffset) {
      last.endOffset = e.endOffset;
      last.entries++;
      last.records += e.recordCount;
      last.bytes += e.size;
    } else {
      out.push({ streamId: e.streamId, startOffset: e.startOffset, endOffset: e.endOffset, entries: 1, records: e.recordCount, bytes: e.size });
    }
  }
  return out;
}

/**
 * `inspect <key|file|objectId>`: an existing local file is read from disk; a number is an object id
 * in --namespace; anything else is an object key in --bucket.
 */
export async function inspectCommand(ctx: CliContext, target: string, flags: { records?: boolean }): Promise<number> {
  const local = existsSync(target) && statSync(target).isFile();
  let key: string;
  let size: number;
  let footer: { indexPosition: number; indexLength: number };
  let entries: IndexEntry[];
  let records: { streamId: number; epoch: number; baseOffset: number; count: number; payloadSize: number }[] | undefined;
  let where: string;
  let metadataView: Record<string, unknown> | undefined;

  if (local) {
    const bytes = new Uint8Array(readFileSync(target));
    key = target;
    where = `file ${target}`;
    size = bytes.byteLength;
    footer = decodeFooter(bytes.subarray(Math.max(0, size - FOOTER_SIZE)), size, key);
    if (flags.records) {
      const decoded = decodeObject(bytes, key);
      entries = decoded.entries;
      records = decoded.records.map(recordView);
    } else {
      entries = decodeIndex(bytes.subarray(footer.indexPosition, footer.indexPosition + footer.indexLength), footer.indexPosition, key);
    }
  } else {
    const storage = await ctx.storage();
    key = /^\d+$/.test(target) ? objectKey(Number(target), ctx.globals.namespace) : target;
    where = `s3://${storage.bucket}/${key}`;
    const head = await storage.headObject(key);
    if (!head) throw new CliError(`${where} does not exist (inspect takes a local file, an object key or an object id)`);
    size = head.size;
    if (flags.records) {
      const bytes = await storage.getObject(key);
      size = bytes.byteLength;
      footer = decodeFooter(bytes.subarray(Math.max(0, size - FOOTER_SIZE)), size, key);
      const decoded = decodeObject(bytes, key);
      entries = decoded.entries;
      records = decoded.records.map(recordView);
    } else {
      // One read of the tail serves the footer and, unless the index is larger, the index too
      // (it took a footer read, then the index read's own tail).
      const tailStart = size - indexReadGuessFor(size, 0, INDEX_MIN_GUESS);
      const tail = await storage.getRange(key, tailStart, size);
      footer = decodeFooter(tail, size, key);
      entries = await readObjectIndex(fetchFromTail(tail, tailStart, (s, e) => storage.getRange(key, s, e)), size, key, { minGuess: size - tailStart });
    }
    metadataView = await lookupMetadata(ctx, key);
  }

  const ranges = streamRanges(entries);
  if (ctx.globals.json) {
    await writeJson({
      key,
      source: local ? 'file' : 's3',
      size,
      footer: { ...footer, entries: entries.length },
      ...(metadataView ? { metadata: metadataView } : {}),
      entries,
      streams: ranges,
      ...(records ? { records } : {}),
    });
    return EXIT_OK;
  }
  const out: string[] = [];
  out.push(`object ${key} (${where}), ${size} bytes (${humanBytes(size)})`);
  out.push(`footer: index at byte ${footer.indexPosition}, ${footer.indexLength} bytes, ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}; data ${humanBytes(footer.indexPosition)}`);
  if (metadataView) out.push(`metadata: ${describeMetadata(metadataView)}`);
  out.push('', 'index entries:');
  out.push(
    indent(
      table(
        ['#', 'stream', 'start', 'end', 'records', 'position', 'size'],
        entries.map((e, i) => [i, e.streamId, e.startOffset, e.endOffset, e.recordCount, e.position, e.size]),
      ),
    ),
  );
  out.push('', 'stream ranges:');
  out.push(
    indent(
      table(
        ['stream', 'range', 'entries', 'records', 'bytes'],
        ranges.map((r) => [r.streamId, `[${r.startOffset}, ${r.endOffset})`, r.entries, r.records, humanBytes(r.bytes)]),
      ),
    ),
  );
  if (records) {
    out.push('', `records (${records.length}):`);
    out.push(
      indent(
        table(
          ['stream', 'epoch', 'baseOffset', 'count', 'payload'],
          records.map((r) => [r.streamId, r.epoch, r.baseOffset, r.count, `${r.payloadSize} B`]),
        ),
      ),
    );
  }
  await writeOut(out.join('\n'));
  return EXIT_OK;
}

function recordView(r: { streamId: number; epoch: number; baseOffset: number; count: number; payload: Uint8Array }) {
  return { streamId: r.streamId, epoch: r.epoch, baseOffset: r.baseOffset, count: r.count, payloadSize: r.payload.byteLength };
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** What metadata says about the object, when the metadata file exists (best effort). */
async function lookupMetadata(ctx: CliContext, key: string): Promise<Record<string, unknown> | undefined> {
  const parsed = parseObjectKey(key);
  if (!parsed || parsed.namespace !== ctx.globals.namespace || !existsSync(ctx.globals.metadataPath)) return undefined;
  try {
    const metadata = await ctx.metadata({ mustExist: true, readOnly: true });
    const live = await metadata.listAllLiveObjects();
    const sso = live.streamSetObjects.find((o) => o.objectId === parsed.objectId);
    if (sso) return { kind: 'stream set object', state: 'live', ...sso };
    const so = live.streamObjects.find((o) => o.objectId === parsed.objectId);
    if (so) return { kind: 'stream object', state: 'live', ...so };
    return { objectId: parsed.objectId, state: (await metadata.isObjectKnown(parsed.objectId)) ? 'known, not live (compacted or prepared)' : 'unknown to metadata' };
  } catch (err) {
    ctx.logger.debug({ err }, 'metadata lookup failed');
    return undefined;
  }
}

function describeMetadata(m: Record<string, unknown>): string {
  if (m.kind === 'stream set object') {
    const ranges = (m.ranges as unknown[] | undefined)?.length ?? 0;
    return `live stream set object of node ${String(m.nodeId)}, orderId ${String(m.orderId)}, dataTime ${new Date(Number(m.dataTimeMs)).toISOString()}, ${ranges} range(s), size ${String(m.objectSize)}`;
  }
  if (m.kind === 'stream object') return `live stream object of stream ${String(m.streamId)} [${String(m.startOffset)}, ${String(m.endOffset)}), size ${String(m.objectSize)}`;
  return `object ${String(m.objectId)}: ${String(m.state)}`;
}
