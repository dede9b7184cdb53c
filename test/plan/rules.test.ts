import { describe, expect, it } from 'vitest';
import { OptionsError, PlanError } from '../../src/errors.js';
import {
  DEFAULT_PLANNER_OPTIONS,
  checkCoverage,
  checkDroppedStillDead,
  formatPlan,
  indexHoldsRange,
  indexProblems,
  planCompaction,
  resolvePlannerOptions,
  type CompactionPlan,
} from '../../src/plan/index.js';
import { HOUR, NOW, SMALL, allBlocks, checkInvariants, failed, input, obj, soRanges, ssoRanges, stream, streams } from './helpers.js';

const MiB = 1024 * 1024;

function plan(...args: Parameters<typeof input>): CompactionPlan {
  const inp = input(...args);
  const p = planCompaction(inp);
  checkInvariants(p);
  checkCoverage(p, inp);
  expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  return p;
}

function planError(fn: () => unknown): PlanError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError);
    return e as PlanError;
  }
  throw new Error('expected a PlanError');
}

describe('resolvePlannerOptions', () => {
  it('fills the defaults', () => {
    expect(resolvePlannerOptions({})).toEqual({
      memoryLimit: 200 * MiB,
      streamSplitSize: 8 * MiB,
      maxObjectsPerRun: 500,
      forceSplitAfterMs: 120 * 60 * 1000,
      maxStreamObjectsPerCommit: 10_000,
      maxStreamsPerStreamSetObject: 20_000,
      partSize: 16 * MiB,
      minPartSize: 5 * MiB,
    });
    expect(resolvePlannerOptions()).toEqual(DEFAULT_PLANNER_OPTIONS);
    expect(resolvePlannerOptions({ memoryLimit: 1, partSize: 10, minPartSize: 10 })).toMatchObject({ memoryLimit: 1, partSize: 10 });
  });

  it.each([
    ['memoryLimit', 0],
    ['memoryLimit', -5],
    ['streamSplitSize', 1.5],
    ['maxObjectsPerRun', Number.NaN],
    ['forceSplitAfterMs', '10'],
    ['maxStreamObjectsPerCommit', 2 ** 60],
    ['maxStreamsPerStreamSetObject', 0],
    ['partSize', 0],
    ['minPartSize', -1],
  ])('rejects %s = %s naming the option', (name, value) => {
    try {
      resolvePlannerOptions({ [name]: value } as never);
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(OptionsError);
      expect((e as OptionsError).option).toBe(name);
      expect((e as Error).message).toContain(name);
    }
  });

  it('keeps partSize at or above minPartSize (5 MiB unless lowered)', () => {
    expect(() => resolvePlannerOptions({ partSize: 4 * MiB })).toThrow(/partSize.*minPartSize/);
    expect(resolvePlannerOptions({ partSize: 1000, minPartSize: 1000 }).partSize).toBe(1000);
    expect(() => resolvePlannerOptions({ partSize: 6 * 1024 * MiB })).toThrow(OptionsError);
  });
});

describe('rule 1: unreadable indexes', () => {
  it('skips the object with its key and cause, and plans the rest', () => {
    const p = plan([obj(1, [[1, 0, 10, 10]]), failed(2, 'NoSuchKey'), obj(3, [[1, 10, 20, 10]])], streams(1));
    expect(p.skipped).toEqual([{ objectId: 2, key: 'key-2', reason: expect.stringContaining('NoSuchKey') }]);
    expect(p.compactedObjectIds).toEqual([1, 3]);
    expect(ssoRanges(p)).toEqual([[1, 0, 20]]);
  });

  it('skips an object whose index holds an impossible entry', () => {
    const bad = obj(2, [[1, 10, 20, 10]]);
    (bad.index as { endOffset: number }[])[0]!.endOffset = 5;
    const p = plan([obj(1, [[1, 0, 10, 10]]), bad], streams(1));
    expect(p.skipped.map((s) => s.objectId)).toEqual([2]);
    expect(p.skipped[0]!.reason).toMatch(/endOffset/);
    expect(p.compactedObjectIds).toEqual([]);
    expect(p.untouched).toEqual([1]);
  });
});

describe('rule 2: dead data', () => {
  it('drops trimmed blocks and keeps a straddling block whole', () => {
    const p = plan(
      [obj(1, [[1, 0, 10, 10], [1, 10, 20, 10]]), obj(2, [[1, 20, 30, 10], [2, 0, 5, 5]])],
      [stream(1, 15), stream(2)],
    );
    expect(ssoRanges(p)).toEqual([
      [1, 10, 30],
      [2, 0, 5],
    ]);
    expect(allBlocks(p).map((b) => [b.objectId, b.streamId, b.startOffset])).toEqual([
      [1, 1, 10],
      [2, 1, 20],
      [2, 2, 0],
    ]);
    expect(p.totals).toMatchObject({ droppedBlocks: 1, droppedBytes: 10 });
  });

  it('drops blocks of deleted and unknown streams', () => {
    const p = plan(
      [obj(1, [[1, 0, 10, 10], [2, 0, 10, 7], [3, 0, 4, 4]]), obj(2, [[1, 10, 20, 10], [2, 10, 20, 7], [3, 4, 8, 4]])],
      [stream(1), stream(2, 0, 'deleted')],
    );
    expect(ssoRanges(p)).toEqual([[1, 0, 20]]);
    expect(p.totals).toMatchObject({ blocks: 2, bytesToRead: 20, droppedBlocks: 4, droppedBytes: 22 });
  });

  it('compacts away an SSO with no live block without reading it', () => {
    const p = plan([obj(1, [[1, 0, 10, 10]]), obj(2, [[2, 0, 10, 10]]), obj(3, [[1, 10, 20, 10]])], [stream(1), stream(2, 10)]);
    expect(p.compactedObjectIds).toEqual([1, 2, 3]);
    expect(p.emptiedObjectIds).toEqual([2]);
    expect(allBlocks(p).some((b) => b.objectId === 2)).toBe(false);
  });

  it('an emptied SSO alone gives an empty plan that still removes it', () => {
    const p = plan([obj(7, [[1, 0, 10, 10]]), obj(8, [[2, 0, 10, 10]])], [stream(1, 100), stream(2)]);
    expect(p.compactedObjectIds).toEqual([7]);
    expect(p.untouched).toEqual([8]);
    expect(p.sso).toBeNull();
    expect(p.streamObjects).toEqual([]);
    expect(p.iterations).toEqual([]);
    expect(p.orderId).toBe(7);
  });
});

describe('rule 2 details', () => {
  it('counts dropped blocks of compacted objects', () => {
    const p = plan([obj(1, [[1, 0, 10, 10], [1, 10, 20, 10]]), obj(2, [[1, 20, 30, 10]])], [stream(1, 15)]);
    expect(p.totals.droppedBlocks).toBe(1);
    expect(p.totals.droppedBytes).toBe(10);
    expect(allBlocks(p).map((b) => [b.objectId, b.startOffset])).toEqual([
      [1, 10],
      [2, 20],
    ]);
  });
});

describe('rule 3: objects sharing no stream', () => {
  it('leaves them alone', () => {
    const p = plan([obj(1, [[1, 0, 10, 10]]), obj(2, [[1, 10, 20, 10]]), obj(3, [[2, 0, 10, 10], [3, 0, 5, 5]])], streams(1, 2, 3));
    expect(p.untouched).toEqual([3]);
    expect(p.compactedObjectIds).toEqual([1, 2]);
    expect(allBlocks(p).every((b) => b.objectId !== 3)).toBe(true);
  });

  it('a single candidate gives an empty plan', () => {
    const p = plan([obj(1, [[1, 0, 10, 10], [2, 0, 10, 10]])], streams(1, 2));
    expect(p).toMatchObject({ compactedObjectIds: [], untouched: [1], sso: null, streamObjects: [], iterations: [], orderId: null, dataTimeMs: null });
  });

  it('sharing is decided on live data only', () => {
    // 1 and 2 share stream 1 only through trimmed data.
    const p = plan([obj(1, [[1, 0, 10, 10], [2, 0, 10, 10]]), obj(2, [[1, 10, 20, 10], [3, 0, 10, 10]])], [stream(1, 100), stream(2), stream(3)]);
    expect(p.untouched).toEqual([1, 2]);
    expect(p.compactedObjectIds).toEqual([]);
  });
});

describe('rule 4: runs', () => {
  it('merges small runs into the SSO, one range per stream, in (streamId, startOffset) order', () => {
    const p = plan(
      [obj(2, [[1, 10, 20, 10], [2, 5, 9, 4]]), obj(1, [[1, 0, 10, 10], [2, 0, 5, 5], [3, 0, 3, 3]])],
      streams(1, 2, 3),
    );
    expect(ssoRanges(p)).toEqual([
      [1, 0, 20],
      [2, 0, 9],
      [3, 0, 3],
    ]);
    expect(p.streamObjects).toEqual([]);
    expect(allBlocks(p).map((b) => [b.streamId, b.startOffset, b.dest])).toEqual([
      [1, 0, { kind: 'sso', offset: 0 }],
      [1, 10, { kind: 'sso', offset: 10 }],
      [2, 0, { kind: 'sso', offset: 20 }],
      [2, 5, { kind: 'sso', offset: 25 }],
      [3, 0, { kind: 'sso', offset: 29 }],
    ]);
    expect(p.sso).toMatchObject({ dataSize: 32, blocks: 5 });
    expect(p.orderId).toBe(1);
    expect(p.dataTimeMs).toBe(NOW - 2000);
  });

  it('splits a run larger than streamSplitSize into a stream object, merges one that is not', () => {
    const p = plan(
      [obj(1, [[1, 0, 10, 60], [2, 0, 10, 50]]), obj(2, [[1, 10, 20, 41], [2, 10, 20, 50]])],
      streams(1, 2),
      { ...SMALL, streamSplitSize: 100 },
    );
    expect(soRanges(p)).toEqual([[1, 0, 20]]); // 101 bytes > 100
    expect(ssoRanges(p)).toEqual([[2, 0, 20]]); // exactly 100 stays
    expect(p.streamObjects[0]).toMatchObject({ index: 0, dataSize: 101, blocks: 2, iteration: 0 });
    const blocks = allBlocks(p);
    expect(blocks.map((b) => b.dest)).toEqual([
      { kind: 'so', index: 0, offset: 0 },
      { kind: 'so', index: 0, offset: 60 },
      { kind: 'sso', offset: 0 },
      { kind: 'sso', offset: 50 },
    ]);
  });

  it('a gap always ends the run and splits the run before it into a stream object', () => {
    const p = plan([obj(1, [[1, 0, 10, 5], [1, 30, 40, 5]]), obj(2, [[1, 10, 20, 5], [1, 50, 60, 5]])], streams(1));
    expect(soRanges(p)).toEqual([
      [1, 0, 20],
      [1, 30, 40],
    ]);
    expect(ssoRanges(p)).toEqual([[1, 50, 60]]);
  });

  // Issue #10: an overlap once failed every run with ERR_PLAN_OVERLAP while the poison object
  // was live, so the node never compacted again.
  it('overlap leaves the newer object out, quarantined, naming both objects, the stream and the offsets', () => {
    const p = plan([obj(3, [[5, 0, 4, 1]]), obj(2, [[4, 5, 15, 5], [5, 4, 8, 1]]), obj(1, [[4, 0, 10, 5], [5, 8, 9, 1]])], streams(4, 5));
    expect(p.skipped).toHaveLength(1);
    const [x] = p.skipped;
    expect(x).toMatchObject({ objectId: 2, key: 'key-2', code: 'ERR_PLAN_OVERLAP', quarantine: true });
    expect(x!.reason).toContain('stream 4');
    expect(x!.reason).toMatch(/object 2 \(key-2\)/);
    expect(x!.reason).toMatch(/object 1 \(key-1\)/);
    expect(x!.reason).toContain('[0, 10)');
    expect(x!.reason).toContain('[5, 15)');
    // The rest of the node still compacts.
    expect(p.compactedObjectIds).toEqual([1, 3]);
    // also two entries with the same start; the newer (higher orderId) goes
    const q = plan([obj(1, [[4, 0, 10, 5]]), obj(2, [[4, 0, 3, 5]])], streams(4));
    expect(q.skipped.map((s) => [s.objectId, s.code])).toEqual([[2, 'ERR_PLAN_OVERLAP']]);
  });

  it('an index that does not hold what metadata gives the object leaves it out, quarantined', () => {
    const lying = obj(2, [[4, 8, 10, 5]]);
    lying.meta.ranges = [{ streamId: 4, startOffset: 6, endOffset: 8 }];
    const p = plan([obj(1, [[4, 0, 6, 5]]), lying, obj(3, [[4, 10, 12, 5]])], streams(4));
    expect(p.skipped.map((s) => [s.objectId, s.code, s.quarantine])).toEqual([[2, 'ERR_PLAN_METADATA_MISMATCH', true]]);
    expect(p.skipped[0]!.reason).toContain('stream 4 [6, 8)');
    // Sparse offsets are no disagreement: entries [0,2) and [5,8) hold a range [0,8).
    const sparse = obj(4, [[4, 0, 2, 5], [4, 5, 8, 5]]);
    sparse.meta.ranges = [{ streamId: 4, startOffset: 0, endOffset: 8 }];
    expect(plan([sparse, obj(5, [[4, 8, 9, 5]])], streams(4)).skipped).toEqual([]);
  });

  it('indexProblems names each range the index does not hold, in one pass, several ranges of a stream included', () => {
    const e = (streamId: number, startOffset: number, endOffset: number) => ({ streamId, startOffset, endOffset, recordCount: 1, position: 0, size: 1 });
    const index = [e(1, 0, 4), e(1, 6, 10), e(2, 5, 9), e(1, 20, 25), e(3, 0, 1)];
    const r = (streamId: number, startOffset: number, endOffset: number) => ({ streamId, startOffset, endOffset });
    // Held: sparse [0,10) of stream 1, [20,25) of stream 1 (a second range of the stream), [0,1) of 3.
    expect(indexProblems(index, [r(1, 0, 10), r(3, 0, 1), r(1, 20, 25)])).toEqual([]);
    expect(indexProblems(index, [r(1, 0, 10), r(2, 4, 9), r(1, 20, 26), r(4, 0, 1), r(3, 0, 1)])).toEqual([
      'its index holds stream 2 [4, 9) that metadata gives it only from offset 5',
      'its index holds stream 1 [20, 26) that metadata gives it only up to offset 25',
      'its index holds nothing of stream 4 [0, 1) that metadata gives it',
    ]);
    // An entry of another range of the same stream does not count for this one.
    expect(indexHoldsRange(index, r(1, 12, 18))).toBe('its index holds nothing of stream 1 [12, 18) that metadata gives it');
    expect(indexHoldsRange(index, r(1, 2, 8))).toBeNull();
  });

  it('trimmed data does not count as overlapping', () => {
    const p = plan([obj(1, [[4, 0, 10, 5]]), obj(2, [[4, 5, 15, 5], [5, 0, 1, 1]]), obj(3, [[5, 1, 2, 1]])], [stream(4, 10), stream(5)]);
    expect(p.compactedObjectIds).toEqual([1, 2, 3]);
    expect(p.emptiedObjectIds).toEqual([1]);
  });
});

describe('rule 5: memory limit', () => {
  // 3 streams x 4 objects, blocks of 10..40 bytes
  const objects = [4, 3, 2, 1].map((id) =>
    obj(id, [
      [1, (id - 1) * 10, id * 10, 10 * id],
      [2, (id - 1) * 10, id * 10, 20],
      [3, (id - 1) * 10, id * 10, 45],
    ]),
  );
  const strs = streams(1, 2, 3);
  const opts = { ...SMALL, streamSplitSize: 150, partSize: 64 };

  it('cuts iterations within the limit counting the SSO tail, with the same outputs as an unbounded plan', () => {
    const unbounded = plan(objects, strs, opts);
    expect(unbounded.iterations).toHaveLength(1);
    expect(soRanges(unbounded)).toEqual([[3, 0, 40]]); // 180 bytes
    expect(ssoRanges(unbounded)).toEqual([
      [1, 0, 40],
      [2, 0, 40],
    ]);
    expect(planError(() => planCompaction(input(objects, strs, { ...opts, memoryLimit: 99 }))).message).toMatch(/works for these objects is 100\b/);
    for (const memoryLimit of [100, 110, 127, 150, 200]) {
      const p = plan(objects, strs, { ...opts, memoryLimit });
      expect(p.iterations.length).toBeGreaterThan(1);
      for (const it of p.iterations) expect(it.tailBefore + it.bytes).toBeLessThanOrEqual(memoryLimit);
      expect(ssoRanges(p)).toEqual(ssoRanges(unbounded));
      // stream objects may be split at iteration boundaries, never anything else
      const so = soRanges(p);
      expect(so[0]![1]).toBe(0);
      expect(so[so.length - 1]![2]).toBe(40);
      for (let i = 1; i < so.length; i++) expect(so[i]![1]).toBe(so[i - 1]![2]);
      for (const s of p.streamObjects) expect(p.iterations[s.iteration]!.blocks.some((b) => b.dest.kind === 'so' && b.dest.index === s.index)).toBe(true);
      expect(p.totals.bytesToRead).toBe(unbounded.totals.bytesToRead);
    }
  });

  it('open reads: picks the count with the fewest data GETs, leaves their memory free, and none for a run of one iteration', () => {
    // Four sources of three 10-byte blocks, all to the SSO; parts of 1 byte: no tail to carry.
    const four = [1, 2, 3, 4].map((id) => obj(id, [[1, id * 10, id * 10 + 10, 10], [2, id * 10, id * 10 + 10, 10], [3, id * 10, id * 10 + 10, 10]]));
    const o = { memoryLimit: 100, partSize: 1, minPartSize: 1, streamSplitSize: 1000 };
    const openReads = { max: 4, bytesEach: 10 };
    const withReads = (options: typeof o, reads = openReads) => planCompaction({ ...input(four, streams(1, 2, 3), options), openReads: reads });
    // 120 bytes under 100: k open reads cut at 100 - 10k. k = 0..4 give 2 iterations each, so
    // k + (4 - k) x 2 data GETs: 8, 7, 6, 5, 4. All four open.
    const all = withReads(o);
    checkInvariants(all);
    expect([all.openReads, all.reserved]).toEqual([4, 40]);
    expect(all.iterations.map((it) => it.bytes)).toEqual([60, 60]);
    const none = plan(four, streams(1, 2, 3), o);
    expect([none.openReads, none.reserved]).toEqual([0, 0]);
    expect(none.iterations.map((it) => it.bytes)).toEqual([100, 20]);
    expect(ssoRanges(all)).toEqual(ssoRanges(none));
    // Under 130 the run is one iteration without open reads: 4 GETs however many are open. None.
    const one = withReads({ ...o, memoryLimit: 130 });
    expect([one.openReads, one.reserved, one.iterations.length]).toEqual([0, 0, 1]);
    // A block that leaves less than the reservation beside it is still planned, in an iteration
    // of its own, and a count is worth what stays open. Two sources, 150 bytes: both open would
    // cut at 80, but the 90-byte block goes alone and leaves 10 beside it, room for one: 1 + 1 x 2
    // data GETs, as one open read cut at 90 (the same two iterations) makes. The fewer.
    const big = [obj(1, [[1, 0, 10, 90], [2, 0, 10, 10]]), obj(2, [[1, 10, 20, 10], [2, 10, 20, 40]])];
    const tight = planCompaction({ ...input(big, streams(1, 2), o), openReads });
    checkInvariants(tight);
    expect([tight.openReads, tight.reserved]).toEqual([1, 10]);
    expect(tight.iterations.map((it) => it.blocks.length)).toEqual([1, 3]);
    // Regression: a count was judged by the memory the cut left, not by what stays open. With
    // parts of 50, four open at 17 each cut at 32 beside tails of up to 40: 7 iterations, with
    // room beside them for 2 (2 + 2 x 7 = 16 data GETs, where the plan counted 4). Judged by what
    // stays open: one, cut at 83, 2 iterations, 1 + 3 x 2 = 7.
    const parts = { ...o, partSize: 50, minPartSize: 1 };
    const tails = withReads(parts, { max: 4, bytesEach: 17 });
    checkInvariants(tails);
    expect([tails.openReads, tails.reserved, tails.iterations.length]).toEqual([1, 17, 2]);
    const free = Math.min(...tails.iterations.map((it) => parts.memoryLimit - it.tailBefore - it.bytes));
    expect(Math.floor(free / 17)).toBeGreaterThanOrEqual(tails.openReads);
    // Up to three quarters of the limit (OPEN_READS_SHARE), no more. At 17 bytes each, all four
    // open take 68 of 100 and cut the run at 32, in four iterations: 4 data GETs, where three
    // open (49 of it) would make 3 + 1 x 3 = 6.
    const wide = withReads(o, { max: 4, bytesEach: 17 });
    checkInvariants(wide);
    expect([wide.openReads, wide.reserved, wide.iterations.length]).toEqual([4, 68, 4]);
    for (const bad of [{ max: 8, bytesEach: 10 }, { max: -1, bytesEach: 10 }, { max: 1.5, bytesEach: 1 }]) {
      expect(planError(() => withReads(o, bad)).message).toMatch(/openReads .*0\.75 of memoryLimit/);
    }
  });

  it('a block larger than memoryLimit excludes its object, reported with the sizes', () => {
    const p = plan([obj(1, [[1, 0, 10, 10]]), obj(2, [[1, 10, 20, 500]]), obj(3, [[1, 20, 30, 10], [2, 0, 1, 1]]), obj(4, [[2, 1, 2, 1]])], streams(1, 2), {
      ...SMALL,
      memoryLimit: 100,
    });
    expect(p.skipped).toEqual([{ objectId: 2, key: 'key-2', reason: expect.stringMatching(/500 B, larger than memoryLimit 100 B/) }]);
    // without 2, the stream 1 runs of 1 and 3 have a gap: [0,10) becomes a stream object
    expect(p.compactedObjectIds).toEqual([1, 3, 4]);
    expect(soRanges(p)).toEqual([[1, 0, 10]]);
    expect(ssoRanges(p)).toEqual([
      [1, 20, 30],
      [2, 0, 2],
    ]);
  });

  it('the oversize object is skipped only when it would be read', () => {
    const p = plan([obj(1, [[1, 0, 10, 10]]), obj(2, [[1, 10, 20, 10]]), obj(3, [[2, 0, 10, 500]])], streams(1, 2), { ...SMALL, memoryLimit: 100 });
    expect(p.skipped).toEqual([]);
    expect(p.untouched).toEqual([3]);
  });

  it('fails when no plan fits, naming the numbers and the smallest limit that works', () => {
    const objs = [obj(1, [[1, 0, 10, 90]]), obj(2, [[1, 10, 20, 90]])];
    const e = planError(() => planCompaction(input(objs, streams(1), { ...SMALL, streamSplitSize: 1000, partSize: 100, memoryLimit: 150 })));
    expect(e.code).toBe('ERR_PLAN_MEMORY_LIMIT');
    expect(e.message).toContain('memoryLimit 150 B');
    expect(e.message).toContain('tail of 90 B');
    expect(e.message).toContain('90 B) needs 180 B');
    expect(e.message).toMatch(/smallest memoryLimit that works for these objects is 180 B = 180 bytes/);
    // The number itself, for a caller (the CLI says "--memory-limit 180B would work").
    expect((e as PlanError).suggest).toEqual({ option: 'memoryLimit', value: 180 });
    const ok = plan(objs, streams(1), { ...SMALL, streamSplitSize: 1000, partSize: 100, memoryLimit: 180 });
    expect(ok.iterations.map((it) => [it.tailBefore, it.bytes])).toEqual([[0, 180]]);
    expect(planError(() => planCompaction(input(objs, streams(1), { ...SMALL, streamSplitSize: 1000, partSize: 100, memoryLimit: 179 }))).message).toMatch(
      /is 180/,
    );
  });

  it('a whole SSO smaller than one part is held until it closes', () => {
    // default partSize: the uploader keeps every SSO byte, so the limit must hold the SSO
    const objs = [obj(1, [[1, 0, 10, 100], [2, 0, 1, 100]]), obj(2, [[1, 10, 20, 100], [2, 1, 2, 100]])];
    const e = planError(() => planCompaction(input(objs, streams(1, 2), { memoryLimit: 250 })));
    expect(e.message).toMatch(/works for these objects is 400/);
    const p = plan(objs, streams(1, 2), { memoryLimit: 400 });
    expect(p.iterations.length).toBeGreaterThanOrEqual(1);
  });

  it('a tiny limit with tiny data gives many iterations, each within the limit', () => {
    const objs = [1, 2, 3, 4, 5, 6].map((id) =>
      obj(id, [
        [1, (id - 1) * 3, id * 3, 7 + id],
        [2, (id - 1) * 2, id * 2, 11],
        [3, id * 5, id * 5 + 5, 13 - id],
      ]),
    );
    for (const memoryLimit of [40, 64, 90]) {
      const p = plan(objs, streams(1, 2, 3), { memoryLimit, partSize: 16, minPartSize: 1, streamSplitSize: 1000 });
      expect(p.totals.bytesToRead).toBe(186);
      expect(p.iterations.length).toBeGreaterThanOrEqual(Math.ceil(186 / memoryLimit));
      if (memoryLimit === 40) expect(p.iterations.length).toBe(7);
      for (const it of p.iterations) expect(it.tailBefore + it.bytes).toBeLessThanOrEqual(memoryLimit);
    }
  });

  it('stream objects come first and run with no SSO tail', () => {
    const p = plan([obj(1, [[1, 0, 10, 50], [2, 0, 10, 30]]), obj(2, [[1, 10, 20, 60], [2, 10, 20, 30]])], streams(1, 2), {
      ...SMALL,
      streamSplitSize: 100,
      memoryLimit: 70,
    });
    expect(p.streamObjects.map((s) => [s.streamId, s.startOffset, s.endOffset, s.iteration])).toEqual([
      [1, 0, 10, 0],
      [1, 10, 20, 1],
    ]);
    expect(p.sso).toMatchObject({ ranges: [{ streamId: 2, startOffset: 0, endOffset: 20 }], firstIteration: 2, closesIn: 2 });
  });
});

describe('rule 6: force split and limits', () => {
  it('an old SSO becomes one stream object per contiguous run of its own, even alone', () => {
    const old = obj(9, [[1, 0, 10, 5], [1, 10, 20, 5], [1, 30, 40, 5], [2, 0, 1, 1]], { dataTimeMs: NOW - 3 * HOUR });
    const p = plan([old], streams(1, 2));
    expect(p.compactedObjectIds).toEqual([9]);
    expect(soRanges(p)).toEqual([
      [1, 0, 20],
      [1, 30, 40],
      [2, 0, 1],
    ]);
    expect(p.sso).toBeNull();
    expect(p.dataTimeMs).toBe(NOW - 3 * HOUR);
  });

  it('its blocks do not merge with other candidates', () => {
    const old = obj(9, [[1, 10, 20, 5], [2, 0, 10, 5]], { dataTimeMs: NOW - 3 * HOUR });
    const p = plan([obj(1, [[1, 20, 30, 5]]), obj(2, [[1, 30, 40, 5], [2, 10, 20, 5]]), old], streams(1, 2));
    expect(p.compactedObjectIds).toEqual([1, 2, 9]);
    expect(soRanges(p)).toEqual([
      [1, 10, 20],
      [2, 0, 10],
    ]);
    expect(ssoRanges(p)).toEqual([
      [1, 20, 40],
      [2, 10, 20],
    ]);
  });

  it('an SSO right at the threshold is not force split', () => {
    const p = plan([obj(9, [[1, 0, 10, 5]], { dataTimeMs: NOW - 2 * HOUR })], streams(1));
    expect(p.untouched).toEqual([9]);
  });

  it('defers the oldest objects until the plan has at most maxStreamObjectsPerCommit stream objects', () => {
    // each pair of objects shares stream s with a gap → each stream gives one stream object
    const objs = [1, 2, 3, 4].map((id) => obj(id, [[1, id * 10, id * 10 + 5, 5], [id + 1, 0, 1, 1]]));
    const full = plan(objs, streams(1, 2, 3, 4, 5), { ...SMALL });
    expect(full.streamObjects).toHaveLength(3);
    const p = plan(objs, streams(1, 2, 3, 4, 5), { ...SMALL, maxStreamObjectsPerCommit: 1 });
    expect(p.deferred.map((d) => d.objectId)).toEqual([3, 4]);
    expect(p.deferred[0]!.reason).toMatch(/3 stream objects > maxStreamObjectsPerCommit 1/);
    expect(p.compactedObjectIds).toEqual([1, 2]);
    expect(p.streamObjects).toHaveLength(1);
  });

  it('defers objects until the SSO has at most maxStreamsPerStreamSetObject streams', () => {
    const objs = [1, 2, 3].map((id) => obj(id, [[1, id, id + 1, 1], [10 + id, 0, 1, 1]]));
    const p = plan(objs, streams(1, 11, 12, 13), { ...SMALL, maxStreamsPerStreamSetObject: 3 });
    expect(p.deferred.map((d) => d.objectId)).toEqual([3]);
    expect(p.sso!.ranges).toHaveLength(3);
  });

  it('skips a force-split object that alone exceeds the limits', () => {
    const old = obj(9, [[1, 0, 1, 1], [1, 2, 3, 1], [1, 4, 5, 1]], { dataTimeMs: NOW - 3 * HOUR });
    const p = plan([obj(1, [[2, 0, 1, 1]]), obj(2, [[2, 1, 2, 1]]), old], streams(1, 2), { ...SMALL, maxStreamObjectsPerCommit: 2 });
    expect(p.skipped.map((s) => s.objectId)).toEqual([9]);
    expect(p.compactedObjectIds).toEqual([1, 2]);
  });

  it('defers objects beyond maxObjectsPerRun', () => {
    const objs = [1, 2, 3].map((id) => obj(id, [[1, id, id + 1, 1]]));
    const p = plan(objs, streams(1), { ...SMALL, maxObjectsPerRun: 2 });
    expect(p.deferred).toEqual([{ objectId: 3, key: 'key-3', reason: expect.stringContaining('maxObjectsPerRun') }]);
    expect(p.compactedObjectIds).toEqual([1, 2]);
  });
});

describe('rule 7: checkCoverage', () => {
  const inp = input([obj(1, [[1, 0, 10, 10], [2, 0, 5, 5]]), obj(2, [[1, 10, 20, 300], [2, 5, 9, 4]])], streams(1, 2), {
    ...SMALL,
    memoryLimit: 400,
  });

  it('passes on a planned run and when streams were trimmed since', () => {
    const p = planCompaction(inp);
    checkCoverage(p, inp);
    checkCoverage(p, { ...inp, streams: [stream(1, 15), stream(2, 0, 'deleted')] });
  });

  it('returns what it drops, which the commit checks again: still dead passes, live again is refused by name', () => {
    const trimmed = input([obj(1, [[1, 0, 10, 10], [1, 10, 20, 10]]), obj(2, [[1, 20, 30, 10], [2, 0, 5, 5]])], [stream(1, 15), stream(2)]);
    const p = planCompaction(trimmed);
    const dropped = checkCoverage(p, trimmed);
    expect(dropped).toEqual([{ streamId: 1, block: expect.objectContaining({ objectId: 1, streamId: 1, startOffset: 0, endOffset: 10 }) }]);
    checkDroppedStillDead(dropped, [stream(1, 15), stream(2)]);
    checkDroppedStillDead(dropped, [stream(1, 25), stream(2)]);
    checkDroppedStillDead(dropped, [stream(1, 0, 'deleted'), stream(2)]);
    const e = planError(() => checkDroppedStillDead(dropped, [stream(1, 5), stream(2)]));
    expect(e.code).toBe('ERR_PLAN_COVERAGE');
    expect(e.message).toContain('block of object 1 (key-1) stream 1 [0, 10)');
    expect(e.message).toContain('now starts at 5');
  });

  it('names a missing block', () => {
    const p = planCompaction(inp);
    const it = p.iterations[p.iterations.length - 1]!;
    const removed = it.blocks.pop()!;
    try {
      checkCoverage(p, inp);
      throw new Error('passed');
    } catch (e) {
      expect((e as PlanError).code).toBe('ERR_PLAN_COVERAGE');
      expect((e as Error).message).toContain(`object ${removed.objectId} (key-${removed.objectId})`);
      expect((e as Error).message).toContain(`stream ${removed.streamId} [${removed.startOffset}, ${removed.endOffset})`);
    }
  });

  it('refuses a block planned twice, a block out of its range, an uncovered range', () => {
    const p1 = planCompaction(inp);
    p1.iterations[0]!.blocks.push({ ...p1.iterations[0]!.blocks[0]! });
    expect(planError(() => checkCoverage(p1, inp)).code).toBe('ERR_PLAN_COVERAGE');
    const p2 = planCompaction(inp);
    p2.sso!.ranges[0]!.endOffset += 1;
    expect(planError(() => checkCoverage(p2, inp)).message).toMatch(/covered only up to/);
    const p3 = planCompaction(inp);
    p3.streamObjects[0]!.endOffset += 1;
    expect(planError(() => checkCoverage(p3, inp)).message).toMatch(/stream object 0/);
    const p4 = planCompaction(inp);
    p4.compactedObjectIds = [2];
    expect(planError(() => checkCoverage(p4, inp)).code).toBe('ERR_PLAN_COVERAGE');
    const p5 = planCompaction(inp);
    p5.compactedObjectIds = [2, 1];
    expect(planError(() => checkCoverage(p5, inp)).code).toBe('ERR_PLAN_INVALID');
  });

  it('refuses to compact an object whose index is unknown', () => {
    const p = planCompaction(inp);
    expect(planError(() => checkCoverage(p, { ...inp, objects: [inp.objects[0]!, failed(2)] })).message).toMatch(/object 2/);
  });
});

describe('formatPlan', () => {
  it('summarizes a plan', () => {
    const old = obj(9, [[3, 0, 10, 5]], { dataTimeMs: NOW - 3 * HOUR });
    const inp = input([obj(1, [[1, 0, 10, 10]]), obj(2, [[1, 10, 20, 10]]), failed(5), obj(7, [[4, 0, 1, 1]]), old], streams(1, 3, 4));
    const text = formatPlan(planCompaction(inp));
    expect(text).toContain('3 SSO(s) compacted');
    expect(text).toContain('new SSO: 1 stream(s)');
    // One row per output object (issue #11: plan as a table), with its streams, offsets, bytes, iteration.
    expect(text).toMatch(/^ {4}object +streams +stream \[offsets\) +bytes +iteration$/m);
    expect(text).toMatch(/^ {4}SSO \(new\) +1 +\d+ \[\d+, \d+\) +[\d.]+ (B|KiB) +\d+\.\.\d+$/m);
    expect(text).toMatch(/^ {4}SO #0 +1 +3 \[0, 10\) +\d+ B +0$/m);
    expect(text).toMatch(/data time \d{4}-\d\d-\d\dT/);
    expect(text).toContain('stream objects: 1');
    expect(text).toContain('untouched (no stream shared): 7');
    expect(text).toMatch(/object 5 \(key-5\): index could not be read/);
    expect(formatPlan(planCompaction(input([], [])))).toContain('nothing to compact');
  });
});

describe('input validation', () => {
  it('refuses duplicate objects and a bad nowMs', () => {
    expect(planError(() => planCompaction(input([obj(1, []), obj(1, [])], []))).code).toBe('ERR_PLAN_INVALID');
    expect(planError(() => planCompaction({ ...input([], []), nowMs: Number.NaN })).code).toBe('ERR_PLAN_INVALID');
  });
});

describe('ssoResumePoint', () => {
  it('finds the block holding the first non-durable byte, possibly in an earlier iteration', async () => {
    const { ssoResumePoint } = await import('../../src/plan/index.js');
    // SSO blocks of 30 bytes, parts of 16, limit 50: the tail carried into iteration i comes from i-1
    const objs = [1, 2, 3, 4].map((id) => obj(id, [[1, (id - 1) * 10, id * 10, 30]]));
    const p = plan(objs, streams(1), { memoryLimit: 50, partSize: 16, minPartSize: 1, streamSplitSize: 1000 });
    expect(p.iterations.map((it) => [it.tailBefore, it.bytes])).toEqual([
      [0, 30],
      [14, 30],
      [12, 30],
      [10, 30],
    ]);
    // 32 bytes durable (2 parts): byte 32 is in the 2nd block (iteration 1), 2 bytes in
    expect(ssoResumePoint(p, 32)).toEqual({ iteration: 1, blockIndex: 0, skip: 2, blockOffset: 30 });
    expect(ssoResumePoint(p, 0)).toEqual({ iteration: 0, blockIndex: 0, skip: 0, blockOffset: 0 });
    expect(ssoResumePoint(p, 96)).toEqual({ iteration: 3, blockIndex: 0, skip: 6, blockOffset: 90 });
    expect(ssoResumePoint(p, 120)).toBeNull();
    expect(() => ssoResumePoint(p, 121)).toThrow(PlanError);
    const noSso = plan([obj(9, [[1, 0, 10, 5]], { dataTimeMs: NOW - 3 * HOUR })], streams(1));
    expect(ssoResumePoint(noSso, 0)).toBeNull();
  });
});
