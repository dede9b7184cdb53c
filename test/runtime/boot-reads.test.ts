/**
 * Reads the host makes while a cold pool's thread boots (actors/boot-reads.ts): the host and the
 * planner take candidates from one shared counter, so each candidate is read once, and the
 * planner finishes the host's from the bytes it was handed. Both sides run on this thread here
 * (they are plain functions); the host's storage goes through the fault proxy and the planner's
 * straight to the server, so the proxy counts the host's reads alone. Real S3 server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BootReadsReceiver, startBootReads, type BootReads } from '../../src/actors/boot-reads.js';
import { readIndexes } from '../../src/actors/planner.js';
import type { StreamSetObjectMetadata } from '../../src/metadata/types.js';
import { BandwidthLimiter } from '../../src/storage/bandwidth.js';
import { fault } from '../support/fault-proxy.js';
import { makeStorage } from '../support/env.js';
import { MiB, storageVia, type TestNode } from '../support/node.js';
import { useSampleNodes, writeSampleSsos } from '../support/sample-node.js';

const SOURCES = 12;
/** Reads in flight on each side. */
const LANES = 2;
const { proxy, sampleNode } = useSampleNodes();
let host: BootReads | undefined;
let receiver: BootReadsReceiver | undefined;
afterEach(async () => {
  receiver?.close();
  await host?.stop();
  host = receiver = undefined;
});

async function node(prefix: string): Promise<{ n: TestNode; candidates: StreamSetObjectMetadata[] }> {
  const n = await sampleNode(prefix);
  await writeSampleSsos(n, SOURCES - 3);
  return { n, candidates: await n.metadata.listStreamSetObjects({ nodeId: n.nodeId }) };
}

/**
 * The host starts, and the planner starts once the host has read `hostFirst` candidates; returns
 * what the planner made of them and the GETs it sent itself.
 */
async function split(n: TestNode, candidates: StreamSetObjectMetadata[], opts: { whole: boolean; hostFirst: number; bandwidth?: BandwidthLimiter }) {
  proxy().requests.length = 0;
  host = startBootReads(storageVia(n, { endpoint: proxy().url }), candidates, {
    whole: opts.whole,
    concurrency: LANES,
    signal: new AbortController().signal,
    bandwidth: opts.bandwidth?.handle,
  });
  await proxy().waitForResponses('GetObject', opts.hostFirst);
  receiver = new BootReadsReceiver(host.init);
  const whole: (Uint8Array | undefined)[] | undefined = opts.whole ? [] : undefined;
  const planners = makeStorage(n.storage.bucket);
  let plannerGets = 0;
  planners.onRequest((r) => void (r.operation === 'GetObject' && plannerGets++));
  try {
    const objects = await readIndexes(planners, candidates, LANES, undefined, whole, receiver);
    return { objects, whole, plannerGets };
  } finally {
    planners.close();
  }
}

describe('reads the host makes while the planner boots', () => {
  it('index tails: each candidate read once, by the host or the planner, and the planner decodes the same indexes as alone', async () => {
    const { n, candidates } = await node('boot-index');
    const alone = await readIndexes(n.storage, candidates, 2);
    const { objects, plannerGets } = await split(n, candidates, { whole: false, hostFirst: 3 });
    expect(objects).toEqual(alone);
    const hostReads = proxy().count('GetObject');
    // The host read until the planner started (the ones in flight then included), not after,
    // and the planner read only the others.
    expect(hostReads).toBeGreaterThanOrEqual(3);
    expect(hostReads).toBeLessThanOrEqual(3 + LANES);
    expect(plannerGets + hostReads).toBe(SOURCES);
    // Every one of the host's read a tail, not the whole object.
    for (const r of proxy().requests) expect(r.range).toMatch(/^bytes=[1-9]\d*-\d+$/);
  });

  it('whole objects: the host hands over the bytes it read and the planner keeps them as its own', async () => {
    const { n, candidates } = await node('boot-whole');
    const wholeAlone: (Uint8Array | undefined)[] = [];
    const alone = await readIndexes(n.storage, candidates, 2, undefined, wholeAlone);
    const limiter = new BandwidthLimiter(64 * MiB);
    const { objects, whole, plannerGets } = await split(n, candidates, { whole: true, hostFirst: 2, bandwidth: limiter });
    expect(objects).toEqual(alone);
    expect(whole!.map((b) => Buffer.from(b!).toString('base64'))).toEqual(wholeAlone.map((b) => Buffer.from(b!).toString('base64')));
    expect(proxy().requests.every((r) => r.range?.startsWith('bytes=0-'))).toBe(true);
    const hostReads = proxy().count('GetObject');
    expect(hostReads).toBeLessThan(SOURCES);
    expect(plannerGets + hostReads).toBe(SOURCES);
    // The host's storage is outside the compactor's bandwidth limit: its reads were charged to it.
    const hostBytes = candidates.filter((c) => proxy().requests.some((r) => r.key === n.storage.keyOf(c.objectId))).reduce((b, c) => b + c.objectSize, 0);
    expect(limiter.bytes).toBe(hostBytes);
  });

  it('a read the host failed is read again by the planner, which decides alone what is unreadable', async () => {
    const { n, candidates } = await node('boot-failed');
    const alone = await readIndexes(n.storage, candidates, 2);
    const failing = n.storage.keyOf(candidates[0]!.objectId);
    const rule = proxy().addRule({ op: 'GetObject', key: failing, times: Infinity, action: fault.status(500) });
    const { objects } = await split(n, candidates, { whole: false, hostFirst: 3 });
    expect(rule.hits).toBeGreaterThan(0);
    expect(objects).toEqual(alone);
  });

  it('the planner does not wait on a host read that hangs once the host stops: it reads that one itself', async () => {
    const { n, candidates } = await node('boot-stalled');
    const alone = await readIndexes(n.storage, candidates, 2);
    const rule = proxy().addRule({ op: 'GetObject', times: 1, action: fault.stall() });
    proxy().requests.length = 0;
    host = startBootReads(storageVia(n, { endpoint: proxy().url, requestTimeoutMs: 60_000 }), candidates, { whole: false, concurrency: 2, signal: new AbortController().signal });
    await rule.waitForHits(1);
    await proxy().waitForResponses('GetObject', 1);
    receiver = new BootReadsReceiver(host.init);
    const reading = readIndexes(n.storage, candidates, 2, undefined, undefined, receiver);
    // The planner now waits on the stalled one (the host took it); stopping the host ends it.
    await host.stop();
    expect(await reading).toEqual(alone);
  });
});
