import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Subject, type Observable } from 'rxjs';
import { pino, type Logger } from 'pino';
import { AbortError, FormatError, StateError, toCompactorError, type CompactorError } from '../errors.js';
import { parseObjectKey } from '../format/keys.js';
import { ADOPTER_PREFIX, type MetadataStore } from '../metadata/types.js';
import { planCompaction } from '../plan/index.js';
import type { CompactionPlan, PlanInputObject } from '../plan/types.js';
import { readIndexes } from '../actors/planner.js';
import { readMode } from '../actors/plan-session.js';
import type { ObjectStorage } from '../storage/types.js';
import type { S3Storage } from '../storage/s3-storage.js';
import { listenRequestSamples, type S3RequestSample } from '../storage/request-samples.js';
import { linkedController } from '../util/async.js';
import { BandwidthLimiter } from '../storage/bandwidth.js';
import { Supervisor } from '../actors/supervisor.js';
import { MemoryBudget } from '../actors/runtime/index.js';
import type { CompactionReport, CompactorEvent } from './events.js';
import { collectGarbage, deleteDueObjects, type GarbageCollectionOptions, type GarbageCollectionReport } from './gc.js';
import { holdRunLease, LeaseKeeper, type LeaseRequest } from './node-lease.js';
import { explainVanished } from './outcome.js';
import { runPass, type PassContext } from './pass.js';
import { Adoption } from './adoption.js';
import { listCandidates, type Quarantined } from './candidates.js';
import { resolveCompactorOptions, type CompactorOptions, type ResolvedCompactorOptions } from './options.js';

/** Damaged sources one run leaves out before it gives up and fails (each costs a replan). */
const MAX_DAMAGED_PER_RUN = 16;

/**
 * Compacts one node's stream set objects. `compactOnce()` runs one compaction: plan on this
 * thread (index reads and pure planning), execute on the actor pipeline's worker threads, then
 * check coverage and commit atomically. `start()` schedules runs; `close()` cancels what runs and
 * ends every worker thread.
 */
export class Compactor {
  readonly options: ResolvedCompactorOptions;
  readonly storage: ObjectStorage;
  readonly metadata: MetadataStore;
  /** Shared by every thread of this compactor: object bytes held anywhere in the pipeline. */
  readonly budget: MemoryBudget;
  /** The bandwidth limit every worker thread's requests share (`bandwidthLimit`), when set. */
  readonly bandwidth: BandwidthLimiter | undefined;
  private readonly events = new Subject<CompactorEvent>();
  readonly events$: Observable<CompactorEvent> = this.events.asObservable();
  private readonly logger: Logger;
  /** @internal The supervisor, for tests and diagnostics; not part of the stable surface. */
  readonly supervisor: Supervisor;
  private readonly lifetime = new AbortController();
  private running: Promise<CompactionReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private runIds = 0;
  private closed = false;
  /** Names this compactor in the node lease, for the one-line error a second one gets. */
  private readonly holder: string;
  /** Set on the compactor an adopter runs for another node: its lease yields to the home node. */
  private readonly adopted: boolean;
  /** The node lease, held between runs while started. */
  private readonly keeper: LeaseKeeper;
  /** The expired node this compactor compacts besides its own, if any. */
  private readonly adoption: Adoption;
  private readonly constructorOptions: CompactorOptions;
  private readonly stopRequestSamples: () => void;
  /** The running run's epoch for the node (claimNode); undefined: the store does not fence. */
  private epoch: number | undefined;
  /** Set once a commit was fenced: another compactor claimed the node, and this one stops for good. */
  private fenced: CompactorError | undefined;

  /** @param internal for an adoption: the lease holder and the adopted flag (not public API). */
  constructor(opts: CompactorOptions, internal: { holder?: string; adopted?: boolean } = {}) {
    this.options = resolveCompactorOptions(opts);
    this.constructorOptions = opts;
    this.holder = internal.holder ?? `${hostname()} pid ${process.pid} (${randomUUID().slice(0, 8)})`;
    this.adopted = internal.adopted === true;
    this.storage = opts.storage;
    this.metadata = opts.metadata;
    // Embedded in a host, the library logs only through the host's logger: never to stdout by
    // itself, whatever the host's environment says.
    this.logger = opts.logger ?? pino({ level: 'silent' });
    this.adoption = new Adoption(opts.metadata, this.options.nodeId, this.logger, (nodeId) => this.adopt(nodeId));
    this.keeper = new LeaseKeeper(opts.metadata, this.leaseRequest(), this.logger);
    this.budget = new MemoryBudget(this.options.memoryLimit);
    this.bandwidth = this.options.bandwidthLimit !== undefined ? new BandwidthLimiter(this.options.bandwidthLimit) : undefined;
    const requestsChannel = `s3sc-requests-${randomUUID()}`;
    const onRequests = (requests: S3RequestSample[]) => this.events.next({ type: 's3.requests', requests });
    const stopListening = listenRequestSamples(requestsChannel, onRequests);
    // The host's storage (commits, deletes on this thread) reports through the same event.
    const own = (this.storage as Partial<Pick<S3Storage, 'onRequest'>>).onRequest?.call(this.storage, (r) => onRequests([r]));
    this.stopRequestSamples = () => {
      stopListening();
      own?.();
    };
    this.supervisor = new Supervisor({
      requestsChannel,
      ...(this.bandwidth ? { bandwidth: this.bandwidth.handle } : {}),
      storage: this.storage,
      budget: this.budget,
      options: this.options,
      emit: (e) => this.events.next(e),
      logger: this.logger,
    });
    // Threads boot and load the SDK while the embedder does other work: a first compactOnce
    // right after construction finds them (nearly) ready. close() ends them.
    this.supervisor.warm();
  }

  /** One compaction run. Rejects with a typed error; never leaves a wait behind. */
  async compactOnce(opts: { signal?: AbortSignal } = {}): Promise<CompactionReport> {
    if (this.closed) throw new StateError('ERR_CLOSED', 'the compactor is closed');
    if (this.fenced) throw this.fenced;
    if (this.running) throw new StateError('ERR_BUSY', 'a compaction run is already in progress on this compactor');
    const { controller, dispose } = linkedController(opts.signal, this.lifetime.signal);
    const p = this.run(controller.signal).finally(() => {
      dispose();
      this.running = undefined;
    });
    this.running = p;
    return p;
  }

  private async run(signal: AbortSignal): Promise<CompactionReport> {
    const runId = ++this.runIds;
    const started = Date.now();
    const log = this.logger.child({ runId, nodeId: this.options.nodeId });
    this.events.next({ type: 'run.started', runId });
    // What this run quarantined (found by planning or while copying): left out when it plans
    // again, and reported once each.
    const quarantined = new Map<number, Quarantined>();
    let lease: { stop(): Promise<void> } | undefined;
    const { controller, dispose } = linkedController(signal);
    try {
      lease = await holdRunLease(this.metadata, this.leaseRequest(), controller, log, this.keeper);
      if (this.metadata.claimNode) {
        // Every run claims the node under the lease: a run still going under an older epoch (a
        // paused process whose lease ran out while another compactor took over) cannot commit.
        // Between runs another compactor may have run the node in turn: that is no conflict.
        this.epoch = (await this.metadata.claimNode({ nodeId: this.options.nodeId, holder: this.holder })).epoch;
        log.debug({ epoch: this.epoch }, 'claimed the node');
      }
      await this.deleteDue(controller.signal, log);
      for (;;) {
        try {
          return await runPass(this.passContext(runId, log, quarantined), { runId, started, log, quarantined, signal: controller.signal });
        } catch (err) {
          const source = err instanceof FormatError ? parseObjectKey(err.key) : undefined;
          // A FormatError naming one of our sources is that object's damage, not the run's:
          // quarantine it and plan again without it. Bounded: each pass removes one object.
          if (!source || source.namespace !== this.storage.namespace || quarantined.has(source.objectId) || quarantined.size >= MAX_DAMAGED_PER_RUN) throw err;
          await this.quarantine(runId, log, quarantined, {
            objectId: source.objectId,
            code: (err as FormatError).code,
            reason: `damaged data found while copying: ${(err as FormatError).message}`,
          });
        }
      }
    } catch (err) {
      // A lost lease aborts the run with its own error, which says more than the abort.
      const error = await explainVanished(this.metadata, this.storage.namespace, this.options.nodeId, toCompactorError(controller.signal.aborted && !signal.aborted ? controller.signal.reason : err));
      if (error.code === 'ERR_METADATA_FENCED') {
        // Another compactor owns the node now: never run again (the outputs were removed below).
        this.fenced = error;
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        log.warn({ err: error }, 'fenced: another compactor claimed this node; this compactor stops');
      }
      this.events.next({ type: 'run.failed', runId, error });
      log.warn({ err: error }, 'compaction run failed');
      throw error;
    } finally {
      await lease?.stop();
      dispose();
    }
  }

  private leaseRequest(): LeaseRequest {
    return { nodeId: this.options.nodeId, holder: this.holder, ttlMs: this.options.leaseTtlMs, preemptAdopter: !this.adopted };
  }

  private passContext(runId: number, log: Logger, quarantined: Map<number, Quarantined>): PassContext {
    return {
      options: this.options,
      storage: this.storage,
      metadata: this.metadata,
      supervisor: this.supervisor,
      budget: this.budget,
      epoch: this.epoch,
      emit: (e) => this.events.next(e),
      quarantine: (q) => this.quarantine(runId, log, quarantined, q),
    };
  }

  /** Quarantines an object (when the store can), and says so in the events and the log, once a run. */
  private async quarantine(runId: number, log: Logger, done: Map<number, Quarantined>, q: Quarantined): Promise<void> {
    if (done.has(q.objectId)) return;
    done.set(q.objectId, q);
    await this.metadata.quarantineObject?.(q);
    this.events.next({ type: 'object.quarantined', runId, ...q });
    log.warn({ objectId: q.objectId, code: q.code, reason: q.reason }, 'object quarantined: left out of compaction until released');
  }

  /**
   * A dry run: the plan a run would execute now, in full (every block), computed on this thread.
   * For printing (the CLI's `plan`); `compactOnce` plans on a worker instead.
   */
  async plan(signal?: AbortSignal): Promise<{ plan: CompactionPlan; objects: PlanInputObject[] }> {
    const { candidates, streams, waiting, held } = await listCandidates(this.metadata, this.storage, this.options);
    const objects = await readIndexes(this.storage, candidates, this.options.indexReadConcurrency, signal);
    const { openReads } = readMode(this.options, candidates);
    const plan = planCompaction({ objects, streams, nowMs: Date.now(), options: this.options, ...(openReads ? { openReads } : {}) });
    plan.deferred.push(...waiting);
    plan.skipped.push(...held);
    return { plan, objects };
  }

  /**
   * Deletes compacted objects whose grace period ended. A failure here does not fail the run:
   * the objects stay pending (deletion is idempotent) and the next run or gc tries again.
   */
  private async deleteDue(signal: AbortSignal, log: Logger): Promise<void> {
    try {
      const ids = await deleteDueObjects(this.storage, this.metadata, { signal });
      if (ids.length > 0) this.events.next({ type: 'objects.deleted', objectIds: ids });
    } catch (err) {
      if (signal.aborted) throw err;
      log.warn({ err: toCompactorError(err) }, 'deleting compacted objects failed; they stay pending and are deleted by a later run or gc');
    }
  }

  /** Removes leftovers of killed runs and failed ingests (see `collectGarbage`). */
  async gc(opts: GarbageCollectionOptions = {}): Promise<GarbageCollectionReport> {
    return collectGarbage(this.storage, this.metadata, { safetyAgeMs: this.options.gcSafetyAgeMs, ...opts });
  }

  /** Runs every `interval`, and again after `soonInterval` when a run left objects waiting. */
  start(): void {
    if (this.closed) throw new StateError('ERR_CLOSED', 'the compactor is closed');
    if (this.fenced) throw this.fenced;
    if (this.timer) return;
    this.keeper.start();
    this.schedule(0);
  }

  /**
   * One compaction of an expired node (see `adoptExpiredNodes`): the node adopted before, or the
   * first other node with live SSOs and no unexpired lease. Undefined when there is none, or when
   * the adoption ended (the home node came back: its lease or its claim refused this run).
   */
  async adoptOnce(opts: { signal?: AbortSignal } = {}): Promise<(CompactionReport & { nodeId: number }) | undefined> {
    if (this.closed) throw new StateError('ERR_CLOSED', 'the compactor is closed');
    return this.adoption.once(opts);
  }

  private adopt(nodeId: number): Compactor {
    const compactor = new Compactor({ ...this.constructorOptions, nodeId, logger: this.logger.child({ adoptedNode: nodeId }) }, { holder: `${ADOPTER_PREFIX}${this.holder}`, adopted: true });
    compactor.events$.subscribe({ next: (e) => this.events.next(e) });
    // Held between its runs too: no other adopter takes the node while this one has it.
    compactor.keeper.start();
    return compactor;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.closed) return;
      this.compactOnce().then(
        async (r) => {
          if (this.options.adoptExpiredNodes && !this.closed) {
            await this.adoptOnce().catch((err: unknown) => this.logger.warn({ err }, 'compacting an adopted node failed'));
          }
          if (!this.closed) this.schedule(r.deferred.length > 0 ? this.options.soonInterval : this.options.interval);
        },
        (err: CompactorError) => {
          if (!this.closed && err.code !== 'ERR_BUSY') this.logger.warn({ err }, 'scheduled compaction failed');
          if (!this.closed && !this.fenced) this.schedule(this.options.interval);
        },
      );
    }, delayMs);
    this.timer.unref?.();
  }

  /** Stops scheduling, cancels a run in progress, waits for it to settle and ends the worker threads. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.lifetime.abort(new AbortError('the compactor was closed'));
    await this.running?.catch(() => {});
    await this.adoption.close();
    await this.keeper.stop();
    await this.supervisor.close();
    this.stopRequestSamples();
    this.events.complete();
  }
}
