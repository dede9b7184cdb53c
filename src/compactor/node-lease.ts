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
  const renewals = new Renewals();
  const timer = setInterval(() => {
    renewals.track(
      store.acquireNodeLease!(req).catch((err: unknown) => {
        log.warn({ err }, 'lost the node lease: stopping the run');
        controller.abort(toCompactorError(err));
      }),
    );
  }, renewEvery(req));
  timer.unref?.();
  return {
    stop: async () => {
      clearInterval(timer);
      // A started compactor keeps its lease between runs: its node is alive.
      if (keeper.active) return;
      await renewals.settled();
      await store.releaseNodeLease?.({ nodeId: req.nodeId, holder: req.holder }).catch((err: unknown) => log.warn({ err }, 'releasing the node lease failed; it expires'));
    },
  };
}

/** Holds the node lease between runs while a compactor is started, so its node is seen alive. */
export class LeaseKeeper {
  #timer: NodeJS.Timeout | undefined;
  readonly #renewals = new Renewals();

  constructor(
    private readonly store: MetadataStore,
    private readonly req: LeaseRequest,
    private readonly logger: Logger,
  ) {}

  get active(): boolean {
    return this.#timer !== undefined;
  }

  /** Renews now and every third of the ttl (a failure is logged: the next run says more). */
  start(): void {
    const store = this.store;
    if (this.#timer || !store.acquireNodeLease) return;
    const renew = () => this.#renewals.track(store.acquireNodeLease!(this.req).catch((err: unknown) => this.logger.warn({ err }, 'renewing the node lease failed')));
    renew();
    this.#timer = setInterval(renew, renewEvery(this.req));
    this.#timer.unref?.();
  }

  async stop(): Promise<void> {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#renewals.settled();
    await this.store.releaseNodeLease?.({ nodeId: this.req.nodeId, holder: this.req.holder }).catch(() => {});
  }
}

/**
 * Renewals still in flight. A release must wait for them: on a store whose calls can overtake
 * each other (PostgreSQL, one connection each), a renewal that lands after the release takes the
 * lease again (regression: the node then stayed busy for a whole ttl after the run).
 */
class Renewals {
  readonly #pending = new Set<Promise<void>>();

  /** `p` must not reject (renewals handle their own failures). */
  track(p: Promise<void>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  async settled(): Promise<void> {
    await Promise.all(this.#pending);
  }
}

function renewEvery(req: LeaseRequest): number {
  return Math.max(1, Math.floor(req.ttlMs / 3));
}
