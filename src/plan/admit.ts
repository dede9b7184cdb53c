/**
 * Admission, the planner's first pass: validates the input's shape and decides per object whether
 * it can be planned at all (rule 1: unreadable or impossible index, metadata that promises what
 * the index does not hold; beyond maxObjectsPerRun; left out after an overlap) and whether it is
 * force-split (rule 6).
 */
import { PlanError } from '../errors.js';
import type { IndexEntry } from '../format/types.js';
import { indexProblems } from './index-holds.js';
import { ST_OUT } from './prepared.js';
import type { PlanExclusion, PlanInput, PlannerOptions } from './types.js';

export interface Admission {
  status: Uint8Array;
  force: Uint8Array;
  skipped: PlanExclusion[];
  deferred: PlanExclusion[];
  /** Index entries of the admitted objects, dead ones included. */
  total: number;
}

export function admit(input: PlanInput, opts: PlannerOptions, excluded: ReadonlyMap<number, PlanExclusion>): Admission {
  const { objects, streams, nowMs } = input;
  if (!Array.isArray(objects)) throw new PlanError('ERR_PLAN_INVALID', 'plan input: objects must be an array');
  if (!Array.isArray(streams)) throw new PlanError('ERR_PLAN_INVALID', 'plan input: streams must be an array');
  if (typeof nowMs !== 'number' || !Number.isFinite(nowMs)) {
    throw new PlanError('ERR_PLAN_INVALID', `plan input: nowMs must be a finite number, got ${String(nowMs)}`);
  }
  const nObj = objects.length;
  const seenIds = new Set<number>();
  for (const o of objects) {
    const id = o?.meta?.objectId;
    if (!isSafeNonNeg(id)) throw new PlanError('ERR_PLAN_INVALID', `plan input: an object has an invalid objectId (${String(id)})`);
    if (typeof o.key !== 'string') throw new PlanError('ERR_PLAN_INVALID', `plan input: object ${id} has no key`);
    if (typeof o.meta.dataTimeMs !== 'number' || typeof o.meta.orderId !== 'number') {
      throw new PlanError('ERR_PLAN_INVALID', `plan input: object ${id} (${o.key}) lacks dataTimeMs/orderId`);
    }
    if (seenIds.has(id)) throw new PlanError('ERR_PLAN_INVALID', `plan input: object ${id} appears twice`);
    seenIds.add(id);
  }

  const status = new Uint8Array(nObj);
  const force = new Uint8Array(nObj);
  const skipped: PlanExclusion[] = [];
  const deferred: PlanExclusion[] = [];
  const forceBefore = nowMs - opts.forceSplitAfterMs;
  let total = 0;
  for (let o = 0; o < nObj; o++) {
    const obj = objects[o]!;
    const ex = { objectId: obj.meta.objectId, key: obj.key };
    if (o >= opts.maxObjectsPerRun) {
      status[o] = ST_OUT;
      deferred.push({ ...ex, reason: `beyond maxObjectsPerRun ${opts.maxObjectsPerRun}` });
      continue;
    }
    const out = excluded.get(o);
    if (out) {
      status[o] = ST_OUT;
      skipped.push(out);
      continue;
    }
    const index = obj.index;
    if (!Array.isArray(index)) {
      status[o] = ST_OUT;
      const { error, code } = (index ?? {}) as { error?: unknown; code?: unknown };
      const c = typeof code === 'string' ? code : undefined;
      skipped.push({
        ...ex,
        reason: `index could not be read: ${typeof error === 'string' ? error : String(error)}`,
        ...(c !== undefined ? { code: c } : {}),
        ...(damaged(c) ? { quarantine: true } : {}),
      });
      continue;
    }
    let bad: string | null = null;
    for (let j = 0; j < index.length && bad === null; j++) bad = invalidEntry(index[j]!, j);
    if (bad !== null) {
      status[o] = ST_OUT;
      skipped.push({ ...ex, reason: `index is invalid: ${bad}`, code: 'ERR_PLAN_INVALID_INDEX', quarantine: true });
      continue;
    }
    // Metadata that promises what the object does not hold: compacting around it would erase the
    // evidence (the promise goes with the compacted object). Left out and quarantined.
    const mismatch = Array.isArray(obj.meta.ranges) ? (indexProblems(index, obj.meta.ranges)[0] ?? null) : null;
    if (mismatch !== null) {
      status[o] = ST_OUT;
      skipped.push({ ...ex, reason: `metadata and index disagree: ${mismatch}`, code: 'ERR_PLAN_METADATA_MISMATCH', quarantine: true });
      continue;
    }
    if (obj.meta.dataTimeMs < forceBefore) force[o] = 1;
    total += index.length;
  }
  return { status, force, skipped, deferred, total };
}

function isSafeNonNeg(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

const ENTRY_FIELDS = ['streamId', 'startOffset', 'endOffset', 'recordCount', 'position', 'size'] as const;

function invalidEntry(e: IndexEntry, j: number): string | null {
  if (typeof e !== 'object' || e === null) return `index entry ${j} is not an object`;
  // Fast path with direct property reads (this runs once per entry).
  const { streamId, startOffset, endOffset, recordCount, position, size } = e;
  if (
    Number.isSafeInteger(streamId) &&
    streamId >= 0 &&
    Number.isSafeInteger(startOffset) &&
    startOffset >= 0 &&
    Number.isSafeInteger(endOffset) &&
    endOffset > startOffset &&
    Number.isSafeInteger(recordCount) &&
    recordCount >= 0 &&
    Number.isSafeInteger(position) &&
    position >= 0 &&
    Number.isSafeInteger(size) &&
    size > 0
  ) {
    return null;
  }
  for (const f of ENTRY_FIELDS) {
    if (!isSafeNonNeg(e[f])) return `index entry ${j}: ${f} is not a non-negative safe integer (${String(e[f])})`;
  }
  if (endOffset <= startOffset) return `index entry ${j}: endOffset ${endOffset} <= startOffset ${startOffset}`;
  return `index entry ${j}: size is 0`;
}

/** Whether an unreadable index means the object itself is damaged (not a passing storage fault). */
function damaged(code: string | undefined): boolean {
  return code !== undefined && (code.startsWith('ERR_FORMAT_') || code === 'ERR_STORAGE_NOT_FOUND');
}
