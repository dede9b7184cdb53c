/**
 * The bandwidth limit (`bandwidthLimit`): one token bucket in shared memory for every thread of
 * a compactor. The planner's index reads and the pipeline's GETs and parts (worker threads) all
 * take their bytes from it, so what the host sees charged covers everything the run moved.
 * The rate itself is a benchmark's business (bench/bandwidth.mjs), not a test's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BandwidthLimiter } from '../../src/storage/bandwidth.js';
import { OptionsError } from '../../src/errors.js';
import { createTestNode, MiB, type TestNode } from '../support/node.js';

const KiB = 1024;
let node: TestNode;
beforeAll(async () => {
  node = await createTestNode('bandwidth', { streams: [1, 2, 3] });
});
afterAll(async () => {
  await node?.close();
});

describe('bandwidth limit', () => {
  it("every worker thread's requests take their bytes from the one shared bucket, and demand above the rate waits", async () => {
    for (let i = 0; i < 3; i++) await node.writeStreams({ 1: { n: 2, size: 256 * KiB }, 2: { n: 2, size: 8 * KiB }, 3: { n: 1, size: 1 * KiB } });
    const compactor = node.compactor({ bandwidthLimit: 1 * MiB, streamSplitSize: 512 * KiB });
    const report = await compactor.compactOnce();
    expect(report.committed).toBe(true);
    const limiter = compactor.bandwidth!;
    expect(limiter.bytesPerSecond).toBe(1 * MiB);
    // Reads (index tails and data) and writes of the run, all charged in the workers.
    expect(limiter.bytes).toBeGreaterThanOrEqual(report.bytesRead + report.bytesWritten);
    // About 3 MiB moved at 1 MiB/s: requests waited, and the wait is counted.
    expect(limiter.waitedSeconds).toBeGreaterThan(0);
    await node.verify();
  });

  it('a waiting request gives up on its signal, typed; the option is checked at the boundary', async () => {
    const limiter = new BandwidthLimiter(64 * KiB);
    await limiter.take(64 * KiB); // the bucket is now in debt for about a second
    const ac = new AbortController();
    const waiting = limiter.take(1, ac.signal);
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    // The worker's view of the same bucket (its handle) sees the same numbers.
    expect(new BandwidthLimiter(limiter.handle).bytes).toBe(64 * KiB);
    expect(() => node.compactor({ bandwidthLimit: 1000 })).toThrow(OptionsError);
    expect(() => node.compactor({ bandwidthLimit: 1000 })).toThrow(/bandwidthLimit.*at least 65536/);
  });
});
