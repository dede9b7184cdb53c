import { describe, expect, it } from 'vitest';
import { LocalChannel } from '../../src/actors/runtime/local-channel.js';
import { AbortError, CompactorError } from '../../src/errors.js';

type Msg = { n: number };

describe('LocalChannel (credit between actors of one thread)', () => {
  it('holds a sender until the consumer grants bytes back, and keeps send order', async () => {
    const ch = new LocalChannel<Msg>({ window: 10, name: 'test' });
    await ch.send({ n: 1 }, 6);
    let second = false;
    const p2 = ch.send({ n: 2 }, 6).then(() => (second = true));
    // A small message behind a blocked one waits too: order is send order, not size order.
    let third = false;
    const p3 = ch.send({ n: 3 }, 1).then(() => (third = true));
    const it = ch.consume();
    const first = await it.next();
    expect(first.value?.msg.n).toBe(1);
    await Promise.resolve();
    expect([second, third]).toEqual([false, false]);
    expect(ch.heldBytes).toBe(6);
    ch.grant(6);
    await Promise.all([p2, p3]);
    expect(ch.heldBytes).toBe(7);
    expect(ch.maxHeldBytes).toBeLessThanOrEqual(10);
    expect((await it.next()).value?.msg.n).toBe(2);
    expect((await it.next()).value?.msg.n).toBe(3);
    ch.close();
    expect((await it.next()).done).toBe(true);
  });

  it('refuses a message larger than the window and a double grant, typed', async () => {
    const ch = new LocalChannel<Msg>({ window: 4, name: 'small' });
    await expect(ch.send({ n: 1 }, 5)).rejects.toMatchObject({ code: 'ERR_CREDIT_TOO_LARGE' });
    await ch.send({ n: 1 }, 2);
    expect(() => ch.grant(3)).toThrow(CompactorError);
  });

  it('abort fails waiting senders and the consumer with the reason; drain gives back what was queued', async () => {
    const ch = new LocalChannel<Msg>({ window: 4, name: 'cut' });
    await ch.send({ n: 1 }, 3);
    await ch.send({ n: 2 }, 1);
    const blocked = ch.send({ n: 3 }, 2);
    const reason = new AbortError('stopping');
    ch.abort(reason);
    await expect(blocked).rejects.toBe(reason);
    await expect(ch.send({ n: 4 }, 0)).rejects.toBe(reason);
    await expect(ch.consume().next()).rejects.toBe(reason);
    const released: number[] = [];
    expect(ch.drain((d) => released.push(d.bytes))).toBe(2);
    expect(released).toEqual([3, 1]);
    expect(ch.heldBytes).toBe(0);
  });

  it("a sender's signal withdraws its message and lets the next one through; no listener is left", async () => {
    const ch = new LocalChannel<Msg>({ window: 4, name: 'sig' });
    await ch.send({ n: 1 }, 4);
    const ac = new AbortController();
    const withdrawn = ch.send({ n: 2 }, 4, ac.signal);
    const next = ch.send({ n: 3 }, 0);
    ac.abort();
    await expect(withdrawn).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    await next;
    const it = ch.consume();
    expect((await it.next()).value?.msg.n).toBe(1);
    expect((await it.next()).value?.msg.n).toBe(3);

    const consumer = new AbortController();
    const waiting = ch.consume(consumer.signal).next();
    consumer.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});
