/**
 * The outputs' indexes come straight from the shared plan table when the merger closes an output
 * (no index entry object per block is held for the run): they must be exactly the plan's blocks
 * of that output, in order, for the SSO across iterations and for each stream object.
 */
import { describe, expect, it } from 'vitest';
import { planIndex } from '../../src/actors/segments.js';
import { CompactorError } from '../../src/errors.js';
import type { Dest } from '../../src/messages/pipeline.js';
import { encodePlanTable, planCompaction, summarizePlan, type CompactionPlan } from '../../src/plan/index.js';
import { PlanBlocks } from '../../src/plan/table.js';
import { input, obj, streams, type B } from '../plan/helpers.js';

/** Three sources; stream 1 is large enough for a stream object, the rest go to the SSO; a limit that makes several iterations. */
function plan(): CompactionPlan {
  const src = (id: number): B[] => [
    [1, id * 10, id * 10 + 10, 60],
    [2, id * 10, id * 10 + 10, 30],
    [3, id * 10, id * 10 + 10, 25],
    [4, id * 10, id * 10 + 10, 40],
  ];
  const p = planCompaction(input([obj(1, src(0)), obj(2, src(1)), obj(3, src(2))], streams(1, 2, 3, 4), { memoryLimit: 200, streamSplitSize: 100, partSize: 64, minPartSize: 1 }));
  expect(p.streamObjects.length).toBeGreaterThan(0);
  expect(p.sso).toBeDefined();
  expect(p.iterations.length).toBeGreaterThan(1);
  return p;
}

const sameDest = (a: Dest, b: { kind: string; index?: number }) => a.kind === b.kind && (a.kind === 'sso' || a.index === b.index);

describe('planIndex (outputs indexed from the plan table)', () => {
  it('yields each output\'s blocks as index entries at their output positions, in order', () => {
    const p = plan();
    const index = planIndex(summarizePlan(p), new PlanBlocks(encodePlanTable(p)));
    const dests: Dest[] = [{ kind: 'sso' }, ...p.streamObjects.map((so) => ({ kind: 'so' as const, index: so.index }))];
    for (const dest of dests) {
      const expected = p.iterations
        .flatMap((it) => it.blocks)
        .filter((b) => sameDest(dest, b.dest))
        .map((b) => ({ streamId: b.streamId, startOffset: b.startOffset, endOffset: b.endOffset, recordCount: b.recordCount, position: b.dest.offset, size: b.size }));
      expect(expected.length).toBeGreaterThan(0);
      expect([...index.outputEntries(dest)]).toEqual(expected);
    }
  });

  it('a table whose output blocks are not laid out back to back fails as an internal error, not as a wrong index', () => {
    const p = plan();
    const table = encodePlanTable(p);
    const blocks = new PlanBlocks(table);
    const sso = [...Array(blocks.count).keys()].filter((i) => blocks.isSso(i));
    expect(sso.length).toBeGreaterThan(1);
    // destOffset is the last column: move the SSO's second block 1 byte further out.
    const destOffset = new Float64Array(table.buffer, 9 * table.count * 8, table.count);
    destOffset[sso[1]!]! += 1;
    const err = (() => {
      try {
        [...planIndex(summarizePlan(p), blocks).outputEntries({ kind: 'sso' })];
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CompactorError);
    expect((err as CompactorError).code).toBe('ERR_INTERNAL');
  });
});
