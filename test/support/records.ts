import type { StreamRecord } from '../../src/format/types.js';

/** Deterministic payload bytes: byte i is (i * 31 + seed) & 0xff, as in the golden vectors. */
export function payload(size: number, seed: number): Uint8Array {
  const p = new Uint8Array(size);
  for (let i = 0; i < size; i++) p[i] = (i * 31 + seed) & 0xff;
  return p;
}

/** `n` contiguous records of `count` offsets and `size` payload bytes each, from `base`. */
export function makeRecords(streamId: number, base: number, count: number, n: number, size: number): StreamRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    streamId,
    epoch: 0,
    baseOffset: base + i * count,
    count,
    payload: payload(size, streamId * 7 + base + i),
  }));
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A record as comparable plain data (payload as base64). */
export function plain(r: StreamRecord) {
  return { streamId: r.streamId, epoch: r.epoch, baseOffset: r.baseOffset, count: r.count, payload: Buffer.from(r.payload).toString('base64') };
}
