/**
 * The merger with real blocks, the reader's own read planning and a real budget, in one isolate
 * (as the pipeline runs it): GET bodies scattered straight into part buffers, in odd chunk sizes,
 * GETs finishing in any order, blocks straddling part boundaries.
 */
import { describe, expect, it } from 'vitest';
import { Merger } from '../../src/actors/merger.js';
import { planReads, type ReadRequest } from '../../src/actors/reader.js';
import type { PlanIndex } from '../../src/actors/segments.js';
import { MemoryBudget } from '../../src/actors/runtime/memory-budget.js';
import { FormatError } from '../../src/errors.js';
import { buildIndexAndFooter, encodeDataBlock, regroupIndex } from '../../src/format/index.js';
import type { IndexEntry } from '../../src/format/types.js';
import type { MergerToUploader, OutputSpec, Segment } from '../../src/messages/pipeline.js';
import { rec } from '../format/fixtures.js';

const PART = 100;

/** Two sources whose blocks interleave in the output (stream order): every part mixes both. */
function fixture() {
  const sources: Record<string, Uint8Array[]> = { 'src-a': [], 'src-b': [] };
  const out: { key: string; block: Uint8Array; streamId: number; srcPos: number }[] = [];
  const pos: Record<string, number> = { 'src-a': 0, 'src-b': 0 };
  for (let s = 0; s < 8; s++) {
    const key = s % 2 === 0 ? 'src-a' : 'src-b';
    const block = encodeDataBlock([rec(s, 0, 2, 20 + s * 7, s), rec(s, 2, 3, 11, s + 50)]);
    sources[key]!.push(block);
    out.push({ key, block, streamId: s, srcPos: pos[key]! });
    pos[key]! += block.byteLength;
  }
  const srcBytes = Object.fromEntries(Object.entries(sources).map(([k, bs]) => [k, Buffer.concat(bs)]));
  const entries: IndexEntry[] = [];
  const sourceEntries: IndexEntry[] = [];
  const segments: Segment[] = [];
  let destOffset = 0;
  out.forEach((b, seq) => {
    const e = { streamId: b.streamId, startOffset: 0, endOffset: 3, recordCount: 2, size: b.block.byteLength };
    entries.push({ ...e, position: destOffset });
    sourceEntries.push({ ...e, position: b.srcPos });
    segments.push({ seq, key: b.key, srcPos: b.srcPos, size: b.block.byteLength, dest: { kind: 'sso' }, destOffset, block: seq });
    destOffset += b.block.byteLength;
  });
  const spec: OutputSpec = { dest: { kind: 'sso' }, key: 'out', dataSize: destOffset, closesIn: 0 };
  const plan: PlanIndex = { sourceEntry: (block) => sourceEntries[block]!, outputEntries: () => entries };
  const expected = Buffer.concat([...out.map((b) => b.block), buildIndexAndFooter(regroupIndex(entries), destOffset)]);
  return { srcBytes, segments, spec, plan, expected };
}

function harness(spec: OutputSpec, plan: PlanIndex, limit: number) {
  const budget = new MemoryBudget(limit);
  const sent: MergerToUploader[] = [];
  const merger = new Merger([spec], plan, undefined, budget, { send: async (m) => void sent.push(m) }, PART);
  return { budget, sent, merger };
}

/** What the reader does for one GET: acquire, bytes into the merger's sink in `chunk`-byte pieces, then the message. */
async function deliver(merger: Merger, budget: MemoryBudget, r: ReadRequest, src: Uint8Array, chunk: number): Promise<void> {
  const size = r.end - r.start;
  await budget.acquire(size, {});
  const sink = merger.sink(r.pieces, size);
  for (let at = 0; at < size; at += chunk) sink.set(src.subarray(r.start + at, r.start + Math.min(size, at + chunk)), at);
  await merger.accept({ type: 'read', iteration: 0, pieces: r.pieces, size, gap: r.gap });
}

describe('Merger', () => {
  it('assembles parts from GETs scattered in odd chunks, finishing in any order, and closes with the trailer', async () => {
    const { srcBytes, segments, spec, plan, expected } = fixture();
    const reads = planReads(segments, 1 << 20);
    expect(reads).toHaveLength(2);
    // Blocks straddle part boundaries: the case the merger gathers from two parts.
    expect(segments.some((s) => Math.floor(s.destOffset / PART) !== Math.floor((s.destOffset + s.size - 1) / PART))).toBe(true);
    const { budget, sent, merger } = harness(spec, plan, 10_000);
    merger.startIteration(0, segments);
    await deliver(merger, budget, reads[1]!, srcBytes[reads[1]!.key]!, 7);
    // Half the blocks are in: exactly the parts all of whose bytes came with this GET are on their way.
    const fromFirst = (k: number) => segments.filter((s) => s.key === reads[1]!.key).reduce((n, s) => n + Math.max(0, Math.min(s.destOffset + s.size, k * PART) - Math.max(s.destOffset, (k - 1) * PART)), 0) === PART;
    const whole = Array.from({ length: Math.floor(spec.dataSize / PART) }, (_, i) => i + 1);
    expect(whole.filter(fromFirst).length).toBeGreaterThan(0);
    expect(sent.map((m) => (m.type === 'part' ? m.partNumber : m.type)).sort()).toEqual(whole.filter(fromFirst).sort());
    await deliver(merger, budget, reads[0]!, srcBytes[reads[0]!.key]!, 13);

    const parts = sent.filter((m) => m.type === 'part');
    const close = sent.find((m) => m.type === 'close');
    expect(sent.at(-1)).toEqual({ type: 'iteration.end', iteration: 0 });
    expect(parts.map((p) => p.partNumber).sort((a, b) => a - b)).toEqual(Array.from({ length: Math.floor(spec.dataSize / PART) }, (_, i) => i + 1));
    expect(parts.every((p) => p.body.byteLength === PART && p.dataBytes === PART)).toBe(true);
    expect(close).toMatchObject({ partNumber: Math.floor(spec.dataSize / PART) + 1, dataBytes: spec.dataSize % PART });
    const object = Buffer.concat([...parts.sort((a, b) => a.partNumber - b.partNumber).map((p) => p.body), close!.body]);
    expect(object.equals(expected)).toBe(true);
    // Everything handed on is counted (the uploader releases it when durable); nothing else is.
    expect(budget.inUse).toBe(spec.dataSize);
  });

  it('a damaged block straddling two parts fails its GET before any of its bytes is handed on, naming the source', async () => {
    const { srcBytes, segments, spec, plan } = fixture();
    // A block of src-b whose second record starts in a later part than the block: its magic is
    // only seen where the gathered bytes of the second part are.
    const secondAt = (seg: Segment) => seg.size - 33 - 11; // the second record has an 11-byte payload
    const straddling = segments.find((seg) => seg.key === 'src-b' && Math.floor((seg.destOffset + secondAt(seg)) / PART) > Math.floor(seg.destOffset / PART))!;
    expect(straddling).toBeDefined();
    const bad = Buffer.from(srcBytes['src-b']!);
    const secondRecord = straddling.srcPos + secondAt(straddling);
    expect(bad[secondRecord]).toBe(0x22);
    bad[secondRecord] = 0x00;
    const reads = planReads(segments, 1 << 20);
    const { budget, sent, merger } = harness(spec, plan, 10_000);
    merger.startIteration(0, segments);
    await deliver(merger, budget, reads[0]!, srcBytes['src-a']!, 64);
    const before = sent.length;
    const err = await deliver(merger, budget, reads.find((r) => r.key === 'src-b')!, bad, 64).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect(err).toMatchObject({ code: 'ERR_FORMAT_RECORD_MAGIC', key: 'src-b' });
    expect(sent.length).toBe(before);
    // What the merger held comes back on the cancel path; what it handed on is the uploader's.
    merger.releaseHeld();
    expect(budget.inUse).toBe(sent.reduce((n, m) => n + (m.type === 'part' ? m.dataBytes : 0), 0));
  });
});
