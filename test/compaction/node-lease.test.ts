/**
 * Issue #11, "a second compact against the same node fails fast": a run holds the node's lease
 * in metadata, so a second compactor of the node is refused at once, naming the holder, instead
 * of compacting everything to lose at commit. A crashed holder's lease expires.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { withDeadline } from '../../src/util/async.js';
import { fault, useFaultProxy } from '../support/fault-proxy.js';
import { createTestNode, storageVia, type TestNode } from '../support/node.js';

let node: TestNode | undefined;
const proxy = useFaultProxy(async () => {
  await node?.close();
  node = undefined;
});
afterEach(() => proxy().clear());

async function sampleNode(prefix: string): Promise<TestNode> {
  node = await createTestNode(prefix, { streams: [1, 2] });
  for (let i = 0; i < 3; i++) await node.writeStreams({ 1: { n: 2, size: 2000 }, 2: { n: 1, size: 500 } });
  return node;
}

describe('node lease (issue #11)', () => {
  it('a second compactor of the node fails fast while a run is in progress, and runs once it ended', async () => {
    const n = await sampleNode('lease-busy');
    // The first run's data reads wait on the proxy until released (its three indexes read first:
    // not whole, which would leave no data read to hold the run in).
    const rule = proxy().addRule({ op: 'GetObject', skip: 3, times: Infinity, action: fault.delay(1_500) });
    const first = n.compactor({ readWholeWhenFits: false }, storageVia(n, { endpoint: proxy().url }));
    const running = first.compactOnce();
    await proxy().waitFor('GetObject', 4);
    const second = n.compactor();
    const err = await withDeadline(second.compactOnce().catch((e: unknown) => e), 5_000, 'the second compactor to be refused');
    expect(err).toBeInstanceOf(MetadataError);
    expect(err).toMatchObject({ code: 'ERR_METADATA_NODE_BUSY', retryable: false });
    expect((err as Error).message).toMatch(/^another compactor holds node 1 \(.*pid \d+/);
    rule.remove();
    expect((await running).committed).toBe(true);
    // The lease went with the run: the second compactor runs now (nothing left to merge).
    expect((await second.compactOnce()).committed).toBe(false);
    await n.verify();
  });

  it("a crashed holder's lease expires; a live one is respected", async () => {
    const n = await sampleNode('lease-expiry');
    await n.metadata.acquireNodeLease({ nodeId: 1, holder: 'ghost pid 1', ttlMs: 60_000 });
    const err = await n.compactor().compactOnce().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_METADATA_NODE_BUSY' });
    expect((err as Error).message).toContain('ghost pid 1');
    // A holder that died right after taking a 1 ms lease: expired by the time anyone looks.
    await n.metadata.releaseNodeLease({ nodeId: 1, holder: 'ghost pid 1' });
    await n.metadata.acquireNodeLease({ nodeId: 1, holder: 'ghost pid 2', ttlMs: 1 });
    const expired = Date.now() + 2;
    while (Date.now() <= expired) await new Promise((r) => setImmediate(r));
    const report = await n.compactor().compactOnce();
    expect(report.committed).toBe(true);
    await n.verify();
  });
});
