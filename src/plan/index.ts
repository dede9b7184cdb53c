export { planCompaction } from './planner.js';
export { resolvePlannerOptions, DEFAULT_PLANNER_OPTIONS, S3_MIN_PART_SIZE, S3_MAX_PART_SIZE } from './options.js';
export { checkCoverage, checkDroppedStillDead, type DroppedStream } from './coverage.js';
export { formatPlan, idleReason } from './format.js';
export { ssoResumePoint } from './resume.js';
export type {
  BlockDest,
  CompactionPlan,
  CoverageInput,
  PlanExclusion,
  PlanInput,
  PlanInputObject,
  PlanIteration,
  PlannedBlock,
  PlannedStreamObject,
  PlannedStreamSetObject,
  PlannerOptions,
  SsoResumePoint,
} from './types.js';
export { summarizePlan, encodePlanTable, PlanBlocks, type PlanSummary, type PlanTable } from './table.js';
export { indexHoldsRange, indexProblems } from './index-holds.js';
