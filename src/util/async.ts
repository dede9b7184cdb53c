import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { AbortError, TimeoutError, toCompactorError, type CompactorError } from '../errors.js';

/** A promise with its settle functions outside (nats.js style). Settling twice is a no-op. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
  readonly settled: boolean;
}

export function deferred<T>(): Deferred<T> {
  let settled = false;
  let res!: (v: T) => void;
  let rej!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => {
    res = a;
    rej = b;
  });
  return {
    promise,
    resolve(v) {
      if (settled) return;
      settled = true;
      res(v);
    },
    reject(e) {
      if (settled) return;
      settled = true;
      rej(e);
    },
    get settled() {
      return settled;
    },
  };
}

/** The signal's reason as a typed AbortError (keeping a CompactorError reason as it is). */
export function abortReason(signal: AbortSignal): CompactorError {
  const r: unknown = signal.reason;
  if (r instanceof AbortError) return r;
  if (r !== undefined && !(r instanceof Error && r.name === 'AbortError')) {
    const e = toCompactorError(r);
    if (e.code !== 'ERR_INTERNAL') return e;
  }
  return new AbortError('the operation was aborted', { cause: r });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/**
 * Adds an abort listener and returns its remover. Callers must call the remover when done, so
 * long-lived signals never collect listeners (undici's hygiene).
 */
export function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    queueMicrotask(fn);
    return () => {};
  }
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}

/**
 * Waits until `w` is resolved by whoever woke it or `signal` aborts (no rejection: the caller
 * looks at its state again), then runs `done`. For consumers parked on an empty queue.
 */
export async function park(w: Deferred<void>, signal: AbortSignal | undefined, done: () => void): Promise<void> {
  const off = onAbort(signal, () => w.resolve());
  try {
    await w.promise;
  } finally {
    off();
    done();
  }
}

/** Settles `p` or rejects with the signal's reason, whichever is first. Removes its listener. */
export async function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  throwIfAborted(signal);
  const d = deferred<T>();
  const off = onAbort(signal, () => d.reject(abortReason(signal)));
  p.then(d.resolve, d.reject);
  try {
    return await d.promise;
  } finally {
    off();
  }
}

/** Rejects with a TimeoutError naming `what` unless `p` settles within `ms`. Clears its timer. */
export async function withDeadline<T>(p: Promise<T>, ms: number, what: string, signal?: AbortSignal): Promise<T> {
  const d = deferred<T>();
  const timer = setTimeout(() => d.reject(new TimeoutError(what, ms)), ms);
  const off = onAbort(signal, () => d.reject(abortReason(signal!)));
  p.then(d.resolve, d.reject);
  try {
    return await d.promise;
  } finally {
    clearTimeout(timer);
    off();
  }
}

/** A sleep that an abort ends at once (with the abort's typed error). Never used as synchronisation. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) throw abortReason(signal);
    throw err;
  }
}

/**
 * A child AbortController that aborts when any parent does. `dispose()` removes the listeners
 * from the parents; call it when the child's work is done. Not AbortSignal.any: a combined signal
 * stays attached to a long-lived parent (the compactor's lifetime, a run's signal) until that
 * parent aborts or the GC finds it, and one per request leaks (nodejs/node#55351); the child also
 * needs its own abort (a lost lease aborts the run, not the caller's signal).
 */
export function linkedController(...parents: (AbortSignal | undefined)[]): { controller: AbortController; dispose(): void } {
  const controller = new AbortController();
  // Many concurrent requests listen on one run's signal (each removes its listener when done):
  // Node's default limit of 10 would warn of a leak that is not there.
  setMaxListeners(0, controller.signal);
  const offs: (() => void)[] = [];
  for (const p of parents) {
    if (!p) continue;
    if (p.aborted) {
      controller.abort(p.reason);
      break;
    }
    offs.push(onAbort(p, () => controller.abort(p.reason)));
  }
  return {
    controller,
    dispose() {
      for (const off of offs.splice(0)) off();
    },
  };
}

/** Exponential backoff with full jitter, capped. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

/**
 * Runs `fn` over `items` with at most `concurrency` at once, in order of the items. The first
 * failure aborts the signal the others got and is the error thrown, after all have settled, so
 * no request is left running behind the caller's back.
 */
export async function forEachConcurrent<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number, signal: AbortSignal) => Promise<void>,
  parent?: AbortSignal,
): Promise<void> {
  const { controller, dispose } = linkedController(parent);
  const signal = controller.signal;
  let next = 0;
  let firstError: unknown;
  const lane = async () => {
    while (next < items.length && !signal.aborted) {
      const i = next++;
      await fn(items[i]!, i, signal);
    }
  };
  try {
    await Promise.all(
      Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, () =>
        lane().catch((err: unknown) => {
          firstError ??= err;
          controller.abort(err);
        }),
      ),
    );
    if (firstError !== undefined) throw firstError;
    throwIfAborted(parent);
  } finally {
    dispose();
  }
}
