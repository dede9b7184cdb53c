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
 * it; the SSO's tail stays with the uploader (counted in the budget) until the SSO closes.
 */
import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import { CompactorError, deserializeError, toCompactorError } from '../errors.js';
import type { CompactorEvent } from '../compactor/events.js';
import type { ResolvedCompactorOptions } from '../compactor/options.js';
import {
  destKey,
  type DurableUpload,
  type PipelineSettings,
  type PipelineReport,
  type PlannerReport,
  type SupervisorToPipeline,
  type SupervisorToPlanner,
} from '../messages/pipeline.js';
import type { PlanSummary, PlanTable } from '../plan/table.js';
import type { StreamMetadata, StreamSetObjectMetadata } from '../metadata/types.js';
import type { ObjectStorage, S3StorageConfig } from '../storage/types.js';
import type { BandwidthHandle } from '../storage/bandwidth.js';
import { ActorPool, cancelAll, firstFailure, type ActorHandle } from './runtime/actor-pool.js';
import type { MemoryBudget } from './runtime/memory-budget.js';
import type { PipelineInit } from './pipeline-actors.js';
import type { PlannerInit } from './planner.js';
import { outputSpecs } from './segments.js';
import { backoffDelay, sleep, withDeadline } from '../util/async.js';
import { runWithRestarts } from './runtime/supervision.js';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const ACTORS_MODULE = new URL(`./pipeline-actors${ext}`, import.meta.url);
const PLANNER_MODULE = new URL(`./planner${ext}`, import.meta.url);
const STORAGE_MODULE = new URL(`../storage/s3-storage${ext}`, import.meta.url);

/** A run's plan, made on the planner actor, which stays for the coverage check before commit. */
export interface PlannerSession {
  summary: PlanSummary;
  table: PlanTable;
  /** Checks the plan again against stream metadata as it is now; throws PlanError on a hole. */
  check(streams: StreamMetadata[]): Promise<void>;
  close(): Promise<void>;
}

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

interface Actors {
  /** The reader, merger and uploader of one attempt, on one worker thread. */
  pipeline: ActorHandle<SupervisorToPipeline, PipelineReport>;
  subscription: Subscription;
}

/** What one run knows about its uploads, from the uploader's reports. */
class RunState {
  readonly objectSizes = new Map<string, number>();
  readonly open = new Map<string, { key: string; uploadId: string }>();
  sso: { uploadId: string; parts: Map<number, string>; durableBytes: number } | undefined;
  bytesRead = 0;
  /** Sizes of the completed outputs (the report's bytesWritten). */
  bytesWritten = 0;
  /** Bytes made durable by parts and PutObjects so far, retries included (the progress). */
  bytesUploaded = 0;

  /** The SSO's durable parts as a fresh uploader resumes them: the complete prefix only. */
  durable(partSize: number): DurableUpload | undefined {
    if (!this.sso) return undefined;
    const count = Math.floor(this.sso.durableBytes / partSize);
    const parts: { partNumber: number; etag: string }[] = [];
    for (let n = 1; n <= count; n++) parts.push({ partNumber: n, etag: this.sso.parts.get(n)! });
    return { uploadId: this.sso.uploadId, parts, durableBytes: this.sso.durableBytes };
  }
}

/** Wraps a fatal error already reported after progress, so the restart policy gives up at once without reporting it again. */
class NonRetryable extends CompactorError {
  constructor(readonly error: CompactorError) {
    super(error.code, error.message, { cause: error, retryable: false });
  }
}

export class Supervisor {
  private pool: ActorPool | undefined;
  private current: Actors | undefined;

  /** The running actors, for tests and diagnostics (e.g. to kill a worker mid-iteration). */
  get actors(): Readonly<Pick<Actors, 'pipeline'>> | undefined {
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
      preload: [STORAGE_MODULE, PLANNER_MODULE, ACTORS_MODULE],
      // The actors' objects are small and short-lived (the bytes live in ArrayBuffers, outside
      // the heap): a small young generation is collected sooner and keeps RSS down (measured
      // ~30 MiB less for 114 MiB under a 64 MiB limit, at the same throughput).
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    return this.pool;
  }

  /** Starts the worker threads now (they load the SDK and the actors while the host does other work). */
  warm(): void {
    this.actorPool();
  }

  /** Reads indexes and plans on a worker thread; the host's thread only receives the summary. */
  async plan(req: { candidates: StreamSetObjectMetadata[]; streams: StreamMetadata[]; nowMs: number; signal: AbortSignal }): Promise<PlannerSession> {
    const { options } = this.deps;
    const handle = this.actorPool().spawn<PlannerInit, SupervisorToPlanner, PlannerReport>(
      PLANNER_MODULE,
      'plannerActor',
      {
        storage: await this.workerStorage(),
        candidates: req.candidates,
        streams: req.streams,
        nowMs: req.nowMs,
        options,
        indexReadConcurrency: options.indexReadConcurrency,
      },
      // Planning is one long synchronous step: heartbeats pause while it runs.
      { name: 'planner', budget: null, heartbeatTimeoutMs: options.iterationTimeoutMs },
    );
    const close = async () => {
      await handle.stop({ deadlineMs: options.cancelTimeoutMs }).catch(() => {});
    };
    try {
      const planned = await handle.waitFor('planned', { deadlineMs: options.iterationTimeoutMs, signal: req.signal });
      return {
        summary: planned.summary,
        table: planned.table,
        check: async (streams) => {
          const reply = handle.waitFor('checked', { deadlineMs: options.iterationTimeoutMs, signal: req.signal });
          handle.send({ type: 'check', streams }, []);
          const { error } = await reply;
          if (error) throw deserializeError(error);
        },
        close,
      };
    } catch (err) {
      await close();
      throw toCompactorError(err);
    }
  }

  async execute(req: { runId: number; summary: PlanSummary; table: PlanTable; ssoId: number; soIds: number[]; signal: AbortSignal }): Promise<ExecutionResult> {
    const { summary, table, runId, signal, ssoId, soIds } = req;
    const { storage, options, budget, emit, logger } = this.deps;
    const outputs = outputSpecs(summary, (id) => storage.keyOf(id), ssoId, soIds);
    const settings: PipelineSettings = {
      storage: await this.workerStorage(),
      partSize: options.partSize,
      maxGetSize: Math.min(options.maxGetSize, options.memoryLimit),
      memoryLimit: options.memoryLimit,
      readsInFlight: options.readsInFlight,
      partsInFlight: options.partsInFlight,
      // The plan fits the budget, so an acquire waits only on a bug: bound it like the iteration.
      acquireTimeoutMs: options.iterationTimeoutMs,
    };
    const state = new RunState();
    let actors: Actors | undefined;
    let restarts = 0;
    /** SSO bytes the current uploader has (in parts or buffered): where the next iteration starts. */
    let ssoHave = 0;

    const spawn = (): Actors => {
      const init: PipelineInit = {
        settings,
        summary,
        table,
        ssoId,
        soIds,
        done: [...state.objectSizes.keys()],
        resume: state.durable(options.partSize),
        windows: {
          merger: Math.max(options.memoryLimit, settings.maxGetSize),
          uploader: Math.max(options.memoryLimit, (options.partsInFlight + 2) * options.partSize),
        },
      };
      const pipeline = this.actorPool().spawn<PipelineInit, SupervisorToPipeline, PipelineReport>(ACTORS_MODULE, 'pipelineActor', init, { name: `pipeline(run ${runId})` });
      const subscription = pipeline.events$.subscribe((m) => {
        const bytes = () => emit({ type: 'bytes', runId, bytesRead: state.bytesRead, bytesWritten: state.bytesUploaded });
        switch (m.type) {
          case 'progress':
            if (m.bytesRead) {
              state.bytesRead += m.bytesRead;
              bytes();
            }
            return;
          case 'upload.started':
            state.open.set(destKey(m.dest), { key: m.key, uploadId: m.uploadId });
            if (m.dest.kind === 'sso') state.sso = { uploadId: m.uploadId, parts: new Map(), durableBytes: 0 };
            return;
          case 'part.done':
            state.bytesUploaded += m.bytes;
            bytes();
            if (m.dest.kind === 'sso' && state.sso) {
              state.sso.parts.set(m.partNumber, m.etag);
              state.sso.durableBytes = Math.max(state.sso.durableBytes, m.durableBytes);
            }
            return;
          case 'object.done':
            state.objectSizes.set(destKey(m.dest), m.objectSize);
            state.open.delete(destKey(m.dest));
            state.bytesWritten += m.objectSize;
            state.bytesUploaded += m.putBytes;
            if (m.putBytes > 0) bytes();
            return;
          default:
            return;
        }
      });
      this.current = { pipeline, subscription };
      return this.current;
    };

    const teardown = async (a: Actors): Promise<void> => {
      if (this.current === a) this.current = undefined;
      await cancelAll([a.pipeline], { deadlineMs: options.cancelTimeoutMs }).catch(() => {});
      a.subscription.unsubscribe();
    };

    const n = summary.iterations.length;
    /** The first iteration whose uploads are not all done: where a restart starts again. */
    let first = 0;

    /**
     * Runs iterations `first`..n-1 on one set of actors. Every start is sent at once: the reader
     * reads ahead into the next iteration while this one is still merged and uploaded (acquiring
     * budget as uploads release it), so reads and uploads overlap across iterations. The merger
     * still takes iterations one at a time.
     */
    const runFrom = async (attempt: number): Promise<void> => {
      actors ??= spawn();
      const a = actors;
      const from = first;
      const done = Array.from({ length: n - from }, (_, k) => {
        const p = a.pipeline.waitFor('iteration.done', { filter: (m) => m.iteration === from + k, signal });
        p.catch(() => {}); // awaited in order below; an early rejection is not unhandled
        return p;
      });
      const failed = firstFailure([a.pipeline]).then(({ error }) => {
        throw error;
      });
      for (let i = from; i < n; i++) {
        const ssoFrom = i === from ? ssoHave : summary.iterations[i]!.ssoBytesBefore;
        emit({ type: 'iteration.started', runId, iteration: i, attempt: i === from ? attempt : 1 });
        a.pipeline.send({ type: 'iteration.start', iteration: i, ssoFrom }, []);
      }
      for (let i = from; i < n; i++) {
        await withDeadline(Promise.race([done[i - from]!, failed]), options.iterationTimeoutMs, `iteration ${i} of compaction run ${runId}`, signal);
        emit({ type: 'iteration.finished', runId, iteration: i, attempt: i === from ? attempt : 1 });
        first = i + 1;
        ssoHave = summary.iterations[i + 1]?.ssoBytesBefore ?? ssoHave;
      }
    };

    /** Cancels upstream and forgets the actors: nothing of an attempt survives but finished iterations and the SSO's durable parts. */
    const recover = async (): Promise<void> => {
      if (actors) await teardown(actors);
      actors = undefined;
      budget.reclaimAll();
      await this.abortUploads(state, (k) => k !== 'sso', runId);
      ssoHave = state.sso?.durableBytes ?? 0;
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
        if (!state.objectSizes.has(destKey(o.dest))) {
          throw new CompactorError('ERR_INTERNAL', `output ${o.key} was not completed although every iteration finished`);
        }
      }
      await this.abortStrays(outputs.map((o) => o.key), runId);
      return { objectSizes: state.objectSizes, iterations: summary.iterations.length, restarts, bytesRead: state.bytesRead, bytesWritten: state.bytesWritten };
    } catch (err) {
      await this.abortUploads(state, () => true, runId);
      await this.abortStrays(outputs.map((o) => o.key), runId);
      // Complete outputs of a failed run are never committed: remove them now (GC would later).
      const done = outputs.filter((o) => state.objectSizes.has(destKey(o.dest))).map((o) => o.key);
      if (done.length > 0) await storage.deleteObjects(done).catch(() => {});
      throw toCompactorError(err);
    } finally {
      if (actors) await teardown(actors);
      budget.reclaimAll();
    }
  }

  /** Aborts unfinished multipart uploads (idempotent); a failure here is left to GC. */
  private async abortUploads(state: RunState, which: (destKey: string) => boolean, runId: number): Promise<void> {
    for (const [k, u] of [...state.open]) {
      if (!which(k)) continue;
      state.open.delete(k);
      if (k === 'sso') state.sso = undefined;
      await this.deps.storage.abortMultipartUpload(u.key, u.uploadId).then(
        () => this.deps.emit({ type: 'upload.aborted', runId, key: u.key }),
        (err: unknown) => this.deps.logger.warn({ err, key: u.key }, 'abort of a multipart upload failed; garbage collection will remove it'),
      );
    }
  }

  /**
   * Aborts every unfinished multipart upload of the run's output keys. A cancelled attempt can
   * leave one nobody knows the id of: its CreateMultipartUpload reached S3, but the answer came
   * after the cancel (or the actor died before it reported the id). Output keys belong to this
   * run alone (fresh object ids), so whatever is unfinished on them once the run ends is a stray.
   * Best effort: a store that cannot list uploads leaves them to GC and the bucket's lifecycle rule.
   */
  private async abortStrays(keys: readonly string[], runId: number): Promise<void> {
    const mine = new Set(keys);
    try {
      for (const u of await this.deps.storage.listMultipartUploads()) {
        if (!mine.has(u.key)) continue;
        await this.deps.storage.abortMultipartUpload(u.key, u.uploadId);
        this.deps.emit({ type: 'upload.aborted', runId, key: u.key });
      }
    } catch (err) {
      this.deps.logger.debug({ err }, 'could not sweep stray multipart uploads; garbage collection will');
    }
  }

  /** Ends every worker thread. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }
}
