import { describe, expect, it } from 'vitest';
import type { IndexEntry } from '../../src/format/types.js';
import { checkCoverage, planCompaction, type PlanInputObject } from '../../src/plan/index.js';
import { NOW } from './helpers.js';

/** `nObj` SSOs (newest first) each holding one block of every one of `nStreams` streams. */
function bigInput(nObj: number, nStreams: number, blockSize: (o: number, s: number) => number) {
  const objects: PlanInputObject[] = [];
  for (let i = 0; i < nObj; i++) {
    const o = nObj - 1 - i; // newest first: object o holds offsets [o*10, o*10+10)
    const index: IndexEntry[] = new Array(nStreams);
    let pos = 0;
    for (let s = 0; s < nStreams; s++) {
      const size = blockSize(o, s);
      index[s] = { streamId: s, startOffset: o * 10, endOffset: o * 10 + 10, recordCount: 10, position: pos, size };
      pos += size;
    }
    objects.push({
      key: `k/${o}`,
      meta: { objectId: 1000 + o, nodeId: 1, orderId: 1000 + o, dataTimeMs: NOW - (nObj - o) * 100, objectSize: pos, ranges: [] },
      index,
    });
  }
  const streams = Array.from({ length: nStreams }, (_, s) => ({ streamId: s, epoch: 0, startOffset: s % 7 === 0 ? 15 : 0, endOffset: nObj * 10, state: 'opened' as const }));
  return { objects, streams, nowMs: NOW };
}

describe('scale', () => {
  // Timing lives in bench/ (tests never assert timings); this checks correctness at scale.
  it('plans 500 SSOs x 2000 streams (1M entries) within the limits', () => {
    // stream s has 500 blocks of (s % 50) * 400 + 60 bytes: streams with big runs become stream objects
    const inp = { ...bigInput(500, 2000, (_o, s) => (s % 50) * 400 + 60), options: {} };
    const plan = planCompaction(inp);
    checkCoverage(plan, inp);
    // streams with s % 7 == 0 (286 of them) are trimmed at 15: their [0, 10) block is dropped, [10, 20) straddles and stays
    expect(plan.totals.blocks).toBe(1_000_000 - 286);
    for (const it of plan.iterations) expect(it.tailBefore + it.bytes).toBeLessThanOrEqual(plan.memoryLimit);
  });
});
