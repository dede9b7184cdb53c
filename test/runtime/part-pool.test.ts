import { describe, expect, it } from 'vitest';
import { PartPool } from '../../src/actors/part-pool.js';

describe('PartPool', () => {
  it('reuses whole part buffers (views of one taken back whole), keeps at most max idle, never pools larger ones', () => {
    const pool = new PartPool(1024, 2);
    pool.give(new Uint8Array(new ArrayBuffer(1024), 10)); // a view not at the start is not taken back
    pool.give(new Uint8Array(2048)); // nor a buffer of another size
    expect(pool.idle).toBe(0);
    const a = pool.take(1024);
    const b = pool.take(100);
    expect(b.byteLength).toBe(100);
    expect(b.buffer.byteLength).toBe(1024);
    const big = pool.take(4096);
    expect(big.byteLength).toBe(4096);
    pool.give(a);
    pool.give(b);
    pool.give(big);
    expect(pool.idle).toBe(2);
    const c = pool.take(1024);
    expect(c.byteLength).toBe(1024);
    expect([a.buffer, b.buffer]).toContain(c.buffer);
    pool.give(c);
    pool.give(new Uint8Array(1024));
    pool.give(new Uint8Array(1024));
    expect(pool.idle).toBe(2);
  });
});
