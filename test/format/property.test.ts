import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import {
  ObjectWriter,
  buildIndexAndFooter,
  decodeBlocks,
  decodeObject,
  describeBlock,
  encodeDataBlock,
  encodeObject,
  regroupIndex,
  type IndexEntry,
  type StreamRecord,
} from '../../src/format/index.js';
import { blocksArb } from './arbitraries.js';
import { plain } from './fixtures.js';

/**
 * Re-encodes what a decoder returned, block by block, with index entries derived from the
 * records themselves (not copied from the decoded index). Equal to the input bytes (except bytes
 * readers ignore) exactly when the decoder read all of them faithfully and they were consistent.
 */
function reencode(bytes: Uint8Array, entries: IndexEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const derived: IndexEntry[] = [];
  let dataLength = 0;
  for (const e of entries) {
    const position = dataLength;
    const records: StreamRecord[] = [];
    for (const b of decodeBlocks(bytes.subarray(e.position, e.position + e.size), undefined, e.position)) {
      const block = encodeDataBlock(b.records);
      parts.push(block);
      dataLength += block.length;
      records.push(...b.records);
    }
    // One stream, increasing offsets across the entry's blocks, or this throws.
    const { streamId, startOffset, endOffset, recordCount } = describeBlock(records);
    derived.push({ streamId, startOffset, endOffset, recordCount, position, size: dataLength - position });
  }
  parts.push(buildIndexAndFooter(derived, dataLength));
  return Buffer.concat(parts);
}

/** Positions readers ignore: block flags and the footer's zero bytes. */
function ignoredPositions(bytes: Uint8Array, entries: IndexEntry[]): Set<number> {
  const s = new Set<number>();
  for (const e of entries)
    for (const b of decodeBlocks(bytes.subarray(e.position, e.position + e.size), undefined, e.position)) s.add(b.position + 1);
  for (let i = bytes.length - 36; i < bytes.length - 8; i++) s.add(i);
  return s;
}

describe('round trip (property)', () => {
  it('encodeObject then decodeObject gives back the records, one entry per block', () => {
    fc.assert(
      fc.property(blocksArb, (blocks) => {
        const bytes = encodeObject(blocks);
        const { entries, records } = decodeObject(bytes, 'k');
        expect(plain(records)).toEqual(plain(blocks.flatMap((b) => b.records)));
        expect(entries.map(({ position: _p, ...r }) => r)).toEqual(blocks.map((b) => describeBlock(b.records)));
        expect(Buffer.from(reencode(bytes, entries)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('ObjectWriter with regrouped entries decodes to the same records and the regrouped index', () => {
    fc.assert(
      fc.property(blocksArb, fc.integer({ min: 40, max: 5000 }), (blocks, maxEntrySize) => {
        const w = new ObjectWriter();
        const data = blocks.map((b) => w.addRecords(b.records));
        const tail = w.finish({ maxEntrySize });
        const bytes = Buffer.concat([...data, tail]);
        const { entries, records } = decodeObject(bytes, 'k');
        expect(plain(records)).toEqual(plain(blocks.flatMap((b) => b.records)));
        expect(entries).toEqual(regroupIndex(w.entries, { maxEntrySize }));
        expect(entries.length).toBeLessThanOrEqual(blocks.length);
      }),
      { numRuns: 200 },
    );
  });
});

// Synthetic entries: stream switches, offset gaps and position gaps, sizes around the limit,
// deltas and counts near int32 so that merging would overflow.
const INT32_MAX = 0x7fffffff;
const MiB = 1024 * 1024;
const entriesArb = fc
  .array(
    fc.record({
      newStream: fc.boolean(),
      offsetGap: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 100 }) }),
      positionGap: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 100 }) }),
      delta: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: INT32_MAX })),
      recordCount: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: INT32_MAX })),
      size: fc.oneof(
        fc.integer({ min: 10, max: 300 * 1024 }),
        fc.integer({ min: MiB - 100, max: MiB + 100 }),
        fc.integer({ min: 10, max: INT32_MAX }),
      ),
    }),
    { maxLength: 40 },
  )
  .map((specs) => {
    let streamId = 0;
    let offset = 0;
    let position = 0;
    return specs.map((s): IndexEntry => {
      if (s.newStream) {
        streamId += 1;
        offset = 0;
      }
      offset += s.offsetGap;
      position += s.positionGap;
      const e = { streamId, startOffset: offset, endOffset: offset + s.delta, recordCount: s.recordCount, position, size: s.size };
      offset = e.endOffset;
      position += s.size;
      return e;
    });
  });

describe('regroupIndex (property)', () => {
  it('keeps entries under the limit, within int32, and covers the input in order', () => {
    fc.assert(
      fc.property(entriesArb, fc.constantFrom(undefined, 1000, 64 * 1024), (input, maxEntrySize) => {
        const frozen = JSON.stringify(input);
        const limit = maxEntrySize ?? MiB;
        const out = regroupIndex(input, maxEntrySize === undefined ? undefined : { maxEntrySize });
        expect(JSON.stringify(input)).toBe(frozen); // inputs untouched
        let i = 0;
        for (const o of out) {
          // Consume the consecutive input entries this output entry covers.
          const first = input[i]!;
          let size = 0;
          let count = 0;
          let j = i;
          while (size < o.size) {
            const e = input[j]!;
            if (j > i) {
              expect(e.streamId).toBe(first.streamId);
              expect(e.startOffset).toBe(input[j - 1]!.endOffset);
              expect(e.position).toBe(input[j - 1]!.position + input[j - 1]!.size);
            }
            size += e.size;
            count += e.recordCount;
            j++;
          }
          expect(size).toBe(o.size);
          const last = input[j - 1]!;
          expect(o).toEqual({
            streamId: first.streamId,
            startOffset: first.startOffset,
            endOffset: last.endOffset,
            recordCount: count,
            position: first.position,
            size,
          });
          if (j - i > 1) expect(o.size).toBeLessThan(limit);
          expect(o.size).toBeLessThanOrEqual(INT32_MAX);
          expect(o.recordCount).toBeLessThanOrEqual(INT32_MAX);
          expect(o.endOffset - o.startOffset).toBeLessThanOrEqual(INT32_MAX);
          i = j;
        }
        expect(i).toBe(input.length);
        // Maximal: two neighbours that could have merged did not stay apart.
        for (let k = 1; k < out.length; k++) {
          const a = out[k - 1]!;
          const b = out[k]!;
          const mergeable =
            a.streamId === b.streamId &&
            a.endOffset === b.startOffset &&
            a.position + a.size === b.position &&
            a.size + b.size < limit &&
            b.endOffset - a.startOffset <= INT32_MAX &&
            a.recordCount + b.recordCount <= INT32_MAX;
          expect(mergeable).toBe(false);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('corruption and truncation (property)', () => {
  const corruptArb = fc.record({
    blocks: blocksArb,
    flips: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }),
    cut: fc.oneof(
      { weight: 3, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.record({ at: fc.nat(), front: fc.boolean() }) },
    ),
  });

  it('decodes to exactly what the bytes say, or throws a FormatError; nothing else', () => {
    fc.assert(
      fc.property(corruptArb, ({ blocks, flips, cut }) => {
        let bytes: Uint8Array = encodeObject(blocks).slice();
        for (const f of flips) if (bytes.length > 0) bytes[f.at % bytes.length] = f.value;
        if (cut) {
          const n = cut.at % (bytes.length + 1);
          bytes = cut.front ? bytes.subarray(n) : bytes.subarray(0, n);
        }
        let decoded: { entries: IndexEntry[]; records: StreamRecord[] };
        try {
          decoded = decodeObject(bytes, 'corrupt-key');
        } catch (e) {
          expect(e).toBeInstanceOf(FormatError);
          expect((e as FormatError).key).toBe('corrupt-key');
          expect(Number.isInteger((e as FormatError).position)).toBe(true);
          return;
        }
        // It decoded: re-encoding must give back the same bytes, apart from ignored ones.
        const again = reencode(bytes, decoded.entries);
        expect(again.length).toBe(bytes.length);
        const ignored = ignoredPositions(bytes, decoded.entries);
        for (let i = 0; i < bytes.length; i++) if (!ignored.has(i) && again[i] !== bytes[i]) expect.fail(`byte ${i} differs`);
        expect(decoded.records.length).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 1000 },
    );
  });

  it('every strict prefix of a valid object is rejected as a FormatError', () => {
    fc.assert(
      fc.property(blocksArb, fc.nat(), (blocks, n) => {
        const bytes = encodeObject(blocks);
        const cut = bytes.subarray(0, n % bytes.length);
        expect(() => decodeObject(cut, 'k')).toThrow(FormatError);
      }),
      { numRuns: 300 },
    );
  });
});
