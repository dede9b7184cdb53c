/**
 * The candidates' trip to the planner's thread (messages/candidates.ts): packed, they arrive
 * whole and equal, and their ranges move without a copy (the host once spent 12-17 ms cloning
 * 53 k range objects into the planner's spawn message, its longest block of a run).
 */
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { packCandidates, unpackCandidates } from '../../src/messages/candidates.js';
import type { StreamSetObjectMetadata } from '../../src/metadata/types.js';

const sso = (objectId: number, ranges: [number, number, number][]): StreamSetObjectMetadata => ({
  objectId,
  nodeId: 3,
  orderId: objectId - 1,
  dataTimeMs: 1_700_000_000_000 + objectId,
  objectSize: 5_000_000 + objectId,
  ranges: ranges.map(([streamId, startOffset, endOffset]) => ({ streamId, startOffset, endOffset })),
});

describe('packed candidates', () => {
  it('arrive equal through a MessagePort, ranges moved, not copied', async () => {
    const candidates = [
      sso(10, [
        [1, 0, 5],
        [7, 2 ** 53 - 10, 2 ** 53 - 1],
      ]),
      sso(11, []),
      sso(12, [[2 ** 31 + 5, 100, 200]]),
    ];
    const packed = packCandidates(candidates);
    const { port1, port2 } = new MessageChannel();
    const received = new Promise<unknown>((resolve) => port2.once('message', resolve));
    port1.postMessage(packed, [packed.ranges.buffer as ArrayBuffer]);
    const arrived = await received;
    port1.close();
    // Moved: the sender's buffer is detached.
    expect(packed.ranges.byteLength).toBe(0);
    expect(unpackCandidates(arrived as typeof packed)).toEqual(candidates);
  });

  it('an empty list packs to nothing', () => {
    const packed = packCandidates([]);
    expect(packed.ranges.length).toBe(0);
    expect(unpackCandidates(packed)).toEqual([]);
  });
});
