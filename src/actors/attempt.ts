/**
 * One attempt of a run: a pipeline actor on a fresh worker thread, running iterations from the
 * first unfinished one to the end. Its reports go to the run's ledger; its failure (a storage
 * error, a crash, a missed heartbeat) or an iteration past its deadline rejects `run`, and the
 * supervisor tears the attempt down before it decides to start another.
 */
import type { Subscription } from 'rxjs';
import type { PipelineReport, SupervisorToPipeline } from '../messages/pipeline.js';
import type { PipelineInit } from './pipeline-actors.js';
import type { RunLedger } from './run-ledger.js';
import type { ActorHandle } from './runtime/actor-handle.js';
import { cancelAll, firstFailure } from './runtime/supervision.js';
import type { ActorPool } from './runtime/actor-pool.js';
import { withDeadline } from '../util/async.js';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
export const PIPELINE_MODULE = new URL(`./pipeline-actors${ext}`, import.meta.url);

export interface AttemptRun {
  /** Iterations `from`..`to - 1`. */
  from: number;
  to: number;
  /** SSO bytes the uploader already has when iteration `i` starts (where its SSO segments begin). */
  ssoFrom(i: number): number;
  iterationTimeoutMs: number;
  signal: AbortSignal;
  /** Names iteration `i` in a deadline error. */
  describe(i: number): string;
  started(i: number): void;
  finished(i: number): void;
}

export class Attempt {
  readonly pipeline: ActorHandle<SupervisorToPipeline, PipelineReport>;
  readonly #subscription: Subscription;

  constructor(pool: ActorPool, init: PipelineInit, name: string, ledger: RunLedger, onProgress: () => void) {
    const transferList = init.whole ? [init.whole.port] : [];
    this.pipeline = pool.spawn<PipelineInit, SupervisorToPipeline, PipelineReport>(PIPELINE_MODULE, 'pipelineActor', init, { name, transferList });
    this.#subscription = this.pipeline.events$.subscribe((m) => {
      if (ledger.record(m)) onProgress();
    });
  }

  /**
   * Every start is sent at once: the reader reads ahead into the next iteration while this one
   * is still merged and uploaded (acquiring budget as uploads release it), so reads and uploads
   * overlap across iterations; the merger still takes them one at a time. Resolves when the last
   * iteration is done; rejects with the pipeline's first failure or an iteration's deadline.
   */
  async run(r: AttemptRun): Promise<void> {
    const done = Array.from({ length: r.to - r.from }, (_, k) => {
      const p = this.pipeline.waitFor('iteration.done', { filter: (m) => m.iteration === r.from + k, signal: r.signal });
      p.catch(() => {}); // awaited in order below; an early rejection is not unhandled
      return p;
    });
    const failed = firstFailure([this.pipeline]).then(({ error }) => {
      throw error;
    });
    for (let i = r.from; i < r.to; i++) {
      r.started(i);
      this.pipeline.send({ type: 'iteration.start', iteration: i, ssoFrom: r.ssoFrom(i) }, []);
    }
    for (let i = r.from; i < r.to; i++) {
      await withDeadline(Promise.race([done[i - r.from]!, failed]), r.iterationTimeoutMs, r.describe(i), r.signal);
      r.finished(i);
    }
  }

  /** Cancels the actor (it aborts its requests and gives back its bytes) within the deadline. */
  async teardown(cancelTimeoutMs: number): Promise<void> {
    await cancelAll([this.pipeline], { deadlineMs: cancelTimeoutMs }).catch(() => {});
    this.#subscription.unsubscribe();
  }
}
