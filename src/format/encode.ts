/**
 * Writers. `encodeObject` is the whole-object path (ingest uploads, tests, golden vectors); the
 * merger copies data blocks as they are and only needs `ObjectWriter` / `buildIndexAndFooter`
 * to place them and write the index and footer.
 */
import { FormatError } from '../errors.js';
import type { IndexEntry, StreamRecord } from './types.js';
import {
  BLOCK_FLAG,
  BLOCK_HEADER_SIZE,
  BLOCK_MAGIC,
  FOOTER_MAGIC,
  FOOTER_SIZE,
  INDEX_ENTRY_SIZE,
  INT32_MAX,
  MAX_INDEX_ENTRY_SIZE,
  RECORD_HEADER_SIZE,
  RECORD_MAGIC,
} from './constants.js';
import { invalid, isInt32NonNegative, isSafeNonNegative, viewOf, writeInt64 } from './bytes.js';
import { regroupIndex } from './regroup.js';

/** What a data block covers; the index entry of the block minus its position. */
export type BlockRange = Omit<IndexEntry, 'position'>;

/**
 * Checks one block's records (one stream, increasing offsets, int limits) and returns what its
 * index entry will say. Gaps between records are legal (compacted topics leave sparse offsets;
 * AutoMQ's writer accepts them), overlaps are not. recordCount is the number of records, not
 * the offsets they cover: AutoMQ's reader estimates a range's payload as
 * `size - recordCount * 33 - 10`. Validation happens before any byte is written so a bad input
 * never leaves a half-written buffer behind.
 */
export function describeBlock(records: readonly StreamRecord[], blockIndex = 0): BlockRange {
  const where = `block ${blockIndex}`;
  if (!Array.isArray(records) || records.length === 0) invalid(`${where} has no records`);
  if (records.length > INT32_MAX) invalid(`${where} has more than ${INT32_MAX} records`);
  const first = records[0]!;
  let next = 0;
  let content = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const at = `${where} record ${i}`;
    if (typeof r !== 'object' || r === null) invalid(`${at} is not a record`);
    if (!isSafeNonNegative(r.streamId)) invalid(`${at}: streamId ${String(r.streamId)} is not a non-negative safe integer`);
    if (!isSafeNonNegative(r.epoch)) invalid(`${at}: epoch ${String(r.epoch)} is not a non-negative safe integer`);
    if (!isSafeNonNegative(r.baseOffset)) invalid(`${at}: baseOffset ${String(r.baseOffset)} is not a non-negative safe integer`);
    if (!isInt32NonNegative(r.count)) invalid(`${at}: count ${String(r.count)} is not a non-negative int32`);
    if (!Number.isSafeInteger(r.baseOffset + r.count)) invalid(`${at}: baseOffset + count is past 2^53`);
    if (!(r.payload instanceof Uint8Array)) invalid(`${at}: payload is not a Uint8Array`);
    if (r.streamId !== first.streamId) invalid(`${at}: stream ${r.streamId} in a block of stream ${first.streamId}`);
    if (i > 0 && r.baseOffset < next) invalid(`${at}: baseOffset ${r.baseOffset} overlaps the previous record, which ends at ${next}`);
    next = r.baseOffset + r.count;
    content += RECORD_HEADER_SIZE + r.payload.byteLength;
    if (content > INT32_MAX - BLOCK_HEADER_SIZE) invalid(`${where}: block size exceeds int32`);
    if (next - first.baseOffset > INT32_MAX) invalid(`${where}: offsets spanned exceed int32`);
  }
  return {
    streamId: first.streamId,
    startOffset: first.baseOffset,
    endOffset: next,
    recordCount: records.length,
    size: BLOCK_HEADER_SIZE + content,
  };
}

/** Writes an already validated block at `at`; returns the position after it. */
function writeDataBlock(out: Uint8Array, view: DataView, at: number, records: readonly StreamRecord[], size: number): number {
  view.setUint8(at, BLOCK_MAGIC);
  view.setUint8(at + 1, BLOCK_FLAG);
  view.setInt32(at + 2, records.length);
  view.setInt32(at + 6, size - BLOCK_HEADER_SIZE);
  let p = at + BLOCK_HEADER_SIZE;
  for (const r of records) {
    view.setUint8(p, RECORD_MAGIC);
    writeInt64(view, p + 1, r.streamId);
    writeInt64(view, p + 9, r.epoch);
    writeInt64(view, p + 17, r.baseOffset);
    view.setInt32(p + 25, r.count);
    view.setInt32(p + 29, r.payload.byteLength);
    out.set(r.payload, p + RECORD_HEADER_SIZE);
    p += RECORD_HEADER_SIZE + r.payload.byteLength;
  }
  return p;
}

/** One data block holding `records` (one stream, increasing offsets). */
export function encodeDataBlock(records: readonly StreamRecord[]): Uint8Array {
  const range = describeBlock(records);
  const out = new Uint8Array(range.size);
  writeDataBlock(out, viewOf(out), 0, records, range.size);
  return out;
}

function checkEntry(e: IndexEntry, i: number, dataLength: number): void {
  const at = `index entry ${i}`;
  if (typeof e !== 'object' || e === null) invalid(`${at} is not an entry`);
  if (!isSafeNonNegative(e.streamId)) invalid(`${at}: streamId is not a non-negative safe integer`);
  if (!isSafeNonNegative(e.startOffset)) invalid(`${at}: startOffset is not a non-negative safe integer`);
  if (!isSafeNonNegative(e.endOffset)) invalid(`${at}: endOffset is not a non-negative safe integer`);
  if (!isInt32NonNegative(e.endOffset - e.startOffset)) invalid(`${at}: endOffset - startOffset does not fit in int32`);
  if (!isInt32NonNegative(e.recordCount)) invalid(`${at}: recordCount does not fit in int32`);
  if (!isSafeNonNegative(e.position)) invalid(`${at}: position is not a non-negative safe integer`);
  if (!isInt32NonNegative(e.size) || e.size < BLOCK_HEADER_SIZE) invalid(`${at}: size ${e.size} is not a block size`);
  if (e.position + e.size > dataLength) invalid(`${at}: [${e.position}, ${e.position + e.size}) is outside the ${dataLength} data bytes`);
}

function writeIndex(view: DataView, at: number, entries: readonly IndexEntry[]): void {
  let p = at;
  for (const e of entries) {
    writeInt64(view, p, e.streamId);
    writeInt64(view, p + 8, e.startOffset);
    view.setInt32(p + 16, e.endOffset - e.startOffset);
    view.setInt32(p + 20, e.recordCount);
    writeInt64(view, p + 24, e.position);
    view.setInt32(p + 32, e.size);
    p += INDEX_ENTRY_SIZE;
  }
}

function writeFooter(view: DataView, at: number, indexPosition: number, indexLength: number): void {
  writeInt64(view, at, indexPosition);
  view.setInt32(at + 8, indexLength);
  // Bytes 12..40 stay zero: a fresh Uint8Array is zero-filled.
  view.setBigUint64(at + 40, FOOTER_MAGIC);
}

/** The index block for `entries`, as they are (no regrouping). */
export function encodeIndex(entries: readonly IndexEntry[], dataLength = Number.MAX_SAFE_INTEGER): Uint8Array {
  entries.forEach((e, i) => checkEntry(e, i, dataLength));
  if (entries.length * INDEX_ENTRY_SIZE > INT32_MAX) invalid('index block length exceeds int32');
  const out = new Uint8Array(entries.length * INDEX_ENTRY_SIZE);
  writeIndex(viewOf(out), 0, entries);
  return out;
}

/** The 48-byte footer. */
export function encodeFooter(indexPosition: number, indexLength: number): Uint8Array {
  if (!isSafeNonNegative(indexPosition)) invalid(`index position ${indexPosition} is not a non-negative safe integer`);
  if (!isInt32NonNegative(indexLength) || indexLength % INDEX_ENTRY_SIZE !== 0)
    invalid(`index length ${indexLength} is not an int32 multiple of ${INDEX_ENTRY_SIZE}`);
  const out = new Uint8Array(FOOTER_SIZE);
  writeFooter(viewOf(out), 0, indexPosition, indexLength);
  return out;
}

/**
 * Index block + footer for an object whose data blocks take `dataLength` bytes. Entries are
 * written as given (call `regroupIndex` first to merge them).
 */
export function buildIndexAndFooter(entries: readonly IndexEntry[], dataLength: number): Uint8Array {
  if (!isSafeNonNegative(dataLength)) invalid(`data length ${dataLength} is not a non-negative safe integer`);
  entries.forEach((e, i) => checkEntry(e, i, dataLength));
  const indexLength = entries.length * INDEX_ENTRY_SIZE;
  if (indexLength > INT32_MAX) invalid('index block length exceeds int32');
  const out = new Uint8Array(indexLength + FOOTER_SIZE);
  const view = viewOf(out);
  writeIndex(view, 0, entries);
  writeFooter(view, indexLength, dataLength, indexLength);
  return out;
}

/**
 * Tracks where each data block lands while the caller streams the blocks elsewhere (the merger
 * copies source blocks untouched into upload parts), then writes the index and footer. Holds
 * no data bytes.
 */
export class ObjectWriter {
  private readonly list: IndexEntry[] = [];
  private length = 0;

  /** Bytes of data blocks added so far (= the index position once finished). */
  get dataLength(): number {
    return this.length;
  }

  /** Entries in the order added, one per `add`. */
  get entries(): readonly IndexEntry[] {
    return this.list;
  }

  /**
   * Places a range of one or more whole data blocks (an index entry of a source object, say)
   * at the current end and returns its entry in this object.
   */
  add(range: BlockRange): IndexEntry {
    const entry: IndexEntry = {
      streamId: range.streamId,
      startOffset: range.startOffset,
      endOffset: range.endOffset,
      recordCount: range.recordCount,
      position: this.length,
      size: range.size,
    };
    checkEntry(entry, this.list.length, Number.MAX_SAFE_INTEGER);
    this.list.push(entry);
    this.length += entry.size;
    return entry;
  }

  /** Encodes `records` as one data block, places it and returns its bytes. */
  addRecords(records: readonly StreamRecord[]): Uint8Array {
    const bytes = encodeDataBlock(records);
    this.add(describeBlock(records));
    return bytes;
  }

  /** Index block + footer; entries are regrouped (each under 1 MiB) unless `regroup` is false. */
  finish(opts: { regroup?: boolean; maxEntrySize?: number } = {}): Uint8Array {
    const entries = opts.regroup === false ? this.list : regroupIndex(this.list, { maxEntrySize: opts.maxEntrySize ?? MAX_INDEX_ENTRY_SIZE });
    return buildIndexAndFooter(entries, this.length);
  }
}

/**
 * A whole object: one data block per element of `blocks`, one index entry per block, in the
 * order given (callers sort blocks by (streamId, startOffset) when the index must be sorted).
 */
export function encodeObject(blocks: readonly { records: readonly StreamRecord[] }[]): Uint8Array {
  if (!Array.isArray(blocks)) invalid('blocks is not an array');
  const ranges = blocks.map((b, i) => describeBlock(b?.records, i));
  let dataLength = 0;
  const entries: IndexEntry[] = ranges.map((r) => {
    const e = { ...r, position: dataLength };
    dataLength += r.size;
    return e;
  });
  const indexLength = entries.length * INDEX_ENTRY_SIZE;
  if (indexLength > INT32_MAX) invalid('index block length exceeds int32');
  const total = dataLength + indexLength + FOOTER_SIZE;
  let out: Uint8Array;
  try {
    out = new Uint8Array(total);
  } catch (cause) {
    throw new FormatError('ERR_FORMAT_INVALID_INPUT', `object of ${total} bytes cannot be allocated`, undefined, 0, { cause });
  }
  const view = viewOf(out);
  blocks.forEach((b, i) => writeDataBlock(out, view, entries[i]!.position, b.records, entries[i]!.size));
  writeIndex(view, dataLength, entries);
  writeFooter(view, dataLength + indexLength, dataLength, indexLength);
  return out;
}

