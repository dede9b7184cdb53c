/**
 * The planner's working state, shared by its passes (prepare → evaluate → materialize): live
 * index entries flattened into typed arrays, and one evaluation of the rules over them. Typed
 * arrays rather than objects because a run may plan a million entries (see planner.ts).
 */
import type { PlanError } from '../errors.js';
import type { PlanExclusion, PlannerOptions, PlanInputObject } from './types.js';

// Object status after preparation.
export const ST_CANDIDATE = 0; // has live entries, may be planned
export const ST_EMPTIED = 1; // no live entry: compacted away
export const ST_OUT = 2; // skipped (index error) or deferred (beyond maxObjectsPerRun)

// Role of an object in one evaluation.
export const R_NONE = 0;
export const R_MERGE_CANDIDATE = 1;
export const R_FORCE = 2;

// Run kinds.
export const K_SO = 0;
export const K_SSO = 1;

/** Live entries of all considered objects, flattened and sorted by (streamId, startOffset). */
export interface Prepared {
  opts: PlannerOptions;
  /** `PlanInput.openReads`, checked. */
  openReads: { max: number; bytesEach: number } | null;
  objects: PlanInputObject[];
  nObj: number;
  status: Uint8Array;
  force: Uint8Array;
  /** Per object: the sorted position of its largest live entry (-1: none). */
  maxLiveAt: Int32Array;
  maxLiveSize: Float64Array;
  deadBlocks: Float64Array;
  deadBytes: Float64Array;
  skipped: PlanExclusion[];
  deferred: PlanExclusion[];
  /** Candidate object indices (status CANDIDATE), in input (newest-first) order. */
  candidates: number[];
  /** Emptied object indices. */
  emptied: number[];
  // live entries, sorted
  n: number;
  eObj: Int32Array;
  eIdx: Int32Array;
  eStream: Int32Array;
  eStart: Float64Array;
  eEnd: Float64Array;
  eSize: Float64Array;
  ePos: Float64Array;
  eCount: Float64Array;
  /** Dense stream index → streamId (ascending). */
  streamIds: number[];
  /** Dense stream s owns sorted entries [sFirst[s], sFirst[s + 1]). */
  sFirst: Int32Array;
}

/** One evaluation of the planning rules for a set of included candidates. */
export interface Evaluation {
  role: Uint8Array;
  merged: Uint8Array;
  oversize: number[];
  memError: PlanError | null;
  /** Sorted entry indices in output order. */
  seq: Int32Array;
  /** Per output position: run id. */
  runOf: Int32Array;
  runKind: Uint8Array;
  /** Per output position: stream object index, or -1 for the SSO. */
  seqSo: Int32Array;
  /** Per output position: iteration. */
  seqIter: Int32Array;
  soCount: number;
  ssoStreams: number;
  iterationCount: number;
  /** Sources the pipeline keeps a GET open for, and the bytes of the limit the cut left them. */
  openReads: number;
  reserved: number;
}

/** Two objects whose entries overlap in a stream (indices into the input's objects). */
export class Overlap extends Error {
  constructor(
    readonly a: number,
    readonly b: number,
    message: string,
  ) {
    super(message);
  }
}

export function exclusion(prep: Prepared, o: number, reason: string): PlanExclusion {
  const obj = prep.objects[o]!;
  return { objectId: obj.meta.objectId, key: obj.key, reason };
}
