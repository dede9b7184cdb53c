/**
 * The compaction planner: a pure function from (candidate SSOs with their indexes, stream
 * metadata, now, options) to a plain-data `CompactionPlan`. No I/O, no threads, no clock.
 *
 * ## Rules (docs/compaction.md, "Planning rules")
 *
 * 1. An object whose index could not be read (or holds an impossible entry, or does not hold a
 *    range metadata gives it) is `skipped`; `quarantine` marks those at fault themselves.
 * 2. Entries of deleted/unknown streams and entries ending at or below the stream's startOffset
 *    are dropped; an entry straddling startOffset is kept whole. An SSO left with no live entry
 *    is compacted away (`emptiedObjectIds`, also in `compactedObjectIds`; nothing is read).
 * 3. A non-force-split candidate sharing no stream with another non-force-split candidate is
 *    left alone (`untouched`). Force-split SSOs do not count as sharing: their blocks never
 *    merge with anybody's.
 * 4. Per stream, live entries in startOffset order; an overlap (across all considered objects)
 *    leaves the newer object out (skipped, `ERR_PLAN_OVERLAP`, quarantine) and planning starts
 *    again without it. Sparse offsets inside an entry are no gap. Merged candidates' entries
 *    form contiguous runs: a gap ends a run and the run before the gap becomes a stream
 *    object; the stream's last run becomes a
 *    stream object when its bytes exceed streamSplitSize, otherwise it goes to the new SSO.
 *    Hence the SSO holds at most one run, i.e. one range, per stream.
 * 5. Iterations bounded by memoryLimit (memory model below). A block larger than memoryLimit
 *    skips its object and the plan is recomputed without it.
 * 6. A force-split SSO (dataTimeMs < nowMs - forceSplitAfterMs) becomes one stream object per
 *    contiguous run of its own entries per stream. Too many stream objects or SSO streams:
 *    source objects are deferred from the end of the newest-first list until the plan fits.
 *
 * ## Output order
 *
 * Every run in (streamId, startOffset) order, stream objects and the SSO's blocks interleaved as
 * their streams come. Every source object is sorted the same way, so an iteration (a stretch of
 * this order) needs one contiguous range of each source: one GET. An earlier order put every
 * stream object first (they then ran without an SSO tail beside them), but an iteration then
 * needed several scattered ranges of every source, and the requests cost more than the tail's
 * share of the budget (measured: 384 data GETs instead of ~130 for 115 MiB under a 64 MiB
 * limit; 0.44x instead of 0.62x of a raw copy on moto). The SSO closes in the last iteration
 * that holds SSO bytes; a stream object may close after it.
 *
 * ## Memory model
 *
 * Everything the pipeline holds counts, once per byte:
 *  - the blocks of the current iteration: read buffers, the merger's copies on their way to the
 *    uploader, and pending/in-flight parts of the iteration's outputs (bounded together by the
 *    iteration's block bytes; a stream object begins and ends inside one iteration, so all its
 *    bytes are released by the end of it);
 *  - the SSO's tail carried over from earlier iterations: the SSO is uploaded in parts cut at
 *    exactly `partSize`, so after `s` SSO bytes have been emitted the uploader still holds
 *    `s % partSize` bytes that only a later part (or the close) will upload.
 * So iteration i needs `tailBefore(i) + bytes(i) <= memoryLimit` with
 * `tailBefore(i) = ssoBytesBefore(i) % partSize`. The tail is counted up to the end of the plan:
 * exact while SSO bytes follow, conservative after the SSO closed (stream objects after it). Not counted: the index/footer trailers written at close (36 B per output index entry
 * + 48 B) and per-request overheads.
 *
 * The pipeline's open reads (`PlanInput.openReads`: GETs kept open across iterations, one a
 * source) are held for the whole run beside the blocks: the plan picks how many (the fewest data
 * GETs, evaluate.ts `chooseOpenReads`) and cuts iterations at `memoryLimit - reserved`. That only
 * shapes the cut: a block that fits beside its tail in `memoryLimit` is planned even when it
 * leaves less than `reserved` free (in an iteration of its own), and the pipeline then opens
 * fewer reads.
 *
 * Cutting: greedily fill each iteration. `bytesBefore(c) - tail(c)` is non-decreasing in the
 * block boundary c (`tail(c) = ssoBefore(c) % partSize`, and `ssoBefore - tail` is a multiple of
 * partSize that never decreases), so the farthest reachable boundary is monotone in c and the
 * greedy cut is optimal: it uses the fewest iterations, and a plan exists iff for every block b,
 * `tail(before b) + size(b) <= memoryLimit`. The maximum of that sum over all blocks is the
 * smallest memoryLimit that works for the planned objects (named in `ERR_PLAN_MEMORY_LIMIT`).
 * A run cut by an iteration boundary is split at a block boundary: a stream-object run becomes
 * two stream objects, an SSO run just continues (the SSO keeps one range per stream).
 *
 * ## Performance
 *
 * Live entries are flattened once into typed arrays sorted by (streamId, startOffset) (a
 * counting sort by stream, then a per-stream sort that is usually a no-op because objects are
 * visited oldest first). Each evaluation (one per limit-driven replan, O(log objects) of them)
 * is a few linear passes over those arrays; plan objects are built only for the final plan.
 */
import { PlanError } from '../errors.js';
import { evaluate } from './evaluate.js';
import { materialize } from './materialize.js';
import { OPEN_READS_SHARE, resolvePlannerOptions } from './options.js';
import { prepare } from './prepare.js';
import { exclusion, Overlap, ST_CANDIDATE, type Evaluation, type Prepared } from './prepared.js';
import type { CompactionPlan, PlanExclusion, PlanInput } from './types.js';

/**
 * Plans one compaction run. Throws `OptionsError` for bad options, `PlanError` with
 * `ERR_PLAN_INVALID` (malformed input) or `ERR_PLAN_MEMORY_LIMIT`. Overlapping offsets leave the
 * newer object out (`skipped`, code `ERR_PLAN_OVERLAP`, `quarantine`).
 */
export function planCompaction(input: PlanInput): CompactionPlan {
  if (typeof input !== 'object' || input === null) throw new PlanError('ERR_PLAN_INVALID', 'plan input must be an object');
  const opts = resolvePlannerOptions(input.options ?? {});
  const openReads = checkOpenReads(input.openReads, opts.memoryLimit);
  // An object whose offsets overlap another's cannot be planned with it, and failing every run
  // would stop the node's compaction for good: the newer of the two is left out (quarantined),
  // and planning starts again without it.
  const excluded = new Map<number, PlanExclusion>();
  let prep: Prepared;
  for (;;) {
    try {
      prep = prepare(input, opts, openReads, excluded);
      break;
    } catch (err) {
      if (!(err instanceof Overlap)) throw err;
      const [p, q] = [input.objects[err.a]!, input.objects[err.b]!];
      const newer = p.meta.orderId > q.meta.orderId || (p.meta.orderId === q.meta.orderId && p.meta.objectId > q.meta.objectId) ? err.a : err.b;
      const obj = input.objects[newer]!;
      excluded.set(newer, { objectId: obj.meta.objectId, key: obj.key, reason: err.message, code: 'ERR_PLAN_OVERLAP', quarantine: true });
    }
  }

  const skippedForLimits: PlanExclusion[] = [];
  // A force-split SSO with more own runs than maxStreamObjectsPerCommit can never be committed:
  // deferring it would repeat forever, so it is skipped with the reason.
  const runs = forceSplitRuns(prep);
  let list = prep.candidates.filter((o) => {
    if (runs[o]! <= prep.opts.maxStreamObjectsPerCommit) return true;
    skippedForLimits.push(
      exclusion(prep, o, `force split would make ${runs[o]} stream objects alone, more than maxStreamObjectsPerCommit ${prep.opts.maxStreamObjectsPerCommit}`),
    );
    return false;
  });
  let deferredForLimits: PlanExclusion[] = [];
  let ev = evaluate(prep, list);
  if (ev.memError) throw ev.memError;
  while (!fits(prep, ev)) {
    const why = limitReason(prep, ev);
    // Largest newest-first prefix that fits. Prefix 0 (emptied objects only) always fits.
    let lo = 0;
    let hi = list.length;
    let best: Evaluation | null = null;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      const e = evaluate(prep, list.slice(0, mid));
      if (fits(prep, e)) {
        lo = mid;
        best = e;
      } else {
        hi = mid;
      }
    }
    if (lo === 0) {
      // The newest remaining candidate cannot fit even alone (a force-split SSO with too many
      // runs): deferring it would never help, so it is skipped with the reason.
      const o = list[0]!;
      const alone = evaluate(prep, [o]);
      skippedForLimits.push(exclusion(prep, o, `even alone it exceeds the plan limits: ${limitReason(prep, alone)}`));
      list = list.slice(1);
      ev = evaluate(prep, list);
      if (ev.memError) throw ev.memError;
      continue;
    }
    deferredForLimits = list.slice(lo).map((o) => exclusion(prep, o, `deferred to a later run so the plan fits: ${why}`));
    list = list.slice(0, lo);
    ev = best ?? evaluate(prep, list);
    break;
  }
  return materialize(prep, ev, skippedForLimits, deferredForLimits);
}

function checkOpenReads(spec: PlanInput['openReads'], memoryLimit: number): Prepared['openReads'] {
  if (spec === undefined) return null;
  const ok = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (typeof spec !== 'object' || spec === null || !ok(spec.max) || !ok(spec.bytesEach) || spec.max * spec.bytesEach > memoryLimit * OPEN_READS_SHARE) {
    throw new PlanError(
      'ERR_PLAN_INVALID',
      `openReads must be { max, bytesEach }, integers from 0 whose product is at most ${OPEN_READS_SHARE} of memoryLimit (${memoryLimit}), got ${JSON.stringify(spec)}`,
    );
  }
  return spec.max === 0 || spec.bytesEach === 0 ? null : { max: spec.max, bytesEach: spec.bytesEach };
}

/** Per force-split candidate: its own contiguous runs (the stream objects it makes alone, before memory cuts). */
function forceSplitRuns(prep: Prepared): Int32Array {
  const { eObj, eStart, eEnd, sFirst, force, status } = prep;
  const runs = new Int32Array(prep.nObj);
  const lastStream = new Int32Array(prep.nObj).fill(-1);
  const lastEnd = new Float64Array(prep.nObj);
  for (let s = 0, nS = prep.streamIds.length; s < nS; s++) {
    for (let k = sFirst[s]!, b = sFirst[s + 1]!; k < b; k++) {
      const o = eObj[k]!;
      if (!force[o] || status[o] !== ST_CANDIDATE) continue;
      if (lastStream[o] !== s || lastEnd[o] !== eStart[k]) runs[o]!++;
      lastStream[o] = s;
      lastEnd[o] = eEnd[k]!;
    }
  }
  return runs;
}

function fits(prep: Prepared, ev: Evaluation): boolean {
  return (
    ev.memError === null &&
    ev.soCount <= prep.opts.maxStreamObjectsPerCommit &&
    ev.ssoStreams <= prep.opts.maxStreamsPerStreamSetObject
  );
}

function limitReason(prep: Prepared, ev: Evaluation): string {
  const parts: string[] = [];
  if (ev.memError) parts.push(ev.memError.message);
  if (ev.soCount > prep.opts.maxStreamObjectsPerCommit) {
    parts.push(`${ev.soCount} stream objects > maxStreamObjectsPerCommit ${prep.opts.maxStreamObjectsPerCommit}`);
  }
  if (ev.ssoStreams > prep.opts.maxStreamsPerStreamSetObject) {
    parts.push(`${ev.ssoStreams} streams in the new SSO > maxStreamsPerStreamSetObject ${prep.opts.maxStreamsPerStreamSetObject}`);
  }
  return parts.join('; ');
}
