import type { MessagePort, Transferable } from 'node:worker_threads';
import { AbortError, CompactorError, TimeoutError } from '../../errors.js';
import { abortReason, deferred, onAbort, park, type Deferred } from '../../util/async.js';
import type { CreditToReceiver, CreditToSender } from '../../messages/control.js';
import { collectTransferables } from '../../messages/transfer.js';
import { TypedPort } from '../../messages/typed-port.js';

/**
 * Credit-based flow control over one MessagePort (one sender, one receiver).
 *
 * The receiver grants a window of bytes up front and grants bytes back as its consumer finishes
 * with them; the sender posts a message only when its bytes fit in the credit it holds. So the
 * bytes in flight (posted and not yet granted back, i.e. in the port, queued at the receiver or
 * in the consumer's hands) never exceed the window, and no queue grows without bound.
 *
 * Ownership: a message whose `send` resolved belongs to the receiver; one whose `send` rejected
 * (abort, deadline, close) is still the sender's. On cancellation the sender ends the stream
 * (`credit.end`, aborted) and the receiver `drain`s what is still on the way, so every message
 * is released exactly once by exactly one side.
 */

export interface CreditSenderOptions {
  /** Aborting fails pending sends and ends the stream (the receiver sees an aborted end). */
  signal?: AbortSignal;
  /** Default deadline of each `send` waiting for credit. Default: none (the signal bounds it). */
  timeoutMs?: number;
  name?: string;
}

export interface SendOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

interface PendingSend<T> {
  msg: T;
  bytes: number;
  transfer: readonly Transferable[];
  done: Deferred<void>;
  cleanup: () => void;
}

export class CreditSender<T> {
  readonly name: string;
  readonly #port: TypedPort<CreditToSender, CreditToReceiver<T>>;
  readonly #timeoutMs: number | undefined;
  #credit = 0;
  #window: number | undefined;
  #queue: PendingSend<T>[] = [];
  #ended: CompactorError | undefined;
  #offAbort: () => void;
  /** Bytes posted and not yet granted back. Never exceeds the window. */
  bytesInFlight = 0;
  maxBytesInFlight = 0;
  /** Bytes of sends waiting for credit (held by their callers). */
  pendingBytes = 0;
  maxPendingBytes = 0;
  messagesSent = 0;

  constructor(port: MessagePort, options: CreditSenderOptions = {}) {
    this.name = options.name ?? 'credit sender';
    this.#timeoutMs = options.timeoutMs;
    this.#port = new TypedPort<CreditToSender, CreditToReceiver<T>>(port, this.name);
    this.#port.on('credit', (m) => {
      if (m.window !== undefined) this.#window = m.window;
      this.#credit += m.bytes;
      this.bytesInFlight = Math.max(0, this.bytesInFlight - (m.window !== undefined ? 0 : m.bytes));
      this.#pump();
    });
    this.#port.on('credit.closed', (m) => this.#fail(new AbortError(`${this.name}: the receiver closed the channel (${m.reason})`)));
    void this.#port.closed.then(() => this.#fail(new AbortError(`${this.name}: the channel's port closed`)));
    const signal = options.signal;
    this.#offAbort = onAbort(signal, () => this.abort(abortReason(signal!)));
  }

  /** Credit currently held (bytes that may be posted without waiting). */
  get credit(): number {
    return this.#credit;
  }

  /** The receiver's window, once its first grant arrived. */
  get window(): number | undefined {
    return this.#window;
  }

  get copiedTransfers(): number {
    return this.#port.copiedTransfers;
  }

  /**
   * Posts `msg` once `bytes` of credit are available, in call order. `transfer` defaults to the
   * ArrayBuffers found in `msg`. Rejects (and the message stays the caller's) on abort, deadline,
   * closed channel, or a message larger than the whole window.
   */
  send(msg: T, bytes: number, transfer?: readonly Transferable[], options: SendOptions = {}): Promise<void> {
    if (!Number.isSafeInteger(bytes) || bytes < 0) return Promise.reject(new TypeError(`${this.name}: bytes must be a non-negative integer, got ${bytes}`));
    if (this.#ended) return Promise.reject(this.#ended);
    if (options.signal?.aborted) return Promise.reject(abortReason(options.signal));
    if (this.#window !== undefined && bytes > this.#window) {
      return Promise.reject(
        new CompactorError('ERR_CREDIT_TOO_LARGE', `${this.name}: a message of ${bytes} bytes can never fit in the credit window of ${this.#window} bytes`),
      );
    }
    const done = deferred<void>();
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const p: PendingSend<T> = { msg, bytes, transfer: transfer ?? collectTransferables(msg), done, cleanup: () => {} };
    this.#queue.push(p);
    this.pendingBytes += bytes;
    this.maxPendingBytes = Math.max(this.maxPendingBytes, this.pendingBytes);
    this.#pump();
    if (!done.settled) {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => this.#drop(p, new TimeoutError(`${this.name}: waiting for ${bytes} bytes of credit`, timeoutMs)), timeoutMs);
      const off = onAbort(options.signal, () => this.#drop(p, abortReason(options.signal!)));
      p.cleanup = () => {
        if (timer) clearTimeout(timer);
        off();
      };
    }
    return done.promise;
  }

  /** Ends the stream normally; the receiver's iteration finishes after the last message. */
  close(): void {
    this.#end(false, 'closed');
  }

  /** Fails pending sends with `reason` and ends the stream as aborted. */
  abort(reason: unknown = new AbortError(`${this.name}: aborted`)): void {
    const err = reason instanceof CompactorError ? reason : new AbortError(`${this.name}: aborted`, { cause: reason });
    this.#fail(err);
    this.#end(true, err.message);
  }

  #end(aborted: boolean, reason: string): void {
    if (!this.#ended) this.#fail(new AbortError(`${this.name}: the stream was ${aborted ? 'aborted' : 'closed'}`));
    if (this.#port.isClosed) return;
    try {
      this.#port.send({ type: 'credit.end', aborted, reason }, []);
    } catch {
      // port closed concurrently
    }
    this.#offAbort();
    // Keep listening: the receiver's grants no longer matter, but leave the port open so the end
    // frame is delivered; the receiver closes it.
  }

  #pump(): void {
    while (this.#queue.length > 0 && !this.#ended) {
      const head = this.#queue[0]!;
      if (head.bytes > this.#credit) {
        if (this.#window !== undefined && head.bytes > this.#window) {
          this.#drop(head, new CompactorError('ERR_CREDIT_TOO_LARGE', `${this.name}: a message of ${head.bytes} bytes can never fit in the credit window of ${this.#window} bytes`));
          continue;
        }
        return;
      }
      this.#queue.shift();
      this.pendingBytes -= head.bytes;
      this.#credit -= head.bytes;
      try {
        this.#port.send({ type: 'credit.data', bytes: head.bytes, msg: head.msg }, head.transfer);
      } catch (e) {
        this.#credit += head.bytes;
        head.cleanup();
        head.done.reject(e);
        continue;
      }
      this.bytesInFlight += head.bytes;
      this.maxBytesInFlight = Math.max(this.maxBytesInFlight, this.bytesInFlight);
      this.messagesSent++;
      head.cleanup();
      head.done.resolve();
    }
  }

  #drop(p: PendingSend<T>, err: unknown): void {
    const i = this.#queue.indexOf(p);
    if (i < 0) return;
    this.#queue.splice(i, 1);
    this.pendingBytes -= p.bytes;
    p.cleanup();
    p.done.reject(err);
    this.#pump();
  }

  #fail(err: CompactorError): void {
    if (!this.#ended) this.#ended = err;
    for (const p of this.#queue.splice(0)) {
      this.pendingBytes -= p.bytes;
      p.cleanup();
      p.done.reject(err);
    }
  }
}

export interface CreditReceiverOptions {
  /** Bytes the sender may have in flight at once. */
  window: number;
  /** Aborting makes the iteration throw the abort reason (then `drain` what is still coming). */
  signal?: AbortSignal;
  name?: string;
}

/** One received message and the credit it accounts for (grant it back when done with it). */
export interface Delivery<T> {
  msg: T;
  bytes: number;
}

export class CreditReceiver<T> implements AsyncIterable<Delivery<T>> {
  readonly name: string;
  readonly window: number;
  readonly #port: TypedPort<CreditToReceiver<T>, CreditToSender>;
  readonly #signal: AbortSignal | undefined;
  #queue: Delivery<T>[] = [];
  #waiter: Deferred<void> | undefined;
  #end: { aborted: boolean; reason?: string } | undefined;
  #portClosed = false;
  /** Bytes received and not yet taken by the consumer. */
  queuedBytes = 0;
  maxQueuedBytes = 0;
  /** Bytes received and not yet granted back (queued + in the consumer's hands). ≤ window. */
  heldBytes = 0;
  maxHeldBytes = 0;
  messagesReceived = 0;

  constructor(port: MessagePort, options: CreditReceiverOptions) {
    if (!Number.isSafeInteger(options.window) || options.window <= 0) throw new TypeError(`credit window must be a positive integer, got ${options.window}`);
    this.name = options.name ?? 'credit receiver';
    this.window = options.window;
    this.#signal = options.signal;
    this.#port = new TypedPort<CreditToReceiver<T>, CreditToSender>(port, this.name);
    this.#port.onAny((m) => {
      if (m.type === 'credit.data') {
        this.heldBytes += m.bytes;
        this.queuedBytes += m.bytes;
        this.messagesReceived++;
        this.maxHeldBytes = Math.max(this.maxHeldBytes, this.heldBytes);
        this.maxQueuedBytes = Math.max(this.maxQueuedBytes, this.queuedBytes);
        this.#queue.push({ msg: m.msg, bytes: m.bytes });
      } else {
        this.#end = { aborted: m.aborted, ...(m.reason !== undefined ? { reason: m.reason } : {}) };
      }
      this.#waiter?.resolve();
    });
    void this.#port.closed.then(() => {
      this.#portClosed = true;
      this.#waiter?.resolve();
    });
    this.#port.send({ type: 'credit', bytes: this.window, window: this.window }, []);
  }

  /** True when the sender ended the stream as aborted. */
  get endedAborted(): boolean {
    return this.#end?.aborted === true;
  }

  /** Gives `bytes` of credit back to the sender (the consumer is done with them). */
  grant(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new TypeError(`${this.name}: bytes must be a non-negative integer, got ${bytes}`);
    if (bytes > this.heldBytes) throw new CompactorError('ERR_CREDIT_GRANT', `${this.name}: granting ${bytes} bytes but only ${this.heldBytes} are held (a double grant?)`);
    this.heldBytes -= bytes;
    if (bytes > 0 && !this.#port.isClosed && this.#end === undefined) this.#port.send({ type: 'credit', bytes }, []);
  }

  /**
   * Messages in order. Ends after the sender's normal end; throws AbortError when the sender
   * ended as aborted or the port closed without an end (peer gone), and the signal's reason when
   * the receiver's signal aborts.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Delivery<T>, void, undefined> {
    for (;;) {
      if (this.#signal?.aborted) throw abortReason(this.#signal);
      const d = await this.#next(this.#signal);
      if (d === undefined) {
        if (this.#signal?.aborted) throw abortReason(this.#signal);
        if (this.#end && !this.#end.aborted) {
          this.#port.close();
          return;
        }
        throw new AbortError(
          this.#end ? `${this.name}: the sender aborted the stream (${this.#end.reason ?? 'no reason'})` : `${this.name}: the channel closed before the end of the stream`,
        );
      }
      yield d;
    }
  }

  /**
   * After cancellation: hands every message still queued or still on the way to `release`
   * (which frees its bytes) until the sender's end frame or the port's close, then closes.
   * Rejects with TimeoutError past `timeoutMs` (the port is closed anyway).
   */
  async drain(release: (d: Delivery<T>) => void, options: { timeoutMs?: number } = {}): Promise<number> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    let n = 0;
    try {
      for (;;) {
        const d = await this.#next(ac.signal);
        if (d === undefined) {
          if (ac.signal.aborted) throw new TimeoutError(`${this.name}: draining the channel`, timeoutMs);
          return n;
        }
        n++;
        release(d);
        this.heldBytes -= d.bytes;
      }
    } finally {
      clearTimeout(timer);
      this.close('drained');
    }
  }

  /** Tells the sender the receiver is gone (its sends fail) and closes the port. */
  close(reason = 'receiver closed'): void {
    if (this.#port.isClosed) return;
    if (this.#end === undefined) {
      try {
        this.#port.send({ type: 'credit.closed', reason }, []);
      } catch {
        // already closed
      }
    }
    this.#port.close();
  }

  /** The next delivery, or undefined at the end / close / abort of `signal`. */
  async #next(signal: AbortSignal | undefined): Promise<Delivery<T> | undefined> {
    for (;;) {
      const d = this.#queue.shift();
      if (d !== undefined) {
        this.queuedBytes -= d.bytes;
        return d;
      }
      if (this.#end || this.#portClosed || signal?.aborted) return undefined;
      const w = (this.#waiter = deferred<void>());
      await park(w, signal, () => {
        if (this.#waiter === w) this.#waiter = undefined;
      });
    }
  }
}
