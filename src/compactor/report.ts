import type { PlanSummary } from '../plan/index.js';
import type { Quarantined } from './candidates.js';
import type { CompactionReport } from './events.js';

/** What a run's report says about the sources it did not compact, each with its reason. */
export type LeftOut = Pick<CompactionReport, 'skipped' | 'quarantined' | 'deferred' | 'untouched'>;

export function leftOut(plan: PlanSummary, quarantined: Iterable<Quarantined>, forceSplitAfterMs: number): LeftOut {
  const untouchedReason = `shares no stream with another candidate: left alone until force split (forceSplitAfterMs ${forceSplitAfterMs} ms)`;
  return {
    skipped: plan.skipped.map((s) => ({ objectId: s.objectId, reason: s.reason, ...(s.code !== undefined ? { code: s.code } : {}) })),
    quarantined: [...quarantined],
    deferred: plan.deferred.map((s) => ({ objectId: s.objectId, reason: s.reason })),
    untouched: plan.untouched.map((objectId) => ({ objectId, reason: untouchedReason })),
  };
}

/** The report of a run that committed nothing, and why. */
export function idleReport(left: LeftOut, idleReason: string, durationMs: number): CompactionReport {
  return {
    committed: false,
    newObjectId: -1,
    streamObjects: [],
    compactedObjectIds: [],
    ...left,
    idleReason,
    iterations: 0,
    restarts: 0,
    bytesRead: 0,
    bytesWritten: 0,
    durationMs,
    peakBudgetBytes: 0,
  };
}
