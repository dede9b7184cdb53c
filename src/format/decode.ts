/**
 * Zero-copy decoders: record payloads are `subarray` views into the input, so callers that keep
 * them must keep (or copy) the input buffer. Every check throws a FormatError naming the key and
 * the absolute byte position in the object; every loop consumes at least one header per step
 * and is bounded by the input length, so no input can hang a decoder.
 */
import type { IndexEntry, StreamRecord } from './types.js';
import {
  BLOCK_HEADER_SIZE,
  BLOCK_MAGIC,
  FOOTER_MAGIC,
  FOOTER_SIZE,
  INDEX_ENTRY_SIZE,
  RECORD_HEADER_SIZE,
  RECORD_MAGIC,
} from './constants.js';
import { fail, readNonNegativeInt32, readSafeInt64, viewOf } from './bytes.js';

export interface Footer {
  indexPosition: number;
  indexLength: number;
}

/**
 * Reads the footer from `tail`, the last `tail.length` bytes of an object of `objectSize`
 * bytes. Checks the magic and that data + index + footer add up to the object size.
 */
export function decodeFooter(tail: Uint8Array, objectSize: number, key?: string): Footer {
  if (!Number.isSafeInteger(objectSize) || objectSize < FOOTER_SIZE)
    fail('ERR_FORMAT_TRUNCATED', `object of ${objectSize} bytes is shorter than its ${FOOTER_SIZE}-byte footer`, key, 0);
  if (tail.length < FOOTER_SIZE)
    fail('ERR_FORMAT_TRUNCATED', `tail of ${tail.length} bytes is shorter than the footer`, key, objectSize - tail.length);
  if (tail.length > objectSize)
    fail('ERR_FORMAT_LENGTH_MISMATCH', `tail of ${tail.length} bytes is longer than the object`, key, 0);
  const start = objectSize - FOOTER_SIZE;
  const view = viewOf(tail.subarray(tail.length - FOOTER_SIZE));
  if (view.getBigUint64(40) !== FOOTER_MAGIC)
    fail('ERR_FORMAT_FOOTER_MAGIC', `footer magic 0x${view.getBigUint64(40).toString(16)} is not 0x${FOOTER_MAGIC.toString(16)}`, key, start + 40);
  const indexPosition = readSafeInt64(view, 0, 'index position', key, start);
  const indexLength = readNonNegativeInt32(view, 8, 'index length', key, start + 8);
  if (indexLength % INDEX_ENTRY_SIZE !== 0)
    fail('ERR_FORMAT_LENGTH_MISMATCH', `index length ${indexLength} is not a multiple of ${INDEX_ENTRY_SIZE}`, key, start + 8);
  if (indexPosition + indexLength !== start)
    fail(
      'ERR_FORMAT_LENGTH_MISMATCH',
      `index at ${indexPosition} of ${indexLength} bytes does not end where the footer starts (${start})`,
      key,
      start,
    );
  return { indexPosition, indexLength };
}

/**
 * Decodes the index block `bytes`, which starts at `indexPosition` in the object. Each entry
 * must lie within the data, [0, indexPosition).
 */
export function decodeIndex(bytes: Uint8Array, indexPosition: number, key?: string): IndexEntry[] {
  if (bytes.length % INDEX_ENTRY_SIZE !== 0)
    fail('ERR_FORMAT_LENGTH_MISMATCH', `index length ${bytes.length} is not a multiple of ${INDEX_ENTRY_SIZE}`, key, indexPosition);
  const view = viewOf(bytes);
  const entries: IndexEntry[] = [];
  for (let at = 0; at < bytes.length; at += INDEX_ENTRY_SIZE) {
    const p = indexPosition + at;
    const streamId = readSafeInt64(view, at, 'entry streamId', key, p);
    const startOffset = readSafeInt64(view, at + 8, 'entry startOffset', key, p + 8);
    const delta = readNonNegativeInt32(view, at + 16, 'entry endOffset - startOffset', key, p + 16);
    const recordCount = readNonNegativeInt32(view, at + 20, 'entry recordCount', key, p + 20);
    const position = readSafeInt64(view, at + 24, 'entry position', key, p + 24);
    const size = readNonNegativeInt32(view, at + 32, 'entry size', key, p + 32);
    const endOffset = startOffset + delta;
    if (!Number.isSafeInteger(endOffset)) fail('ERR_FORMAT_UNSAFE_INTEGER', `entry endOffset ${endOffset} is past 2^53`, key, p + 16);
    if (size < BLOCK_HEADER_SIZE)
      fail('ERR_FORMAT_LENGTH_MISMATCH', `entry size ${size} is smaller than a block header`, key, p + 32);
    if (position + size > indexPosition)
      fail('ERR_FORMAT_INDEX_BOUNDS', `entry [${position}, ${position + size}) is outside the data [0, ${indexPosition})`, key, p + 24);
    entries.push({ streamId, startOffset, endOffset, recordCount, position, size });
  }
  return entries;
}

/** One physical data block found while walking a range. */
export interface DataBlockInfo {
  /** Absolute position of the block in the object. */
  position: number;
  /** Block size, header included. */
  size: number;
  records: StreamRecord[];
}

/** Called for each record a block walk finds: header fields, payload bounds in `bytes`, absolute record position. */
type RecordVisitor = (streamId: number, epoch: number, baseOffset: number, count: number, payloadStart: number, payloadLength: number, recordPosition: number) => void;

/**
 * The one walk over data blocks: block and record magics, and every length against the content.
 * `bytes` holds exactly whole blocks, its first byte at object position `position`. Calls
 * `onBlock` after each block's records. Allocates nothing per record itself.
 */
function walkBlocks(
  bytes: Uint8Array,
  key: string | undefined,
  position: number,
  onRecord: RecordVisitor,
  onBlock?: (blockPosition: number, size: number) => void,
): void {
  const view = viewOf(bytes);
  let at = 0;
  while (at < bytes.length) {
    const p = position + at;
    if (bytes.length - at < BLOCK_HEADER_SIZE)
      fail('ERR_FORMAT_LENGTH_MISMATCH', `${bytes.length - at} bytes left, too few for a block header: range does not end at a block boundary`, key, p);
    if (view.getUint8(at) !== BLOCK_MAGIC)
      fail('ERR_FORMAT_BLOCK_MAGIC', `block magic 0x${view.getUint8(at).toString(16)} is not 0x${BLOCK_MAGIC.toString(16)}`, key, p);
    // Byte at+1 is the flag, ignored by readers.
    const recordCount = readNonNegativeInt32(view, at + 2, 'block record count', key, p + 2);
    const length = readNonNegativeInt32(view, at + 6, 'block length', key, p + 6);
    const contentStart = at + BLOCK_HEADER_SIZE;
    if (length > bytes.length - contentStart)
      fail('ERR_FORMAT_LENGTH_MISMATCH', `block length ${length} runs past the end of its range (${bytes.length - contentStart} bytes left)`, key, p + 6);
    const end = contentStart + length;
    let r = contentStart;
    for (let i = 0; i < recordCount; i++) {
      const rp = position + r;
      if (end - r < RECORD_HEADER_SIZE)
        fail('ERR_FORMAT_LENGTH_MISMATCH', `block says ${recordCount} records but its content holds only ${i}`, key, rp);
      if (view.getUint8(r) !== RECORD_MAGIC)
        fail('ERR_FORMAT_RECORD_MAGIC', `record magic 0x${view.getUint8(r).toString(16)} is not 0x${RECORD_MAGIC.toString(16)}`, key, rp);
      const streamId = readSafeInt64(view, r + 1, 'record streamId', key, rp + 1);
      const epoch = readSafeInt64(view, r + 9, 'record epoch', key, rp + 9);
      const baseOffset = readSafeInt64(view, r + 17, 'record baseOffset', key, rp + 17);
      const count = readNonNegativeInt32(view, r + 25, 'record count', key, rp + 25);
      const n = readNonNegativeInt32(view, r + 29, 'record payload length', key, rp + 29);
      if (!Number.isSafeInteger(baseOffset + count)) fail('ERR_FORMAT_UNSAFE_INTEGER', `record end offset is past 2^53`, key, rp + 25);
      const payloadStart = r + RECORD_HEADER_SIZE;
      if (n > end - payloadStart)
        fail('ERR_FORMAT_LENGTH_MISMATCH', `record payload of ${n} bytes runs past its block (${end - payloadStart} bytes left)`, key, rp + 29);
      onRecord(streamId, epoch, baseOffset, count, payloadStart, n, rp);
      r = payloadStart + n;
    }
    if (r !== end)
      fail('ERR_FORMAT_LENGTH_MISMATCH', `block length ${length} but its ${recordCount} records take ${r - contentStart} bytes`, key, p + 6);
    onBlock?.(p, end - at);
    at = end;
  }
}

/**
 * Walks the data blocks that exactly fill `bytes`, whose first byte is at object position
 * `position`. Checks block and record magics and that every length agrees with the content.
 */
export function decodeBlocks(bytes: Uint8Array, key?: string, position = 0): DataBlockInfo[] {
  const blocks: DataBlockInfo[] = [];
  let records: StreamRecord[] = [];
  walkBlocks(
    bytes,
    key,
    position,
    (streamId, epoch, baseOffset, count, payloadStart, n) => {
      records.push({ streamId, epoch, baseOffset, count, payload: bytes.subarray(payloadStart, payloadStart + n) });
    },
    (blockPosition, size) => {
      blocks.push({ position: blockPosition, size, records });
      records = [];
    },
  );
  return blocks;
}

/** The records of the data blocks that exactly fill `blockBytes` (first byte at `position`). */
export function decodeRecords(blockBytes: Uint8Array, key?: string, position = 0): StreamRecord[] {
  const out: StreamRecord[] = [];
  for (const b of decodeBlocks(blockBytes, key, position)) for (const r of b.records) out.push(r);
  return out;
}

/** Where `entry`'s bytes lie in `bytes` (which start at object position `bytesPosition`). */
function entryBytes(bytes: Uint8Array, entry: IndexEntry, key: string | undefined, bytesPosition: number): Uint8Array {
  const from = entry.position - bytesPosition;
  if (from < 0 || from + entry.size > bytes.length)
    fail(
      'ERR_FORMAT_TRUNCATED',
      `entry [${entry.position}, ${entry.position + entry.size}) is not inside the bytes held [${bytesPosition}, ${bytesPosition + bytes.length})`,
      key,
      entry.position,
    );
  return bytes.subarray(from, from + entry.size);
}

/**
 * Checks `entry`'s blocks against it, record by record, without building records: one stream,
 * offsets increasing from startOffset (the first record's baseOffset) to endOffset (the last
 * record's end), gaps allowed and overlaps not, recordCount records, whole blocks. What the
 * merger runs on every block it copies, so damage is never copied into a new object.
 */
export function checkDataBlocks(
  bytes: Uint8Array,
  entry: IndexEntry,
  key?: string,
  bytesPosition = 0,
  onRecord?: (baseOffset: number, count: number, epoch: number, payloadStart: number, payloadLength: number) => void,
): void {
  const own = entryBytes(bytes, entry, key, bytesPosition);
  let next = entry.startOffset;
  let seen = 0;
  walkBlocks(own, key, entry.position, (streamId, epoch, baseOffset, count, payloadStart, n, rp) => {
    if (streamId !== entry.streamId)
      fail('ERR_FORMAT_LENGTH_MISMATCH', `record of stream ${streamId} under an index entry of stream ${entry.streamId}`, key, rp + 1);
    if (seen === 0 ? baseOffset !== entry.startOffset : baseOffset < next)
      fail(
        'ERR_FORMAT_LENGTH_MISMATCH',
        seen === 0
          ? `first record at offset ${baseOffset} but the index entry starts at ${entry.startOffset}`
          : `record baseOffset ${baseOffset} overlaps the previous record, which ends at ${next}`,
        key,
        rp + 17,
      );
    next = baseOffset + count;
    seen++;
    onRecord?.(baseOffset, count, epoch, payloadStart, n);
  });
  if (next !== entry.endOffset)
    fail('ERR_FORMAT_LENGTH_MISMATCH', `records end at offset ${next} but the index entry says ${entry.endOffset}`, key, entry.position);
  if (seen !== entry.recordCount)
    fail('ERR_FORMAT_LENGTH_MISMATCH', `entry holds ${seen} records but the index entry says ${entry.recordCount}`, key, entry.position);
}

/**
 * The records covered by `entry`, checked against it as `checkDataBlocks` does. Payloads are
 * views into `bytes`, which holds object bytes from position `bytesPosition` (0 for the whole
 * object, or the start of a ranged GET).
 */
export function decodeDataBlocks(bytes: Uint8Array, entry: IndexEntry, key?: string, bytesPosition = 0): StreamRecord[] {
  const own = entryBytes(bytes, entry, key, bytesPosition);
  const out: StreamRecord[] = [];
  checkDataBlocks(own, entry, key, entry.position, (baseOffset, count, epoch, payloadStart, n) => {
    out.push({ streamId: entry.streamId, epoch, baseOffset, count, payload: own.subarray(payloadStart, payloadStart + n) });
  });
  return out;
}

/**
 * Decodes and checks a whole object: footer, index, and every data block. Index entries must
 * cover the data in order without gap or overlap (as every writer lays them out), so no byte
 * of data goes unchecked.
 */
export function decodeObject(bytes: Uint8Array, key?: string): { entries: IndexEntry[]; records: StreamRecord[] } {
  if (bytes.length < FOOTER_SIZE)
    fail('ERR_FORMAT_TRUNCATED', `object of ${bytes.length} bytes is shorter than its ${FOOTER_SIZE}-byte footer`, key, bytes.length);
  const { indexPosition, indexLength } = decodeFooter(bytes.subarray(bytes.length - FOOTER_SIZE), bytes.length, key);
  const entries = decodeIndex(bytes.subarray(indexPosition, indexPosition + indexLength), indexPosition, key);
  const records: StreamRecord[] = [];
  let expected = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.position !== expected)
      fail(
        'ERR_FORMAT_LENGTH_MISMATCH',
        `index entry ${i} starts at ${e.position} but the previous entries end at ${expected}`,
        key,
        indexPosition + i * INDEX_ENTRY_SIZE + 24,
      );
    for (const r of decodeDataBlocks(bytes, e, key)) records.push(r);
    expected = e.position + e.size;
  }
  if (expected !== indexPosition)
    fail('ERR_FORMAT_LENGTH_MISMATCH', `index entries cover ${expected} bytes of ${indexPosition} data bytes`, key, expected);
  return { entries, records };
}
