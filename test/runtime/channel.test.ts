import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { TypedPort, allocTransferable, collectTransferables } from '../../src/messages/index.js';

type Down = { type: 'block'; index: number; buffer: ArrayBuffer; extra: { parts: Uint8Array[] } } | { type: 'iteration.end'; iteration: number };
type Up = { type: 'ack'; index: number };

describe('TypedPort', () => {
  it('moves nested ArrayBuffers (detached at the sender) and narrows by type', async () => {
    const { port1, port2 } = new MessageChannel();
    const tx = new TypedPort<Up, Down>(port1, 'tx');
    const rx = new TypedPort<Down, Up>(port2, 'rx');
    const buffer = new ArrayBuffer(1024);
    const parts = [new Uint8Array(new ArrayBuffer(16)).fill(7), new Uint8Array(new ArrayBuffer(8))];
    const got = rx.once('block');
    tx.send({ type: 'block', index: 1, buffer, extra: { parts } });
    expect(buffer.byteLength).toBe(0);
    expect(parts.every((p) => p.byteLength === 0)).toBe(true);
    expect(tx.copiedTransfers).toBe(0);
    const m = await got;
    expect(m.index).toBe(1); // narrowed: `index` exists only on 'block'
    expect(m.buffer.byteLength).toBe(1024);
    expect(m.extra.parts[0]![3]).toBe(7);

    const seen: number[] = [];
    rx.on('iteration.end', (e) => seen.push(e.iteration));
    tx.send({ type: 'iteration.end', iteration: 9 });
    const ack = tx.once('ack');
    rx.send({ type: 'ack', index: 1 });
    expect((await ack).index).toBe(1);
    expect(seen).toEqual([9]);
    tx.close();
    await rx.closed;
  });

  it('queues unhandled messages for async iteration, which ends on close', async () => {
    const { port1, port2 } = new MessageChannel();
    const tx = new TypedPort<never, Down>(port1);
    const rx = new TypedPort<Down>(port2);
    for (let i = 0; i < 3; i++) tx.send({ type: 'iteration.end', iteration: i });
    tx.close();
    const got: number[] = [];
    for await (const m of rx) if (m.type === 'iteration.end') got.push(m.iteration);
    expect(got).toEqual([0, 1, 2]);
  });

  it('collects each transferable once and counts pooled Buffers that Node copies', () => {
    const a = new ArrayBuffer(4);
    const v1 = new Uint8Array(a, 0, 2);
    const v2 = new Uint8Array(a, 2, 2);
    const own = allocTransferable(32);
    const cyclic: Record<string, unknown> = { a, list: [v1, v2, own], m: new Map([['k', a]]) };
    cyclic.self = cyclic;
    expect(collectTransferables(cyclic)).toEqual([a, own.buffer]);
    expect(collectTransferables({ s: new SharedArrayBuffer(8) })).toEqual([]);

    const { port1, port2 } = new MessageChannel();
    const tx = new TypedPort<never, { type: 'x'; b: Uint8Array }>(port1);
    tx.send({ type: 'x', b: own });
    expect(own.byteLength).toBe(0);
    const pooled = Buffer.from('pooled bytes');
    tx.send({ type: 'x', b: pooled });
    expect(tx.copiedTransfers).toBe(1); // Node 20 copied it silently: allocate with allocTransferable
    port1.close();
    port2.close();
  });
});

