/**
 * Seed regression: AutoMQ's compaction hung forever when an SSO's tail, smaller than the 5 MiB
 * multipart minimum, waited at the end of an iteration for an upload that only the object's close
 * would make, and storage then failed. Here the SSO spans several iterations with blocks far
 * below 5 MiB; storage faults injected by the proxy must end the run (typed error, everything
 * released, no unfinished upload, nothing committed) or restart the iteration and commit.
 */
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { withDeadline } from '../../src/util/async.js';
import { fault, useFaultProxy, type FaultAction, type S3Operation } from '../support/fault-proxy.js';
import { createTestNode, MiB, storageVia, type TestNode } from '../support/node.js';

const KiB = 1024;
/** A hang shows up as this deadline passing, with a clear message, not as a stuck suite. */
const NEVER_HANGS_MS = 20_000;

let node: TestNode;
const proxy = useFaultProxy(async () => {
  await node?.close();
});

/** Two SSOs of 40 streams x 192 KiB each: one ~15 MiB SSO output, 3 parts of 5 MiB, 3+ iterations at 8 MiB. */
async function bigSsoNode(prefix: string): Promise<TestNode> {
  const streams = Array.from({ length: 40 }, (_, i) => i + 1);
  node = await createTestNode(prefix, { streams });
  for (let k = 0; k < 2; k++) {
    await node.writeStreams(Object.fromEntries(streams.map((s) => [s, { n: 3, size: 64 * KiB }])), { blockSize: 256 * KiB });
  }
  return node;
}

/** Two SSOs whose merge is one small SSO: it goes up as a single PutObject at its close. */
async function smallSsoNode(prefix: string): Promise<TestNode> {
  node = await createTestNode(prefix, { streams: [1, 2, 3] });
  await node.writeStreams({ 1: { n: 4, size: 10 * KiB }, 2: { n: 4, size: 10 * KiB } });
  await node.writeStreams({ 1: { n: 4, size: 10 * KiB }, 3: { n: 4, size: 10 * KiB } });
  return node;
}

function compactorThroughProxy(n: TestNode, extra: Record<string, number> = {}) {
  const storage = storageVia(n, { endpoint: proxy().url, maxAttempts: 1, requestTimeoutMs: 1_000, retryBaseDelayMs: 5 });
  return n.compactor({ memoryLimit: 8 * MiB, streamSplitSize: 64 * MiB, maxIterationAttempts: 3, ...extra }, storage);
}

describe('seed regression: storage failures never block compaction', () => {
  const fatal: [string, S3Operation, (n: string) => Promise<TestNode>][] = [
    ['UploadPart', 'UploadPart', bigSsoNode],
    ['CompleteMultipartUpload', 'CompleteMultipartUpload', bigSsoNode],
    ['PutObject', 'PutObject', smallSsoNode],
  ];
  for (const [name, op, make] of fatal) {
    it(`a fatal ${name} failure rejects with a typed storage error, releases everything and commits nothing`, async () => {
      const n = await make(`seed-fatal-${name}`);
      const before = await n.metadata.listStreamSetObjects({ nodeId: n.nodeId });
      const compactor = compactorThroughProxy(n);
      const rule = proxy().addRule({ op, times: Infinity, action: fault.status(403, 'AccessDenied') });
      const err = await withDeadline(compactor.compactOnce().catch((e: unknown) => e), NEVER_HANGS_MS, 'compactOnce after a fatal storage error');
      expect(rule.hits).toBeGreaterThan(0);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).retryable).toBe(false);
      expect((err as StorageError).operation).toBe(name);
      expect(compactor.budget.inUse).toBe(0);
      proxy().clear();
      expect(await n.storage.listMultipartUploads()).toEqual([]);
      expect(await n.metadata.listStreamSetObjects({ nodeId: n.nodeId })).toEqual(before);
      // Only the two source objects exist: no half-written or uncommitted output is left.
      expect((await n.storage.listObjects()).length).toBe(2);
      await n.verify();
    });
  }

  const retryable: [string, S3Operation, FaultAction][] = [
    ['503 SlowDown on UploadPart', 'UploadPart', fault.slowDown()],
    ['a reset on UploadPart', 'UploadPart', fault.resetBeforeHeaders()],
    ['a stalled UploadPart', 'UploadPart', fault.stall()],
    // Also pins a resume bug: the final (short) part once counted as durable, so the restart
    // completed the upload with a short middle part and S3 refused it (EntityTooSmall).
    ['503 SlowDown on CompleteMultipartUpload', 'CompleteMultipartUpload', fault.slowDown()],
    ['a stalled range GET', 'GetObject', fault.stallBody(1000)],
  ];
  for (const [name, op, action] of retryable) {
    it(`${name} restarts the iteration and the run commits`, async () => {
      const n = await bigSsoNode(`seed-retry-${op}`);
      const compactor = compactorThroughProxy(n);
      // GET faults skip the two index reads of planning, so they hit the reader; an UploadPart
      // fault lets the first part through, so the restart resumes after a durable part.
      const skip = op === 'GetObject' ? 2 : op === 'UploadPart' ? 1 : 0;
      const rule = proxy().addRule({ op, times: 1, skip, action });
      const report = await withDeadline(compactor.compactOnce(), NEVER_HANGS_MS, `compactOnce with ${name}`);
      expect(rule.hits).toBe(1);
      expect(report.committed).toBe(true);
      expect(report.iterations).toBeGreaterThan(1);
      expect(report.restarts).toBeGreaterThanOrEqual(1);
      expect(report.peakBudgetBytes).toBeLessThanOrEqual(8 * MiB);
      expect(compactor.budget.inUse).toBe(0);
      expect(await n.storage.listMultipartUploads()).toEqual([]);
      await n.verify();
    });
  }
});
