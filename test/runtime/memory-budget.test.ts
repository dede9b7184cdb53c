import { describe, expect, it } from 'vitest';
import { MemoryBudget } from '../../src/actors/runtime/index.js';
import { AbortError, CompactorError, TimeoutError } from '../../src/errors.js';

describe('MemoryBudget', () => {
  it('counts bytes in use and the high-water mark', async () => {
    const b = new MemoryBudget(100);
    await b.acquire(60);
    expect(b.tryAcquire(50)).toBe(false);
    expect(b.tryAcquire(40)).toBe(true);
    expect(b.inUse).toBe(100);
    expect(b.highWater).toBe(100);
    b.release(70);
    expect(b.inUse).toBe(30);
    expect(b.highWater).toBe(100);
    b.resetHighWater();
    expect(b.highWater).toBe(30);
    b.release(30);
    expect(b.inUse).toBe(0);
  });

  it('a waiter resolves when bytes are released (and not before)', async () => {
    const b = new MemoryBudget(100);
    await b.acquire(80);
    let resolved = false;
    const waiting = b.acquire(50, { timeoutMs: 10_000 }).then(() => {
      resolved = true;
    });
    await Promise.resolve();
    expect(resolved).toBe(false);
    b.release(20); // 60 in use: 50 more still does not fit
    await new Promise<void>((r) => setImmediate(r));
    expect(resolved).toBe(false);
    b.release(40); // 20 in use
    await waiting;
    expect(b.inUse).toBe(70);
  });

  it('the same budget attached from its handle shares the counters', async () => {
    const a = new MemoryBudget(10);
    const b = MemoryBudget.attach(structuredClone(a.handle));
    await b.acquire(7);
    expect(a.inUse).toBe(7);
    expect(a.tryAcquire(4)).toBe(false);
    b.release(7);
    expect(a.inUse).toBe(0);
    expect(b.limit).toBe(10);
  });

  it('rejects at once a request larger than the limit', async () => {
    const b = new MemoryBudget(10);
    await expect(b.acquire(11)).rejects.toMatchObject({ code: 'ERR_MEMORY_REQUEST_TOO_LARGE' });
    expect(() => b.tryAcquire(11)).toThrow(/can never fit/);
  });

  it('rejects with TimeoutError past the deadline and AbortError on abort, never hangs', async () => {
    const b = new MemoryBudget(10);
    await b.acquire(10);
    await expect(b.acquire(1, { timeoutMs: 30 })).rejects.toBeInstanceOf(TimeoutError);
    const ac = new AbortController();
    const p = b.acquire(1, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortError);
    const pre = new AbortController();
    pre.abort();
    await expect(b.acquire(1, { signal: pre.signal })).rejects.toBeInstanceOf(AbortError);
    expect(b.inUse).toBe(10);
  });

  it('a double release throws instead of hiding a leak', () => {
    const b = new MemoryBudget(10);
    expect(b.tryAcquire(5)).toBe(true);
    b.release(5);
    expect(() => b.release(5)).toThrow(CompactorError);
    expect(b.inUse).toBe(0);
  });

  it('reclaimAll takes back what dead actors held', async () => {
    const b = new MemoryBudget(10);
    await b.acquire(6);
    expect(b.reclaimAll()).toBe(6);
    expect(b.inUse).toBe(0);
  });
});
