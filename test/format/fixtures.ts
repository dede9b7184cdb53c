/** Shared test data: the spec's golden-vector records and a few builders. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StreamRecord } from '../../src/format/index.js';

// The shared/ folder sits beside the repository (in CI too, with a copy), so resolve from the repo root.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const vectorsDir = path.resolve(repoRoot, '..', 'shared', 'vectors');

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

/** Spec table: each block holds one record. */
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
