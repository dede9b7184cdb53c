import type { IndexEntry } from '../../src/format/types.js';
import type { StreamMetadata, StreamState } from '../../src/metadata/types.js';
import type { CompactionPlan, PlanInput, PlanInputObject, PlannerOptions } from '../../src/plan/index.js';

/** [streamId, startOffset, endOffset, size] */
export type B = [number, number, number, number];

export const NOW = 1_000_000_000;
export const HOUR = 3_600_000;

/** An SSO with blocks laid out back to back (positions follow sizes); index sorted by (stream, start). */
export function obj(id: number, blocks: B[], opts: { dataTimeMs?: number; orderId?: number } = {}): PlanInputObject {
  const sorted = [...blocks].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let pos = 0;
  const index: IndexEntry[] = sorted.map(([streamId, startOffset, endOffset, size]) => {
    const e = { streamId, startOffset, endOffset, recordCount: endOffset - startOffset, position: pos, size };
    pos += size;
    return e;
  });
  return {
    key: `key-${id}`,
    meta: {
      objectId: id,
      nodeId: 1,
      orderId: opts.orderId ?? id,
      dataTimeMs: opts.dataTimeMs ?? NOW - 1000 * id,
      objectSize: pos + 36 * index.length + 48,
      ranges: [],
    },
    index,
  };
}

export function failed(id: number, error = 'boom'): PlanInputObject {
  return { key: `key-${id}`, meta: { objectId: id, nodeId: 1, orderId: id, dataTimeMs: NOW, objectSize: 100, ranges: [] }, index: { error } };
}

export function stream(streamId: number, startOffset = 0, state: StreamState = 'opened'): StreamMetadata {
  return { streamId, epoch: 0, startOffset, endOffset: 1_000_000, state };
}

export function streams(...ids: number[]): StreamMetadata[] {
  return ids.map((id) => stream(id));
}

export const SMALL: Partial<PlannerOptions> = {
  memoryLimit: 1_000_000,
  streamSplitSize: 100,
  partSize: 64,
  minPartSize: 1,
};

export function input(objects: PlanInputObject[], strs: StreamMetadata[], options: Partial<PlannerOptions> = SMALL): PlanInput {
  return { objects, streams: strs, nowMs: NOW, options };
}

export function allBlocks(plan: CompactionPlan) {
  return plan.iterations.flatMap((it) => it.blocks);
}

export function soRanges(plan: CompactionPlan): [number, number, number][] {
  return plan.streamObjects.map((s) => [s.streamId, s.startOffset, s.endOffset]);
}

export function ssoRanges(plan: CompactionPlan): [number, number, number][] {
  return (plan.sso?.ranges ?? []).map((r) => [r.streamId, r.startOffset, r.endOffset]);
}

/** Checks the memory and shape invariants every plan must hold. */
export function checkInvariants(plan: CompactionPlan): void {
  const fail = (m: string) => {
    throw new Error(`plan invariant: ${m}`);
  };
  let sso = 0;
  plan.iterations.forEach((it, i) => {
    if (it.index !== i) fail(`iteration ${i} has index ${it.index}`);
    if (it.ssoBytesBefore !== sso) fail(`iteration ${i} ssoBytesBefore ${it.ssoBytesBefore} != ${sso}`);
    if (it.tailBefore !== sso % plan.partSize) fail(`iteration ${i} tailBefore`);
    const bytes = it.blocks.reduce((a, b) => a + b.size, 0);
    if (bytes !== it.bytes) fail(`iteration ${i} bytes`);
    if (it.blocks.length === 0) fail(`iteration ${i} empty`);
    if (it.tailBefore + it.bytes > plan.memoryLimit) fail(`iteration ${i}: ${it.tailBefore} + ${it.bytes} > ${plan.memoryLimit}`);
    for (const b of it.blocks) if (b.dest.kind === 'sso') sso += b.size;
  });
  const ids = plan.compactedObjectIds;
  for (let i = 1; i < ids.length; i++) if (ids[i]! <= ids[i - 1]!) fail('compactedObjectIds not ascending');
  const r = plan.sso?.ranges ?? [];
  for (let i = 1; i < r.length; i++) if (r[i]!.streamId <= r[i - 1]!.streamId) fail('SSO ranges not one per stream, sorted');
  for (const x of r) if (x.endOffset <= x.startOffset) fail('empty SSO range');
}
