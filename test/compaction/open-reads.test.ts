/**
 * One GET per source object for the whole run (`maxOpenReads`): each source's GET stays open
 * across iterations, read a stream range at a time. Before, a source cost one GET per iteration.
 * A cursor that fails (a body cut while it reads, or while it waits paused between iterations)
 * costs that read a plain, resumable GET and nothing else. Real S3 server, fault proxy, workers.
 */
import { describe, expect, it } from 'vitest';
import { filter, firstValueFrom } from 'rxjs';
import { resolveCompactorOptions } from '../../src/compactor/options.js';
import { CURSOR_MEMORY } from '../../src/storage/range-cursor.js';
import { fault } from '../support/fault-proxy.js';
import { createTestNode, MiB, storageVia, type TestNode } from '../support/node.js';
import { committedShape, SAMPLE_OPTIONS, useSampleNodes } from '../support/sample-node.js';

const KiB = 1024;
const SOURCES = 3;
const { proxy, sampleNode, track } = useSampleNodes();
const options = SAMPLE_OPTIONS;
/**
 * Every source open. Open reads are counted in the budget and the plan leaves them free: with
 * the limit raised by their memory, a run cuts the iterations of one without open reads.
 */
const OPEN = { maxOpenReads: SOURCES, memoryLimit: options.memoryLimit + SOURCES * CURSOR_MEMORY };

/** Compacts `n` through the proxy; returns the report and the GETs sent after planning (the data GETs). */
async function compactCounting(n: TestNode, extra: Record<string, unknown> = {}) {
  const compactor = n.compactor({ ...options, ...extra }, storageVia(n, { endpoint: proxy().url }));
  let atPlanned = -1;
  const planned = firstValueFrom(compactor.events$.pipe(filter((e) => e.type === 'run.planned'))).then(() => {
    atPlanned = proxy().count('GetObject');
  });
  const report = await compactor.compactOnce();
  await planned;
  return { report, dataGets: proxy().count('GetObject') - atPlanned };
}

describe('open reads (one GET per source across iterations)', () => {
  it('reads each source with one GET for the whole run, and commits what a GET per source and iteration commits', async () => {
    const closed = await sampleNode('open-reads-off');
    const open = await sampleNode('open-reads-on');
    const a = await compactCounting(closed, { maxOpenReads: 0 });
    proxy().requests.length = 0;
    const b = await compactCounting(open, OPEN);
    expect(a.report.iterations).toBeGreaterThan(2);
    expect(b.report.iterations).toBe(a.report.iterations);
    // Without open reads, every iteration reads every source again.
    expect(a.dataGets).toBeGreaterThanOrEqual(SOURCES * a.report.iterations);
    expect(b.dataGets).toBe(SOURCES);
    expect(b.report.committed).toBe(true);
    expect(await committedShape(open)).toEqual(await committedShape(closed));
    await open.verify();
  });

  it('a body cut while a cursor reads, and one cut while it waits between iterations: those reads take plain GETs and the run commits the same', async () => {
    const calm = await sampleNode('open-reads-calm');
    const hit = await sampleNode('open-reads-cut');
    const expected = await calm.compactor({ ...options, ...OPEN }).compactOnce();
    // The first data GET (after one index GET per source) is cut inside the first iteration's
    // range; the second well past it, while its cursor is paused.
    proxy().addRule({ op: 'GetObject', skip: SOURCES, times: 1, action: fault.cutBody(20 * KiB) });
    proxy().addRule({ op: 'GetObject', skip: SOURCES, times: 1, action: fault.cutBody(900 * KiB) });
    const { report, dataGets } = await compactCounting(hit, OPEN);
    expect(report.committed).toBe(true);
    expect(report.restarts).toBe(0);
    expect(report.iterations).toBe(expected.iterations);
    expect(proxy().requests.filter((r) => r.fault === 'cutBody')).toHaveLength(2);
    // Each cut cost its read a plain GET and its source a new cursor for the reads after.
    expect(dataGets).toBeGreaterThan(SOURCES);
    expect(await committedShape(hit)).toEqual(await committedShape(calm));
    await hit.verify();
  });

  it('maxOpenReads is checked at the boundary, and by default may spend up to three quarters of the memory limit on open reads, the most allowed', async () => {
    const n = await sampleNode('open-reads-options');
    for (const bad of [-1, 1.5, 257, '4']) {
      expect(() => n.compactor({ ...options, maxOpenReads: bad as number })).toThrow(/maxOpenReads/);
    }
    const resolved = (extra: Record<string, unknown>) => resolveCompactorOptions({ storage: n.storage, metadata: n.metadata, nodeId: n.nodeId, ...extra });
    expect(resolved({ memoryLimit: 64 * MiB }).maxOpenReads).toBe(192);
    expect(resolved({ memoryLimit: 1024 * MiB }).maxOpenReads).toBe(256);
    expect(resolved({ memoryLimit: 64 * MiB, maxOpenReads: 0 }).maxOpenReads).toBe(0);
    const most = Math.floor((48 * MiB) / CURSOR_MEMORY);
    expect(resolved({ memoryLimit: 64 * MiB, maxOpenReads: most }).maxOpenReads).toBe(most);
    expect(() => resolved({ memoryLimit: 64 * MiB, maxOpenReads: most + 1 })).toThrow(new RegExp(`maxOpenReads.*more than three quarters of 64.0 MiB: at most ${most}`));
    expect(resolved({ memoryLimit: 1024 * MiB, maxOpenReads: 256 }).maxOpenReads).toBe(256);
  });

  it('the plan leaves the open reads free, and the dry run shows the same plan as the run', async () => {
    const n = await sampleNode('open-reads-reserved');
    const { plan } = await n.compactor({ ...options, ...OPEN }).plan();
    expect(plan.reserved).toBe(SOURCES * CURSOR_MEMORY);
    for (const it of plan.iterations) expect(it.tailBefore + it.bytes).toBeLessThanOrEqual(options.memoryLimit);
    const { plan: without } = await n.compactor({ ...options, maxOpenReads: 0 }).plan();
    expect(without.reserved).toBe(0);
    expect(plan.iterations.map((it) => it.bytes)).toEqual(without.iterations.map((it) => it.bytes));
    // Counted in the budget from the pipeline's start to its end, then given back.
    const compactor = n.compactor({ ...options, ...OPEN });
    const inUse: number[] = [];
    const sub = compactor.events$.pipe(filter((e) => e.type === 'iteration.finished')).subscribe(() => inUse.push(compactor.budget.inUse));
    const planned = firstValueFrom(compactor.events$.pipe(filter((e) => e.type === 'run.planned')));
    const report = await compactor.compactOnce();
    sub.unsubscribe();
    expect(await planned).toMatchObject({ openReads: SOURCES, iterations: plan.iterations.length });
    expect(report.committed).toBe(true);
    expect(report.iterations).toBe(plan.iterations.length);
    expect(inUse).toHaveLength(plan.iterations.length);
    for (const held of inUse) expect(held).toBeGreaterThanOrEqual(SOURCES * CURSOR_MEMORY);
    expect(compactor.budget.inUse).toBe(0);
    await n.verify();
  });
});

describe('index reads of SSOs that hold many streams', () => {
  // Regression: the planner read a fixed 64 KiB tail for an index. An SSO of a busy node holds
  // thousands of streams: 2 500 make a 90 KiB index, and every such source cost a second GET.
  // The tail read now follows the stream ranges metadata lists for the object.
  it('one GET a source reads its index, however many streams it holds', async () => {
    const streams = Array.from({ length: 2500 }, (_, i) => i + 1);
    const n = track(await createTestNode('wide-index', { streams }));
    for (let k = 0; k < 3; k++) await n.writeStreams(Object.fromEntries(streams.map((s) => [s, { n: 1, size: 16 }])));
    const compactor = n.compactor({ ...options, readWholeWhenFits: false }, storageVia(n, { endpoint: proxy().url }));
    proxy().requests.length = 0;
    const { plan } = await compactor.plan();
    expect(plan.totals.blocks).toBe(3 * 2500);
    expect(proxy().count('GetObject')).toBe(3);
  });
});
