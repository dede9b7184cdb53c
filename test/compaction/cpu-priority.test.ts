/**
 * A compactor's worker threads run below the host's CPU priority (`niceIncrement`, default 10):
 * where CPU is short, the ingest node's own threads go first. Read from /proc (Linux only); the
 * effect on the host's event loop and on throughput is a benchmark's business.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionsError } from '../../src/errors.js';
import { createTestNode, type TestNode } from '../support/node.js';
import { processThreadNices } from '../support/proc.js';

const KiB = 1024;

/** The main thread's: the first task of the process. */
const hostNice = () => processThreadNices()[0]!;

let node: TestNode;
beforeAll(async () => {
  node = await createTestNode('cpu-priority', { streams: [1, 2] });
});
afterAll(async () => {
  await node?.close();
});

describe.skipIf(process.platform !== 'linux')("worker threads' CPU priority", () => {
  it('by default the threads a compactor starts run 10 below the host, for as long as it lives', async () => {
    const host = hostNice();
    const below = Math.min(19, host + 10);
    const before = processThreadNices().filter((n) => n === below).length;
    await node.writeStreams({ 1: { n: 2, size: 8 * KiB }, 2: { n: 2, size: 8 * KiB } });
    await node.writeStreams({ 1: { n: 2, size: 8 * KiB }, 2: { n: 2, size: 8 * KiB } });
    const compactor = node.compactor();
    expect((await compactor.compactOnce()).committed).toBe(true);
    expect(processThreadNices().filter((n) => n === below).length).toBeGreaterThan(before);
    expect(hostNice()).toBe(host);
    await compactor.close();
    expect(processThreadNices().filter((n) => n === below).length).toBe(before);
    await node.verify();
  });

  it('niceIncrement 0 leaves them at the host priority', async () => {
    const host = hostNice();
    await node.writeStreams({ 1: { n: 1, size: 8 * KiB } });
    await node.writeStreams({ 2: { n: 1, size: 8 * KiB } });
    const compactor = node.compactor({ niceIncrement: 0 });
    try {
      expect((await compactor.compactOnce()).committed).toBe(true);
      expect(processThreadNices().filter((n) => n !== host)).toEqual([]);
    } finally {
      await compactor.close();
    }
  });
});

describe('niceIncrement option', () => {
  it('is an integer from 0 to 19, checked at the boundary', () => {
    for (const bad of [-1, 20, 1.5, '5' as unknown as number]) {
      expect(() => node.compactor({ niceIncrement: bad })).toThrow(OptionsError);
      expect(() => node.compactor({ niceIncrement: bad })).toThrow(/niceIncrement.*from 0 .* to 19/);
    }
  });
});
