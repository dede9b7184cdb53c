import { describe, expect, it } from 'vitest';
import { planReads } from '../../src/actors/reader.js';
import type { Segment } from '../../src/messages/pipeline.js';

const KiB = 1024;
let seq = 0;
function seg(key: string, srcPos: number, size: number): Segment {
  return { seq: seq++, key, srcPos, size, dest: { kind: 'sso' }, destOffset: 0 };
}

/** Every segment is covered by exactly one piece, at its own bytes of its own read. */
function expectCovered(segments: Segment[], reads: ReturnType<typeof planReads>): void {
  const bySeq = new Map(segments.map((s) => [s.seq, s]));
  const seen = new Set<number>();
  for (const r of reads) {
    let data = 0;
    for (const p of r.pieces) {
      const s = bySeq.get(p.seq)!;
      expect(seen.has(p.seq)).toBe(false);
      seen.add(p.seq);
      expect([r.key, r.start + p.offset, p.size]).toEqual([s.key, s.srcPos, s.size]);
      data += p.size;
    }
    expect(r.gap).toBe(r.end - r.start - data);
  }
  expect(seen.size).toBe(segments.length);
}

describe('planReads', () => {
  it('joins adjacent segments of one object, never across objects, and issues in output order', () => {
    const segments = [seg('b', 0, 100), seg('a', 100, 50), seg('a', 0, 100), seg('a', 150, 10)];
    const reads = planReads(segments, 1024 * KiB);
    expect(reads.map((r) => [r.key, r.start, r.end, r.gap])).toEqual([
      ['b', 0, 100, 0],
      ['a', 0, 160, 0],
    ]);
    expectCovered(segments, reads);
  });

  it('without an allowance a gap always splits the read', () => {
    const segments = [seg('a', 0, 100), seg('a', 200, 100)];
    expect(planReads(segments, 1024 * KiB).length).toBe(2);
  });

  it('reads through the smallest gaps first, within the allowance, maxGap and maxGetSize', () => {
    // Gaps of 300, 100 and 200 bytes between four runs of one object.
    const segments = [seg('a', 0, 100), seg('a', 400, 100), seg('a', 600, 100), seg('a', 900, 100)];
    // 300 bytes of allowance: the 100 and 200 byte gaps (smallest first), not the 300 one.
    const reads = planReads(segments, 1024 * KiB, 300);
    expect(reads.map((r) => [r.start, r.end, r.gap])).toEqual([
      [0, 100, 0],
      [400, 1000, 300],
    ]);
    expectCovered(segments, reads);
    // A gap above maxGap stays a split whatever the allowance.
    expect(planReads(segments, 1024 * KiB, 10_000, 150).map((r) => [r.start, r.end])).toEqual([
      [0, 100],
      [400, 700],
      [900, 1000],
    ]);
    // maxGetSize bounds a joined read like any other.
    expect(planReads(segments, 700, 10_000).every((r) => r.end - r.start <= 700)).toBe(true);
    expectCovered(segments, planReads(segments, 700, 10_000));
  });
});
