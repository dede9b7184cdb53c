import { describe, expect, it } from 'vitest';
import { decodeObject, encodeObject, type IndexEntry } from '../../src/format/index.js';
import { goldenVectors, plain, readVector } from './fixtures.js';

// AutoMQ's own ObjectWriter wrote these bytes: where our reading of the format and its bytes
// disagree, its bytes are right.
describe('golden vectors (written by AutoMQ)', () => {
  for (const v of goldenVectors) {
    it(`encodes ${v.file} byte for byte`, () => {
      const expected = readVector(v.file);
      expect(expected.length).toBe(v.size);
      const actual = encodeObject(v.blocks);
      expect(actual.length).toBe(v.size);
      expect(Buffer.from(actual).equals(Buffer.from(expected))).toBe(true);
    });

    it(`decodes ${v.file} to its records and one entry per block`, () => {
      const { entries, records } = decodeObject(readVector(v.file), v.file);
      expect(plain(records)).toEqual(plain(v.blocks.flatMap((b) => b.records)));
      let position = 0;
      const expectedEntries: IndexEntry[] = v.blocks.map(({ records: rs }) => {
        const first = rs[0]!;
        const last = rs[rs.length - 1]!;
        const size = 10 + rs.reduce((n, r) => n + 33 + r.payload.length, 0);
        // recordCount counts records (batches), whatever offsets they cover.
        const e = { streamId: first.streamId, startOffset: first.baseOffset, endOffset: last.baseOffset + last.count, recordCount: rs.length, position, size };
        position += size;
        return e;
      });
      expect(entries).toEqual(expectedEntries);
    });

    it(`re-encodes the decoded ${v.file} byte for byte`, () => {
      const bytes = readVector(v.file);
      const { entries, records } = decodeObject(bytes, v.file);
      let at = 0;
      const blocks = entries.map((e) => ({ records: records.slice(at, (at += e.recordCount)) }));
      expect(Buffer.from(encodeObject(blocks)).equals(Buffer.from(bytes))).toBe(true);
    });
  }

  // Regression (issue #8): recordCount was the sum of the records' counts, and sparse offsets
  // were refused, so 5 of 8 AutoMQ-written objects did not decode.
  it('sparse-offsets.bin: entries S5 [0,1001) and S6 [0,5), recordCount 5 each', () => {
    const { entries } = decodeObject(readVector('sparse-offsets.bin'));
    expect(entries.map(({ streamId, startOffset, endOffset, recordCount }) => ({ streamId, startOffset, endOffset, recordCount }))).toEqual([
      { streamId: 5, startOffset: 0, endOffset: 1001, recordCount: 5 },
      { streamId: 6, startOffset: 0, endOffset: 5, recordCount: 5 },
    ]);
  });

  it('object-0.bin: an entry over a record of 15 offsets says recordCount 1', () => {
    const { entries } = decodeObject(readVector('object-0.bin'));
    expect(entries[0]).toMatchObject({ startOffset: 0, endOffset: 15, recordCount: 1 });
  });

  it('decoded payloads are views into the input, not copies', () => {
    const bytes = readVector('object-1.bin');
    const { records } = decodeObject(bytes);
    expect(records[0]!.payload.buffer).toBe(bytes.buffer);
  });
});
