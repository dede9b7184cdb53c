import { PlanError } from '../errors.js';
import type { IndexEntry } from '../format/types.js';
import type { StreamMetadata } from '../metadata/types.js';
import type { CompactionPlan, CoverageInput, PlannedBlock } from './types.js';

function coverage(message: string): PlanError {
  return new PlanError('ERR_PLAN_COVERAGE', message);
}

function describeBlock(b: Pick<PlannedBlock, 'objectId' | 'key' | 'streamId' | 'startOffset' | 'endOffset' | 'position' | 'size'>): string {
  return `block of object ${b.objectId} (${b.key}) stream ${b.streamId} [${b.startOffset}, ${b.endOffset}) at position ${b.position} (${b.size} bytes)`;
}

/**
 * Checks that the plan loses nothing (rule 7), against the inputs and the stream metadata as it
 * is now (call it again right before commit with fresh stream metadata: blocks trimmed since
 * planning are allowed to be covered, blocks still live must be):
 *  - every live block of every compacted object is planned exactly once, with the same stream,
 *    offsets and size as in the object's index, and nothing else is planned;
 *  - each destination covers its blocks: a stream object's blocks are contiguous from its
 *    startOffset to its endOffset in one iteration; the SSO's blocks are at consecutive byte
 *    offsets, and per stream contiguous from its range's startOffset to its endOffset.
 * Throws `PlanError('ERR_PLAN_COVERAGE')` naming the block (object, stream, offsets), or
 * `ERR_PLAN_INVALID` for a malformed plan. Returns what the plan drops as dead, per stream, for
 * `checkDroppedStillDead` right before the commit (so nothing but this summary outlives planning).
 */
export function checkCoverage(plan: CompactionPlan, inputs: CoverageInput): DroppedStream[] {
  const ids = plan.compactedObjectIds;
  for (let i = 0; i < ids.length; i++) {
    if (!Number.isSafeInteger(ids[i]) || (i > 0 && ids[i]! <= ids[i - 1]!)) {
      throw new PlanError('ERR_PLAN_INVALID', `compactedObjectIds must be ascending and unique (at position ${i}: ${ids[i]})`);
    }
  }
  const compacted = new Set(ids);

  // Compacted input objects, each with its entries' positions sorted for binary search.
  interface Src {
    key: string;
    entries: IndexEntry[];
    /** Entry indices sorted by position, and the positions in that order. */
    order: Int32Array;
    positions: Float64Array;
    planned: Uint8Array;
  }
  const srcs = new Map<number, Src>();
  for (const obj of inputs.objects) {
    const id = obj.meta.objectId;
    if (!compacted.has(id)) continue;
    if (!Array.isArray(obj.index)) {
      throw coverage(`object ${id} (${obj.key}) is compacted but its index could not be read, so its blocks cannot be accounted for`);
    }
    const entries = obj.index as IndexEntry[];
    const order = new Int32Array(entries.length);
    let sorted = true;
    for (let j = 0; j < entries.length; j++) {
      order[j] = j;
      if (j > 0 && entries[j]!.position < entries[j - 1]!.position) sorted = false;
    }
    if (!sorted) order.sort((x, y) => entries[x]!.position - entries[y]!.position);
    const positions = new Float64Array(entries.length);
    for (let j = 0; j < entries.length; j++) positions[j] = entries[order[j]!]!.position;
    srcs.set(id, { key: obj.key, entries, order, positions, planned: new Uint8Array(entries.length) });
  }
  for (const id of ids) {
    if (!srcs.has(id)) throw coverage(`compacted object ${id} is not among the inputs, so its blocks cannot be accounted for`);
  }

  // Each planned block: from a compacted object, an entry of its index (same stream, offsets and
  // size), planned once.
  for (const it of plan.iterations) {
    for (const b of it.blocks) {
      const src = srcs.get(b.objectId);
      if (src === undefined) throw coverage(`the plan reads ${describeBlock(b)} but object ${b.objectId} is not in compactedObjectIds`);
      const { positions } = src;
      let lo = 0;
      let hi = positions.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (positions[mid]! < b.position) lo = mid + 1;
        else hi = mid;
      }
      if (positions[lo] !== b.position) throw coverage(`${describeBlock(b)} is not in the object's index`);
      const e = src.entries[src.order[lo]!]!;
      if (b.streamId !== e.streamId || b.startOffset !== e.startOffset || b.endOffset !== e.endOffset || b.size !== e.size) {
        throw coverage(`${describeBlock(b)} does not match the object's index entry (stream ${e.streamId} [${e.startOffset}, ${e.endOffset}), ${e.size} bytes)`);
      }
      if (src.planned[lo]) throw coverage(`${describeBlock(b)} is planned twice`);
      src.planned[lo] = 1;
    }
  }

  // Every live block of every compacted input object is planned (stream metadata as given).
  const liveStart = new Map<number, number>();
  for (const st of inputs.streams) {
    if (st.state === 'deleted') liveStart.delete(st.streamId);
    else liveStart.set(st.streamId, st.startOffset);
  }
  const dropped = new Map<number, DroppedStream>();
  for (const [id, src] of srcs) {
    for (let i = 0; i < src.planned.length; i++) {
      if (src.planned[i]) continue;
      const e = src.entries[src.order[i]!]!;
      const start = liveStart.get(e.streamId);
      if (start === undefined || e.endOffset <= start) {
        // Dead: dropping it is right. Remember the furthest such block of its stream.
        const d = dropped.get(e.streamId);
        if (!d || e.endOffset > d.block.endOffset) dropped.set(e.streamId, { streamId: e.streamId, block: { ...e, objectId: id, key: src.key } });
        continue;
      }
      throw coverage(`${describeBlock({ ...e, objectId: id, key: src.key })} is live but not covered by any output of the plan`);
    }
  }

  // Each destination covers its blocks.
  const nSo = plan.streamObjects.length;
  const soOffset = new Float64Array(nSo).fill(-1); // next stream offset expected; -1: not started
  const soBytes = new Float64Array(nSo);
  const soBlocks = new Float64Array(nSo);
  const sso = plan.sso;
  const rangeOf = new Map<number, number>();
  const ssoNextOffset: number[] = [];
  if (sso) {
    for (let r = 0; r < sso.ranges.length; r++) {
      const range = sso.ranges[r]!;
      if (r > 0 && range.streamId <= sso.ranges[r - 1]!.streamId) {
        throw new PlanError('ERR_PLAN_INVALID', `SSO ranges must be sorted by streamId with one range per stream (stream ${range.streamId})`);
      }
      rangeOf.set(range.streamId, r);
      ssoNextOffset.push(range.startOffset);
    }
  }
  let ssoBytes = 0;
  for (const it of plan.iterations) {
    for (const b of it.blocks) {
      if (b.dest.kind === 'so') {
        const so = plan.streamObjects[b.dest.index];
        if (so === undefined || so.index !== b.dest.index) {
          throw coverage(`${describeBlock(b)} goes to stream object ${b.dest.index}, which the plan does not have`);
        }
        const i = so.index;
        const next = soOffset[i]! < 0 ? so.startOffset : soOffset[i]!;
        if (so.streamId !== b.streamId || so.iteration !== it.index || next !== b.startOffset || soBytes[i] !== b.dest.offset) {
          throw coverage(
            `${describeBlock(b)} does not continue stream object ${i} (stream ${so.streamId} [${so.startOffset}, ${so.endOffset}), ` +
              `iteration ${so.iteration}): expected offset ${next} at byte ${soBytes[i]} in iteration ${so.iteration}`,
          );
        }
        soOffset[i] = b.endOffset;
        soBytes[i]! += b.size;
        soBlocks[i]!++;
      } else {
        const r = rangeOf.get(b.streamId);
        if (sso === null || r === undefined) throw coverage(`${describeBlock(b)} goes to the SSO, which has no range for stream ${b.streamId}`);
        if (b.dest.offset !== ssoBytes || ssoNextOffset[r] !== b.startOffset) {
          throw coverage(
            `${describeBlock(b)} does not continue the SSO: expected stream offset ${ssoNextOffset[r]} at SSO byte ${ssoBytes}, ` +
              `got byte ${b.dest.offset}`,
          );
        }
        ssoNextOffset[r] = b.endOffset;
        ssoBytes += b.size;
      }
    }
  }
  plan.streamObjects.forEach((so, i) => {
    if (so.index !== i) throw new PlanError('ERR_PLAN_INVALID', `streamObjects[${i}] has index ${so.index}`);
    if (soOffset[i] !== so.endOffset || soBytes[i] !== so.dataSize || soBlocks[i] !== so.blocks) {
      throw coverage(
        `stream object ${i} (stream ${so.streamId} [${so.startOffset}, ${so.endOffset}), ${so.dataSize} bytes) is not covered by its blocks` +
          (soOffset[i]! < 0 ? ' (no block)' : ` (they reach offset ${soOffset[i]}, ${soBytes[i]} bytes)`),
      );
    }
  });
  if (sso) {
    sso.ranges.forEach((range, r) => {
      if (ssoNextOffset[r] !== range.endOffset) {
        throw coverage(`SSO range of stream ${range.streamId} [${range.startOffset}, ${range.endOffset}) is covered only up to ${ssoNextOffset[r]}`);
      }
    });
    if (ssoBytes !== sso.dataSize) throw coverage(`SSO blocks hold ${ssoBytes} bytes, the plan says ${sso.dataSize}`);
  }
  return [...dropped.values()];
}

/** The furthest block of a stream that a plan drops as dead (trimmed, or of a deleted stream). */
export interface DroppedStream {
  streamId: number;
  block: Pick<PlannedBlock, 'objectId' | 'key' | 'streamId' | 'startOffset' | 'endOffset' | 'position' | 'size'>;
}

/**
 * Checks again, against stream metadata as it is right before the commit, that every block the
 * plan drops is still dead (`checkCoverage` holds the rest: the planned blocks do not depend on
 * stream metadata). Trims only move a stream's start forward, so this fails only if metadata went
 * back (a restored database, a stream recreated under the same id): then nothing is committed.
 */
export function checkDroppedStillDead(dropped: readonly DroppedStream[], streams: readonly StreamMetadata[]): void {
  const liveStart = new Map<number, number>();
  for (const st of streams) {
    if (st.state === 'deleted') liveStart.delete(st.streamId);
    else liveStart.set(st.streamId, st.startOffset);
  }
  for (const { streamId, block } of dropped) {
    const start = liveStart.get(streamId);
    if (start !== undefined && block.endOffset > start) {
      throw coverage(`${describeBlock(block)} is live again (stream ${streamId} now starts at ${start}) but the plan dropped it as trimmed`);
    }
  }
}
