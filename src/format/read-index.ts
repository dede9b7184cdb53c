/**
 * Tail-first index read for an object of known size: one ranged read usually gets footer and
 * index together; a second, exact read is needed only when the index is larger than the guess.
 * The fetch function keeps this module free of storage code (and testable with a counter).
 */
import type { IndexEntry } from './types.js';
import { FOOTER_SIZE, INDEX_ENTRY_SIZE, INDEX_GUESS_BASE, INDEX_GUESS_PER_MIB } from './constants.js';
import { fail } from './bytes.js';
import { decodeFooter, decodeIndex } from './decode.js';

/** Returns bytes [start, end) of the object. */
export type FetchRange = (start: number, end: number) => Promise<Uint8Array>;

const MiB = 1024 * 1024;

/** Bytes the first read takes from the end: 8 KiB + 36 B per MiB of object, at most the object. */
export function indexReadGuess(objectSize: number): number {
  return Math.min(objectSize, INDEX_GUESS_BASE + INDEX_GUESS_PER_MIB * Math.ceil(objectSize / MiB));
}

/**
 * Least first read of an SSO's index. SSOs of a WAL hold short ranges of many streams: their
 * indexes (36 B an entry) often pass the format's 8 KiB guess, and a second GET per object costs
 * more than 56 KiB more in the first.
 */
export const INDEX_MIN_GUESS = 64 * 1024;

/**
 * What the first read should take from the end of an SSO whose metadata lists `streamRanges`
 * stream ranges: the footer and an index entry for each range, plus one for every 256 KiB of the
 * object (a stream's data past a block, or an entry's 1 MiB, takes more than one entry), and at
 * least `minGuess`. An SSO of a busy node holds thousands of streams: 2 000 make a 70 KiB index,
 * which a fixed guess of 64 KiB missed, costing every such source a second GET.
 */
export function indexReadGuessFor(objectSize: number, streamRanges: number, minGuess = 0): number {
  const entries = streamRanges + Math.ceil(objectSize / (256 * 1024));
  return Math.min(objectSize, Math.max(minGuess, indexReadGuess(objectSize), FOOTER_SIZE + INDEX_ENTRY_SIZE * entries));
}

/**
 * A `FetchRange` that serves reads within `tail` (bytes [tailStart, end) of the object, already
 * read) from it, and the others with `fetchRange`.
 */
export function fetchFromTail(tail: Uint8Array, tailStart: number, fetchRange: FetchRange): FetchRange {
  return (start, end) => (start >= tailStart ? Promise.resolve(tail.subarray(start - tailStart, end - tailStart)) : fetchRange(start, end));
}

async function fetchExact(fetchRange: FetchRange, start: number, end: number, key: string): Promise<Uint8Array> {
  const bytes = await fetchRange(start, end);
  if (bytes.length !== end - start)
    fail(
      bytes.length < end - start ? 'ERR_FORMAT_TRUNCATED' : 'ERR_FORMAT_LENGTH_MISMATCH',
      `read of [${start}, ${end}) returned ${bytes.length} bytes`,
      key,
      start + Math.min(bytes.length, end - start),
    );
  return bytes;
}

/** The index entries of an object of `objectSize` bytes, each checked to lie within the data. */
export async function readObjectIndex(
  fetchRange: FetchRange,
  objectSize: number,
  key: string,
  opts: { minGuess?: number } = {},
): Promise<IndexEntry[]> {
  if (!Number.isSafeInteger(objectSize) || objectSize < FOOTER_SIZE)
    fail('ERR_FORMAT_TRUNCATED', `object of ${objectSize} bytes is shorter than its ${FOOTER_SIZE}-byte footer`, key, 0);
  // `minGuess`: a caller that knows its objects' indexes run larger (many small streams per
  // object) trades a few KiB per read for the second request.
  const guess = Math.max(indexReadGuess(objectSize), Math.min(objectSize, opts.minGuess ?? 0));
  const tailStart = objectSize - guess;
  const tail = await fetchExact(fetchRange, tailStart, objectSize, key);
  const { indexPosition, indexLength } = decodeFooter(tail, objectSize, key);
  if (indexLength === 0) return [];
  const indexBytes =
    indexPosition >= tailStart
      ? tail.subarray(indexPosition - tailStart, indexPosition - tailStart + indexLength)
      : await fetchExact(fetchRange, indexPosition, indexPosition + indexLength, key);
  return decodeIndex(indexBytes, indexPosition, key);
}
