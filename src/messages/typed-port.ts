import type { MessagePort, Transferable } from 'node:worker_threads';
import { AbortError } from '../errors.js';
import { deferred, onAbort, park, type Deferred } from '../util/async.js';
import { collectTransferables } from './transfer.js';
import type { Message, MessageOf } from './types.js';

/**
 * A MessagePort with a message union per direction, checked at compile time at both ends:
 * `In` is what this end receives, `Out` what it sends.
 *
 * Delivery: a message goes to the handlers registered with `on(type)` for its type and to the
 * `onAny` listeners; a message nobody handles is queued for async iteration (`for await`,
 * `iterate()`). Nothing is read from the port before the first `on`/`onAny`/iteration, so
 * messages sent before the receiving side is set up wait in the port itself.
 */
export class TypedPort<In extends Message, Out extends Message = never> {
  readonly port: MessagePort;
  readonly name: string;
  /** Transferred ArrayBuffers that Node copied instead of moving (pooled Buffers). Should stay 0. */
  copiedTransfers = 0;
  #handlers = new Map<string, Set<(m: In) => void>>();
  #any = new Set<(m: In) => void>();
  #queue: In[] = [];
  #waiter: Deferred<void> | undefined;
  #started = false;
  #closed = false;
  #closedD = deferred<void>();

  constructor(port: MessagePort, name = 'port') {
    this.port = port;
    this.name = name;
    port.once('close', () => this.#onClose());
  }

  /** True once either end closed the port. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Resolves when the port is closed (by either end, or because the peer thread died). */
  get closed(): Promise<void> {
    return this.#closedD.promise;
  }

  /** Messages received but not yet taken by an iterator. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Posts `msg`. `transfer` defaults to every ArrayBuffer and MessagePort found in `msg`
   * (`collectTransferables`); pass `[]` to copy instead. Sending on a closed port throws.
   */
  send(msg: Out, transfer?: readonly Transferable[]): void {
    if (this.#closed) throw new AbortError(`${this.name}: cannot send "${msg.type}" on a closed port`);
    const list = (transfer ?? collectTransferables(msg)) as Transferable[];
    this.port.postMessage(msg, list);
    for (const t of list) if (t instanceof ArrayBuffer && t.byteLength > 0) this.copiedTransfers++;
  }

  /** Handles every message of `type` (narrowed). Returns the remover. */
  on<T extends In['type']>(type: T, handler: (msg: MessageOf<In, T>) => void): () => void {
    let set = this.#handlers.get(type);
    if (!set) this.#handlers.set(type, (set = new Set()));
    const h = handler as (m: In) => void;
    set.add(h);
    this.#start();
    return () => {
      set.delete(h);
    };
  }

  /** Sees every message (after the type handlers). While one is registered nothing is queued. */
  onAny(handler: (msg: In) => void): () => void {
    this.#any.add(handler);
    this.#start();
    return () => {
      this.#any.delete(handler);
    };
  }

  /** The next message of `type` (narrowed), or rejects when the port closes or `signal` aborts. */
  once<T extends In['type']>(type: T, signal?: AbortSignal): Promise<MessageOf<In, T>> {
    const d = deferred<MessageOf<In, T>>();
    const off = this.on(type, (m) => d.resolve(m));
    const offAbort = onAbort(signal, () => d.reject(new AbortError(`${this.name}: waiting for "${type}" was aborted`, { cause: signal?.reason })));
    void this.closed.then(() => d.reject(new AbortError(`${this.name}: port closed while waiting for "${type}"`)));
    return d.promise.finally(() => {
      off();
      offAbort();
    });
  }

  /**
   * Unhandled messages in arrival order. Ends when the port closes (after the queue is drained)
   * or when `signal` aborts. One iterator at a time.
   */
  async *iterate(options: { signal?: AbortSignal } = {}): AsyncGenerator<In, void, undefined> {
    const { signal } = options;
    this.#start();
    for (;;) {
      if (signal?.aborted) return;
      const next = this.#queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#closed) return;
      const w = (this.#waiter = deferred<void>());
      await park(w, signal, () => {
        if (this.#waiter === w) this.#waiter = undefined;
      });
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<In, void, undefined> {
    return this.iterate();
  }

  /** Closes both ends. The peer sees `closed` resolve; iterators end. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.port.close();
    this.#onClose();
  }

  /** Lets the process exit while this port is open (the port no longer keeps the loop alive). */
  unref(): this {
    this.port.unref();
    return this;
  }

  ref(): this {
    this.port.ref();
    return this;
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.port.on('message', (m: In) => this.#dispatch(m));
  }

  #dispatch(msg: In): void {
    let handled = false;
    const set = this.#handlers.get(msg.type);
    if (set && set.size > 0) {
      handled = true;
      for (const h of [...set]) h(msg);
    }
    if (this.#any.size > 0) {
      handled = true;
      for (const h of [...this.#any]) h(msg);
    }
    if (!handled) {
      this.#queue.push(msg);
      this.#waiter?.resolve();
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter?.resolve();
    this.#closedD.resolve();
  }
}
