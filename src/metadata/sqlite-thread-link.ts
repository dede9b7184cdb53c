/**
 * One thread of `SqliteThreadStore` seen from the host: its calls in flight, and the one place
 * where they all settle when the thread fails.
 *
 * A plain request/reply protocol rather than comlink: a call must reject with the store's own
 * typed error (comlink rebuilds thrown errors without their class and code), and every call in
 * flight must reject when the thread dies or stops answering (comlink's would wait forever).
 */
import { Worker } from 'node:worker_threads';
import { deserializeError, MetadataError, OptionsError, TimeoutError, WorkerError, type CompactorError } from '../errors.js';
import { deferred, type Deferred } from '../util/async.js';
import { WRITE_METHODS, type StoreCall, type StoreMethod, type StoreReply } from './sqlite-thread-protocol.js';
import type { SqliteMetadataStoreOptions } from './sqlite-store.js';

const here = import.meta.url;
const ENTRY = new URL('./sqlite-thread-entry.cjs', here);
/** The least time the open gets, whatever `callTimeoutMs` is. */
const OPEN_TIMEOUT_MS = 30_000;
const MODULE = new URL(here.endsWith('.ts') ? './sqlite-thread-worker.ts' : './sqlite-thread-worker.js', here).href;

interface InFlight {
  method: StoreMethod | 'close';
  reply: Deferred<unknown>;
}

export class StoreThread {
  /** Resolves once the database is open in the thread; rejects with the open's error. */
  readonly ready: Promise<void>;
  readonly #path: string;
  readonly #timeoutMs: number;
  readonly #openTimeoutMs: number;
  readonly #worker: Worker;
  readonly #readyD = deferred<void>();
  readonly #inFlight = new Map<number, InFlight>();
  #seq = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #failure: CompactorError | undefined;
  readonly #exited = deferred<void>();

  /**
   * @param timeoutMs how long the thread may go without answering while a call waits: past it,
   *   every call in flight fails and the thread is terminated. The open has at least
   *   `OPEN_TIMEOUT_MS`: a thread's start and module load take seconds on a loaded machine.
   */
  constructor(options: Omit<SqliteMetadataStoreOptions, 'now'>, timeoutMs: number) {
    this.#path = options.path;
    this.#timeoutMs = timeoutMs;
    this.#openTimeoutMs = Math.max(timeoutMs, OPEN_TIMEOUT_MS);
    this.ready = this.#readyD.promise;
    // A rejected open is the caller's to see (through `ready`); until then it is not unhandled.
    this.ready.catch(() => {});
    this.#worker = new Worker(ENTRY, { workerData: { module: MODULE, options } });
    this.#worker.on('message', (m: StoreReply) => this.#onMessage(m));
    this.#worker.on('error', (err) => this.#fail(new WorkerError('ERR_WORKER_CRASHED', `the metadata thread of ${this.#path} crashed: ${err.message}`, { cause: err })));
    this.#worker.once('exit', (code) => {
      this.#fail(new WorkerError('ERR_WORKER_EXITED', `the metadata thread of ${this.#path} exited (code ${code})`));
      this.#worker.removeAllListeners();
      this.#exited.resolve();
    });
    this.#arm();
  }

  /** True until the thread failed or ended: then a new one is needed. */
  get usable(): boolean {
    return this.#failure === undefined;
  }

  call(method: StoreMethod | 'close', args: unknown[]): Promise<unknown> {
    if (this.#failure !== undefined) return Promise.reject(this.#lost(method, this.#failure));
    const id = ++this.#seq;
    const reply = deferred<unknown>();
    this.#inFlight.set(id, { method, reply });
    try {
      this.#worker.postMessage({ id, method, args } satisfies StoreCall);
    } catch (err) {
      // An argument that cannot be cloned (a function, a class instance with private state).
      this.#inFlight.delete(id);
      return Promise.reject(new OptionsError('arguments', `${method} cannot take them to the metadata thread: ${(err as Error).message}`));
    }
    this.#arm();
    return reply.promise;
  }

  /**
   * Closes the database in the thread (a call like any other, under the same watchdog) and waits
   * for the thread to end; a thread held in SQLite's busy wait ends when that wait does.
   */
  async close(): Promise<void> {
    try {
      if (this.usable) await this.call('close', []);
    } finally {
      if (this.usable) this.#fail(new MetadataError('ERR_METADATA_CLOSED', `the metadata store ${this.#path} is closed`));
      await this.#exited.promise;
    }
  }

  #onMessage(m: StoreReply): void {
    if (m.kind === 'ready') {
      this.#readyD.resolve();
    } else if (m.kind === 'failed') {
      const err = deserializeError(m.error);
      this.#readyD.reject(err);
      this.#fail(err);
    } else {
      const call = this.#inFlight.get(m.id);
      if (call === undefined) return;
      this.#inFlight.delete(m.id);
      if (m.ok) call.reply.resolve(m.value);
      else call.reply.reject(deserializeError(m.error));
    }
    this.#arm();
  }

  /**
   * The watchdog runs while something waits (the open or a call) and restarts at every answer:
   * a thread that keeps answering is never cut off, one that went silent is within the deadline.
   * The thread is referenced only meanwhile, so an idle store keeps no process alive.
   */
  #arm(): void {
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    if (this.#failure !== undefined) {
      // Ending: referenced until its exit, or a process awaiting `close` (or a failed open's
      // cleanup) would end mid-await, with code 0 and nothing said.
      this.#worker.ref();
      return;
    }
    if (this.#readyD.settled && this.#inFlight.size === 0) {
      this.#worker.unref();
      return;
    }
    this.#worker.ref();
    const opening = !this.#readyD.settled;
    const ms = opening ? this.#openTimeoutMs : this.#timeoutMs;
    this.#watchdog = setTimeout(() => {
      const what = opening ? `opening the metadata store ${this.#path}` : `a metadata call on ${this.#path}`;
      this.#fail(
        new WorkerError('ERR_WORKER_UNRESPONSIVE', `the metadata thread of ${this.#path} did not answer within ${ms} ms${opening ? '' : ' (option callTimeoutMs)'}`, {
          cause: new TimeoutError(what, ms),
        }),
      );
    }, ms);
  }

  /** Settles everything still waiting with `reason` and ends the thread. Idempotent. */
  #fail(reason: CompactorError): void {
    if (this.#failure !== undefined) return;
    this.#failure = reason;
    this.#readyD.reject(new MetadataError('ERR_METADATA_IO', `cannot open the metadata store ${this.#path}: ${reason.message}`, { cause: reason, retryable: true }));
    for (const { method, reply } of this.#inFlight.values()) reply.reject(this.#lost(method, reason));
    this.#inFlight.clear();
    this.#arm();
    void this.#worker.terminate();
  }

  /** A call the thread will not answer: a change may have landed, a read is worth retrying. */
  #lost(method: StoreMethod | 'close', reason: CompactorError): CompactorError {
    if (reason.code === 'ERR_METADATA_CLOSED') return reason;
    if (method !== 'close' && WRITE_METHODS.has(method)) {
      return new MetadataError('ERR_METADATA_OUTCOME_UNKNOWN', `${method} on ${this.#path}: ${reason.message}; the change may or may not be in`, { cause: reason });
    }
    return new MetadataError('ERR_METADATA_IO', `${method} on ${this.#path}: ${reason.message}`, { cause: reason, retryable: true });
  }
}
