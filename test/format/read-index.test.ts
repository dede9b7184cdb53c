import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import {
  buildIndexAndFooter,
  decodeObject,
  encodeObject,
  indexReadGuess,
  indexReadGuessFor,
  readObjectIndex,
  type IndexEntry,
} from '../../src/format/index.js';
import { readVector } from './fixtures.js';

const MiB = 1024 * 1024;

/** A fetch over in-memory bytes that records every range asked for. */
function fetcher(bytes: Uint8Array) {
  const calls: [number, number][] = [];
  const fetchRange = async (start: number, end: number): Promise<Uint8Array> => {
    calls.push([start, end]);
    return bytes.slice(start, end);
  };
  return { fetchRange, calls };
}

/**
 * A virtual object of `dataLength` zero bytes followed by `entries`' index and footer: only the
 * tail is materialized, so a multi-GiB object costs nothing.
 */
function virtualObject(dataLength: number, entries: IndexEntry[], patch?: (tail: DataView) => void) {
  const tail = buildIndexAndFooter(entries, dataLength);
  patch?.(new DataView(tail.buffer, tail.byteOffset, tail.byteLength));
  const size = dataLength + tail.length;
  const calls: [number, number][] = [];
  const fetchRange = async (start: number, end: number): Promise<Uint8Array> => {
    calls.push([start, end]);
    const out = new Uint8Array(end - start);
    const from = Math.max(start, dataLength);
    if (from < end) out.set(tail.subarray(from - dataLength, end - dataLength), from - start);
    return out;
  };
  return { size, fetchRange, calls };
}

function manyEntries(n: number, blockSize: number): IndexEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    streamId: i,
    startOffset: 0,
    endOffset: 10,
    recordCount: 10,
    position: i * blockSize,
    size: blockSize,
  }));
}

describe('indexReadGuessFor (the tail an SSO of known stream ranges needs)', () => {
  it('covers the footer and an entry a range plus one per 256 KiB, at least the minimum, at most the object', () => {
    expect(indexReadGuessFor(8 * MiB, 2500, 64 * 1024)).toBe(48 + 36 * (2500 + 32));
    expect(indexReadGuessFor(8 * MiB, 400, 64 * 1024)).toBe(64 * 1024);
    expect(indexReadGuessFor(8 * MiB, 0)).toBe(indexReadGuess(8 * MiB));
    expect(indexReadGuessFor(50_000, 2500, 64 * 1024)).toBe(50_000);
  });
  it('reads the index of an object of 2 500 single-block streams in one request', async () => {
    const entries = manyEntries(2500, 100);
    const { size, fetchRange, calls } = virtualObject(2500 * 100, entries);
    expect(await readObjectIndex(fetchRange, size, 'wide', { minGuess: indexReadGuessFor(size, 2500, 64 * 1024) })).toEqual(entries);
    expect(calls).toHaveLength(1);
    // The fixed 64 KiB the planner read before needed a second, exact read.
    const fixed = virtualObject(2500 * 100, entries);
    await readObjectIndex(fixed.fetchRange, fixed.size, 'wide', { minGuess: 64 * 1024 });
    expect(fixed.calls).toHaveLength(2);
  });
});

describe('indexReadGuess', () => {
  it('is 8 KiB + 36 B per MiB, capped at the object size', () => {
    expect(indexReadGuess(100)).toBe(100);
    expect(indexReadGuess(MiB)).toBe(8192 + 36);
    expect(indexReadGuess(1024 * MiB)).toBe(8192 + 36 * 1024);
    expect(indexReadGuess(MiB + 1)).toBe(8192 + 72);
  });
});

describe('readObjectIndex', () => {
  it('a small object takes one read of the whole object', async () => {
    const bytes = readVector('object-0.bin');
    const { fetchRange, calls } = fetcher(bytes);
    const entries = await readObjectIndex(fetchRange, bytes.length, 'k0');
    expect(entries).toEqual(decodeObject(bytes).entries);
    expect(calls).toEqual([[0, 412]]);
  });

  it('an index larger than the guess takes a second, exact read', async () => {
    // 1000 blocks of one empty record: 43 000 data bytes, 36 000 index bytes, guess 8 228.
    const blocks = Array.from({ length: 1000 }, (_, i) => ({
      records: [{ streamId: i, epoch: 0, baseOffset: 0, count: 1, payload: new Uint8Array(0) }],
    }));
    const bytes = encodeObject(blocks);
    expect(bytes.length).toBe(43_000 + 36_000 + 48);
    const { fetchRange, calls } = fetcher(bytes);
    const entries = await readObjectIndex(fetchRange, bytes.length, 'k1');
    expect(entries).toEqual(decodeObject(bytes).entries);
    expect(calls).toEqual([
      [bytes.length - 8228, bytes.length],
      [43_000, 79_000],
    ]);
  });

  it('a big object whose tail holds the index takes one read', async () => {
    const entries = manyEntries(100, 10 * MiB); // 1000 MiB of data, 3 600 index bytes
    const obj = virtualObject(1000 * MiB, entries);
    expect(await readObjectIndex(obj.fetchRange, obj.size, 'big')).toEqual(entries);
    expect(obj.calls).toEqual([[obj.size - indexReadGuess(obj.size), obj.size]]);
  });

  it('a big object with a large index: second read from the exact index position', async () => {
    const entries = manyEntries(5000, 64 * 1024); // 312.5 MiB of data, 180 000 index bytes
    const obj = virtualObject(5000 * 64 * 1024, entries);
    const guess = indexReadGuess(obj.size);
    expect(guess).toBeLessThan(180_000);
    expect(await readObjectIndex(obj.fetchRange, obj.size, 'big')).toEqual(entries);
    expect(obj.calls).toEqual([
      [obj.size - guess, obj.size],
      [5000 * 64 * 1024, 5000 * 64 * 1024 + 180_000],
    ]);
  });

  it('an index starting just before the tail is read again; one just inside is not', async () => {
    const guess = indexReadGuess(MiB);
    const fit = Math.floor((guess - 48) / 36); // entries that fit in the tail with the footer
    const build = (n: number) => {
      const dataLength = MiB - 48 - n * 36;
      return { dataLength, obj: virtualObject(dataLength, manyEntries(n, 10)) };
    };
    const over = build(fit + 1);
    expect(over.obj.size).toBe(MiB);
    expect(over.dataLength).toBeLessThan(MiB - guess);
    expect(await readObjectIndex(over.obj.fetchRange, MiB, 'edge')).toHaveLength(fit + 1);
    expect(over.obj.calls).toEqual([
      [MiB - guess, MiB],
      [over.dataLength, over.dataLength + (fit + 1) * 36],
    ]);
    const inside = build(fit);
    expect(inside.dataLength).toBeGreaterThanOrEqual(MiB - guess);
    expect(await readObjectIndex(inside.obj.fetchRange, MiB, 'edge')).toHaveLength(fit);
    expect(inside.obj.calls).toHaveLength(1);
  });

  it('an object without entries needs no index read', async () => {
    const bytes = encodeObject([]);
    const { fetchRange, calls } = fetcher(bytes);
    expect(await readObjectIndex(fetchRange, bytes.length, 'empty')).toEqual([]);
    expect(calls).toHaveLength(1);
  });

  it('wrong footer magic', async () => {
    const bytes = readVector('object-1.bin').slice();
    bytes[bytes.length - 1] = 0;
    const { fetchRange } = fetcher(bytes);
    await expect(readObjectIndex(fetchRange, bytes.length, 'k')).rejects.toMatchObject({
      code: 'ERR_FORMAT_FOOTER_MAGIC',
      key: 'k',
      position: bytes.length - 8,
    });
  });

  it('an entry outside the data', async () => {
    // Data is [0, 300); entry 2 is patched to [250, 350) after encoding (the writer refuses it).
    const obj = virtualObject(300, manyEntries(3, 100), (tail) => tail.setBigInt64(2 * 36 + 24, 250n));
    await expect(readObjectIndex(obj.fetchRange, obj.size, 'k')).rejects.toMatchObject({
      code: 'ERR_FORMAT_INDEX_BOUNDS',
      key: 'k',
      position: 300 + 2 * 36 + 24,
    });
  });

  it('an object size smaller than a footer', async () => {
    const { fetchRange, calls } = fetcher(new Uint8Array(10));
    const err = await readObjectIndex(fetchRange, 10, 'k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect(err).toMatchObject({ code: 'ERR_FORMAT_TRUNCATED', key: 'k' });
    expect(calls).toHaveLength(0);
  });

  it('a fetch that returns fewer bytes than asked', async () => {
    const bytes = readVector('object-2.bin');
    const short = async (start: number, end: number) => bytes.slice(start, end - 1);
    await expect(readObjectIndex(short, bytes.length, 'k')).rejects.toMatchObject({ code: 'ERR_FORMAT_TRUNCATED', key: 'k' });
  });

  it('an object size that disagrees with the footer', async () => {
    const bytes = readVector('object-2.bin');
    const padded = new Uint8Array(bytes.length + 5);
    padded.set(bytes, 5);
    const { fetchRange } = fetcher(padded);
    await expect(readObjectIndex(fetchRange, padded.length, 'k')).rejects.toMatchObject({
      code: 'ERR_FORMAT_LENGTH_MISMATCH',
      key: 'k',
      position: padded.length - 48,
    });
  });
});

describe('readObjectIndex minGuess', () => {
  it('reads a larger tail when asked, so a big index needs no second request', async () => {
    const { encodeObject } = await import('../../src/format/index.js');
    const { readObjectIndex } = await import('../../src/format/read-index.js');
    // 400 one-record blocks: a 14 KiB index, past the 8 KiB default guess.
    const bytes = encodeObject(Array.from({ length: 400 }, (_, i) => ({ records: [{ streamId: i, epoch: 0, baseOffset: 0, count: 1, payload: new Uint8Array(10) }] })));
    const calls: [number, number][] = [];
    const fetch = async (s: number, e: number) => {
      calls.push([s, e]);
      return bytes.subarray(s, e);
    };
    const plain = await readObjectIndex(fetch, bytes.length, 'k');
    expect(calls).toHaveLength(2);
    calls.length = 0;
    const wide = await readObjectIndex(fetch, bytes.length, 'k', { minGuess: 64 * 1024 });
    expect(calls).toEqual([[0, bytes.length]]);
    expect(wide).toEqual(plain);
  });
});
