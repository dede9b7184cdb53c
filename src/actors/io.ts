/**
 * The narrow view of the runtime that the pipeline actors use. Keeping the actors' logic behind
 * it keeps them readable and lets the runtime evolve without touching them.
 */
import type { ActorReport, ReadPiece } from '../messages/pipeline.js';
import type { RangeSink } from '../storage/types.js';

export interface Outbox<T> {
  /** Resolves once the receiver has granted credit for `bytes`; the message is the receiver's from then on. */
  send(msg: T, bytes: number): Promise<void>;
}

export interface BudgetView {
  acquire(bytes: number, opts: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
  release(bytes: number): void;
}

/** Where the bytes of one GET go as they arrive (the merger's part buffers). */
export interface Landing {
  sink(pieces: readonly ReadPiece[], size: number): RangeSink;
}

export interface Reporter<T extends ActorReport = ActorReport> {
  report(msg: T): void;
}
