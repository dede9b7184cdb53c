import { OptionsError } from '../errors.js';
import { checkPositiveInt } from '../util/validate.js';
import type { PlannerOptions } from './types.js';

const MiB = 1024 * 1024;

/** S3's smallest multipart part (all parts but the last). */
export const S3_MIN_PART_SIZE = 5 * MiB;
/** S3's largest multipart part. */
export const S3_MAX_PART_SIZE = 5 * 1024 * MiB;

/**
 * The most of `memoryLimit` the plan may leave to open reads (`PlanInput.openReads`); iterations
 * are cut to the rest. Iterations are cheap beside GETs: 256 MiB of 144 SSOs under 52 MiB, all
 * 144 open, ran 55 iterations at 0.95x the speed of 16 under 64 MiB, while the 16 sources a half
 * share left without an open read cost 165 GETs (453 against 288) and 4-8 % of the speed.
 * A quarter stays for the data, so an iteration holds more than a block.
 */
export const OPEN_READS_SHARE = 3 / 4;

/** Defaults follow AutoMQ's configuration (docs/compaction.md). */
export const DEFAULT_PLANNER_OPTIONS: Readonly<PlannerOptions> = Object.freeze({
  memoryLimit: 200 * MiB,
  streamSplitSize: 8 * MiB,
  maxObjectsPerRun: 500,
  forceSplitAfterMs: 120 * 60 * 1000,
  maxStreamObjectsPerCommit: 10_000,
  maxStreamsPerStreamSetObject: 20_000,
  partSize: 16 * MiB,
  minPartSize: S3_MIN_PART_SIZE,
});

const KEYS = Object.keys(DEFAULT_PLANNER_OPTIONS) as (keyof PlannerOptions)[];

/**
 * Fills defaults and validates every planner option. Unknown keys are ignored (a caller may pass
 * its whole options object); `undefined` means "use the default". Throws `OptionsError` naming
 * the option.
 */
export function resolvePlannerOptions(partial: Partial<PlannerOptions> = {}): PlannerOptions {
  if (typeof partial !== 'object' || partial === null) {
    throw new OptionsError('options', `must be an object, got ${partial === null ? 'null' : typeof partial}`);
  }
  const out = { ...DEFAULT_PLANNER_OPTIONS };
  for (const k of KEYS) {
    const v = partial[k];
    if (v !== undefined) out[k] = checkPositiveInt(k, v);
  }
  if (out.partSize < out.minPartSize) {
    throw new OptionsError(
      'partSize',
      `must be at least minPartSize (${out.minPartSize} bytes; S3 refuses parts below 5 MiB = ${S3_MIN_PART_SIZE}), got ${out.partSize}`,
    );
  }
  if (out.partSize > S3_MAX_PART_SIZE) {
    throw new OptionsError('partSize', `must be at most 5 GiB (${S3_MAX_PART_SIZE} bytes, the S3 maximum), got ${out.partSize}`);
  }
  return out;
}
