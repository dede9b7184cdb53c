/**
 * Turns a plan into what the actors work on: the outputs of the run, and the segments of one
 * iteration attempt. A restarted attempt resumes the SSO's upload after its last durable part,
 * so it re-reads SSO bytes from there (possibly from the middle of a block of an earlier
 * iteration) and never re-uploads what is already safe.
 */
import type { IndexEntry } from '../format/types.js';
import type { Dest, OutputSpec, Segment } from '../messages/pipeline.js';
import type { CompactionPlan, PlannedBlock } from '../plan/types.js';

export function outputSpecs(plan: CompactionPlan, keyOf: (objectId: number) => string, ssoId: number, soIds: readonly number[]): OutputSpec[] {
  const entries = new Map<string, IndexEntry[]>();
  const push = (k: string, b: PlannedBlock) => {
    let list = entries.get(k);
    if (!list) entries.set(k, (list = []));
    list.push({ streamId: b.streamId, startOffset: b.startOffset, endOffset: b.endOffset, recordCount: b.recordCount, position: b.dest.offset, size: b.size });
  };
  for (const it of plan.iterations) {
    for (const b of it.blocks) push(b.dest.kind === 'sso' ? 'sso' : `so:${b.dest.index}`, b);
  }
  const byPosition = (a: IndexEntry, b: IndexEntry) => a.position - b.position;
  const specs: OutputSpec[] = [];
  if (plan.sso) {
    specs.push({ dest: { kind: 'sso' }, key: keyOf(ssoId), dataSize: plan.sso.dataSize, entries: (entries.get('sso') ?? []).sort(byPosition), closesIn: plan.sso.closesIn });
  }
  for (const so of plan.streamObjects) {
    specs.push({
      dest: { kind: 'so', index: so.index },
      key: keyOf(soIds[so.index]!),
      dataSize: so.dataSize,
      entries: (entries.get(`so:${so.index}`) ?? []).sort(byPosition),
      closesIn: so.iteration,
    });
  }
  return specs;
}

function toDest(b: PlannedBlock): Dest {
  return b.dest.kind === 'sso' ? { kind: 'sso' } : { kind: 'so', index: b.dest.index };
}

/**
 * Segments of iteration `iteration`, for an uploader that already has the SSO's first `ssoFrom`
 * bytes (in completed parts, or buffered as its tail). A healthy uploader has exactly the SSO
 * bytes of earlier iterations; a fresh one after a failure has only the durable parts, so SSO
 * bytes from there on are read again, from earlier iterations' blocks if need be.
 */
export function iterationSegments(plan: CompactionPlan, iteration: number, ssoFrom: number): Segment[] {
  const segments: Segment[] = [];
  let seq = 0;
  const add = (b: PlannedBlock) => {
    const skip = b.dest.kind === 'sso' ? Math.max(0, ssoFrom - b.dest.offset) : 0;
    if (skip >= b.size) return;
    segments.push({ seq: seq++, key: b.key, srcPos: b.position + skip, size: b.size - skip, dest: toDest(b), destOffset: b.dest.offset + skip });
  };
  for (let i = 0; i < iteration; i++) {
    if (plan.iterations[i]!.ssoBytesBefore + plan.iterations[i]!.bytes <= ssoFrom) continue;
    for (const b of plan.iterations[i]!.blocks) if (b.dest.kind === 'sso') add(b);
  }
  for (const b of plan.iterations[iteration]!.blocks) add(b);
  return segments;
}
