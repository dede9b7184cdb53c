import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import {
  ObjectWriter,
  buildIndexAndFooter,
  decodeFooter,
  decodeIndex,
  decodeObject,
  encodeDataBlock,
  encodeFooter,
  encodeIndex,
  encodeObject,
  type StreamRecord,
} from '../../src/format/index.js';
import { goldenVectors, plain, readVector, rec, thrown } from './fixtures.js';

const INT32_MAX = 0x7fffffff;

function invalidInput(fn: () => unknown): FormatError {
  const caught = thrown(fn);
  expect(caught).toBeInstanceOf(FormatError);
  expect((caught as FormatError).code).toBe('ERR_FORMAT_INVALID_INPUT');
  return caught as FormatError;
}

describe('encodeObject input validation', () => {
  const ok = rec(1, 10, 20, 3, 0);
  const cases: [string, StreamRecord[]][] = [
    ['an empty block', []],
    ['two streams in a block', [ok, rec(2, 20, 30, 1, 0)]],
    ['overlapping offsets', [ok, rec(1, 19, 30, 1, 0)]],
    ['a negative stream id', [{ ...ok, streamId: -1 }]],
    ['a fractional offset', [{ ...ok, baseOffset: 1.5 }]],
    ['an unsafe offset', [{ ...ok, baseOffset: 2 ** 53 }]],
    ['an offset whose end is unsafe', [{ ...ok, baseOffset: Number.MAX_SAFE_INTEGER - 2 }]],
    ['a NaN epoch', [{ ...ok, epoch: Number.NaN }]],
    ['a negative count', [{ ...ok, count: -1 }]],
    ['a count past int32', [{ ...ok, count: INT32_MAX + 1 }]],
    ['counts summing past int32', [{ ...ok, count: INT32_MAX }, { ...ok, baseOffset: 10 + INT32_MAX, count: 1 }]],
    ['offsets spanning past int32 across a gap', [{ ...ok, count: 1 }, { ...ok, baseOffset: 11 + INT32_MAX, count: 1 }]],
    ['a payload that is not bytes', [{ ...ok, payload: [1, 2, 3] as unknown as Uint8Array }]],
  ];
  for (const [name, records] of cases)
    it(`rejects ${name}`, () => {
      invalidInput(() => encodeObject([{ records: [ok, rec(1, 20, 25, 0, 0)] }, { records }]));
      invalidInput(() => encodeDataBlock(records));
    });

  // Regression (issue #8): AutoMQ's writer accepts sparse offsets (compacted topics), ours refused them.
  it('accepts a gap in offsets: the entry spans it and counts records', () => {
    const { records, entries } = decodeObject(encodeObject([{ records: [ok, rec(1, 21, 30, 1, 0)] }]));
    expect(records.map((r) => r.baseOffset)).toEqual([10, 21]);
    expect(entries[0]).toMatchObject({ startOffset: 10, endOffset: 30, recordCount: 2 });
  });

  it('rejects a non-array or missing records', () => {
    invalidInput(() => encodeObject(null as unknown as []));
    invalidInput(() => encodeObject([{} as { records: StreamRecord[] }]));
  });

  it('accepts the largest values that fit', () => {
    const r = { streamId: Number.MAX_SAFE_INTEGER, epoch: Number.MAX_SAFE_INTEGER, baseOffset: Number.MAX_SAFE_INTEGER - INT32_MAX, count: INT32_MAX, payload: new Uint8Array(0) };
    const { records, entries } = decodeObject(encodeObject([{ records: [r] }]));
    expect(plain(records)).toEqual(plain([r]));
    expect(entries[0]!.endOffset).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('copies payloads: later changes to the input do not reach the object', () => {
    const r = rec(1, 0, 1, 4, 9);
    const bytes = encodeObject([{ records: [r] }]);
    r.payload.fill(0);
    expect(Array.from(decodeObject(bytes).records[0]!.payload)).toEqual(Array.from(rec(1, 0, 1, 4, 9).payload));
  });
});

describe('writer pieces', () => {
  it('data blocks + index + footer assemble into the golden vector', () => {
    for (const v of goldenVectors) {
      const blocks = v.blocks.map((b) => encodeDataBlock(b.records));
      const dataLength = blocks.reduce((n, b) => n + b.length, 0);
      const { entries } = decodeObject(readVector(v.file));
      const index = encodeIndex(entries, dataLength);
      const footer = encodeFooter(dataLength, index.length);
      expect(Buffer.concat([...blocks, index, footer]).equals(Buffer.from(readVector(v.file)))).toBe(true);
      expect(Buffer.concat([index, footer]).equals(Buffer.from(buildIndexAndFooter(entries, dataLength)))).toBe(true);
      expect(decodeIndex(index, dataLength, v.file)).toEqual(entries);
      expect(decodeFooter(footer, dataLength + index.length + 48, v.file)).toEqual({ indexPosition: dataLength, indexLength: index.length });
    }
  });

  it('ObjectWriter without regrouping reproduces encodeObject', () => {
    const v = goldenVectors[0]!;
    const w = new ObjectWriter();
    const data = v.blocks.map((b) => w.addRecords(b.records));
    expect(w.dataLength).toBe(220);
    expect(Buffer.concat([...data, w.finish({ regroup: false })]).equals(Buffer.from(readVector(v.file)))).toBe(true);
  });

  it('ObjectWriter regroups contiguous blocks of a stream into one entry', () => {
    const v = goldenVectors[0]!;
    const w = new ObjectWriter();
    const data = v.blocks.map((b) => w.addRecords(b.records));
    const { entries, records } = decodeObject(Buffer.concat([...data, w.finish()]), 'regrouped');
    expect(entries.map((e) => [e.streamId, e.startOffset, e.endOffset, e.position, e.size])).toEqual([
      [0, 0, 15, 0, 45],
      [1, 25, 60, 45, 110], // S1 [25,30) and [30,60) share one entry, two physical blocks
      [2, 30, 60, 155, 65],
    ]);
    expect(plain(records)).toEqual(plain(v.blocks.flatMap((b) => b.records)));
  });

  it('ObjectWriter.add places source entries (copied blocks) at the current end', () => {
    const w = new ObjectWriter();
    const a = w.add({ streamId: 3, startOffset: 0, endOffset: 5, recordCount: 5, size: 100 });
    const b = w.add({ streamId: 3, startOffset: 5, endOffset: 9, recordCount: 4, size: 50 });
    expect([a.position, b.position, w.dataLength]).toEqual([0, 100, 150]);
    invalidInput(() => w.add({ streamId: 3, startOffset: 9, endOffset: 9 + INT32_MAX + 1, recordCount: 1, size: 50 }));
    invalidInput(() => w.add({ streamId: 3, startOffset: 9, endOffset: 10, recordCount: 1, size: 9 }));
    expect(w.entries).toHaveLength(2); // refused ranges are not added
  });

  it('buildIndexAndFooter refuses entries outside the data', () => {
    invalidInput(() => buildIndexAndFooter([{ streamId: 1, startOffset: 0, endOffset: 1, recordCount: 1, position: 90, size: 20 }], 100));
  });

  it('encodeFooter refuses a bad index length', () => {
    invalidInput(() => encodeFooter(0, 35));
    invalidInput(() => encodeFooter(-1, 36));
  });
});
