import { OptionsError } from '../errors.js';
import { sleep } from '../util/async.js';

/**
 * A bytes-per-second limit shared by every thread that talks to S3 for one compactor (the
 * planner's index reads, the pipeline's GETs and uploads), so compaction never takes more of an
 * ingest node's network than it is given. A token bucket in a SharedArrayBuffer: a request takes
 * its bytes when the bucket is not in debt (it may drive it into debt: one large GET is never
 * split or starved), and a request that finds debt waits until the refill has paid it. Over a
 * run the bytes moved are the rate times the time, give or take one request.
 *
 * The state is a few BigInt64 cells changed under a spin lock: the critical section is a handful
 * of arithmetic operations, never a wait, so no thread ever blocks another's event loop.
 */
export interface BandwidthHandle {
  readonly __bandwidth: 1;
  readonly sab: SharedArrayBuffer;
}

// BigInt64 cells
const RATE = 0; // bytes per second
const TOKENS = 1; // bytes; negative while in debt
const LAST_US = 2; // refill time, microseconds since the epoch (the same clock on every thread)
const WAITED_US = 3; // total time requests waited
const BYTES = 4; // total bytes charged
const CELLS = 5;
// Int32 lock cell after them
const LOCK = 0;

/** The smallest limit accepted: below it a single 16 MiB GET would hold everything for minutes. */
export const MIN_BANDWIDTH = 64 * 1024;

const nowUs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));

export class BandwidthLimiter {
  readonly handle: BandwidthHandle;
  readonly #big: BigInt64Array;
  readonly #lock: Int32Array;
  /** Tokens collected while idle are capped here: a quiet spell buys at most this much burst. */
  readonly #burst: bigint;

  /** A limiter of `bytesPerSecond` (host), or the same limiter seen from a worker (its handle). */
  constructor(bytesPerSecond: number | BandwidthHandle) {
    if (typeof bytesPerSecond === 'number') {
      if (!Number.isSafeInteger(bytesPerSecond) || bytesPerSecond < MIN_BANDWIDTH) {
        throw new OptionsError('bandwidthLimit', `must be an integer number of bytes per second of at least ${MIN_BANDWIDTH} (64 KiB/s), got ${bytesPerSecond}`);
      }
      const sab = new SharedArrayBuffer(CELLS * 8 + 8);
      this.handle = { __bandwidth: 1, sab };
      this.#big = new BigInt64Array(sab, 0, CELLS);
      Atomics.store(this.#big, RATE, BigInt(bytesPerSecond));
      Atomics.store(this.#big, LAST_US, nowUs());
    } else {
      this.handle = bytesPerSecond;
      this.#big = new BigInt64Array(bytesPerSecond.sab, 0, CELLS);
    }
    this.#lock = new Int32Array(this.handle.sab, CELLS * 8, 2);
    this.#burst = this.rate / 10n;
  }

  get rate(): bigint {
    return Atomics.load(this.#big, RATE);
  }

  get bytesPerSecond(): number {
    return Number(this.rate);
  }

  /** Seconds requests have waited for the limit, all threads together. */
  get waitedSeconds(): number {
    return Number(Atomics.load(this.#big, WAITED_US)) / 1e6;
  }

  /** Bytes charged so far, all threads together. */
  get bytes(): number {
    return Number(Atomics.load(this.#big, BYTES));
  }

  /** Waits until `bytes` may move (rejects with the signal's reason when it aborts first). */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes <= 0) return;
    for (;;) {
      const waitUs = this.#tryTake(BigInt(bytes));
      if (waitUs === 0n) return;
      const ms = Math.max(1, Math.ceil(Number(waitUs) / 1000));
      await sleep(ms, signal);
      Atomics.add(this.#big, WAITED_US, BigInt(ms * 1000));
    }
  }

  /** Takes the bytes and returns 0, or returns how long the bucket's debt needs to clear. */
  #tryTake(bytes: bigint): bigint {
    while (Atomics.compareExchange(this.#lock, LOCK, 0, 1) !== 0) {
      // Another thread is inside a few arithmetic operations: spin.
    }
    try {
      const rate = this.rate;
      const now = nowUs();
      const last = this.#big[LAST_US]!;
      let tokens = this.#big[TOKENS]!;
      if (now > last) {
        tokens += ((now - last) * rate) / 1_000_000n;
        if (tokens > this.#burst) tokens = this.#burst;
        this.#big[LAST_US] = now;
      }
      if (tokens < 0n) {
        this.#big[TOKENS] = tokens;
        return (-tokens * 1_000_000n) / rate + 1n;
      }
      this.#big[TOKENS] = tokens - bytes;
      this.#big[BYTES] = this.#big[BYTES]! + bytes;
      return 0n;
    } finally {
      Atomics.store(this.#lock, LOCK, 0);
    }
  }
}
