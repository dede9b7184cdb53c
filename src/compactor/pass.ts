import type { Logger } from 'pino';
import type { MetadataStore } from '../metadata/types.js';
import { idleReason } from '../plan/index.js';
import type { ObjectStorage } from '../storage/types.js';
import type { Supervisor, ExecutionResult } from '../actors/supervisor.js';
import type { MemoryBudget } from '../actors/runtime/index.js';
import type { CompactionReport, CompactorEvent } from './events.js';
import { listCandidates, type Quarantined } from './candidates.js';
import { idleReport, leftOut } from './report.js';
import { commitOutputs, deleteOutputs, KeepOutputs } from './outcome.js';
import type { ResolvedCompactorOptions } from './options.js';

/** What one pass uses of its compactor. */
export interface PassContext {
  readonly options: ResolvedCompactorOptions;
  readonly storage: ObjectStorage;
  readonly metadata: MetadataStore;
  readonly supervisor: Supervisor;
  readonly budget: MemoryBudget;
  /** The run's claim on the node; undefined: the store does not fence. */
  readonly epoch: number | undefined;
  emit(e: CompactorEvent): void;
  /** Quarantines an object once a run, and says so. */
  quarantine(q: Quarantined): Promise<void>;
}

export interface PassRun {
  runId: number;
  started: number;
  log: Logger;
  /** Left out of the plan: what this run quarantined so far (with what metadata quarantined before). */
  quarantined: ReadonlyMap<number, Quarantined>;
  signal: AbortSignal;
}

/**
 * One pass of a run: plan on a worker, execute on the pipeline, check the plan against the
 * streams as they are now, commit. A run makes another pass only after quarantining a source
 * the pass found damaged.
 */
export async function runPass(ctx: PassContext, run: PassRun): Promise<CompactionReport> {
  const { options, metadata, supervisor, budget } = ctx;
  const { runId, started, log, quarantined, signal } = run;
  const { candidates, streams, waiting, held } = await listCandidates(metadata, ctx.storage, options, quarantined);
  // Index parsing and planning run on a worker: this thread only gets the summary.
  const planner = await supervisor.plan({ candidates, streams, nowMs: Date.now(), signal });
  try {
    const plan = planner.summary;
    plan.deferred.push(...waiting);
    for (const x of plan.skipped) {
      if (x.quarantine) await ctx.quarantine({ objectId: x.objectId, code: x.code ?? 'ERR_PLAN_INVALID', reason: x.reason });
    }
    plan.skipped.push(...held);
    ctx.emit({
      type: 'run.planned',
      runId,
      iterations: plan.iterations.length,
      openReads: plan.openReads,
      bytesToRead: plan.totals.bytesToRead,
      compactedObjects: plan.compactedObjectIds.length,
      streamObjects: plan.streamObjects.length,
      skipped: plan.skipped.length,
      deferred: plan.deferred.length,
    });
    log.info({ iterations: plan.iterations.length, openReads: plan.openReads, compacted: plan.compactedObjectIds.length, bytes: plan.totals.bytesToRead }, 'planned');
    const base = leftOut(plan, quarantined.values(), options.forceSplitAfterMs);
    for (const s of base.skipped) log.warn({ objectId: s.objectId, reason: s.reason }, 'skipped');
    const idle = idleReason(plan, { candidates: candidates.length, nodeId: options.nodeId, forceSplitAfterMs: options.forceSplitAfterMs });
    if (idle !== null) {
      const report = idleReport(base, idle, Date.now() - started);
      ctx.emit({ type: 'run.idle', runId, report });
      log.info({ reason: idle }, 'nothing committed');
      return report;
    }
    const outputCount = (plan.sso ? 1 : 0) + plan.streamObjects.length;
    const firstId = outputCount > 0 ? await metadata.prepareObjectIds(outputCount) : -1;
    const ssoId = plan.sso ? firstId : -1;
    const soIds = plan.streamObjects.map((_, i) => firstId + (plan.sso ? 1 : 0) + i);
    budget.resetHighWater();
    const result: ExecutionResult =
      plan.iterations.length > 0
        ? await supervisor.execute({ runId, summary: plan, table: planner.table, ssoId, soIds, whole: planner.takeWhole(), signal })
        : { objectSizes: new Map(), iterations: 0, restarts: 0, bytesRead: 0, bytesWritten: 0 };
    try {
      // Stream metadata may have moved on while the run read and wrote: check the plan again
      // against what is true now, just before the commit.
      await planner.check(await metadata.getStreams(streams.map((s) => s.streamId)));
      const streamObjects = await commitOutputs(metadata, { plan, result, ssoId, soIds, nodeId: options.nodeId, epoch: ctx.epoch });
      const report: CompactionReport = {
        committed: true,
        newObjectId: ssoId,
        streamObjects,
        compactedObjectIds: plan.compactedObjectIds,
        ...base,
        iterations: result.iterations,
        restarts: result.restarts,
        bytesRead: result.bytesRead,
        bytesWritten: result.bytesWritten,
        durationMs: Date.now() - started,
        peakBudgetBytes: budget.highWater,
      };
      ctx.emit({ type: 'run.committed', runId, report });
      log.info({ durationMs: report.durationMs, restarts: report.restarts, bytesWritten: report.bytesWritten }, 'committed');
      return report;
    } catch (err) {
      // The commit may have happened: its outputs must stay (GC removes them if it did not).
      if (err instanceof KeepOutputs) throw err.error;
      await deleteOutputs(ctx.storage, result, ssoId, soIds);
      throw err;
    }
  } finally {
    await planner.close();
  }
}
