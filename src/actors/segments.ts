/**
 * Turns a plan into what the actors work on: the outputs of the run, and the segments of one
 * iteration attempt. A restarted attempt resumes the SSO's upload after its last durable part,
 * so it re-reads SSO bytes from there (possibly from the middle of a block of an earlier
 * iteration) and never re-uploads what is already safe. Runs on the actors' threads, over the
 * plan's shared block table.
 */
import { CompactorError } from '../errors.js';
import type { IndexEntry } from '../format/types.js';
import { destKey, type Dest, type OutputSpec, type Segment } from '../messages/pipeline.js';
import type { PlanBlocks, PlanSummary } from '../plan/table.js';

/** The run's outputs: the SSO (if any) first, then stream objects by index. */
export function outputSpecs(summary: PlanSummary, keyOf: (objectId: number) => string, ssoId: number, soIds: readonly number[]): OutputSpec[] {
  const specs: OutputSpec[] = [];
  if (summary.sso) specs.push({ dest: { kind: 'sso' }, key: keyOf(ssoId), dataSize: summary.sso.dataSize, closesIn: summary.sso.closesIn });
  for (const so of summary.streamObjects) {
    specs.push({ dest: { kind: 'so', index: so.index }, key: keyOf(soIds[so.index]!), dataSize: so.dataSize, closesIn: so.iteration });
  }
  return specs;
}

/**
 * What the merger reads of the plan besides its segments, straight from the shared table: no
 * index entry exists as an object before it is needed (one per block for a whole run's outputs
 * held ~100 B a block in the worker's heap, outside the memory budget).
 */
export interface PlanIndex {
  /** The source index entry of table block `block`: what a whole segment is checked against. */
  sourceEntry(block: number): IndexEntry;
  /** The output's index entries (positions inside the output), in position order. */
  outputEntries(dest: Dest): Iterable<IndexEntry>;
}

export function planIndex(summary: PlanSummary, blocks: PlanBlocks): PlanIndex {
  return {
    sourceEntry: (block) => blocks.sourceEntry(block),
    *outputEntries(dest) {
      // A stream object is written within one iteration: only that iteration's blocks can be its.
      const so = dest.kind === 'so' ? summary.streamObjects.find((s) => s.index === dest.index) : undefined;
      const [start, end] = so ? blocks.iterationRange(so.iteration) : [0, blocks.count];
      let next = 0;
      for (let i = start; i < end; i++) {
        if (so ? blocks.isSso(i) || blocks.destIndex(i) !== so.index : !blocks.isSso(i)) continue;
        const e = blocks.outputEntry(i);
        // The plan lays every output's blocks out in table order; an index must be in it too.
        if (e.position !== next) throw new CompactorError('ERR_INTERNAL', `plan block ${i} of ${destKey(dest)} is at ${e.position}, expected ${next}`);
        next += e.size;
        yield e;
      }
    },
  };
}

const SSO_DEST: Dest = Object.freeze({ kind: 'sso' });
/** Shared, frozen: an iteration's segments hold tens of thousands of references to a few outputs. */
const soDests: Dest[] = [];

function destOf(blocks: PlanBlocks, i: number): Dest {
  if (blocks.isSso(i)) return SSO_DEST;
  const index = blocks.destIndex(i);
  return (soDests[index] ??= Object.freeze({ kind: 'so', index }));
}

/**
 * Segments of iteration `iteration`, for an uploader that already has the SSO's first `ssoFrom`
 * bytes (in completed parts, or buffered as its tail). A healthy uploader has exactly the SSO
 * bytes of earlier iterations; a fresh one after a failure has only the durable parts, so SSO
 * bytes from there on are read again, from earlier iterations' blocks if need be.
 */
export function iterationSegments(
  summary: PlanSummary,
  blocks: PlanBlocks,
  iteration: number,
  ssoFrom: number,
  /** `destKey`s of outputs already complete: their blocks are not read again. */
  done: ReadonlySet<string> = new Set(),
): Segment[] {
  const segments: Segment[] = [];
  let seq = 0;
  const add = (i: number) => {
    if (done.size > 0 && done.has(destKey(destOf(blocks, i)))) return;
    const offset = blocks.destOffset(i);
    const size = blocks.size(i);
    const skip = blocks.isSso(i) ? Math.max(0, ssoFrom - offset) : 0;
    if (skip >= size) return;
    const key = blocks.key(i);
    const dest = destOf(blocks, i);
    // Whole in one literal: a field added later moves every segment's fields out of the object.
    segments.push(
      skip === 0
        ? { seq: seq++, key, srcPos: blocks.position(i), size, dest, destOffset: offset, block: i }
        : { seq: seq++, key, srcPos: blocks.position(i) + skip, size: size - skip, dest, destOffset: offset + skip },
    );
  };
  for (let it = 0; it < iteration; it++) {
    const info = summary.iterations[it]!;
    if (info.ssoBytesBefore + info.bytes <= ssoFrom) continue;
    const [start, end] = blocks.iterationRange(it);
    for (let i = start; i < end; i++) if (blocks.isSso(i)) add(i);
  }
  const [start, end] = blocks.iterationRange(iteration);
  for (let i = start; i < end; i++) add(i);
  return segments;
}
