/**
 * One evaluation of the planning rules for a set of included candidates: roles (rule 3, and
 * rule 5's oversize blocks), runs (rules 4 and 6), the output order and the iterations (rule 5;
 * the memory model and why the greedy cut is optimal are in planner.ts).
 */
import { PlanError } from '../errors.js';
import { humanBytes } from '../util/units.js';
import { K_SO, K_SSO, R_FORCE, R_MERGE_CANDIDATE, R_NONE, type Evaluation, type Prepared } from './prepared.js';

export function evaluate(prep: Prepared, included: readonly number[]): Evaluation {
  const { opts, nObj, n, eObj, eStart, eEnd, eSize, sFirst } = prep;
  const nS = prep.streamIds.length;
  const L = opts.memoryLimit;
  const P = opts.partSize;

  const role = new Uint8Array(nObj);
  for (const o of included) role[o] = prep.force[o] ? R_FORCE : R_MERGE_CANDIDATE;

  // Sharing (rule 3) and oversize exclusion (rule 5), until stable.
  const oversize: number[] = [];
  let merged: Uint8Array = new Uint8Array(nObj);
  for (;;) {
    merged = sharing(prep, role);
    let changed = false;
    for (const o of included) {
      if ((merged[o] || role[o] === R_FORCE) && prep.maxLiveSize[o]! > L) {
        role[o] = R_NONE;
        merged[o] = 0;
        oversize.push(o);
        changed = true;
      }
    }
    if (!changed) break;
  }

  // Runs (rule 4 for merged objects, rule 6 for force-split ones). Run ids are assigned when a
  // run opens, so they follow (streamId, startOffset of the run's first block).
  const entryRun = new Int32Array(n).fill(-1);
  const runKind = new Uint8Array(n);
  const runLen = new Int32Array(n);
  const runBytes = new Float64Array(n);
  let nRuns = 0;
  const fOpenRun = new Int32Array(nObj);
  const fOpenStream = new Int32Array(nObj).fill(-1);
  const fLastEnd = new Float64Array(nObj);
  const split = opts.streamSplitSize;
  for (let s = 0; s < nS; s++) {
    let cur = -1;
    let curEnd = 0;
    for (let k = sFirst[s]!, b = sFirst[s + 1]!; k < b; k++) {
      const o = eObj[k]!;
      let r: number;
      if (merged[o]) {
        if (cur >= 0 && eStart[k] !== curEnd) {
          runKind[cur] = K_SO; // a gap always ends the run and makes it a stream object
          cur = -1;
        }
        if (cur < 0) cur = nRuns++;
        r = cur;
        curEnd = eEnd[k]!;
      } else if (role[o] === R_FORCE) {
        if (fOpenStream[o] === s && fLastEnd[o] === eStart[k]) {
          r = fOpenRun[o]!;
        } else {
          r = nRuns++;
          runKind[r] = K_SO;
          fOpenRun[o] = r;
          fOpenStream[o] = s;
        }
        fLastEnd[o] = eEnd[k]!;
      } else {
        continue;
      }
      entryRun[k] = r;
      runLen[r]!++;
      runBytes[r]! += eSize[k]!;
    }
    if (cur >= 0) runKind[cur] = runBytes[cur]! > split ? K_SO : K_SSO;
  }

  // Output order: every run in (streamId, startOffset) order, stream objects and SSO alike (see
  // the header comment).
  const runPos = new Int32Array(nRuns);
  let m = 0;
  let ssoStreams = 0;
  for (let r = 0; r < nRuns; r++) {
    runPos[r] = m;
    m += runLen[r]!;
    if (runKind[r] === K_SSO) ssoStreams++;
  }
  const seq = new Int32Array(m);
  const runOf = new Int32Array(m);
  for (let k = 0; k < n; k++) {
    const r = entryRun[k]!;
    if (r < 0) continue;
    const p = runPos[r]!++;
    seq[p] = k;
    runOf[p] = r;
  }

  const seqSo = new Int32Array(m);
  const seqIter = new Int32Array(m);
  const base = { role, merged, oversize, seq, runOf, runKind, seqSo, seqIter, ssoStreams };

  // Feasibility: every block must fit beside the tail in front of it.
  let sso = 0;
  let need = 0;
  let firstBad = -1;
  let firstBadTail = 0;
  let firstBadSso = 0;
  for (let p = 0; p < m; p++) {
    const k = seq[p]!;
    const tail = sso % P;
    const want = tail + eSize[k]!;
    if (want > need) need = want;
    if (want > L && firstBad < 0) {
      firstBad = p;
      firstBadTail = tail;
      firstBadSso = sso;
    }
    if (runKind[runOf[p]!] === K_SSO) sso += eSize[k]!;
  }
  if (firstBad >= 0) {
    const k = seq[firstBad]!;
    const obj = prep.objects[eObj[k]!]!;
    const memError = new PlanError(
      'ERR_PLAN_MEMORY_LIMIT',
      `no plan fits memoryLimit ${humanBytes(L)}: after ${humanBytes(firstBadSso)} of the new SSO the uploader still holds a tail of ` +
        `${humanBytes(firstBadTail)} (partSize ${humanBytes(P)}), and the next block (object ${obj.meta.objectId} (${obj.key}), stream ` +
        `${prep.streamIds[prep.eStream[k]!]} [${eStart[k]}, ${eEnd[k]}), ${humanBytes(eSize[k]!)}) needs ${humanBytes(firstBadTail + eSize[k]!)} ` +
        `in total; the smallest memoryLimit that works for these objects is ${humanBytes(need)} = ${need} bytes (or lower partSize)`,
      { suggest: { option: 'memoryLimit', value: need } },
    );
    return { ...base, memError, soCount: 0, iterationCount: 0, openReads: 0, reserved: 0 };
  }

  const order: Order = { seq, runOf, runKind };
  const { openReads, reserved } = chooseOpenReads(prep, order);
  const cut = cutIterations(prep, order, L - reserved, { seqSo, seqIter });
  return { ...base, memError: null, soCount: cut.soCount, iterationCount: cut.iterations, openReads, reserved };
}

/** The blocks in output order, with their runs. */
interface Order {
  seq: Int32Array;
  runOf: Int32Array;
  runKind: Uint8Array;
}

/**
 * The greedy cut (optimal, see planner.ts) at `limit`: the iterations and stream objects it
 * makes, the least memory any of its iterations leaves free of `memoryLimit` (beside its blocks
 * and the tail before it), and with `out` each block's iteration and stream object. A block that
 * leaves less than `limit` beside its tail still fits `memoryLimit` (checked before), in an
 * iteration of its own.
 */
function cutIterations(prep: Prepared, { seq, runOf, runKind }: Order, limit: number, out?: { seqSo: Int32Array; seqIter: Int32Array }): { iterations: number; soCount: number; minFree: number } {
  const { eSize } = prep;
  const P = prep.opts.partSize;
  const L = prep.opts.memoryLimit;
  let iter = 0;
  let bytes = 0;
  let tail = 0;
  let sso = 0;
  let so = -1;
  let soRun = -1;
  let soIter = -1;
  let minFree = L;
  for (let p = 0, m = seq.length; p < m; p++) {
    const sz = eSize[seq[p]!]!;
    if (bytes > 0 && tail + bytes + sz > limit) {
      minFree = Math.min(minFree, L - tail - bytes);
      iter++;
      bytes = 0;
      tail = sso % P;
    }
    bytes += sz;
    const r = runOf[p]!;
    if (runKind[r] === K_SO) {
      if (r !== soRun || iter !== soIter) {
        so++;
        soRun = r;
        soIter = iter;
      }
      if (out) out.seqSo[p] = so;
    } else {
      if (out) out.seqSo[p] = -1;
      sso += sz;
    }
    if (out) out.seqIter[p] = iter;
  }
  if (seq.length > 0) minFree = Math.min(minFree, L - tail - bytes);
  return { iterations: seq.length > 0 ? iter + 1 : 0, soCount: so + 1, minFree };
}

/**
 * How many of the run's sources keep one GET open across iterations (`PlanInput.openReads`): each
 * saves a GET an iteration after the first, and costs `bytesEach` of the limit, which the cut
 * leaves free, so it may cost iterations. Of 0 to the most allowed, in quarters, the count that
 * makes the fewest data GETs, `k + (sources - k) x iterations(k)`; on a tie the fewer (less
 * memory: a run of one iteration opens none). A count whose cut makes more stream objects than a
 * commit takes is passed over.
 *
 * `k` is what the cut leaves free, not always what can stay open: an iteration whose blocks and
 * tail leave less (a block beside a tail near a whole part, when the rest of the limit is below
 * a part) leaves room for fewer, and the pipeline opens no more than that all run long
 * (pipeline-actors.ts `openReadsFor`). So a count is cut again for what stays open, until every
 * iteration leaves room for what its cut reserves, and judged and reported by that.
 * Judged by `k` alone, 256 MiB of 144 SSOs under 48 MiB with 16 MiB parts picked all 144: a cut
 * at 12 MiB beside tails of up to 16 made 14 915 iterations, ran at a third of the speed.
 */
const MAX_RECUTS = 8;

function chooseOpenReads(prep: Prepared, order: Order): { openReads: number; reserved: number } {
  const spec = prep.openReads;
  if (!spec || order.seq.length === 0) return { openReads: 0, reserved: 0 };
  const seen = new Uint8Array(prep.nObj);
  let sources = 0;
  for (const k of order.seq) {
    const o = prep.eObj[k]!;
    if (seen[o] === 0) {
      seen[o] = 1;
      sources++;
    }
  }
  const most = Math.min(spec.max, sources);
  let best = { openReads: 0, reserved: 0, gets: Infinity };
  for (let q = 0, prev = -1; q <= 4; q++) {
    const k = Math.floor((most * q) / 4);
    if (k === prev) continue;
    prev = k;
    // Fewer stay open than the cut left room for: cut again for those (the cut grows, and may
    // leave room for fewer still) until every iteration leaves room for what the cut reserves.
    // It settles in a cut or two; a cut a round (a pass over the blocks) is bounded all the same.
    const cutFor = (n: number) => cutIterations(prep, order, prep.opts.memoryLimit - n * spec.bytesEach);
    const room = (c: { minFree: number }) => Math.floor(c.minFree / spec.bytesEach);
    let open = k;
    let cut = cutFor(open);
    for (let round = 0; round < MAX_RECUTS && room(cut) < open; round++) {
      open = room(cut);
      cut = cutFor(open);
    }
    open = Math.min(open, room(cut));
    if (open > 0 && cut.soCount > prep.opts.maxStreamObjectsPerCommit) continue;
    const gets = open + (sources - open) * cut.iterations;
    if (gets < best.gets) best = { openReads: open, reserved: open * spec.bytesEach, gets };
  }
  return { openReads: best.openReads, reserved: best.reserved };
}

/** Merge candidates that share a stream with another merge candidate. */
function sharing(prep: Prepared, role: Uint8Array): Uint8Array {
  const { eObj, sFirst } = prep;
  const merged = new Uint8Array(prep.nObj);
  for (let s = 0, nS = prep.streamIds.length; s < nS; s++) {
    const a = sFirst[s]!;
    const b = sFirst[s + 1]!;
    let first = -1;
    let shared = false;
    for (let k = a; k < b; k++) {
      const o = eObj[k]!;
      if (role[o] !== R_MERGE_CANDIDATE) continue;
      if (first < 0) first = o;
      else if (o !== first) {
        shared = true;
        break;
      }
    }
    if (!shared) continue;
    for (let k = a; k < b; k++) {
      const o = eObj[k]!;
      if (role[o] === R_MERGE_CANDIDATE) merged[o] = 1;
    }
  }
  return merged;
}
