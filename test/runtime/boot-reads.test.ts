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
import { committedShape, SAMPLE_OPTIONS, useSampleNodes, writeSampleSsos } from '../support/sample-node.js';
import type { Compactor } from '../../src/compactor/compactor.js';
import type { S3Storage } from '../../src/storage/s3-storage.js';

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
async function split(n: TestNode, candidates: StreamSetObjectMetadata[], opts: { hostFirst: number; bandwidth?: BandwidthLimiter }) {
  proxy().requests.length = 0;
  host = startBootReads(storageVia(n, { endpoint: proxy().url }), candidates, {
    concurrency: LANES,
    signal: new AbortController().signal,
    bandwidth: opts.bandwidth?.handle,
  });
  await proxy().waitForResponses('GetObject', opts.hostFirst);
  receiver = new BootReadsReceiver(host.init);
  const planners = makeStorage(n.storage.bucket);
  let plannerGets = 0;
  planners.onRequest((r) => void (r.operation === 'GetObject' && plannerGets++));
  try {
    const objects = await readIndexes(planners, candidates, LANES, undefined, undefined, receiver);
    return { objects, plannerGets };
  } finally {
    planners.close();
  }
}

describe('reads the host makes while the planner boots', () => {
  it('each candidate is read once, by the host or the planner, and the planner decodes the same indexes as alone', async () => {
    const { n, candidates } = await node('boot-index');
    const alone = await readIndexes(n.storage, candidates, 2);
    const limiter = new BandwidthLimiter(64 * MiB);
    const { objects, plannerGets } = await split(n, candidates, { hostFirst: 3, bandwidth: limiter });
    expect(objects).toEqual(alone);
    const hostReads = proxy().count('GetObject');
    // The host read until the planner started (the ones in flight then included), not after,
    // and the planner read only the others.
    expect(hostReads).toBeGreaterThanOrEqual(3);
    expect(hostReads).toBeLessThanOrEqual(3 + LANES);
    expect(plannerGets + hostReads).toBe(SOURCES);
    // Index tails, not whole objects; and the host's storage, outside the compactor's bandwidth
    // limit, charged them to it.
    let tails = 0;
    for (const r of proxy().requests) {
      const [, from, to] = /^bytes=(\d+)-(\d+)$/.exec(r.range ?? '') ?? [];
      const size = candidates.find((c) => n.storage.keyOf(c.objectId) === r.key)!.objectSize;
      expect(Number(from)).toBeGreaterThan(0);
      expect(Number(to)).toBe(size - 1);
      tails += size - Number(from);
    }
    expect(limiter.bytes).toBe(tails);
  });

  it('a read the host failed is read again by the planner, which decides alone what is unreadable', async () => {
    const { n, candidates } = await node('boot-failed');
    const alone = await readIndexes(n.storage, candidates, 2);
    const failing = n.storage.keyOf(candidates[0]!.objectId);
    const rule = proxy().addRule({ op: 'GetObject', key: failing, times: Infinity, action: fault.status(500) });
    const { objects } = await split(n, candidates, { hostFirst: 3 });
    expect(rule.hits).toBeGreaterThan(0);
    expect(objects).toEqual(alone);
  });

  it('the planner does not wait on a host read that hangs once the host stops: it reads that one itself', async () => {
    const { n, candidates } = await node('boot-stalled');
    const alone = await readIndexes(n.storage, candidates, 2);
    const rule = proxy().addRule({ op: 'GetObject', times: 1, action: fault.stall() });
    proxy().requests.length = 0;
    host = startBootReads(storageVia(n, { endpoint: proxy().url, requestTimeoutMs: 60_000 }), candidates, { concurrency: LANES, signal: new AbortController().signal });
    await rule.waitForHits(1);
    await proxy().waitForResponses('GetObject', 1);
    receiver = new BootReadsReceiver(host.init);
    const reading = readIndexes(n.storage, candidates, 2, undefined, undefined, receiver);
    // The planner now waits on the stalled one (the host took it); stopping the host ends it.
    await host.stop();
    expect(await reading).toEqual(alone);
  });

  it('hostReadsWhileBooting: a first run on booting threads reads on the host too, a warm one does not, and without the option the host reads nothing; every run commits the same', async () => {
    const calm = await sampleNode('boot-off');
    const eager = await sampleNode('boot-on');
    /** The host's GETs of one run, until its plan (each compactor's host storage is its own). */
    const run = async (n: TestNode, c: Compactor, storage: S3Storage) => {
      let gets = 0;
      let planned = false;
      const stop = storage.onRequest((r) => void (r.operation === 'GetObject' && !planned && gets++));
      const sub = c.events$.subscribe((e) => void (e.type === 'run.planned' && (planned = true)));
      try {
        expect((await c.compactOnce()).committed).toBe(true);
        return gets;
      } finally {
        stop();
        sub.unsubscribe();
      }
    };
    // Index reads, not whole objects (those the host never reads), and room for a second run.
    const options = { ...SAMPLE_OPTIONS, memoryLimit: 8 * MiB, readWholeWhenFits: false };
    const offStorage = storageVia(calm, {});
    expect(await run(calm, calm.compactor(options, offStorage), offStorage)).toBe(0);
    // Under vitest a thread loads the TypeScript sources (well over a second): a run right after
    // the compactor is built plans while its thread boots.
    const onStorage = storageVia(eager, {});
    const on = eager.compactor({ ...options, hostReadsWhileBooting: true }, onStorage);
    expect(await run(eager, on, onStorage)).toBeGreaterThan(0);
    expect(await committedShape(eager)).toEqual(await committedShape(calm));
    await writeSampleSsos(eager, 3);
    expect(await run(eager, on, onStorage)).toBe(0);
    await eager.verify();
    expect(() => eager.compactor({ hostReadsWhileBooting: 'yes' as unknown as boolean })).toThrow(/hostReadsWhileBooting.*true or false/);
  });
});
