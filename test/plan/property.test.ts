import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IndexEntry } from '../../src/format/types.js';
import type { StreamMetadata } from '../../src/metadata/types.js';
import { PlanError } from '../../src/errors.js';
import { checkCoverage, planCompaction, ssoResumePoint, type CompactionPlan, type PlanInput, type PlanInputObject } from '../../src/plan/index.js';
import { HOUR, NOW, checkInvariants } from './helpers.js';

type Range = [number, number, number];
const stats: number[][] = [];

/** Random valid inputs: per-stream non-overlapping segments spread over objects, trims, deletions, failures, old objects. */
const arbScenario = fc.record({
  nStreams: fc.integer({ min: 1, max: 5 }),
  nObjects: fc.integer({ min: 1, max: 7 }),
  segments: fc.array(
    fc.record({
      stream: fc.nat(4),
      gap: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 1 }),
      len: fc.integer({ min: 1, max: 8 }),
      size: fc.integer({ min: 1, max: 60 }),
      obj: fc.nat(6),
    }),
    { minLength: 3, maxLength: 45 },
  ),
  trims: fc.array(fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: 0, max: 30 }), weight: 1 }), { minLength: 5, maxLength: 5 }),
  states: fc.array(fc.constantFrom('opened', 'opened', 'opened', 'opened', 'opened', 'closed', 'deleted', 'unknown'), { minLength: 5, maxLength: 5 }),
  old: fc.array(fc.integer({ min: 0, max: 4 }).map((x) => x === 0), { minLength: 7, maxLength: 7 }),
  failed: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 7, maxLength: 7 }),
  idBase: fc.integer({ min: 1, max: 1000 }),
});

type Scenario = typeof arbScenario extends fc.Arbitrary<infer T> ? T : never;

function buildInput(sc: Scenario): Omit<PlanInput, 'options'> {
  const cursor = new Array<number>(sc.nStreams).fill(0);
  const perObj: [number, number, number, number][][] = Array.from({ length: sc.nObjects }, () => []);
  for (const seg of sc.segments) {
    const s = seg.stream % sc.nStreams;
    const start = cursor[s]! + seg.gap;
    cursor[s] = start + seg.len;
    perObj[seg.obj % sc.nObjects]!.push([s, start, start + seg.len, seg.size]);
  }
  const objects: PlanInputObject[] = perObj.map((blocks, i) => {
    const id = sc.idBase + ((i * 37) % 101); // ids not in list order
    const dataTimeMs = sc.old[i] ? NOW - 3 * HOUR - i * 1000 : NOW - i * 1000;
    if (sc.failed[i] === 0) return { key: `k/${id}`, meta: { objectId: id, nodeId: 1, orderId: id, dataTimeMs, objectSize: 1, ranges: [] }, index: { error: 'unreadable' } };
    blocks.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let pos = 0;
    const index: IndexEntry[] = blocks.map(([streamId, startOffset, endOffset, size]) => {
      const e = { streamId, startOffset, endOffset, recordCount: endOffset - startOffset, position: pos, size };
      pos += size;
      return e;
    });
    return { key: `k/${id}`, meta: { objectId: id, nodeId: 1, orderId: 10_000 - id, dataTimeMs, objectSize: pos + 48, ranges: [] }, index };
  });
  objects.sort((a, b) => b.meta.dataTimeMs - a.meta.dataTimeMs); // newest first
  const streams: StreamMetadata[] = [];
  for (let s = 0; s < sc.nStreams; s++) {
    const st = sc.states[s]!;
    if (st === 'unknown') continue;
    streams.push({ streamId: s, epoch: 0, startOffset: sc.trims[s]!, endOffset: cursor[s]!, state: st as StreamMetadata['state'] });
  }
  return { objects, streams, nowMs: NOW };
}

/** Straightforward model of rules 1-4 and 6 (no memory cuts, no SO/stream limits). */
function reference(inp: Omit<PlanInput, 'options'>, memoryLimit: number, streamSplitSize: number) {
  const live = new Map<number, number>();
  for (const s of inp.streams) if (s.state !== 'deleted') live.set(s.streamId, s.startOffset);
  const isLive = (e: IndexEntry) => live.has(e.streamId) && e.endOffset > live.get(e.streamId)!;
  const ok = inp.objects.filter((o) => Array.isArray(o.index));
  const liveOf = (o: PlanInputObject) => (o.index as IndexEntry[]).filter(isLive);
  const emptied = ok.filter((o) => liveOf(o).length === 0);
  const cands = ok.filter((o) => liveOf(o).length > 0);
  const isOld = (o: PlanInputObject) => o.meta.dataTimeMs < NOW - 2 * HOUR;
  let mc = cands.filter((o) => !isOld(o));
  let fc_ = cands.filter(isOld);
  const skipped: number[] = [];
  let shared: PlanInputObject[];
  for (;;) {
    const streamsOf = (o: PlanInputObject) => new Set(liveOf(o).map((e) => e.streamId));
    shared = mc.filter((o) => mc.some((p) => p !== o && [...streamsOf(o)].some((s) => streamsOf(p).has(s))));
    const over = [...shared, ...fc_].filter((o) => liveOf(o).some((e) => e.size > memoryLimit));
    if (over.length === 0) break;
    skipped.push(...over.map((o) => o.meta.objectId));
    mc = mc.filter((o) => !over.includes(o));
    fc_ = fc_.filter((o) => !over.includes(o));
  }
  const so: Range[] = [];
  const sso: Range[] = [];
  for (const o of fc_) {
    const es = liveOf(o).sort((a, b) => a.streamId - b.streamId || a.startOffset - b.startOffset);
    for (let i = 0; i < es.length; ) {
      let j = i;
      while (j + 1 < es.length && es[j + 1]!.streamId === es[i]!.streamId && es[j + 1]!.startOffset === es[j]!.endOffset) j++;
      so.push([es[i]!.streamId, es[i]!.startOffset, es[j]!.endOffset]);
      i = j + 1;
    }
  }
  const merged = shared.flatMap(liveOf);
  for (const sid of [...new Set(merged.map((e) => e.streamId))].sort((a, b) => a - b)) {
    const es = merged.filter((e) => e.streamId === sid).sort((a, b) => a.startOffset - b.startOffset);
    const runs: IndexEntry[][] = [];
    for (const e of es) {
      const last = runs[runs.length - 1];
      if (last && last[last.length - 1]!.endOffset === e.startOffset) last.push(e);
      else runs.push([e]);
    }
    runs.forEach((run, i) => {
      const r: Range = [sid, run[0]!.startOffset, run[run.length - 1]!.endOffset];
      const bytes = run.reduce((a, e) => a + e.size, 0);
      if (i < runs.length - 1 || bytes > streamSplitSize) so.push(r);
      else sso.push(r);
    });
  }
  const byRange = (a: Range, b: Range) => a[0] - b[0] || a[1] - b[1];
  return {
    compacted: [...shared, ...fc_, ...emptied].map((o) => o.meta.objectId).sort((a, b) => a - b),
    untouched: mc.filter((o) => !shared.includes(o)).map((o) => o.meta.objectId).sort((a, b) => a - b),
    skipped: [...inp.objects.filter((o) => !Array.isArray(o.index)).map((o) => o.meta.objectId), ...skipped].sort((a, b) => a - b),
    so: so.sort(byRange),
    sso: sso.sort(byRange),
  };
}

/** Plan stream objects, sorted, must tile the reference ranges exactly (a memory cut may split one). */
function refines(plan: CompactionPlan, expected: Range[]): boolean {
  const got: Range[] = plan.streamObjects.map((s) => [s.streamId, s.startOffset, s.endOffset] as Range).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let i = 0;
  for (const [sid, a, b] of expected) {
    let at = a;
    while (at < b) {
      const g = got[i++];
      if (!g || g[0] !== sid || g[1] !== at || g[2] > b) return false;
      at = g[2];
    }
  }
  return i === got.length;
}

function checkResume(plan: CompactionPlan): void {
  const size = plan.sso?.dataSize ?? 0;
  expect(ssoResumePoint(plan, size)).toBeNull();
  for (let d = 0; d < size; d++) {
    const r = ssoResumePoint(plan, d)!;
    const b = plan.iterations[r.iteration]!.blocks[r.blockIndex]!;
    expect(b.dest.kind).toBe('sso');
    const off = (b.dest as { offset: number }).offset;
    expect(off).toBe(r.blockOffset);
    expect(off + r.skip).toBe(d);
    expect(r.skip).toBeGreaterThanOrEqual(0);
    expect(r.skip).toBeLessThan(b.size);
  }
  expect(() => ssoResumePoint(plan, size + 1)).toThrow(PlanError);
  expect(() => ssoResumePoint(plan, -1)).toThrow(PlanError);
}

/** Plans, following ERR_PLAN_MEMORY_LIMIT's advice when given; the advice must be a limit that works. */
function planFollowingAdvice(inp: PlanInput): CompactionPlan {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      return planCompaction(inp);
    } catch (e) {
      if (!(e instanceof PlanError) || e.code !== 'ERR_PLAN_MEMORY_LIMIT') throw e;
      const need = e.suggest!.value;
      expect(e.message).toContain(`= ${need} bytes`);
      expect(need).toBeGreaterThan(inp.options.memoryLimit!);
      inp = { ...inp, options: { ...inp.options, memoryLimit: need } };
    }
  }
  throw new Error('the advised memoryLimit never worked');
}

describe('planner properties', () => {
  it('random inputs: coverage, memory bound, rules as modelled, JSON round trip, resume points', () => {
    fc.assert(
      fc.property(
        arbScenario,
        fc.oneof(fc.integer({ min: 60, max: 300 }), fc.integer({ min: 1, max: 2500 })),
        fc.integer({ min: 1, max: 150 }),
        fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 100, max: 1000 })),
        fc.integer({ min: 1, max: 6 }),
        (sc, memoryLimit, partSize, streamSplitSize, readsMax) => {
          const base = buildInput(sc);
          const inp: PlanInput = { ...base, options: { memoryLimit, partSize, minPartSize: 1, streamSplitSize } };
          const plan = planFollowingAdvice(inp);
          checkInvariants(plan);
          checkCoverage(plan, base);
          expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
          const ref = reference(base, plan.memoryLimit, streamSplitSize);
          expect(plan.compactedObjectIds).toEqual(ref.compacted);
          expect(plan.untouched).toEqual(ref.untouched);
          expect(plan.skipped.map((s) => s.objectId).sort((a, b) => a - b)).toEqual(ref.skipped);
          expect(plan.deferred).toEqual([]);
          expect((plan.sso?.ranges ?? []).map((r) => [r.streamId, r.startOffset, r.endOffset])).toEqual(ref.sso);
          expect(refines(plan, ref.so)).toBe(true);
          if (plan.memoryLimit >= 1_000_000) expect(plan.streamObjects.length).toBe(ref.so.length);
          checkResume(plan);
          // Open reads only move the cut: the same objects and SSO, stream objects that still
          // refine the model's, and no more data GETs than with none open.
          const reads = { max: readsMax, bytesEach: Math.floor(plan.memoryLimit / 2 / readsMax) };
          const open = planCompaction({ ...inp, options: { ...inp.options, memoryLimit: plan.memoryLimit }, openReads: reads });
          checkInvariants(open);
          checkCoverage(open, base);
          checkResume(open);
          expect(open.compactedObjectIds).toEqual(plan.compactedObjectIds);
          expect(open.sso?.ranges ?? []).toEqual(plan.sso?.ranges ?? []);
          expect(refines(open, ref.so)).toBe(true);
          expect(open.openReads).toBeLessThanOrEqual(reads.max);
          expect(open.reserved).toBe(open.openReads * reads.bytesEach);
          const sources = new Set(open.iterations.flatMap((it) => it.blocks.map((b) => b.objectId))).size;
          expect(open.openReads + (sources - open.openReads) * open.iterations.length).toBeLessThanOrEqual(sources * plan.iterations.length);
          if (process.env.PLAN_STATS) stats.push([plan.iterations.length, plan.streamObjects.length, plan.sso ? 1 : 0, plan.memoryLimit !== memoryLimit ? 1 : 0, plan.skipped.length, plan.untouched.length, plan.compactedObjectIds.length]);
        },
      ),
      { numRuns: 400 },
    );
    if (process.env.PLAN_STATS) {
      const c = (f: (r: number[]) => boolean) => stats.filter(f).length;
      console.log(
        `runs ${stats.length}: multi-iteration ${c((r) => r[0]! > 1)}, with SOs ${c((r) => r[1]! > 0)}, with SSO ${c((r) => r[2]! > 0)}, ` +
          `memory advice followed ${c((r) => r[3]! > 0)}, skipped ${c((r) => r[4]! > 0)}, untouched ${c((r) => r[5]! > 0)}, compacting ${c((r) => r[6]! > 0)}`,
      );
    }
  });

  it('random limits: the plan fits, deferrals come from the end of the list, the rest plans as if alone', () => {
    fc.assert(
      fc.property(arbScenario, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), (sc, maxSo, maxStreams) => {
        const base = buildInput(sc);
        const options = { memoryLimit: 1_000_000, partSize: 64, minPartSize: 1, streamSplitSize: 40 };
        const plan = planCompaction({ ...base, options: { ...options, maxStreamObjectsPerCommit: maxSo, maxStreamsPerStreamSetObject: maxStreams } });
        checkInvariants(plan);
        checkCoverage(plan, base);
        expect(plan.streamObjects.length).toBeLessThanOrEqual(maxSo);
        expect(plan.sso?.ranges.length ?? 0).toBeLessThanOrEqual(maxStreams);
        // deferred objects are a suffix of the considered ones (newest-first order)
        const out = new Set([...plan.deferred, ...plan.skipped].map((x) => x.objectId));
        const deferred = plan.deferred.map((d) => d.objectId);
        const order = base.objects.map((o) => o.meta.objectId);
        if (deferred.length) {
          const first = Math.min(...deferred.map((id) => order.indexOf(id)));
          for (const id of order.slice(first)) {
            const o = base.objects.find((x) => x.meta.objectId === id)!;
            const emptied = plan.emptiedObjectIds.includes(id);
            if (!emptied && Array.isArray(o.index)) expect(out.has(id) || plan.untouched.includes(id)).toBe(true);
          }
        }
        // the same plan as planning only the objects that were kept, without limits
        const kept = { ...base, objects: base.objects.filter((o) => !out.has(o.meta.objectId)) };
        const free = planCompaction({ ...kept, options });
        const strip = (p: CompactionPlan) => ({ ...p, skipped: [], deferred: [] });
        expect(strip(plan)).toEqual(strip(free));
      }),
      { numRuns: 300 },
    );
  });
});
