import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError, type FormatErrorCode } from '../../src/errors.js';
import { decodeDataBlocks, decodeFooter, decodeIndex, decodeObject, decodeRecords, encodeObject } from '../../src/format/index.js';
import { readSafeInt64 } from '../../src/format/bytes.js';
import { goldenVectors, readVector, rec, thrown } from './fixtures.js';

// object-0.bin layout: blocks at 0 (45 B), 45 (45 B), 90 (65 B), 155 (65 B); index at 220
// (4 x 36 B); footer at 364; 412 bytes in all.
const KEY = '10000000/DEFAULT/1';
const INDEX = 220;
const FOOTER = 364;

function mutate(f: (view: DataView, bytes: Uint8Array) => void, file = 'object-0.bin'): Uint8Array {
  const bytes = readVector(file).slice();
  f(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes);
  return bytes;
}

function expectFormatError(fn: () => unknown, code: FormatErrorCode, position: number, key = KEY): FormatError {
  const caught = thrown(fn);
  expect(caught).toBeInstanceOf(FormatError);
  const e = caught as FormatError;
  expect({ code: e.code, key: e.key, position: e.position }).toEqual({ code, key, position });
  expect(e.message).toContain(key);
  expect(e.retryable).toBe(false);
  return e;
}

describe('malformed objects are typed FormatErrors naming key and position', () => {
  it('sanity: the unmodified vector decodes', () => {
    expect(decodeObject(mutate(() => {}), KEY).records).toHaveLength(4);
  });

  it('short object (shorter than a footer)', () => {
    expectFormatError(() => decodeObject(readVector('object-0.bin').subarray(0, 47), KEY), 'ERR_FORMAT_TRUNCATED', 47);
    expectFormatError(() => decodeObject(new Uint8Array(0), KEY), 'ERR_FORMAT_TRUNCATED', 0);
  });

  it('unnamed objects still say which object', () => {
    const e = expectFormatError(() => decodeObject(new Uint8Array(3)), 'ERR_FORMAT_TRUNCATED', 3, '<unnamed object>');
    expect(e.message).toContain('byte 3');
  });

  it('object cut at the front: footer and size disagree', () => {
    expectFormatError(() => decodeObject(readVector('object-0.bin').subarray(1), KEY), 'ERR_FORMAT_LENGTH_MISMATCH', FOOTER - 1);
  });

  it('wrong footer magic', () => {
    const bytes = mutate((_, b) => (b[411] = 0xf6));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_FOOTER_MAGIC', 404);
  });

  it('index length not a multiple of 36', () => {
    const bytes = mutate((v) => v.setInt32(FOOTER + 8, 143));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', FOOTER + 8);
  });

  it('negative index length', () => {
    const bytes = mutate((v) => v.setInt32(FOOTER + 8, -36));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', FOOTER + 8);
  });

  it('index position past 2^53 is an unsafe integer, not a rounding', () => {
    const bytes = mutate((v) => v.setBigInt64(FOOTER, 2n ** 53n));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_UNSAFE_INTEGER', FOOTER);
  });

  it('wrong block magic', () => {
    const bytes = mutate((_, b) => (b[90] = 0x5b));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_BLOCK_MAGIC', 90);
  });

  it('the block flag is ignored', () => {
    const bytes = mutate((_, b) => (b[91] = 0x7f));
    expect(decodeObject(bytes, KEY).records).toHaveLength(4);
  });

  it('wrong record magic', () => {
    const bytes = mutate((_, b) => (b[155 + 10] = 0x23));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_RECORD_MAGIC', 165);
  });

  it('index entry pointing outside the data', () => {
    const bytes = mutate((v) => v.setBigInt64(INDEX + 36 * 2 + 24, 200n));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_INDEX_BOUNDS', INDEX + 36 * 2 + 24);
  });

  it('index entry size reaching into the index', () => {
    const bytes = mutate((v) => v.setInt32(INDEX + 36 * 3 + 32, 66));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_INDEX_BOUNDS', INDEX + 36 * 3 + 24);
  });

  it('index entry size smaller than a block header', () => {
    const bytes = mutate((v) => v.setInt32(INDEX + 32, 9));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', INDEX + 32);
  });

  it('index entries leaving a gap or overlapping', () => {
    const bytes = mutate((v) => v.setBigInt64(INDEX + 36 + 24, 44n));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', INDEX + 36 + 24);
  });

  it('block record count larger than the records found', () => {
    const bytes = mutate((v) => v.setInt32(45 + 2, 2));
    // The second record would start right after the first (45 + 10 + 35).
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 90);
  });

  it('block record count smaller than the content', () => {
    const bytes = mutate((v) => v.setInt32(45 + 2, 0));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 45 + 6);
  });

  it('negative block record count', () => {
    const bytes = mutate((v) => v.setInt32(45 + 2, -1));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 45 + 2);
  });

  it('block length longer than its entry', () => {
    const bytes = mutate((v) => v.setInt32(45 + 6, 36));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 45 + 6);
  });

  it('block length shorter than its record', () => {
    const bytes = mutate((v) => v.setInt32(45 + 6, 34));
    // The record's payload then runs past the block: reported at its payload length field.
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 45 + 10 + 29);
  });

  it('index entry size not ending at a block boundary', () => {
    // Entry 0 claims 5 bytes of block 1; entry 1 starts 5 bytes later to keep entries tiled.
    const bytes = mutate((v) => {
      v.setInt32(INDEX + 32, 50);
      v.setBigInt64(INDEX + 36 + 24, 50n);
      v.setInt32(INDEX + 36 + 32, 40);
    });
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 45);
  });

  it('index entry startOffset disagreeing with the records', () => {
    const bytes = mutate((v) => v.setBigInt64(INDEX + 36 + 8, 26n));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 45 + 10 + 17);
  });

  it('index entry endOffset disagreeing with the records', () => {
    const bytes = mutate((v) => v.setInt32(INDEX + 36 + 16, 6));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 45);
  });

  it('index entry recordCount disagreeing with the records', () => {
    const bytes = mutate((v) => v.setInt32(INDEX + 36 + 20, 4));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 45);
  });

  it('record of another stream than its index entry', () => {
    const bytes = mutate((v) => v.setBigInt64(INDEX + 36 * 3, 1n));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 155 + 10 + 1);
  });

  it('record offset past 2^53', () => {
    const bytes = mutate((v) => v.setBigInt64(10 + 17, 2n ** 60n));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_UNSAFE_INTEGER', 10 + 17);
  });

  it('negative record stream id', () => {
    const bytes = mutate((v) => v.setBigInt64(10 + 1, -1n));
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_UNSAFE_INTEGER', 10 + 1);
  });

  it('index entry offsets past 2^53', () => {
    const bytes = mutate((v) => v.setBigInt64(INDEX + 8, 2n ** 53n - 1n));
    // startOffset itself is safe; startOffset + delta is not.
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_UNSAFE_INTEGER', INDEX + 16);
  });

  it('huge record count and payload length fail fast instead of allocating or looping', () => {
    const bytes = mutate((v) => {
      v.setInt32(2, 0x7fffffff);
      v.setInt32(10 + 29, 0x7fffffff);
    });
    expectFormatError(() => decodeObject(bytes, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 10 + 29);
  });

  it('zero-length payloads and zero-count records decode (and do not loop)', () => {
    const obj = encodeObject([{ records: [rec(5, 7, 7, 0, 0), rec(5, 7, 7, 0, 0), rec(5, 7, 9, 0, 0)] }]);
    const { records, entries } = decodeObject(obj, KEY);
    expect(records.map((r) => [r.baseOffset, r.count, r.payload.length])).toEqual([
      [7, 0, 0],
      [7, 0, 0],
      [7, 2, 0],
    ]);
    expect(entries).toEqual([{ streamId: 5, startOffset: 7, endOffset: 9, recordCount: 3, position: 0, size: 10 + 3 * 33 }]);
  });

  it('an object with no blocks is just a footer', () => {
    const obj = encodeObject([]);
    expect(obj.length).toBe(48);
    expect(decodeObject(obj, KEY)).toEqual({ entries: [], records: [] });
  });
});

describe('lower-level decoders', () => {
  it('decodeFooter: tail shorter than a footer', () => {
    expectFormatError(() => decodeFooter(new Uint8Array(40), 1000, KEY), 'ERR_FORMAT_TRUNCATED', 960);
  });

  it('decodeFooter: object size smaller than a footer', () => {
    expectFormatError(() => decodeFooter(new Uint8Array(48), 20, KEY), 'ERR_FORMAT_TRUNCATED', 0);
  });

  it('decodeIndex: length not a multiple of 36', () => {
    expectFormatError(() => decodeIndex(new Uint8Array(37), 500, KEY), 'ERR_FORMAT_LENGTH_MISMATCH', 500);
  });

  it('decodeDataBlocks: bytes that do not hold the entry', () => {
    const obj = readVector('object-0.bin');
    const { entries } = decodeObject(obj, KEY);
    // A ranged read of [45, 100) cannot hold entry 2 at [90, 155).
    expectFormatError(() => decodeDataBlocks(obj.subarray(45, 100), entries[2]!, KEY, 45), 'ERR_FORMAT_TRUNCATED', 90);
    // But it does hold entry 1, with positions reported in object coordinates.
    expect(decodeDataBlocks(obj.subarray(45, 100), entries[1]!, KEY, 45)).toHaveLength(1);
  });

  it('decodeRecords walks consecutive blocks of a range and reports absolute positions', () => {
    const obj = readVector('object-0.bin');
    expect(decodeRecords(obj.subarray(45, 155), KEY, 45).map((r) => r.baseOffset)).toEqual([25, 30]);
    const broken = obj.slice(45, 155);
    broken[45] = 0; // block at object position 90
    expectFormatError(() => decodeRecords(broken, KEY, 45), 'ERR_FORMAT_BLOCK_MAGIC', 90);
  });

  it('vectors stay intact (mutations work on copies)', () => {
    for (const v of goldenVectors) expect(() => decodeObject(readVector(v.file), v.file)).not.toThrow();
  });
});

describe('int64 fields are read exactly, and only as non-negative safe integers', () => {
  // readSafeInt64 joins two 32-bit halves (no BigInt a read): every value must come out as the
  // BigInt reading would give it, and everything a double would round must be refused.
  const read = (v: bigint) => {
    const view = new DataView(new ArrayBuffer(8));
    view.setBigInt64(0, v);
    return readSafeInt64(view, 0, 'field', KEY, 0);
  };
  it('every half and boundary reads as its value', () => {
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    for (const v of [0n, 1n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 1n, 2n ** 52n + 12345n, max - 1n, max]) {
      expect(read(v)).toBe(Number(v));
    }
    fc.assert(fc.property(fc.bigInt({ min: 0n, max }), (v) => read(v) === Number(v)));
  });
  it('past 2^53 or negative is ERR_FORMAT_UNSAFE_INTEGER, with the value in the message', () => {
    for (const v of [2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, -1n, -(2n ** 32n), -(2n ** 63n)]) {
      const e = expectFormatError(() => read(v), 'ERR_FORMAT_UNSAFE_INTEGER', 0);
      expect(e.message).toContain(`field ${v} is not a non-negative safe integer`);
    }
  });
});
