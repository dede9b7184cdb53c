/**
 * The supervisor: runs a plan's iterations in order on the reader → merger → uploader actors,
 * which share one worker thread per attempt (pipeline-actors.ts); the planner has its own.
 *
 * Control comes back only as typed messages. When an actor fails (a storage error from the
 * uploader, a crash, a missed heartbeat, a deadline), the supervisor cancels the whole iteration
 * upstream: every actor aborts its requests and gives back its bytes, and whatever a dead actor
 * held is reclaimed from the budget. Then it restarts the iteration on fresh actors after a
 * backoff (retryable error, bounded attempts), resuming the SSO's upload from its last durable
 * part, or fails the run, aborting every unfinished multipart upload.
 *
 * The end of an iteration waits only for the uploads of full parts and of objects that close in
 * it; the SSO's tail waits in the merger's part buffer (counted in the budget) until the SSO closes.
 *
 * Its pieces: planning (plan-session.ts), one attempt's actors (attempt.ts), the run's ledger of
 * durable parts (run-ledger.ts), the restart policy (runtime/supervision.ts) and the cleanup of
 * unfinished uploads (upload-cleanup.ts).
 */
import type { Logger } from 'pino';
import { CompactorError, toCompactorError } from '../errors.js';
import type { CompactorEvent } from '../compactor/events.js';
import type { ResolvedCompactorOptions } from '../compactor/options.js';
import { destKey, type PipelineSettings, type WholeHandoff } from '../messages/pipeline.js';
import type { PlanSummary, PlanTable } from '../plan/table.js';
import type { ObjectStorage, S3StorageConfig } from '../storage/types.js';
import type { BandwidthHandle } from '../storage/bandwidth.js';
import { ActorPool } from './runtime/actor-pool.js';
import type { MemoryBudget } from './runtime/memory-budget.js';
import type { PipelineInit } from './pipeline-actors.js';
import { Attempt, PIPELINE_MODULE } from './attempt.js';
import { RunLedger } from './run-ledger.js';
import { PLANNER_MODULE, planOnWorker, type PlannerSession, type PlanRequest } from './plan-session.js';
import { abortStrays, abortUploads } from './upload-cleanup.js';
import { outputSpecs } from './segments.js';
import { backoffDelay, sleep } from '../util/async.js';
import { runWithRestarts } from './runtime/supervision.js';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const STORAGE_MODULE = new URL(`../storage/s3-storage${ext}`, import.meta.url);

export type { PlannerSession } from './plan-session.js';

export interface SupervisorDeps {
  storage: ObjectStorage;
  budget: MemoryBudget;
  options: ResolvedCompactorOptions;
  emit: (e: CompactorEvent) => void;
  logger: Logger;
  /** Where the actors' storages post their S3 request samples (the compactor's metrics). */
  requestsChannel?: string;
  /** The compactor's bandwidth limit: every actor's storage takes its bytes from it. */
  bandwidth?: BandwidthHandle;
}

export interface ExecutionResult {
  /** Sizes of the completed output objects, by `destKey` ('sso', 'so:<index>'). */
  objectSizes: Map<string, number>;
  iterations: number;
  restarts: number;
  bytesRead: number;
  bytesWritten: number;
}

/** Wraps a fatal error already reported after progress, so the restart policy gives up at once without reporting it again. */
class NonRetryable extends CompactorError {
  constructor(readonly error: CompactorError) {
    super(error.code, error.message, { cause: error, retryable: false });
  }
}

export class Supervisor {
  private pool: ActorPool | undefined;
  private current: Attempt | undefined;

  /** The running attempt's actors, for tests and diagnostics (e.g. to kill a worker mid-iteration). */
  get actors(): { readonly pipeline: Attempt['pipeline'] } | undefined {
    return this.current;
  }

  /** Worker threads alive now (0 once closed). */
  get liveThreads(): number {
    return this.pool?.liveThreads ?? 0;
  }

  constructor(private readonly deps: SupervisorDeps) {}

  /** The storage configuration an actor builds its own client from. */
  private async workerStorage(): Promise<S3StorageConfig> {
    const config = await this.deps.storage.workerConfig();
    return {
      ...config,
      ...(this.deps.requestsChannel !== undefined ? { requestsChannel: this.deps.requestsChannel } : {}),
      ...(this.deps.bandwidth !== undefined ? { bandwidth: this.deps.bandwidth } : {}),
    };
  }

  private actorPool(): ActorPool {
    const { options, budget } = this.deps;
    this.pool ??= new ActorPool({
      threads: options.threads,
      budget,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
      preload: [STORAGE_MODULE, PLANNER_MODULE, PIPELINE_MODULE],
      // The actors' objects are small and short-lived, and many hold an ArrayBuffer (a socket's
      // chunk, a GET's piece) that goes back only when they are collected: a small young
      // generation is collected sooner and keeps RSS down. Measured, alternated run after run:
      // 8 MB against the default, ~30 MiB less for 114 MiB under 64 MiB; 2 MB against 8, RSS
      // growth 240-257 MiB against 266-267 for 256 MiB under 200, 110-115 against 122-130 (4 MB)
      // for 114 MiB under 64, 124-128 against 128-133 (4 MB) for 256 MiB under 64 at ~3 % less
      // throughput there (the same elsewhere); planning 500 x 2 000 entries on the thread no slower.
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
      niceIncrement: options.niceIncrement,
    });
    return this.pool;
  }

  /** Starts the worker threads now (they load the SDK and the actors while the host does other work). */
  warm(): void {
    this.actorPool();
  }

  /** Reads indexes and plans on a worker thread; the host's thread only receives the summary. */
  async plan(req: PlanRequest): Promise<PlannerSession> {
    return planOnWorker(this.actorPool(), () => this.workerStorage(), this.deps, req);
  }

  /** `whole`: objects read whole at planning, with their budget (`PlannerSession.takeWhole`): the first attempt copies from them. */
  async execute(req: { runId: number; summary: PlanSummary; table: PlanTable; ssoId: number; soIds: number[]; whole?: WholeHandoff; signal: AbortSignal }): Promise<ExecutionResult> {
    const { summary, table, runId, signal, ssoId, soIds } = req;
    // Moved to the first attempt; a restarted one reads from storage (the budget was reclaimed).
    let whole = req.whole;
    const { storage, options, budget, emit, logger } = this.deps;
    const outputs = outputSpecs(summary, (id) => storage.keyOf(id), ssoId, soIds);
    const storageConfig = await this.workerStorage().catch((err: unknown) => {
      // The run owns the budget from here on (the whole objects' included): nothing else holds any.
      budget.reclaimAll();
      whole?.port.close();
      throw err;
    });
    const settings: PipelineSettings = {
      storage: storageConfig,
      partSize: options.partSize,
      maxGetSize: Math.min(options.maxGetSize, options.memoryLimit),
      memoryLimit: options.memoryLimit,
      readsInFlight: options.readsInFlight,
      partsInFlight: options.partsInFlight,
      // The plan fits the budget, so an acquire waits only on a bug: bound it like the iteration.
      acquireTimeoutMs: options.iterationTimeoutMs,
    };
    const ledger = new RunLedger();
    let attempt: Attempt | undefined;
    let restarts = 0;
    /** SSO bytes the current uploader has (in parts or buffered): where the next iteration starts. */
    let ssoHave = 0;
    const n = summary.iterations.length;
    /** The first iteration whose uploads are not all done: where a restart starts again. */
    let first = 0;

    /** A fresh attempt: it skips the outputs the ledger has complete and resumes the SSO after its durable parts. */
    const start = (): Attempt => {
      const init: PipelineInit = {
        settings,
        summary,
        table,
        ssoId,
        soIds,
        done: [...ledger.objectSizes.keys()],
        resume: ledger.durable(options.partSize),
        windows: {
          merger: Math.max(options.memoryLimit, settings.maxGetSize),
          uploader: Math.max(options.memoryLimit, (options.partsInFlight + 2) * options.partSize),
        },
        ...(whole ? { whole } : {}),
      };
      whole = undefined;
      const a = new Attempt(this.actorPool(), init, `pipeline(run ${runId})`, ledger, () =>
        emit({ type: 'bytes', runId, bytesRead: ledger.bytesRead, bytesWritten: ledger.bytesUploaded }),
      );
      this.current = a;
      return a;
    };

    /** Runs iterations `first`..n-1 on the current attempt (a fresh one if there is none). */
    const runFrom = async (attemptNo: number): Promise<void> => {
      attempt ??= start();
      const from = first;
      await attempt.run({
        from,
        to: n,
        ssoFrom: (i) => (i === from ? ssoHave : summary.iterations[i]!.ssoBytesBefore),
        iterationTimeoutMs: options.iterationTimeoutMs,
        signal,
        describe: (i) => `iteration ${i} of compaction run ${runId}`,
        started: (i) => emit({ type: 'iteration.started', runId, iteration: i, attempt: i === from ? attemptNo : 1 }),
        finished: (i) => {
          emit({ type: 'iteration.finished', runId, iteration: i, attempt: i === from ? attemptNo : 1 });
          first = i + 1;
          ssoHave = summary.iterations[i + 1]?.ssoBytesBefore ?? ssoHave;
        },
      });
    };
    const teardown = async (): Promise<void> => {
      const a = attempt;
      attempt = undefined;
      if (!a) return;
      if (this.current === a) this.current = undefined;
      await a.teardown(options.cancelTimeoutMs);
    };

    /** Cancels upstream and forgets the actors: nothing of an attempt survives but finished iterations and the SSO's durable parts. */
    const recover = async (): Promise<void> => {
      await teardown();
      budget.reclaimAll();
      await abortUploads(this.deps, ledger, (k) => k !== 'sso', runId);
      ssoHave = ledger.sso?.durableBytes ?? 0;
    };
    const failedEvent = (iteration: number, attempt: number, error: CompactorError, willRetry: boolean, delayMs: number) => {
      logger.warn({ runId, iteration, attempt, err: error, willRetry, delayMs }, 'iteration failed');
      emit({ type: 'iteration.failed', runId, iteration, attempt, error, willRetry, delayMs });
    };

    try {
      // Attempts count per iteration (rxjs restart policy of the runtime); an attempt that
      // finished iterations before failing starts the count again at the next one.
      while (first < n) {
        const from = first;
        let nextDelayMs = 0;
        await runWithRestarts(
          async (attempt) => {
            try {
              await runFrom(attempt);
            } catch (err) {
              await recover();
              if (first === from || signal.aborted) throw err;
              const error = toCompactorError(err);
              if (!error.retryable) {
                failedEvent(from, attempt, error, false, 0);
                throw new NonRetryable(error);
              }
              const delayMs = backoffDelay(1, options.retryBaseDelayMs, options.retryMaxDelayMs);
              failedEvent(from, attempt, error, true, delayMs);
              restarts++;
              await sleep(delayMs, signal);
            }
          },
          {
            maxAttempts: options.maxIterationAttempts,
            baseDelayMs: options.retryBaseDelayMs,
            maxDelayMs: options.retryMaxDelayMs,
            signal,
            isRetryable: (e) => e.retryable,
            delayFor: () => nextDelayMs,
            events: {
              next: (e) => {
                if (e.type === 'attempt.failed' && !(e.error instanceof NonRetryable)) {
                  const willRetry = e.retryable && e.attempt < options.maxIterationAttempts && !signal.aborted;
                  nextDelayMs = willRetry ? backoffDelay(e.attempt, options.retryBaseDelayMs, options.retryMaxDelayMs) : 0;
                  failedEvent(first, e.attempt, e.error, willRetry, nextDelayMs);
                }
                if (e.type === 'restart.scheduled') restarts++;
              },
            },
          },
        ).catch((err: unknown) => {
          throw err instanceof NonRetryable ? err.error : err;
        });
      }
      for (const o of outputs) {
        if (!ledger.objectSizes.has(destKey(o.dest))) {
          throw new CompactorError('ERR_INTERNAL', `output ${o.key} was not completed although every iteration finished`);
        }
      }
      // A stray needs a CreateMultipartUpload whose answer was lost: an attempt that failed or
      // was cancelled, or a request the SDK sent again. Without either, the listing is skipped.
      if (restarts > 0 || ledger.createRetried) await abortStrays(this.deps, outputs.map((o) => o.key), runId);
      return { objectSizes: ledger.objectSizes, iterations: summary.iterations.length, restarts, bytesRead: ledger.bytesRead, bytesWritten: ledger.bytesWritten };
    } catch (err) {
      await abortUploads(this.deps, ledger, () => true, runId);
      await abortStrays(this.deps, outputs.map((o) => o.key), runId);
      // Complete outputs of a failed run are never committed: remove them now (GC would later).
      const done = outputs.filter((o) => ledger.objectSizes.has(destKey(o.dest))).map((o) => o.key);
      if (done.length > 0) await storage.deleteObjects(done).catch(() => {});
      throw toCompactorError(err);
    } finally {
      await teardown();
      budget.reclaimAll();
    }
  }

  /** Ends every worker thread. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }
}
