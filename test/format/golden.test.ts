import { describe, expect, it } from 'vitest';
import { decodeObject, encodeObject, type IndexEntry } from '../../src/format/index.js';
import { goldenVectors, plain, readVector } from './fixtures.js';

describe('golden vectors (shared/vectors)', () => {
  for (const v of goldenVectors) {
    it(`encodes ${v.file} byte for byte`, () => {
      const expected = readVector(v.file);
      expect(expected.length).toBe(v.size);
      const actual = encodeObject(v.blocks);
      expect(actual.length).toBe(v.size);
      expect(Buffer.from(actual).equals(Buffer.from(expected))).toBe(true);
    });

    it(`decodes ${v.file} to the spec's records and one entry per block`, () => {
      const { entries, records } = decodeObject(readVector(v.file), v.file);
      expect(plain(records)).toEqual(plain(v.blocks.flatMap((b) => b.records)));
      let position = 0;
      const expectedEntries: IndexEntry[] = v.blocks.map(({ records: [r] }) => {
        const size = 10 + 33 + r!.payload.length;
        const e = { streamId: r!.streamId, startOffset: r!.baseOffset, endOffset: r!.baseOffset + r!.count, recordCount: r!.count, position, size };
        position += size;
        return e;
      });
      expect(entries).toEqual(expectedEntries);
    });
  }

  it('decoded payloads are views into the input, not copies', () => {
    const bytes = readVector('object-1.bin');
    const { records } = decodeObject(bytes);
    expect(records[0]!.payload.buffer).toBe(bytes.buffer);
  });
});
