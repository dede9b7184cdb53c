import { PlanError } from '../errors.js';
import type { CompactionPlan, SsoResumePoint } from './types.js';

/**
 * Where the SSO's data must be re-read from to resume its upload when the first `durableBytes`
 * bytes are already in completed parts (a failed iteration restarts; the tail the uploader held
 * is gone). Returns the block containing SSO byte `durableBytes` (possibly in an earlier
 * iteration than the failed one: the carried tail came from there) and how many of its bytes to
 * skip; blocks are copied verbatim, so the reader can fetch `[position + skip, position + size)`.
 * Returns null when there is nothing left to re-read (no SSO, or all of its data is durable).
 */
export function ssoResumePoint(plan: CompactionPlan, durableBytes: number): SsoResumePoint | null {
  const size = plan.sso?.dataSize ?? 0;
  if (!Number.isSafeInteger(durableBytes) || durableBytes < 0 || durableBytes > size) {
    throw new PlanError('ERR_PLAN_INVALID', `durableBytes must be an integer in [0, ${size}] (the SSO's data size), got ${durableBytes}`);
  }
  if (durableBytes === size) return null;
  const its = plan.iterations;
  // Last iteration starting at or before the byte: ssoBytesBefore is non-decreasing.
  let lo = 0;
  let hi = its.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (its[mid]!.ssoBytesBefore <= durableBytes) lo = mid;
    else hi = mid - 1;
  }
  // Iterations without SSO bytes share ssoBytesBefore with the next one; step back to one that has them.
  for (let i = lo; i >= 0; i--) {
    const blocks = its[i]!.blocks;
    for (let j = blocks.length - 1; j >= 0; j--) {
      const b = blocks[j]!;
      if (b.dest.kind !== 'sso') continue;
      if (b.dest.offset <= durableBytes) {
        if (durableBytes >= b.dest.offset + b.size) break; // the byte is later than this iteration's SSO blocks
        return { iteration: its[i]!.index, blockIndex: j, skip: durableBytes - b.dest.offset, blockOffset: b.dest.offset };
      }
    }
  }
  throw new PlanError('ERR_PLAN_INVALID', `no SSO block holds byte ${durableBytes} of the plan's SSO (${size} bytes)`);
}
