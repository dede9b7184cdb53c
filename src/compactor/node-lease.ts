import type { Logger } from 'pino';
import { toCompactorError } from '../errors.js';
import type { MetadataStore } from '../metadata/types.js';

/** Who asks for a node's lease, and for how long. */
export interface LeaseRequest {
  nodeId: number;
  holder: string;
  ttlMs: number;
  /** The home node takes its lease back from an adopter; an adopter never takes one. */
  preemptAdopter: boolean;
}

/**
 * Takes the node's lease for a run (a second compactor of the node fails fast with
 * ERR_METADATA_NODE_BUSY) and renews it every third of its ttl while the run lasts; losing it
 * aborts the run. `stop()` releases it unless `keeper` holds it between runs. A store without
 * leases runs without one.
 */
export async function holdRunLease(
  store: MetadataStore,
  req: LeaseRequest,
  controller: AbortController,
  log: Logger,
  keeper: LeaseKeeper,
): Promise<{ stop(): Promise<void> } | undefined> {
  if (!store.acquireNodeLease) return undefined;
  await store.acquireNodeLease(req);
  const renewer = new Renewer(store, req, (err) => {
    log.warn({ err }, 'lost the node lease: stopping the run');
    controller.abort(toCompactorError(err));
  });
  renewer.start();
  return {
    stop: async () => {
      await renewer.stop();
      // A started compactor keeps its lease between runs: its node is alive.
      if (keeper.active) return;
      await store.releaseNodeLease?.({ nodeId: req.nodeId, holder: req.holder }).catch((err: unknown) => log.warn({ err }, 'releasing the node lease failed; it expires'));
    },
  };
}

/** Holds the node lease between runs while a compactor is started, so its node is seen alive. */
export class LeaseKeeper {
  readonly #renewer: Renewer;

  constructor(
    private readonly store: MetadataStore,
    private readonly req: LeaseRequest,
    logger: Logger,
  ) {
    // A failure is logged: the next run says more.
    this.#renewer = new Renewer(store, req, (err) => logger.warn({ err }, 'renewing the node lease failed'));
  }

  get active(): boolean {
    return this.#renewer.active;
  }

  /** Renews now and every third of the ttl. */
  start(): void {
    if (this.active || !this.store.acquireNodeLease) return;
    this.#renewer.start(true);
  }

  async stop(): Promise<void> {
    if (!this.active) return;
    await this.#renewer.stop();
    await this.store.releaseNodeLease?.({ nodeId: this.req.nodeId, holder: this.req.holder }).catch(() => {});
  }
}

/**
 * Renews a lease every third of its ttl until stopped. `stop()` also waits for the renewals in
 * flight, so that a release comes after them: on a store whose calls can overtake each other
 * (PostgreSQL, one connection each), a renewal that lands after the release takes the lease
 * again (regression: the node then stayed busy for a whole ttl after the run).
 */
class Renewer {
  #timer: NodeJS.Timeout | undefined;
  readonly #pending = new Set<Promise<void>>();

  constructor(
    private readonly store: MetadataStore,
    private readonly req: LeaseRequest,
    private readonly onError: (err: unknown) => void,
  ) {}

  get active(): boolean {
    return this.#timer !== undefined;
  }

  start(now = false): void {
    if (now) this.#renew();
    this.#timer = setInterval(() => this.#renew(), Math.max(1, Math.floor(this.req.ttlMs / 3)));
    this.#timer.unref?.();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all(this.#pending);
  }

  #renew(): void {
    const p = this.store.acquireNodeLease!(this.req).catch(this.onError);
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }
}
