/**
 * Issue #9, "one GET per object where the budget allows": a run whose candidates fit the memory
 * limit together reads each object whole at planning (its index and its data in one GET) and
 * copies from those bytes; above the limit it reads indexes first and data when it copies. A
 * restart of a run read whole reads from storage, and the budget always comes back to zero.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { withDeadline } from '../../src/util/async.js';
import { fault, useFaultProxy } from '../support/fault-proxy.js';
import { createTestNode, MiB, storageVia, type TestNode } from '../support/node.js';

const KiB = 1024;
const NEVER_HANGS_MS = 60_000;

let node: TestNode | undefined;
const proxy = useFaultProxy(async () => {
  await node?.close();
  node = undefined;
});
// Each test counts its own requests.
beforeEach(() => {
  proxy().clear();
  proxy().requests.length = 0;
});

/** Four SSOs: streams 1-2 large enough for stream objects (one in two parts), 3-12 merged into an SSO. */
async function sampleNode(prefix: string): Promise<{ n: TestNode; total: number; candidates: number }> {
  const streams = Array.from({ length: 12 }, (_, i) => i + 1);
  const n = (node = await createTestNode(prefix, { streams }));
  for (let k = 0; k < 4; k++) {
    await n.writeStreams(
      Object.fromEntries(streams.map((s) => [s, s === 1 ? { n: 3, size: 512 * KiB } : s === 2 ? { n: 2, size: 200 * KiB } : { n: 2, size: 20 * KiB }])),
      { blockSize: 256 * KiB },
    );
  }
  const ssos = await n.metadata.listStreamSetObjects({ nodeId: n.nodeId });
  return { n, total: ssos.reduce((t, o) => t + o.objectSize, 0), candidates: ssos.length };
}

describe('objects read whole when a run fits the memory limit (issue #9)', () => {
  it('one GET per object, nothing read twice; the outputs and the budget as with reads of indexes first', async () => {
    const { n, total, candidates } = await sampleNode('whole-fits');
    const compactor = n.compactor({ memoryLimit: 64 * MiB, streamSplitSize: 1 * MiB }, storageVia(n, { endpoint: proxy().url }));
    expect(total).toBeLessThan(64 * MiB);
    const report = await compactor.compactOnce();
    expect(report.committed).toBe(true);
    expect(report.streamObjects.length).toBeGreaterThanOrEqual(1);
    const gets = proxy().requests.filter((r) => r.op === 'GetObject');
    expect(gets).toHaveLength(candidates);
    // Each a whole object: no Range, or one from its first byte to its last.
    for (const g of gets) expect(g.range ?? 'bytes=0-').toMatch(/^bytes=0-/);
    expect(report.bytesRead).toBeLessThanOrEqual(total);
    expect(compactor.budget.inUse).toBe(0);
    expect(report.peakBudgetBytes).toBeLessThanOrEqual(64 * MiB);
    await n.verify();
  });

  it('candidates above the memory limit read indexes first, then data, within the limit', async () => {
    const { n, total, candidates } = await sampleNode('whole-too-big');
    const limit = Math.floor(total * 0.8);
    const compactor = n.compactor({ memoryLimit: limit, streamSplitSize: 1 * MiB }, storageVia(n, { endpoint: proxy().url }));
    const report = await compactor.compactOnce();
    expect(report.committed).toBe(true);
    const gets = proxy().requests.filter((r) => r.op === 'GetObject');
    // An index read per candidate (a tail of the object), then the data.
    expect(gets.length).toBeGreaterThan(candidates);
    expect(gets.slice(0, candidates).every((g) => g.range !== undefined && !g.range.startsWith('bytes=0-'))).toBe(true);
    expect(report.peakBudgetBytes).toBeLessThanOrEqual(limit);
    expect(compactor.budget.inUse).toBe(0);
    await n.verify();
  });

  it('a restart of a run read whole reads from storage; the run commits and gives the budget back', async () => {
    const { n, candidates } = await sampleNode('whole-restart');
    const storage = storageVia(n, { endpoint: proxy().url, maxAttempts: 2, requestTimeoutMs: 1_000, retryBaseDelayMs: 5 });
    const compactor = n.compactor({ memoryLimit: 64 * MiB, streamSplitSize: 1 * MiB, maxIterationAttempts: 3 }, storage);
    // Every SDK attempt of the first upload fails until the iteration fails; then storage is healthy.
    const rule = proxy().addRule({ op: 'PutObject', times: Infinity, action: fault.slowDown() });
    const sub = compactor.events$.subscribe((e) => {
      if (e.type === 'iteration.failed') rule.remove();
    });
    const report = await withDeadline(compactor.compactOnce(), NEVER_HANGS_MS, 'compactOnce with a restart').finally(() => sub.unsubscribe());
    expect(rule.hits).toBeGreaterThanOrEqual(2);
    expect(report.committed).toBe(true);
    expect(report.restarts).toBeGreaterThanOrEqual(1);
    // The planning read each object whole; the restarted attempt had no bytes and read ranges.
    const gets = proxy().requests.filter((r) => r.op === 'GetObject');
    expect(gets.length).toBeGreaterThan(candidates);
    expect(compactor.budget.inUse).toBe(0);
    proxy().clear();
    expect(await n.storage.listMultipartUploads()).toEqual([]);
    await n.verify();
  });

  it('readWholeWhenFits: false reads indexes first even when everything fits; a wrong value names the option', async () => {
    const { n, candidates } = await sampleNode('whole-off');
    const compactor = n.compactor({ memoryLimit: 64 * MiB, streamSplitSize: 1 * MiB, readWholeWhenFits: false }, storageVia(n, { endpoint: proxy().url }));
    expect((await compactor.compactOnce()).committed).toBe(true);
    expect(proxy().requests.filter((r) => r.op === 'GetObject').length).toBeGreaterThan(candidates);
    await n.verify();
    expect(() => n.compactor({ readWholeWhenFits: 'yes' as unknown as boolean })).toThrow(/readWholeWhenFits.*must be true or false/);
  });
});
