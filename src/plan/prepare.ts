/**
 * Preparation, the planner's second pass: the live entries (rule 2) of every admitted object,
 * flattened into typed arrays sorted by (streamId, startOffset), and the overlap check (rule 4).
 */
import type { IndexEntry } from '../format/types.js';
import { admit } from './admit.js';
import { Overlap, ST_EMPTIED, ST_OUT, type Prepared } from './prepared.js';
import type { PlanExclusion, PlanInput, PlannerOptions } from './types.js';

/** Throws `Overlap` when two objects' entries overlap in a stream (the caller leaves one out and prepares again). */
export function prepare(input: PlanInput, opts: PlannerOptions, openReads: Prepared['openReads'], excluded: ReadonlyMap<number, PlanExclusion>): Prepared {
  const { status, force, skipped, deferred, total } = admit(input, opts, excluded);
  const { objects, streams } = input;
  const nObj = objects.length;

  // Live streams: streamId → startOffset. Deleted or unknown streams are absent.
  const liveStart = new Map<number, number>();
  for (const s of streams) {
    if (s.state === 'deleted') liveStart.delete(s.streamId);
    else liveStart.set(s.streamId, s.startOffset);
  }

  // Pass A: liveness and dense stream ids. Objects are visited oldest first (the input is
  // newest first) so each stream's entries usually come out already in offset order.
  // tStream: dense stream of each visited entry (-1: dead), in visiting order.
  const tStream = new Int32Array(total);
  let t = 0;
  const dense = new Map<number, number>();
  const denseIds: number[] = [];
  let denseCount: number[] = [];
  const maxLiveSize = new Float64Array(nObj);
  const deadBlocks = new Float64Array(nObj);
  const deadBytes = new Float64Array(nObj);
  const liveCount = new Int32Array(nObj);
  let n = 0;
  for (let o = nObj - 1; o >= 0; o--) {
    if (status[o] === ST_OUT) continue;
    const index = objects[o]!.index as IndexEntry[];
    let lastSid = -1;
    let lastStart: number | undefined;
    let lastDense = -1;
    for (let j = 0; j < index.length; j++) {
      const e = index[j]!;
      const sid = e.streamId;
      if (sid !== lastSid) {
        lastSid = sid;
        lastStart = liveStart.get(sid);
        lastDense = -1;
        if (lastStart !== undefined) {
          let d = dense.get(sid);
          if (d === undefined) {
            d = denseIds.length;
            dense.set(sid, d);
            denseIds.push(sid);
            denseCount.push(0);
          }
          lastDense = d;
        }
      }
      if (lastStart === undefined || e.endOffset <= lastStart) {
        tStream[t++] = -1;
        deadBlocks[o]! += 1;
        deadBytes[o]! += e.size;
        continue;
      }
      tStream[t++] = lastDense;
      denseCount[lastDense]!++;
      n++;
      liveCount[o]!++;
      if (e.size > maxLiveSize[o]!) maxLiveSize[o] = e.size;
    }
  }

  // Dense ids in streamId order, then a stable counting sort of the entries by stream.
  const nS = denseIds.length;
  const byId = Array.from({ length: nS }, (_, i) => i).sort((a, b) => denseIds[a]! - denseIds[b]!);
  const rank = new Int32Array(nS);
  const streamIds: number[] = new Array<number>(nS);
  const sFirst = new Int32Array(nS + 1);
  for (let r = 0; r < nS; r++) {
    const d = byId[r]!;
    rank[d] = r;
    streamIds[r] = denseIds[d]!;
    sFirst[r + 1] = sFirst[r]! + denseCount[d]!;
  }
  denseCount = [];
  const fill = sFirst.slice(0, nS);
  const eObj = new Int32Array(n);
  const eIdx = new Int32Array(n);
  const eStream = new Int32Array(n);
  const eStart = new Float64Array(n);
  const eEnd = new Float64Array(n);
  const eSize = new Float64Array(n);
  const ePos = new Float64Array(n);
  const eCount = new Float64Array(n);
  // Pass B: the same visiting order (sequential reads of the input), writing each live entry
  // to its slot in the stream-sorted arrays.
  t = 0;
  for (let o = nObj - 1; o >= 0; o--) {
    if (status[o] === ST_OUT) continue;
    const index = objects[o]!.index as IndexEntry[];
    for (let j = 0; j < index.length; j++) {
      const d = tStream[t++]!;
      if (d < 0) continue;
      const e = index[j]!;
      const s = rank[d]!;
      const k = fill[s]!++;
      eObj[k] = o;
      eIdx[k] = j;
      eStream[k] = s;
      eStart[k] = e.startOffset;
      eEnd[k] = e.endOffset;
      eSize[k] = e.size;
      ePos[k] = e.position;
      eCount[k] = e.recordCount;
    }
  }

  // Per stream: sort by startOffset when needed, then check overlaps.
  for (let s = 0; s < nS; s++) {
    const a = sFirst[s]!;
    const b = sFirst[s + 1]!;
    let sorted = true;
    for (let k = a + 1; k < b; k++) {
      if (eStart[k]! < eStart[k - 1]!) {
        sorted = false;
        break;
      }
    }
    if (!sorted) sortSlice(a, b, [eStart, eEnd, eSize, ePos, eCount], [eObj, eIdx]);
    for (let k = a + 1; k < b; k++) {
      if (eStart[k]! < eEnd[k - 1]!) {
        const p = objects[eObj[k - 1]!]!;
        const q = objects[eObj[k]!]!;
        throw new Overlap(
          eObj[k - 1]!,
          eObj[k]!,
          `overlapping offsets in stream ${streamIds[s]}: block [${eStart[k - 1]}, ${eEnd[k - 1]}) of object ${p.meta.objectId} (${p.key}) ` +
            `overlaps block [${eStart[k]}, ${eEnd[k]}) of object ${q.meta.objectId} (${q.key}); the newer object is left out`,
        );
      }
    }
  }

  const maxLiveAt = new Int32Array(nObj).fill(-1);
  for (let k = 0; k < n; k++) {
    const o = eObj[k]!;
    if (maxLiveAt[o] === -1 && eSize[k] === maxLiveSize[o]) maxLiveAt[o] = k;
  }

  const candidates: number[] = [];
  const emptied: number[] = [];
  for (let o = 0; o < nObj; o++) {
    if (status[o] === ST_OUT) continue;
    if (liveCount[o] === 0) {
      status[o] = ST_EMPTIED;
      emptied.push(o);
    } else {
      candidates.push(o);
    }
  }

  return {
    opts,
    openReads,
    objects,
    nObj,
    status,
    force,
    maxLiveAt,
    maxLiveSize,
    deadBlocks,
    deadBytes,
    skipped,
    deferred,
    candidates,
    emptied,
    n,
    eObj,
    eIdx,
    eStream,
    eStart,
    eEnd,
    eSize,
    ePos,
    eCount,
    streamIds,
    sFirst,
  };
}

/** Sorts entries [a, b) by (startOffset, endOffset); the first float array must be startOffset, the second endOffset. */
function sortSlice(a: number, b: number, floats: Float64Array[], ints: Int32Array[]): void {
  const [start, end] = floats as [Float64Array, Float64Array];
  const len = b - a;
  const perm = new Int32Array(len);
  for (let i = 0; i < len; i++) perm[i] = a + i;
  perm.sort((x, y) => start[x]! - start[y]! || end[x]! - end[y]!);
  for (const arr of floats) {
    const copy = arr.slice(a, b);
    for (let i = 0; i < len; i++) arr[a + i] = copy[perm[i]! - a]!;
  }
  for (const arr of ints) {
    const copy = arr.slice(a, b);
    for (let i = 0; i < len; i++) arr[a + i] = copy[perm[i]! - a]!;
  }
}
