/**
 * The planner's last pass: the plain-data `CompactionPlan` of the final evaluation (plan objects
 * are built only here, once).
 */
import { humanBytes } from '../util/units.js';
import { exclusion, R_FORCE, R_MERGE_CANDIDATE, ST_EMPTIED, type Evaluation, type Prepared } from './prepared.js';
import type { CompactionPlan, PlanExclusion, PlanIteration, PlannedBlock, PlannedStreamObject } from './types.js';

/**
 * Values read from a Float64Array are doubles; stored in a plan object they would each be boxed
 * (a heap number per field). Small integers are handed over as int32 so V8 keeps them unboxed
 * (this halves the plan's heap for large runs). Larger values stay doubles: still exact.
 */
function smi(v: number): number {
  return v <= 0x3fffffff ? v | 0 : v;
}

export function materialize(
  prep: Prepared,
  ev: Evaluation,
  skippedForLimits: PlanExclusion[],
  deferredForLimits: PlanExclusion[],
): CompactionPlan {
  const { objects, eObj, eStart, eEnd, eSize, ePos, eCount, eStream, streamIds, opts } = prep;
  const P = opts.partSize;
  const { seq, runOf, seqSo, seqIter, role, merged } = ev;

  const skipped = prep.skipped.slice();
  for (const o of ev.oversize) {
    const k = prep.maxLiveAt[o]!;
    skipped.push(
      exclusion(
        prep,
        o,
        `block of stream ${streamIds[eStream[k]!]} [${eStart[k]}, ${eEnd[k]}) at position ${ePos[k]} ` +
          `is ${humanBytes(eSize[k]!)}, larger than memoryLimit ${humanBytes(opts.memoryLimit)}`,
      ),
    );
  }
  skipped.push(...skippedForLimits);
  const deferred = [...prep.deferred, ...deferredForLimits];

  // Compacted: merged, force-split, emptied.
  const compacted: number[] = [];
  const untouched: number[] = [];
  for (let o = 0; o < prep.nObj; o++) {
    if (prep.status[o] === ST_EMPTIED || merged[o] || role[o] === R_FORCE) compacted.push(o);
    else if (role[o] === R_MERGE_CANDIDATE) untouched.push(objects[o]!.meta.objectId);
  }
  const compactedIds = compacted.map((o) => objects[o]!.meta.objectId).sort((a, b) => a - b);
  const emptiedIds = prep.emptied.map((o) => objects[o]!.meta.objectId).sort((a, b) => a - b);
  untouched.sort((a, b) => a - b);
  let orderId: number | null = null;
  let dataTimeMs: number | null = null;
  let droppedBlocks = 0;
  let droppedBytes = 0;
  for (const o of compacted) {
    const meta = objects[o]!.meta;
    if (orderId === null || meta.orderId < orderId) orderId = meta.orderId;
    if (dataTimeMs === null || meta.dataTimeMs < dataTimeMs) dataTimeMs = meta.dataTimeMs;
    droppedBlocks += prep.deadBlocks[o]!;
    droppedBytes += prep.deadBytes[o]!;
  }

  // Blocks: the hot loop of materialization (one plain object per block, arrays pre-sized).
  const m = seq.length;
  const nIter = ev.iterationCount;
  const perIter = new Int32Array(nIter);
  for (let p = 0; p < m; p++) perIter[seqIter[p]!]!++;
  const objIds = objects.map((x) => x.meta.objectId);
  const objKeys = objects.map((x) => x.key);
  const iterations: PlanIteration[] = new Array<PlanIteration>(nIter);
  const streamObjects: PlannedStreamObject[] = new Array<PlannedStreamObject>(ev.soCount);
  const ranges: { streamId: number; startOffset: number; endOffset: number }[] = [];
  let ssoBytes = 0;
  let soBytes = 0;
  let cur: PlanIteration | null = null;
  let fillAt = 0;
  let lastRange = -1;
  let ssoBlocks = 0;
  let ssoFirstIter = -1;
  let ssoLastIter = -1;
  let out: PlannedStreamObject | null = null;
  for (let p = 0; p < m; p++) {
    const k = seq[p]!;
    const it = seqIter[p]!;
    if (cur === null || cur.index !== it) {
      cur = { index: it, tailBefore: ssoBytes % P, ssoBytesBefore: ssoBytes, bytes: 0, blocks: new Array<PlannedBlock>(perIter[it]!) };
      iterations[it] = cur;
      fillAt = 0;
    }
    const o = eObj[k]!;
    const size = smi(eSize[k]!);
    const streamId = streamIds[eStream[k]!]!;
    const startOffset = smi(eStart[k]!);
    const endOffset = smi(eEnd[k]!);
    let dest: PlannedBlock['dest'];
    const so = seqSo[p]!;
    if (so >= 0) {
      if (out === null || out.index !== so) {
        out = { index: so, streamId, startOffset, endOffset, dataSize: 0, iteration: it, blocks: 0 };
        streamObjects[so] = out;
      }
      dest = { kind: 'so', index: so, offset: smi(out.dataSize) };
      out.endOffset = endOffset;
      out.dataSize += size;
      out.blocks++;
      soBytes += size;
    } else {
      const r = runOf[p]!;
      if (r !== lastRange) {
        ranges.push({ streamId, startOffset, endOffset });
        lastRange = r;
      } else {
        ranges[ranges.length - 1]!.endOffset = endOffset;
      }
      dest = { kind: 'sso', offset: smi(ssoBytes) };
      ssoBytes += size;
      ssoBlocks++;
      if (ssoFirstIter < 0) ssoFirstIter = it;
      ssoLastIter = it;
    }
    cur.bytes += size;
    cur.blocks[fillAt++] = {
      objectId: objIds[o]!,
      key: objKeys[o]!,
      position: smi(ePos[k]!),
      size,
      streamId,
      startOffset,
      endOffset,
      recordCount: smi(eCount[k]!),
      dest,
    };
  }

  return {
    compactedObjectIds: compactedIds,
    emptiedObjectIds: emptiedIds,
    skipped,
    deferred,
    untouched,
    orderId,
    dataTimeMs,
    memoryLimit: opts.memoryLimit,
    openReads: ev.openReads,
    reserved: ev.reserved,
    partSize: P,
    sso:
      ssoBlocks > 0
        ? { ranges, dataSize: ssoBytes, blocks: ssoBlocks, firstIteration: ssoFirstIter, closesIn: ssoLastIter }
        : null,
    streamObjects,
    iterations,
    totals: {
      blocks: seq.length,
      bytesToRead: ssoBytes + soBytes,
      ssoBytes,
      soBytes,
      droppedBlocks,
      droppedBytes,
    },
  };
}
