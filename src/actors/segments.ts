/**
 * Turns a plan into what the actors work on: the outputs of the run, and the segments of one
 * iteration attempt. A restarted attempt resumes the SSO's upload after its last durable part,
 * so it re-reads SSO bytes from there (possibly from the middle of a block of an earlier
 * iteration) and never re-uploads what is already safe. Runs on the actors' threads, over the
 * plan's shared block table.
 */
import type { IndexEntry } from '../format/types.js';
import { destKey, type Dest, type OutputSpec, type Segment } from '../messages/pipeline.js';
import type { PlanBlocks, PlanSummary } from '../plan/table.js';

/** The run's outputs: the SSO (if any) first, then stream objects by index. */
export function outputSpecs(
  summary: PlanSummary,
  keyOf: (objectId: number) => string,
  ssoId: number,
  soIds: readonly number[],
  blocks?: PlanBlocks,
): OutputSpec[] {
  const specs: OutputSpec[] = [];
  if (summary.sso) specs.push({ dest: { kind: 'sso' }, key: keyOf(ssoId), dataSize: summary.sso.dataSize, entries: [], closesIn: summary.sso.closesIn });
  for (const so of summary.streamObjects) {
    specs.push({ dest: { kind: 'so', index: so.index }, key: keyOf(soIds[so.index]!), dataSize: so.dataSize, entries: [], closesIn: so.iteration });
  }
  if (blocks) {
    // Index entries only where they are written (the merger). Blocks come in output order per
    // output, so the lists are already sorted: the sort below is one linear pass that keeps the
    // index in order should that ever change.
    const ssoEntries: IndexEntry[] | undefined = summary.sso ? specs[0]!.entries : undefined;
    const soEntries = specs.slice(summary.sso ? 1 : 0).map((s) => s.entries);
    for (let i = 0; i < blocks.count; i++) {
      const list = blocks.isSso(i) ? ssoEntries : soEntries[blocks.destIndex(i)];
      list!.push(blocks.outputEntry(i));
    }
    for (const s of specs) s.entries.sort((a, b) => a.position - b.position);
  }
  return specs;
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
    const seg: Segment = { seq: seq++, key: blocks.key(i), srcPos: blocks.position(i) + skip, size: size - skip, dest: destOf(blocks, i), destOffset: offset + skip };
    if (skip === 0) seg.entry = blocks.sourceEntry(i);
    segments.push(seg);
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
