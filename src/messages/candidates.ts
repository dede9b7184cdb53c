/**
 * A run's candidates on their way to the planner's thread, their ranges packed
 * (metadata/packed-ranges.ts): cloned as objects, the 53 k ranges of 144 SSOs of 400 streams
 * held the host's thread 12-35 ms in the planner's spawn message, the longest block a run left
 * on it. The planner unpacks them on its thread.
 */
import { packRanges, unpackRanges } from '../metadata/packed-ranges.js';
import type { StreamSetObjectMetadata } from '../metadata/types.js';

export interface PackedCandidates {
  /** The candidates without their ranges. */
  objects: Omit<StreamSetObjectMetadata, 'ranges'>[];
  /** How many ranges each has, and all of them in order. */
  counts: number[];
  ranges: Float64Array;
}

export function packCandidates(candidates: readonly StreamSetObjectMetadata[]): PackedCandidates {
  const { counts, ranges } = packRanges(candidates.map((c) => c.ranges));
  const objects = candidates.map(({ ranges: _ranges, ...rest }) => rest);
  return { objects, counts, ranges };
}

export function unpackCandidates(packed: PackedCandidates): StreamSetObjectMetadata[] {
  const lists = unpackRanges(packed.counts, packed.ranges);
  return packed.objects.map((o, i) => ({ ...o, ranges: lists[i]! }));
}
