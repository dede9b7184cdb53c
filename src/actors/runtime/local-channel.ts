import { AbortError, CompactorError } from '../../errors.js';
import { abortReason, deferred, onAbort, park, type Deferred } from '../../util/async.js';

/** One received message and the credit it accounts for (grant it back when done with it). */
export interface Delivery<T> {
  msg: T;
  bytes: number;
}

/**
 * Credit-based flow control between two actors in the same isolate: the receiver holds a window
 * of bytes, granted back as its consumer finishes with them, so no queue grows without bound; a
 * message whose `send` resolved belongs to the receiver, one whose `send` rejected is still the
 * sender's. Actors that only move bytes share a thread, so their messages pass by reference:
 * nothing is copied or transferred, and cancellation is the shared AbortSignal.
 */
export class LocalChannel<T> {
  readonly name: string;
  readonly window: number;
  #credit: number;
  #senders: { bytes: number; go: Deferred<void> }[] = [];
  #queue: Delivery<T>[] = [];
  #waiter: Deferred<void> | undefined;
  #ended: { aborted: boolean; error?: CompactorError } | undefined;
  /** Bytes sent and not yet granted back (queued + in the consumer's hands). ≤ window. */
  heldBytes = 0;
  maxHeldBytes = 0;

  constructor(options: { window: number; name: string }) {
    if (!Number.isSafeInteger(options.window) || options.window <= 0) throw new TypeError(`${options.name}: credit window must be a positive integer, got ${options.window}`);
    this.name = options.name;
    this.window = options.window;
    this.#credit = options.window;
  }

  /** Queues `msg` once `bytes` of credit are free, in call order; rejects (the message stays the caller's) on abort or end. */
  async send(msg: T, bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes > this.window) {
      throw new CompactorError('ERR_CREDIT_TOO_LARGE', `${this.name}: a message of ${bytes} bytes can never fit in the credit window of ${this.window} bytes`);
    }
    if (this.#ended) throw this.#ended.error ?? new AbortError(`${this.name}: the stream was closed`);
    if (signal?.aborted) throw abortReason(signal);
    if (this.#senders.length > 0 || bytes > this.#credit) {
      const go = deferred<void>();
      const waiter = { bytes, go };
      this.#senders.push(waiter);
      const off = onAbort(signal, () => {
        const i = this.#senders.indexOf(waiter);
        if (i >= 0) this.#senders.splice(i, 1);
        go.reject(abortReason(signal!));
        this.#pump();
      });
      try {
        await go.promise;
      } finally {
        off();
      }
    } else {
      this.#credit -= bytes;
    }
    this.heldBytes += bytes;
    this.maxHeldBytes = Math.max(this.maxHeldBytes, this.heldBytes);
    this.#queue.push({ msg, bytes });
    this.#waiter?.resolve();
  }

  /** Gives `bytes` of credit back (the consumer is done with them). */
  grant(bytes: number): void {
    if (bytes > this.heldBytes) throw new CompactorError('ERR_CREDIT_GRANT', `${this.name}: granting ${bytes} bytes but only ${this.heldBytes} are held (a double grant?)`);
    this.heldBytes -= bytes;
    this.#credit += bytes;
    this.#pump();
  }

  #pump(): void {
    while (this.#senders.length > 0 && this.#senders[0]!.bytes <= this.#credit) {
      const s = this.#senders.shift()!;
      this.#credit -= s.bytes;
      s.go.resolve();
    }
  }

  /** Ends the stream after what is queued; further sends fail. */
  close(): void {
    this.#end({ aborted: false });
  }

  /** Ends the stream at once: waiting sends fail with `reason`, the consumer's loop throws. */
  abort(reason: CompactorError): void {
    this.#end({ aborted: true, error: reason });
  }

  #end(how: { aborted: boolean; error?: CompactorError }): void {
    if (this.#ended) return;
    this.#ended = how;
    const err = how.error ?? new AbortError(`${this.name}: the stream was closed`);
    for (const s of this.#senders.splice(0)) s.go.reject(err);
    this.#waiter?.resolve();
  }

  /** Messages in order; ends after `close`, throws the reason after `abort` or when `signal` aborts. */
  async *consume(signal?: AbortSignal): AsyncGenerator<Delivery<T>, void, undefined> {
    for (;;) {
      if (signal?.aborted) throw abortReason(signal);
      // After an abort what is still queued is `drain`'s, not the consumer's.
      if (this.#ended?.aborted) throw this.#ended.error;
      const d = this.#queue.shift();
      if (d !== undefined) {
        yield d;
        continue;
      }
      if (this.#ended) return;
      const w = (this.#waiter = deferred<void>());
      await park(w, signal, () => {
        if (this.#waiter === w) this.#waiter = undefined;
      });
    }
  }

  /** After cancellation: hands every queued message to `release` (which frees its bytes). */
  drain(release: (d: Delivery<T>) => void): number {
    let n = 0;
    for (const d of this.#queue.splice(0)) {
      n++;
      this.heldBytes -= d.bytes;
      release(d);
    }
    return n;
  }
}
