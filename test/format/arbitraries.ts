/** fast-check generators of valid record sets, shared by the property tests. */
import fc from 'fast-check';
import type { StreamRecord } from '../../src/format/index.js';

const INT32_MAX = 0x7fffffff;

const streamId = fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
// Leave room for a few int32 counts after the start offset.
const startOffset = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 4 * INT32_MAX }));
const recordSpec = fc.record({
  // Offsets skipped before the record: sparse streams (compacted topics) are legal.
  gap: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 1000 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 ** 20 }) }),
  count: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 2 ** 28 })),
  epoch: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  payload: fc.oneof(
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 200, maxLength: 3000 }) },
  ),
});

/**
 * Blocks in runs: each run is one stream's blocks in offset order (adjacent ones give regrouping
 * something to merge), with random gaps before records, inside blocks and between them, and a
 * random number of records per block; runs may repeat a stream, touch or leave gaps.
 */
export const blocksArb: fc.Arbitrary<{ records: StreamRecord[] }[]> = fc
  .array(
    fc.record({
      streamId,
      startOffset,
      blocks: fc.array(fc.array(recordSpec, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }),
    }),
    { maxLength: 6 },
  )
  .map((runs) =>
    runs.flatMap((run) => {
      let next = run.startOffset;
      return run.blocks.map((specs) => ({
        records: specs.map((s, i) => {
          // A block starts at its first record: a gap before it separates it from the previous block.
          next += i === 0 && next === run.startOffset ? 0 : s.gap;
          const r: StreamRecord = { streamId: run.streamId, epoch: s.epoch, baseOffset: next, count: s.count, payload: s.payload };
          next += s.count;
          return r;
        }),
      }));
    }),
  );
