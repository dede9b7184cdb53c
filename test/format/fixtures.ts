/** Shared test data: the spec's golden-vector records and a few builders. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StreamRecord } from '../../src/format/index.js';

// The vectors live in the repository (test/fixtures/vectors/README.md says where they came from),
// so a fresh clone tests itself.
export const vectorsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'vectors');

export function readVector(name: string): Uint8Array {
  return new Uint8Array(readFileSync(path.join(vectorsDir, name)));
}

export function payload(length: number, seed: number): Uint8Array {
  const p = new Uint8Array(length);
  for (let i = 0; i < length; i++) p[i] = (i * 31 + seed) & 0xff;
  return p;
}

export function rec(streamId: number, baseOffset: number, endOffset: number, payloadLength: number, seed: number, epoch = 0): StreamRecord {
  return { streamId, epoch, baseOffset, count: endOffset - baseOffset, payload: payload(payloadLength, seed) };
}

/** A record covering one offset: sparse streams are made of these. */
function one(streamId: number, baseOffset: number, payloadLength: number, seed: number): StreamRecord {
  return rec(streamId, baseOffset, baseOffset + 1, payloadLength, seed);
}

/**
 * The vectors' inputs (docs/object-format.md, "Golden vectors"): in object-0..2 each block holds
 * one record; in sparse-offsets each stream is one block of five records, S5's with gaps.
 */
export const goldenVectors: { file: string; size: number; blocks: { records: StreamRecord[] }[] }[] = [
  {
    file: 'object-0.bin',
    size: 412,
    blocks: [
      { records: [rec(0, 0, 15, 2, 1)] },
      { records: [rec(1, 25, 30, 2, 2)] },
      { records: [rec(1, 30, 60, 22, 3)] },
      { records: [rec(2, 30, 60, 22, 4)] },
    ],
  },
  {
    file: 'object-1.bin',
    size: 259,
    blocks: [{ records: [rec(0, 15, 20, 1, 5)] }, { records: [rec(1, 60, 120, 52, 6)] }],
  },
  {
    file: 'object-2.bin',
    size: 330,
    blocks: [{ records: [rec(1, 400, 500, 92, 7)] }, { records: [rec(2, 230, 270, 32, 8)] }],
  },
  {
    file: 'sparse-offsets.bin',
    size: 630,
    blocks: [
      { records: [0, 1, 10, 11, 1000].map((offset, i) => one(5, offset, 10 + i, 50 + i)) },
      { records: [0, 1, 2, 3, 4].map((offset, i) => one(6, offset, 20, 60 + i)) },
    ],
  },
  { file: 'empty.bin', size: 48, blocks: [] },
];

/** Records as plain comparable data (payload views become arrays). */
export function plain(records: readonly StreamRecord[]): unknown[] {
  return records.map((r) => ({ ...r, payload: Array.from(r.payload) }));
}

/** What `fn` throws (undefined when it returns): for assertions on the error itself. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}
