import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { CreditReceiver, CreditSender } from '../../src/actors/runtime/index.js';
import { AbortError } from '../../src/errors.js';
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

describe('credit channel', () => {
  it('keeps bytes in flight within the window and delivers in order', async () => {
    const { port1, port2 } = new MessageChannel();
    const tx = new CreditSender<Down>(port1);
    const rx = new CreditReceiver<Down>(port2, { window: 300 });
    const sends = (async () => {
      for (let i = 0; i < 20; i++) await tx.send({ type: 'block', index: i, buffer: new ArrayBuffer(100), extra: { parts: [] } }, 100);
      await tx.send({ type: 'iteration.end', iteration: 1 }, 0);
      tx.close();
    })();
    const order: number[] = [];
    for await (const { msg, bytes } of rx) {
      if (msg.type === 'block') order.push(msg.index);
      expect(tx.bytesInFlight).toBeLessThanOrEqual(300);
      await new Promise<void>((r) => setImmediate(r)); // a slow consumer
      rx.grant(bytes);
    }
    await sends;
    expect(order).toEqual([...Array(20).keys()]);
    expect(tx.maxBytesInFlight).toBeLessThanOrEqual(300);
    expect(rx.maxHeldBytes).toBeLessThanOrEqual(300);
    expect(rx.maxQueuedBytes).toBeLessThanOrEqual(300);
  });

  it('rejects a message larger than the window, and pending sends on abort (the caller keeps them)', async () => {
    const { port1, port2 } = new MessageChannel();
    const ac = new AbortController();
    const tx = new CreditSender<Down>(port1, { signal: ac.signal });
    const rx = new CreditReceiver<Down>(port2, { window: 100 });
    await tx.send({ type: 'iteration.end', iteration: 0 }, 100); // takes the whole window (first grant awaited)
    await expect(tx.send({ type: 'iteration.end', iteration: 1 }, 101)).rejects.toMatchObject({ code: 'ERR_CREDIT_TOO_LARGE' });
    const buffer = new ArrayBuffer(10);
    const pending = tx.send({ type: 'block', index: 1, buffer, extra: { parts: [] } }, 10);
    ac.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortError);
    expect(buffer.byteLength).toBe(10); // never sent: still the sender's
    // the receiver sees the aborted end after the message already sent; drain hands that one back
    const released: number[] = [];
    await expect(rx.drain((d) => released.push(d.bytes))).resolves.toBe(1);
    expect(released).toEqual([100]);
    expect(rx.endedAborted).toBe(true);
  });

  it('a send waiting for credit times out', async () => {
    const { port1, port2 } = new MessageChannel();
    const tx = new CreditSender<Down>(port1, { timeoutMs: 50 });
    const rx = new CreditReceiver<Down>(port2, { window: 10 });
    await tx.send({ type: 'iteration.end', iteration: 0 }, 10);
    await expect(tx.send({ type: 'iteration.end', iteration: 1 }, 5)).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    const waiting = tx.send({ type: 'iteration.end', iteration: 2 }, 5, [], { timeoutMs: 10_000 });
    rx.close();
    await expect(waiting).rejects.toBeInstanceOf(AbortError); // the receiver went away
    await expect(tx.send({ type: 'iteration.end', iteration: 3 }, 0)).rejects.toBeInstanceOf(AbortError);
  });
});
