import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import { MAX_INDEX_ENTRY_SIZE, regroupIndex, type IndexEntry } from '../../src/format/index.js';

const MiB = 1024 * 1024;
const INT32_MAX = 0x7fffffff;

/** Consecutive, adjacent entries of one stream with the given sizes. */
function run(sizes: number[], streamId = 1, delta = 10): IndexEntry[] {
  let position = 0;
  let offset = 0;
  return sizes.map((size) => {
    const e = { streamId, startOffset: offset, endOffset: offset + delta, recordCount: delta, position, size };
    offset += delta;
    position += size;
    return e;
  });
}

describe('regroupIndex', () => {
  it('defaults to a 1 MiB limit', () => {
    expect(MAX_INDEX_ENTRY_SIZE).toBe(MiB);
  });

  it('merges a contiguous, adjacent run of one stream', () => {
    expect(regroupIndex(run([100, 200, 300]))).toEqual([
      { streamId: 1, startOffset: 0, endOffset: 30, recordCount: 30, position: 0, size: 600 },
    ]);
  });

  it('keeps the merged size strictly below the limit', () => {
    expect(regroupIndex(run([MiB / 2, MiB / 2])).map((e) => e.size)).toEqual([MiB / 2, MiB / 2]);
    expect(regroupIndex(run([MiB / 2, MiB / 2 - 1])).map((e) => e.size)).toEqual([MiB - 1]);
    expect(regroupIndex(run([10, 20, 30]), { maxEntrySize: 30 }).map((e) => e.size)).toEqual([10, 20, 30]);
    expect(regroupIndex(run([10, 20, 30]), { maxEntrySize: 31 }).map((e) => e.size)).toEqual([30, 30]);
  });

  it('leaves an entry that is already at or over the limit alone', () => {
    expect(regroupIndex(run([10, MiB, 10])).map((e) => e.size)).toEqual([10, MiB, 10]);
    expect(regroupIndex(run([2 * MiB])).map((e) => e.size)).toEqual([2 * MiB]);
  });

  it('does not merge across streams, offset gaps or position gaps', () => {
    const [a, b] = run([10, 10]);
    expect(regroupIndex([a!, { ...b!, streamId: 2 }])).toHaveLength(2);
    expect(regroupIndex([a!, { ...b!, startOffset: 11, endOffset: 20 }])).toHaveLength(2);
    expect(regroupIndex([a!, { ...b!, position: 11 }])).toHaveLength(2);
  });

  it('never lets the offset delta overflow int32', () => {
    // Two deltas of 2^30 - 1 merge to 2^31 - 2; two of 2^30 would make 2^31, past int32.
    expect(regroupIndex(run([10, 10], 1, 2 ** 30 - 1))).toHaveLength(1);
    expect(regroupIndex(run([10, 10], 1, 2 ** 30))).toHaveLength(2);
    const edge: IndexEntry[] = [
      { streamId: 1, startOffset: 0, endOffset: INT32_MAX - 5, recordCount: 1, position: 0, size: 10 },
      { streamId: 1, startOffset: INT32_MAX - 5, endOffset: INT32_MAX, recordCount: 1, position: 10, size: 10 },
      { streamId: 1, startOffset: INT32_MAX, endOffset: INT32_MAX + 1, recordCount: 1, position: 20, size: 10 },
    ];
    expect(regroupIndex(edge).map((e) => [e.startOffset, e.endOffset])).toEqual([
      [0, INT32_MAX],
      [INT32_MAX, INT32_MAX + 1],
    ]);
  });

  it('never lets the record count overflow int32', () => {
    const entries = run([10, 10]).map((e) => ({ ...e, recordCount: 2 ** 30 }));
    entries[0]!.recordCount = 2 ** 30 - 1;
    expect(regroupIndex(entries)).toHaveLength(1); // 2^31 - 1 fits
    entries[0]!.recordCount = 2 ** 30;
    expect(regroupIndex(entries)).toHaveLength(2); // 2^31 does not
  });

  it('never lets the size overflow int32 with a huge limit', () => {
    const entries = run([2 ** 30, 2 ** 30]);
    expect(regroupIndex(entries, { maxEntrySize: 2 ** 40 })).toHaveLength(2);
    expect(regroupIndex(run([2 ** 30, 2 ** 30 - 1]), { maxEntrySize: 2 ** 40 })).toHaveLength(1);
  });

  it('does not modify its input', () => {
    const input = run([1, 2, 3]);
    const copy = structuredClone(input);
    regroupIndex(input);
    expect(input).toEqual(copy);
  });

  it('rejects a non-positive limit', () => {
    expect(() => regroupIndex([], { maxEntrySize: 0 })).toThrow(FormatError);
  });

  it('empty in, empty out', () => {
    expect(regroupIndex([])).toEqual([]);
  });
});
