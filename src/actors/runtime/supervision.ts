import type { Observer } from 'rxjs';
import { AbortError, WorkerError, toCompactorError, type CompactorError } from '../../errors.js';
import { abortReason, backoffDelay, linkedController, sleep } from '../../util/async.js';
import type { ActorHandle } from './actor-handle.js';

/**
 * Restart policy of the supervisor: run `attemptFn`; a retryable failure restarts it after an
 * exponential backoff (full jitter) up to `maxAttempts` attempts, a fatal failure fails at once.
 * Every step is published on `events` (an rxjs Subject/Observer) so tests and progress
 * reporting can observe it.
 */

export type SupervisionEvent =
  | { type: 'attempt.started'; attempt: number }
  | { type: 'attempt.succeeded'; attempt: number }
  | { type: 'attempt.failed'; attempt: number; retryable: boolean; error: CompactorError }
  | { type: 'restart.scheduled'; attempt: number; nextAttempt: number; delayMs: number }
  | { type: 'gave.up'; attempt: number; reason: 'fatal' | 'exhausted' | 'aborted'; error: CompactorError };

export interface RestartOptions {
  /** Attempts in total (first one included). ≥ 1. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Default: the error's `retryable` flag (after `toCompactorError`). */
  isRetryable?: (err: CompactorError) => boolean;
  /** Aborts the current attempt (its signal) and the backoff wait; the run rejects with AbortError. */
  signal?: AbortSignal;
  events?: Partial<Observer<SupervisionEvent>>;
  /** Delay before restart `attempt + 1` (default: `backoffDelay(attempt, baseDelayMs, maxDelayMs)`). */
  delayFor?: (attempt: number) => number;
}

/** `attemptFn(attempt, signal)` with attempt numbers from 1. Resolves with the first success. */
export async function runWithRestarts<T>(attemptFn: (attempt: number, signal: AbortSignal) => Promise<T>, options: RestartOptions): Promise<T> {
  const { maxAttempts, baseDelayMs, maxDelayMs, signal, events } = options;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) throw new TypeError(`runWithRestarts: maxAttempts must be a positive integer, got ${maxAttempts}`);
  const isRetryable = options.isRetryable ?? ((e: CompactorError) => e.retryable);
  const delayFor = options.delayFor ?? ((attempt: number) => backoffDelay(attempt, baseDelayMs, maxDelayMs));
  const emit = (e: SupervisionEvent): void => events?.next?.(e);

  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) {
      const error = abortReason(signal);
      emit({ type: 'gave.up', attempt: attempt - 1, reason: 'aborted', error });
      throw error;
    }
    emit({ type: 'attempt.started', attempt });
    const link = linkedController(signal);
    try {
      const value = await attemptFn(attempt, link.controller.signal);
      emit({ type: 'attempt.succeeded', attempt });
      return value;
    } catch (err) {
      const error = signal?.aborted ? abortReason(signal) : toCompactorError(err);
      if (signal?.aborted) {
        emit({ type: 'attempt.failed', attempt, retryable: false, error });
        emit({ type: 'gave.up', attempt, reason: 'aborted', error });
        throw error;
      }
      const retryable = isRetryable(error);
      emit({ type: 'attempt.failed', attempt, retryable, error });
      if (!retryable) {
        emit({ type: 'gave.up', attempt, reason: 'fatal', error });
        throw error;
      }
      if (attempt >= maxAttempts) {
        emit({ type: 'gave.up', attempt, reason: 'exhausted', error });
        throw error;
      }
      const delayMs = delayFor(attempt);
      emit({ type: 'restart.scheduled', attempt, nextAttempt: attempt + 1, delayMs });
      try {
        await sleep(delayMs, signal);
      } catch (abortErr) {
        const e = abortErr instanceof Error ? toCompactorError(abortErr) : new AbortError();
        emit({ type: 'gave.up', attempt, reason: 'aborted', error: e });
        throw e;
      }
    } finally {
      link.dispose();
    }
  }
}

/** The first failure among `handles`, with the handle that failed. Never rejects. */
export function firstFailure<H extends { readonly failure: Promise<CompactorError> }>(handles: readonly H[]): Promise<{ handle: H; error: CompactorError }> {
  return Promise.race(handles.map((handle) => handle.failure.then((error) => ({ handle, error }))));
}

/**
 * Cancels every actor (in parallel) within `deadlineMs`; actors that do not ack are terminated.
 * Then waits for all of them to end. Resolves with the actors that failed to ack.
 */
export async function cancelAll<H extends Pick<ActorHandle, 'cancel' | 'ended'>>(
  handles: readonly H[],
  options: { deadlineMs?: number; reason?: string } = {},
): Promise<H[]> {
  const results = await Promise.allSettled(handles.map((h) => h.cancel(options)));
  const unresponsive = handles.filter((_, i) => results[i]!.status === 'rejected');
  await Promise.all(handles.map((h) => h.ended));
  return unresponsive;
}

/**
 * What the rejection of an actor's piscina task means: the thread was terminated (by us, when
 * `terminated`), it exited, or it crashed.
 */
export function threadFailure(actor: string, err: unknown, terminated: boolean): WorkerError {
  const e = err instanceof Error ? err : new Error(String(err));
  if (e.name === 'AbortError' && terminated) {
    return new WorkerError('ERR_WORKER_EXITED', `actor ${actor} was terminated`, { cause: e });
  }
  if (/worker exited with code/i.test(e.message)) {
    return new WorkerError('ERR_WORKER_EXITED', `actor ${actor}: the worker thread exited (${e.message})`, { cause: e });
  }
  if (/terminating worker thread|pool is closed/i.test(e.message)) {
    return new WorkerError('ERR_WORKER_EXITED', `actor ${actor}: ${e.message}`, { cause: e });
  }
  return new WorkerError('ERR_WORKER_CRASHED', `actor ${actor}: the worker thread crashed: ${e.message}`, { cause: e });
}
