/**
 * A run's planning, on the planner actor (its own worker thread, ended once it has planned):
 * the budget of objects read whole is taken before their first byte and handed on with the plan.
 */
import { toCompactorError } from '../errors.js';
import type { ResolvedCompactorOptions } from '../compactor/options.js';
import { MessageChannel } from 'node:worker_threads';
import { packCandidates } from '../messages/candidates.js';
import type { PlannerReport, SupervisorToPlanner, WholeHandoff } from '../messages/pipeline.js';
import type { StreamMetadata, StreamSetObjectMetadata } from '../metadata/types.js';
import { checkDroppedStillDead } from '../plan/coverage.js';
import type { PlanSummary, PlanTable } from '../plan/table.js';
import type { PlanInput } from '../plan/types.js';
import { CURSOR_MEMORY } from '../storage/range-cursor.js';
import type { ObjectStorage, S3StorageConfig } from '../storage/types.js';
import type { BandwidthHandle } from '../storage/bandwidth.js';
import { startBootReads } from './boot-reads.js';
import type { PlannerInit } from './planner.js';
import type { ActorHandle } from './runtime/actor-handle.js';
import type { ActorPool } from './runtime/actor-pool.js';
import type { MemoryBudget } from './runtime/memory-budget.js';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
export const PLANNER_MODULE = new URL(`./planner${ext}`, import.meta.url);

/** A run's plan, made on the planner actor (ended once it has planned). */
export interface PlannerSession {
  summary: PlanSummary;
  table: PlanTable;
  /** Checks the plan again against stream metadata as it is now; throws PlanError on a hole. */
  check(streams: StreamMetadata[]): Promise<void>;
  /**
   * Takes over the objects read whole at planning (`readWholeWhenFits`) and the budget they hold,
   * once (for `execute`); `close` gives back what was not taken.
   */
  takeWhole(): WholeHandoff | undefined;
  close(): Promise<void>;
}

export interface PlanRequest {
  candidates: StreamSetObjectMetadata[];
  streams: StreamMetadata[];
  nowMs: number;
  signal: AbortSignal;
}

/**
 * How a run reads its candidates. When they fit the memory limit together, whole: one GET an
 * object for both its index and its data, at planning. Otherwise by range, with up to
 * `maxOpenReads` GETs kept open across iterations (`PlanInput.openReads`: the plan picks how
 * many and leaves their memory free).
 */
export function readMode(options: ResolvedCompactorOptions, candidates: readonly StreamSetObjectMetadata[]): { wholeBytes: number; openReads?: PlanInput['openReads'] } {
  const total = candidates.reduce((n, c) => n + c.objectSize, 0);
  const readWhole = options.readWholeWhenFits && total > 0 && total <= options.memoryLimit;
  return readWhole ? { wholeBytes: total } : { wholeBytes: 0, openReads: { max: options.maxOpenReads, bytesEach: CURSOR_MEMORY } };
}

/** Reads indexes and plans on a worker thread of `pool`; the host's thread only receives the summary. */
export async function planOnWorker(
  pool: ActorPool,
  workerStorage: () => Promise<S3StorageConfig>,
  deps: { options: ResolvedCompactorOptions; budget: MemoryBudget; storage: ObjectStorage; bandwidth?: BandwidthHandle | undefined },
  req: PlanRequest,
): Promise<PlannerSession> {
  const { options, budget } = deps;
  const { wholeBytes, openReads } = readMode(options, req.candidates);
  // Objects read whole hold their budget from before their first byte is read.
  let held = 0;
  if (wholeBytes > 0) {
    await budget.acquire(wholeBytes, { signal: req.signal, timeoutMs: options.iterationTimeoutMs });
    held = wholeBytes;
  }
  // The objects go from the planner to the pipeline on a port of their own (`WholeHandoff`).
  const wholeChannel = wholeBytes > 0 ? new MessageChannel() : undefined;
  let wholePort = wholeChannel?.port2;
  const giveBack = () => {
    if (held > 0) budget.release(held);
    held = 0;
    // Not handed on: what is queued on it (the objects) is dropped with it.
    wholePort?.close();
    wholePort = undefined;
  };
  // A cold pool's thread is still booting: the host reads index tails until the planner starts
  // (boot-reads.ts), when asked to. Not whole objects: their bodies on the host's thread cost
  // its event loop ~2-3 ms of p99 delay in a run (114 MiB under 200 MiB), the tails less.
  const boot =
    options.hostReadsWhileBooting && pool.threadsPreloaded === 0 && wholeBytes === 0
      ? startBootReads(deps.storage, req.candidates, { concurrency: options.indexReadConcurrency, signal: req.signal, bandwidth: deps.bandwidth })
      : undefined;
  let handle: ActorHandle<SupervisorToPlanner, PlannerReport> | undefined;
  const stop = async () => {
    await handle?.stop({ deadlineMs: options.cancelTimeoutMs }).catch(() => {});
    await boot?.stop();
  };
  try {
    const storage = await workerStorage();
    const candidates = packCandidates(req.candidates);
    const transferList = [candidates.ranges.buffer as ArrayBuffer, ...(wholeChannel ? [wholeChannel.port1] : []), ...(boot ? [boot.init.port] : [])];
    handle = pool.spawn<PlannerInit, SupervisorToPlanner, PlannerReport>(
      PLANNER_MODULE,
      'plannerActor',
      {
        storage,
        candidates,
        streams: req.streams,
        nowMs: req.nowMs,
        options,
        indexReadConcurrency: options.indexReadConcurrency,
        ...(openReads ? { openReads } : {}),
        ...(wholeChannel ? { wholePort: wholeChannel.port1 } : {}),
        ...(boot ? { boot: boot.init } : {}),
      },
      // Planning is one long synchronous step: heartbeats pause while it runs.
      { name: 'planner', budget: null, heartbeatTimeoutMs: options.iterationTimeoutMs, transferList },
    );
    const planned = await handle.waitFor('planned', { deadlineMs: options.iterationTimeoutMs, signal: req.signal });
    await stop();
    // What the plan does not read (skipped, untouched objects) is not sent: its budget comes back now.
    const kept = planned.wholeBytes ?? 0;
    if (held > kept) budget.release(held - kept);
    held = kept;
    return {
      summary: planned.summary,
      table: planned.table,
      check: async (streams) => checkDroppedStillDead(planned.dropped, streams),
      takeWhole: () => {
        if (held === 0 || !wholePort) return undefined;
        const handoff = { port: wholePort, bytes: held };
        held = 0;
        wholePort = undefined;
        return handoff;
      },
      // Not taken over by a pipeline (the run planned nothing to do, or failed before it).
      close: async () => giveBack(),
    };
  } catch (err) {
    await stop();
    giveBack();
    throw toCompactorError(err);
  }
}
