import { CompactorError, OptionsError, TimeoutError } from '../../errors.js';
import { abortReason, deferred, onAbort } from '../../util/async.js';

/**
 * One memory budget shared by every thread of a run: bytes of object data held in memory at
 * once. The counters live in a SharedArrayBuffer and change only through Atomics, so the main
 * thread and every worker see one number. Waiting uses `Atomics.waitAsync` (never blocks an
 * event loop) in bounded slices, and every wait ends: on success, on its deadline
 * (TimeoutError) or on its signal (AbortError).
 *
 * Ownership of bytes may move between threads with the data (the reader acquires, the merger
 * releases): the budget counts bytes, not owners. Releasing more than is in use throws, which
 * catches double releases that would otherwise hide a leak.
 */

export interface MemoryBudgetHandle {
  readonly __memoryBudget: 1;
  readonly sab: SharedArrayBuffer;
}

export interface AcquireOptions {
  signal?: AbortSignal;
  /** Reject with TimeoutError when the bytes do not fit within this many ms. Default: no deadline. */
  timeoutMs?: number;
  /** Names the waiter in errors. */
  what?: string;
}

// BigInt64 cells
const IN_USE = 0;
const HIGH_WATER = 1;
const LIMIT = 2;
const BIG_CELLS = 4;
// Int32 cells (after the BigInt64 block)
const SEQ = 0;
const INT_CELLS = 2;
/** `Atomics.waitAsync` (Node 16+; not in the ES2022 lib typings). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number, t?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
  }
).waitAsync;
/** A waiter re-checks at least this often (bounds a waiter that lost a notify to an abort race). */
const WAIT_SLICE_MS = 250;

export class MemoryBudget {
  readonly handle: MemoryBudgetHandle;
  readonly #big: BigInt64Array;
  readonly #seq: Int32Array;

  /** Creates a budget of `limit` bytes (main thread). Share `budget.handle` with workers. */
  constructor(limit: number);
  constructor(limit: number | MemoryBudgetHandle) {
    if (typeof limit === 'number') {
      if (!Number.isSafeInteger(limit) || limit <= 0) throw new OptionsError('memoryLimit', `must be a positive integer number of bytes, got ${limit}`);
      const sab = new SharedArrayBuffer(BIG_CELLS * 8 + INT_CELLS * 4);
      this.handle = { __memoryBudget: 1, sab };
      this.#big = new BigInt64Array(sab, 0, BIG_CELLS);
      this.#seq = new Int32Array(sab, BIG_CELLS * 8, INT_CELLS);
      Atomics.store(this.#big, LIMIT, BigInt(limit));
    } else {
      this.handle = limit;
      this.#big = new BigInt64Array(limit.sab, 0, BIG_CELLS);
      this.#seq = new Int32Array(limit.sab, BIG_CELLS * 8, INT_CELLS);
    }
  }

  /** The same budget in another thread, from `budget.handle` received via workerData/postMessage. */
  static attach(handle: MemoryBudgetHandle): MemoryBudget {
    if (!isMemoryBudgetHandle(handle)) throw new TypeError('MemoryBudget.attach: not a MemoryBudget handle');
    return new (MemoryBudget as unknown as new (h: MemoryBudgetHandle) => MemoryBudget)(handle);
  }

  get limit(): number {
    return Number(Atomics.load(this.#big, LIMIT));
  }

  get inUse(): number {
    return Number(Atomics.load(this.#big, IN_USE));
  }

  /** The most bytes ever in use at once (since creation or `resetHighWater`). */
  get highWater(): number {
    return Number(Atomics.load(this.#big, HIGH_WATER));
  }

  get available(): number {
    return this.limit - this.inUse;
  }

  resetHighWater(): void {
    Atomics.store(this.#big, HIGH_WATER, Atomics.load(this.#big, IN_USE));
  }

  /** Takes `bytes` if they fit now. */
  tryAcquire(bytes: number): boolean {
    this.#check(bytes);
    return this.#tryTake(BigInt(bytes));
  }

  /**
   * Resolves once `bytes` fit in the budget (and are counted as in use). A request larger than
   * the limit rejects at once: it could never fit.
   */
  async acquire(bytes: number, options: AcquireOptions = {}): Promise<void> {
    this.#check(bytes);
    const { signal, timeoutMs } = options;
    const what = options.what ?? `acquiring ${bytes} bytes of the memory budget`;
    if (signal?.aborted) throw abortReason(signal);
    const b = BigInt(bytes);
    if (this.#tryTake(b)) return;
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    let aborted = false;
    let wake: (() => void) | undefined;
    const off = onAbort(signal, () => {
      aborted = true;
      wake?.();
    });
    try {
      for (;;) {
        const seq = Atomics.load(this.#seq, SEQ);
        if (this.#tryTake(b)) return;
        if (aborted) throw abortReason(signal!);
        const left = deadline - Date.now();
        if (left <= 0) throw new TimeoutError(`${what} (${this.inUse}/${this.limit} in use)`, timeoutMs!);
        const r = waitAsync(this.#seq, SEQ, seq, Math.min(left, WAIT_SLICE_MS));
        if (r.async) {
          const d = deferred<void>();
          wake = () => d.resolve();
          void r.value.then(() => d.resolve());
          await d.promise;
          wake = undefined;
        }
      }
    } finally {
      off();
    }
  }

  /** Returns `bytes` to the budget and wakes waiters. Releasing more than is in use throws. */
  release(bytes: number): void {
    this.#check(bytes, false);
    if (bytes === 0) return;
    const b = BigInt(bytes);
    for (;;) {
      const cur = Atomics.load(this.#big, IN_USE);
      if (cur < b) {
        throw new CompactorError(
          'ERR_MEMORY_RELEASE',
          `memory budget: releasing ${bytes} bytes but only ${cur} are in use (a double release?)`,
        );
      }
      if (Atomics.compareExchange(this.#big, IN_USE, cur, cur - b) === cur) break;
    }
    this.#notify();
  }

  /**
   * Sets the bytes in use back to 0 and returns how many were still counted. Only for the
   * supervisor once every actor of the run has ended (crashed or terminated workers cannot
   * release what they held); a non-zero return after a clean cancel is a leak.
   */
  reclaimAll(): number {
    const was = Atomics.exchange(this.#big, IN_USE, 0n);
    this.#notify();
    return Number(was);
  }

  #notify(): void {
    Atomics.add(this.#seq, SEQ, 1);
    Atomics.notify(this.#seq, SEQ);
  }

  #tryTake(b: bigint): boolean {
    const limit = Atomics.load(this.#big, LIMIT);
    for (;;) {
      const cur = Atomics.load(this.#big, IN_USE);
      const next = cur + b;
      if (next > limit) return false;
      if (Atomics.compareExchange(this.#big, IN_USE, cur, next) === cur) {
        this.#raiseHighWater(next);
        return true;
      }
    }
  }

  #raiseHighWater(v: bigint): void {
    for (;;) {
      const hw = Atomics.load(this.#big, HIGH_WATER);
      if (v <= hw || Atomics.compareExchange(this.#big, HIGH_WATER, hw, v) === hw) return;
    }
  }

  #check(bytes: number, acquiring = true): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new TypeError(`memory budget: bytes must be a non-negative integer, got ${bytes}`);
    if (acquiring && bytes > this.limit) {
      throw new CompactorError(
        'ERR_MEMORY_REQUEST_TOO_LARGE',
        `memory budget: a request of ${bytes} bytes can never fit in the limit of ${this.limit} bytes`,
      );
    }
  }
}

export function isMemoryBudgetHandle(v: unknown): v is MemoryBudgetHandle {
  return typeof v === 'object' && v !== null && (v as { __memoryBudget?: unknown }).__memoryBudget === 1 && (v as { sab?: unknown }).sab instanceof SharedArrayBuffer;
}

