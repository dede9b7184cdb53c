/**
 * The small node several compaction tests share: SSOs over 24 streams, streams 1-8 large
 * enough to become stream objects (with streamSplitSize 600 KiB), several iterations under a
 * 2 MiB limit; and what a run committed, to compare two runs.
 */
import { useFaultProxy, type FaultProxy } from './fault-proxy.js';
import { createTestNode, type TestNode } from './node.js';

const KiB = 1024;
export const SAMPLE_STREAMS = Array.from({ length: 24 }, (_, i) => i + 1);

/** Writes `count` more SSOs of the sample shape. */
export async function writeSampleSsos(n: TestNode, count: number): Promise<void> {
  for (let k = 0; k < count; k++) {
    await n.writeStreams(Object.fromEntries(SAMPLE_STREAMS.map((s) => [s, { n: 2, size: s <= 8 ? 128 * KiB : 16 * KiB }])), { blockSize: 64 * KiB });
  }
}

/** A node with 3 sample SSOs; the caller closes it. */
export async function sampleNode(prefix: string): Promise<TestNode> {
  const n = await createTestNode(prefix, { streams: SAMPLE_STREAMS });
  await writeSampleSsos(n, 3);
  return n;
}

/** What the node's metadata holds after a run: SSO ranges and sizes, stream objects. */
export async function committedShape(n: TestNode) {
  const ssos = await n.metadata.listStreamSetObjects({ nodeId: n.nodeId });
  const sos = [];
  for (const s of SAMPLE_STREAMS) sos.push(...(await n.metadata.listStreamObjects({ streamId: s })).map((o) => [o.streamId, o.startOffset, o.endOffset, o.objectSize]));
  return { ranges: ssos.map((o) => [o.ranges, o.objectSize]), sos };
}

/** The limit and split of the sample's usual run: several iterations, streams 1-8 to stream objects. */
export const SAMPLE_OPTIONS = { memoryLimit: 2 * 1024 * KiB, streamSplitSize: 600 * KiB };

/**
 * A fault proxy for each test, and the nodes a test makes (`sampleNode`, or any passed to
 * `track`), closed after it.
 */
export function useSampleNodes(): { proxy: () => FaultProxy; sampleNode: (prefix: string) => Promise<TestNode>; track: (n: TestNode) => TestNode } {
  let nodes: TestNode[] = [];
  const proxy = useFaultProxy(async () => {
    for (const n of nodes) await n.close();
    nodes = [];
  });
  const track = (n: TestNode) => {
    nodes.push(n);
    return n;
  };
  return { proxy, track, sampleNode: async (prefix) => track(await sampleNode(prefix)) };
}
