/**
 * The narrow view of the runtime that the pipeline actors use. Keeping the actors' logic behind
 * it keeps them readable and lets the runtime evolve without touching them.
 */
import type { ActorReport } from '../messages/pipeline.js';

export interface Outbox<T> {
  /** Resolves once the receiver has granted credit for `bytes`; the message is the receiver's from then on. */
  send(msg: T, bytes: number): Promise<void>;
}

export interface BudgetView {
  acquire(bytes: number, opts: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
  release(bytes: number): void;
}

export interface Reporter<T extends ActorReport = ActorReport> {
  report(msg: T): void;
}
