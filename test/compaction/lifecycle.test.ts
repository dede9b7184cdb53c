/**
 * Worker death, close() in the middle of a run, garbage collection, scheduled runs and the memory
 * budget over a larger run: real S3 server, real worker threads, real SQLite.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { filter, firstValueFrom } from 'rxjs';
import { AbortError } from '../../src/errors.js';
import { withDeadline } from '../../src/util/async.js';
import { fault, startFaultProxy } from '../support/fault-proxy.js';
import { s3Endpoint } from '../support/env.js';
import { createTestNode, MiB, storageVia } from '../support/node.js';
import { committedShape, SAMPLE_OPTIONS, useSampleNodes, writeSampleSsos } from '../support/sample-node.js';

const KiB = 1024;
const { proxy, sampleNode, track } = useSampleNodes();
const options = SAMPLE_OPTIONS;

describe('compactor lifecycle', () => {
  it('a worker killed during an iteration: the iteration restarts and the run commits what an undisturbed run commits', async () => {
    const calm = await sampleNode('kill-calm');
    const hit = await sampleNode('kill-hit');
    const expected = await calm.compactor(options).compactOnce();
    expect(expected.iterations).toBeGreaterThan(2);

    // Slow reads down so the kill lands while the iteration is in flight.
    proxy().addRule({ op: 'GetObject', times: Infinity, skip: 3, action: fault.delay(50) });
    const compactor = hit.compactor(options, storageVia(hit, { endpoint: proxy().url }));
    const killed = firstValueFrom(compactor.events$.pipe(filter((e) => e.type === 'iteration.started' && e.iteration === 1 && e.attempt === 1))).then(async () => {
      const pipeline = compactor.supervisor.actors!.pipeline;
      await pipeline.terminate('killed by the test');
    });
    const failures: string[] = [];
    compactor.events$.subscribe((e) => {
      if (e.type === 'iteration.failed') failures.push(e.error.code);
    });
    const report = await withDeadline(compactor.compactOnce(), 30_000, 'compactOnce with a killed worker');
    await killed;
    expect(failures[0]).toMatch(/^ERR_WORKER_/);
    expect(report.restarts).toBeGreaterThanOrEqual(1);
    expect(report.committed).toBe(true);
    expect(compactor.budget.inUse).toBe(0);
    expect(await committedShape(hit)).toEqual(await committedShape(calm));
    expect(await hit.storage.listMultipartUploads()).toEqual([]);
    await hit.verify();
  });

  it('close() during a run returns promptly, ends every worker thread, leaves no unfinished upload; gc removes leftovers', async () => {
    const n = await sampleNode('close');
    proxy().addRule({ op: 'GetObject', times: Infinity, skip: 3, action: fault.delay(100) });
    const compactor = n.compactor({ ...options, memoryLimit: 6 * MiB, streamSplitSize: 64 * MiB, partSize: 5 * MiB }, storageVia(n, { endpoint: proxy().url }));
    const started = firstValueFrom(compactor.events$.pipe(filter((e) => e.type === 'iteration.started')));
    const run = compactor.compactOnce().catch((e: unknown) => e);
    await started;
    await withDeadline(compactor.close(), 10_000, 'close() during a run');
    const err = await run;
    expect(err).toBeInstanceOf(AbortError);
    expect(compactor.supervisor.liveThreads).toBe(0);
    expect(compactor.budget.inUse).toBe(0);
    expect(await n.storage.listMultipartUploads()).toEqual([]);
    await n.verify();

    // Leftovers of a killed process: an uncommitted object and an unfinished upload.
    const orphanId = (await n.metadata.prepareObjectIds(1)) + 1000;
    const orphan = n.storage.keyOf(orphanId);
    await n.storage.putObject(orphan, new Uint8Array([1, 2, 3]));
    const pendingKey = n.storage.keyOf(orphanId + 1);
    const uploadId = await n.storage.createMultipartUpload(pendingKey);
    const gcCompactor = n.compactor();
    const dry = await gcCompactor.gc({ safetyAgeMs: 0, dryRun: true });
    expect(dry.deletedObjects).toEqual([orphan]);
    expect(dry.abortedUploads).toEqual([{ key: pendingKey, uploadId }]);
    expect((await n.storage.listObjects()).map((o) => o.key)).toContain(orphan);
    const done = await gcCompactor.gc({ safetyAgeMs: 0 });
    expect(done.deletedObjects).toEqual([orphan]);
    expect(await n.storage.listMultipartUploads()).toEqual([]);
    expect((await n.storage.listObjects()).map((o) => o.key)).not.toContain(orphan);
    // Young leftovers are kept: a run or an ingest may still commit them.
    await n.storage.putObject(orphan, new Uint8Array([1]));
    expect((await gcCompactor.gc({ safetyAgeMs: 60_000 })).deletedObjects).toEqual([]);
    await n.verify();
  });

  it('deletes compacted objects from storage after their grace period', async () => {
    const n = await sampleNode('grace');
    const before = (await n.storage.listObjects()).map((o) => o.key).sort();
    const compactor = n.compactor(options);
    const report = await compactor.compactOnce();
    expect(report.committed).toBe(true);
    // graceMs is 0 in the test node: the next run (or gc) deletes them.
    const gc = await compactor.gc({ safetyAgeMs: 60_000 });
    expect(gc.deletedCompacted.sort((a, b) => a - b)).toEqual(report.compactedObjectIds);
    const after = (await n.storage.listObjects()).map((o) => o.key);
    for (const k of before) expect(after).not.toContain(k);
    await n.verify();
  });

  it('a second run reuses the worker thread\'s S3 connections: the thread keeps one storage for its planner, its pipeline and the runs after', async () => {
    const n = await sampleNode('warm-sockets');
    // moto closes every connection after its response; S3 keeps them open, and so does this proxy.
    const keepAlive = await startFaultProxy(s3Endpoint(), { keepAlive: true });
    onTestFinished(() => keepAlive.close());
    // The second run merges the first one's SSO too: more room for its tail.
    const compactor = n.compactor({ ...options, memoryLimit: 6 * MiB }, storageVia(n, { endpoint: keepAlive.url }));
    expect((await compactor.compactOnce()).committed).toBe(true);
    const firstRun = keepAlive.connections;
    // Three more SSOs (written around the proxy): a second run of the same shape.
    await writeSampleSsos(n, 3);
    const requestsBefore = keepAlive.requests.length;
    expect((await compactor.compactOnce()).committed).toBe(true);
    const requests = keepAlive.requests.length - requestsBefore;
    const opened = keepAlive.connections - firstRun;
    // A new client per actor opened a connection for about every request in flight: the index
    // reads, then the data reads and uploads again (13 of 23 requests, before the data reads
    // kept one GET per source open across iterations). Kept ones leave a few to open: a peak
    // above the first run's, and the host's first request of the run (4-5 of 19-20 here; the
    // host keeps no socket from the run before since a clean run's end lists no uploads).
    expect(requests).toBeGreaterThanOrEqual(16);
    expect(opened).toBeLessThan(requests / 3);
    await n.verify();
  });

  it('the SSO\'s multipart upload is created when the pipeline starts, not when its first part is whole', async () => {
    // 8 SSOs of ~3 MiB over 24 streams: one SSO of ~24 MiB (multipart with 5 MiB parts), above
    // the 8 MiB limit (the planner reads indexes, not whole objects).
    const streams = Array.from({ length: 24 }, (_, i) => i + 1);
    const n = await createTestNode('eager-mpu', { streams });
    track(n);
    for (let k = 0; k < 8; k++) await n.writeStreams(Object.fromEntries(streams.map((s) => [s, { n: 2, size: 64 * KiB }])), { blockSize: 64 * KiB });
    // The 8 index reads pass; every data GET is held: no part can ever be whole.
    proxy().addRule({ op: 'GetObject', skip: 8, times: Infinity, action: fault.stall() });
    const compactor = n.compactor({ memoryLimit: 8 * MiB }, storageVia(n, { endpoint: proxy().url }));
    const ac = new AbortController();
    const run = compactor.compactOnce({ signal: ac.signal });
    run.catch(() => {});
    await withDeadline(proxy().waitFor('CreateMultipartUpload', 1), 15_000, 'CreateMultipartUpload while every data GET is held');
    expect(proxy().count('UploadPart')).toBe(0);
    ac.abort();
    await expect(run).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('start() runs on schedule until close()', async () => {
    const n = await sampleNode('schedule');
    const compactor = n.compactor({ ...options, interval: 60_000 });
    const committed = firstValueFrom(compactor.events$.pipe(filter((e) => e.type === 'run.committed')));
    compactor.start();
    const e = await withDeadline(committed, 30_000, 'the first scheduled run');
    expect(e.type).toBe('run.committed');
    await compactor.close();
    expect(compactor.supervisor.liveThreads).toBe(0);
    await n.verify();
  });

  it('a run over 64 MiB of SSOs with memoryLimit 16 MiB keeps the budget high-water at or under 16 MiB', async () => {
    const streams = Array.from({ length: 64 }, (_, i) => i + 1);
    const n = await createTestNode('budget-64', { streams });
    track(n);
    // 8 SSOs x 8 MiB; streams 1-16 large (stream objects), the rest merge into one SSO.
    for (let k = 0; k < 8; k++) {
      await n.writeStreams(Object.fromEntries(streams.map((s) => [s, { n: 1, size: s <= 16 ? 384 * KiB : 48 * KiB }])), { blockSize: 512 * KiB });
    }
    const compactor = n.compactor({ memoryLimit: 16 * MiB, streamSplitSize: 2 * MiB, partSize: 5 * MiB });
    const report = await compactor.compactOnce();
    expect(report.committed).toBe(true);
    expect(report.bytesRead).toBeGreaterThan(64 * MiB);
    expect(report.iterations).toBeGreaterThan(3);
    expect(report.peakBudgetBytes).toBeGreaterThan(0);
    expect(report.peakBudgetBytes).toBeLessThanOrEqual(16 * MiB);
    expect(compactor.budget.inUse).toBe(0);
    await n.verify();
  });
});
