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
import { MiB, storageVia, type TestNode } from '../support/node.js';
import { committedShape, SAMPLE_OPTIONS, useSampleNodes } from '../support/sample-node.js';

const KiB = 1024;
const SOURCES = 3;
const { proxy, sampleNode } = useSampleNodes();
const options = SAMPLE_OPTIONS;

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
    // Under this 2 MiB limit the default allows one open read (a quarter of the limit's worth).
    const b = await compactCounting(open, { maxOpenReads: SOURCES });
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
    const expected = await calm.compactor(options).compactOnce();
    // The first data GET (after one index GET per source) is cut inside the first iteration's
    // range; the second well past it, while its cursor is paused.
    proxy().addRule({ op: 'GetObject', skip: SOURCES, times: 1, action: fault.cutBody(20 * KiB) });
    proxy().addRule({ op: 'GetObject', skip: SOURCES, times: 1, action: fault.cutBody(900 * KiB) });
    const { report, dataGets } = await compactCounting(hit, { maxOpenReads: SOURCES });
    expect(report.committed).toBe(true);
    expect(report.restarts).toBe(0);
    expect(report.iterations).toBe(expected.iterations);
    expect(proxy().requests.filter((r) => r.fault === 'cutBody')).toHaveLength(2);
    // Each cut cost its read a plain GET and its source a new cursor for the reads after.
    expect(dataGets).toBeGreaterThan(SOURCES);
    expect(await committedShape(hit)).toEqual(await committedShape(calm));
    await hit.verify();
  });

  it('maxOpenReads is checked at the boundary, and by default spends a quarter of the memory limit on open reads', async () => {
    const n = await sampleNode('open-reads-options');
    for (const bad of [-1, 1.5, 257, '4']) {
      expect(() => n.compactor({ ...options, maxOpenReads: bad as number })).toThrow(/maxOpenReads/);
    }
    const resolved = (extra: Record<string, unknown>) => resolveCompactorOptions({ storage: n.storage, metadata: n.metadata, nodeId: n.nodeId, ...extra });
    expect(resolved({ memoryLimit: 64 * MiB }).maxOpenReads).toBe(Math.floor((64 * MiB) / 4 / CURSOR_MEMORY));
    expect(resolved({ memoryLimit: 1024 * MiB }).maxOpenReads).toBe(128);
    expect(resolved({ memoryLimit: 64 * MiB, maxOpenReads: 0 }).maxOpenReads).toBe(0);
    expect(resolved({ memoryLimit: 64 * MiB, maxOpenReads: 200 }).maxOpenReads).toBe(200);
  });
});
