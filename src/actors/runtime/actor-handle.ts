/**
 * One actor as its supervisor sees it: typed messages in and out, its state, and a failure that
 * always settles (a crash, an exit, a missed heartbeat, start or cancel deadline: a typed
 * WorkerError, the thread terminated where it hangs). Spawned by `ActorPool.spawn`.
 */
import type { MessagePort, Transferable, Worker } from 'node:worker_threads';
import { Subject, type Observable } from 'rxjs';
import { AbortError, CompactorError, TimeoutError, WorkerError, deserializeError } from '../../errors.js';
import { deferred, onAbort, abortReason, type Deferred } from '../../util/async.js';
import type { ActorOutcome, ControlFromActor, ControlToActor, RuntimeToActor } from '../../messages/control.js';
import { TypedPort } from '../../messages/typed-port.js';
import type { Message, MessageOf } from '../../messages/types.js';
import type { ActorTaskResult } from './actor-worker.js';
import { raceWorker, wrapPort, type RaceOptions, type Remote } from './rpc.js';
import { threadFailure } from './supervision.js';

export type ActorState = 'starting' | 'running' | 'ended';

export interface HandleInit {
  name: string;
  run: Promise<ActorTaskResult>;
  abort: AbortController;
  control: MessagePort;
  rpc: MessagePort;
  heartbeatTimeoutMs: number;
  startTimeoutMs: number;
  findThread(id: number): Worker | undefined;
}

export interface WaitForOptions<M> {
  filter?: (msg: M) => boolean;
  /** Reject with TimeoutError past this. Default: none (the actor's failure/end still ends the wait). */
  deadlineMs?: number;
  signal?: AbortSignal;
}

/** The supervisor's side of one actor (main thread). `In`/`Out` as in `Actor<I, In, Out>`. */
export class ActorHandle<In extends Message = never, Out extends Message = never> {
  readonly name: string;
  /** The control port: receives the actor's messages, sends `In` (and runtime messages). */
  readonly control: TypedPort<ControlFromActor<Out>, ControlToActor<In>>;
  /** Every message of the actor (heartbeats included), hot; completes when the actor has ended. */
  readonly events$: Observable<ControlFromActor<Out>>;
  /** Resolves with the actor's first failure; stays pending when it never fails. Never rejects. */
  readonly failure: Promise<CompactorError>;
  /** Resolves once the actor's task has ended (thread gone too when it was killed). Never rejects. */
  readonly ended: Promise<ActorOutcome>;
  /**
   * Settles when the actor's task has ended: resolves when it completed, was cancelled or
   * stopped; rejects with its failure (WorkerError for a crashed, exited, unresponsive or
   * terminated worker; the actor's own typed error when it failed).
   */
  readonly exited: Promise<void>;

  readonly #init: HandleInit;
  readonly #events = new Subject<ControlFromActor<Out>>();
  readonly #failure = deferred<CompactorError>();
  readonly #ended = deferred<ActorOutcome>();
  readonly #exited = deferred<void>();
  #state: ActorState = 'starting';
  #error: CompactorError | undefined;
  #threadId: number | undefined;
  #worker: Worker | undefined;
  #lastSeen = Date.now();
  #watchdog: NodeJS.Timeout | undefined;
  #startTimer: NodeJS.Timeout | undefined;
  #taskSettled = false;
  #killed = false;
  #acked = false;
  #ackWaiters: Deferred<void>[] = [];
  #remote: Remote<unknown> | undefined;

  constructor(init: HandleInit) {
    this.#init = init;
    this.name = init.name;
    this.control = new TypedPort<ControlFromActor<Out>, ControlToActor<In>>(init.control, `actor ${init.name} control (supervisor side)`);
    this.events$ = this.#events.asObservable();
    this.failure = this.#failure.promise;
    this.ended = this.#ended.promise;
    this.exited = this.#exited.promise;
    this.exited.catch(() => {}); // observed through `failure`/`ended` too; never an unhandled rejection

    this.control.onAny((msg) => this.#onMessage(msg));
    this.#startTimer = setTimeout(() => {
      if (this.#state !== 'starting') return;
      this.#failAndKill(new WorkerError('ERR_WORKER_UNRESPONSIVE', `actor ${this.name} did not start within ${init.startTimeoutMs} ms`));
    }, init.startTimeoutMs);
    this.#startTimer.unref();

    init.run.then(
      (result) => {
        this.#taskSettled = true;
        if (result.outcome === 'failed' && result.error) this.#fail(deserializeError(result.error));
        void this.#finish(result.outcome);
      },
      (err: unknown) => {
        this.#taskSettled = true;
        this.#killed = true;
        if (!this.#error) this.#fail(threadFailure(this.name, err, this.#init.abort.signal.aborted));
        void this.#finish('failed');
      },
    );
  }

  get state(): ActorState {
    return this.#state;
  }

  /** The first failure, once there is one. */
  get error(): CompactorError | undefined {
    return this.#error;
  }

  /** The worker thread's id (known once the actor reported `ready`). */
  get threadId(): number | undefined {
    return this.#threadId;
  }

  /** Sends a pipeline message to the actor. Throws AbortError when the actor has ended. */
  send(msg: In, transfer?: readonly Transferable[]): void {
    this.control.send(msg, transfer);
  }

  /**
   * The next message of `type` (matching `filter`). Subscribe before triggering it. Rejects with
   * the actor's failure, with WorkerError ERR_WORKER_EXITED when the actor ends first, with
   * TimeoutError past `deadlineMs`, or on `signal`.
   */
  waitFor<T extends ControlFromActor<Out>['type']>(
    type: T,
    options: WaitForOptions<MessageOf<ControlFromActor<Out>, T>> = {},
  ): Promise<MessageOf<ControlFromActor<Out>, T>> {
    type M = MessageOf<ControlFromActor<Out>, T>;
    const d = deferred<M>();
    const off = (this.control as unknown as TypedPort<Message>).on(type as string, (raw) => {
      const m = raw as M;
      if (!options.filter || options.filter(m)) d.resolve(m);
    });
    void this.failure.then((e) => d.reject(e));
    void this.ended.then(() => d.reject(this.#error ?? new WorkerError('ERR_WORKER_EXITED', `actor ${this.name} ended before sending "${type}"`)));
    const offAbort = onAbort(options.signal, () => d.reject(abortReason(options.signal!)));
    const timer = options.deadlineMs === undefined ? undefined : setTimeout(() => d.reject(new TimeoutError(`waiting for "${type}" from actor ${this.name}`, options.deadlineMs!)), options.deadlineMs);
    return d.promise.finally(() => {
      off();
      offAbort();
      if (timer) clearTimeout(timer);
    });
  }

  /**
   * Cancels the actor: it aborts its work, releases its bytes, acks and ends. Resolves on the
   * ack (or at once when the actor has already ended). Past `deadlineMs` (default 5000) the
   * thread is terminated and this rejects with WorkerError ERR_WORKER_UNRESPONSIVE.
   */
  async cancel(options: { deadlineMs?: number; reason?: string } = {}): Promise<void> {
    const deadlineMs = options.deadlineMs ?? 5000;
    if (this.#state === 'ended' || this.#acked || this.#taskSettled) return;
    const ack = deferred<void>();
    this.#ackWaiters.push(ack);
    this.#sendRuntime({ type: 'cancel', reason: options.reason ?? 'cancelled by the supervisor' });
    const timer = setTimeout(() => ack.reject(new WorkerError('ERR_WORKER_UNRESPONSIVE', `actor ${this.name} did not acknowledge cancel within ${deadlineMs} ms`)), deadlineMs);
    try {
      await ack.promise;
    } catch (e) {
      this.#failAndKill(e as CompactorError);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Asks the actor to end (its signal aborts); terminates it past `deadlineMs` (default 5000). Resolves with its outcome. */
  async stop(options: { deadlineMs?: number } = {}): Promise<ActorOutcome> {
    const deadlineMs = options.deadlineMs ?? 5000;
    if (this.#state !== 'ended') this.#sendRuntime({ type: 'stop' });
    const timer = setTimeout(() => this.#failAndKill(new WorkerError('ERR_WORKER_UNRESPONSIVE', `actor ${this.name} did not stop within ${deadlineMs} ms`)), deadlineMs);
    try {
      return await this.ended;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Kills the worker thread (piscina abort; piscina starts a replacement) unless the task has
   * already ended. Resolves once the actor has ended and its thread is gone.
   */
  terminate(reason = 'terminated by the supervisor'): Promise<ActorOutcome> {
    if (!this.#taskSettled && !this.#init.abort.signal.aborted) {
      if (!this.#error) this.#fail(new WorkerError('ERR_WORKER_EXITED', `actor ${this.name} ${reason}`, { retryable: true }));
      this.#killed = true;
      this.#init.abort.abort(new AbortError(reason));
    }
    return this.ended;
  }

  /** A comlink proxy of what the actor passed to `ctx.expose`. Call it through `call`/`raceWorker`. */
  remote<T>(): Remote<T> {
    this.#remote ??= wrapPort<unknown>(this.#init.rpc);
    return this.#remote as Remote<T>;
  }

  /** `raceWorker(fn(remote), this, options)`: a comlink call bounded by a deadline and by the actor's life. */
  call<T, R>(fn: (remote: Remote<T>) => Promise<R>, options: RaceOptions = {}): Promise<R> {
    return raceWorker(() => fn(this.remote<T>()), this, options);
  }

  #sendRuntime(msg: RuntimeToActor): void {
    if (this.control.isClosed) return;
    try {
      (this.control as unknown as TypedPort<never, RuntimeToActor>).send(msg, []);
    } catch {
      // closed concurrently: the end of the actor settles the waits
    }
  }

  #onMessage(msg: ControlFromActor<Out>): void {
    this.#lastSeen = Date.now();
    switch (msg.type) {
      case 'ready':
        if (this.#state === 'starting') this.#state = 'running';
        this.#threadId = (msg as MessageOf<ControlFromActor<never>, 'ready'>).threadId;
        this.#worker = this.#init.findThread(this.#threadId);
        if (this.#startTimer) clearTimeout(this.#startTimer);
        this.#startWatchdog();
        break;
      case 'failed': {
        const m = msg as MessageOf<ControlFromActor<never>, 'failed'>;
        this.#fail(deserializeError(m.error));
        break;
      }
      case 'cancel.ack':
        this.#acked = true;
        for (const w of this.#ackWaiters.splice(0)) w.resolve();
        break;
      default:
        break;
    }
    this.#events.next(msg);
  }

  #startWatchdog(): void {
    const timeout = this.#init.heartbeatTimeoutMs;
    const tick = Math.max(10, Math.floor(timeout / 4));
    this.#watchdog = setInterval(() => {
      if (Date.now() - this.#lastSeen <= timeout) return;
      // Messages queued while this thread's own loop was busy are read in the poll phase, after
      // timers: look again after them before declaring the actor unresponsive.
      setImmediate(() => {
        if (this.#state === 'ended' || Date.now() - this.#lastSeen <= timeout) return;
        this.#failAndKill(new WorkerError('ERR_WORKER_UNRESPONSIVE', `actor ${this.name} sent no heartbeat for ${timeout} ms`));
      });
    }, tick);
    this.#watchdog.unref();
  }

  #fail(err: CompactorError): void {
    if (this.#error) return;
    this.#error = err;
    this.#failure.resolve(err);
  }

  #failAndKill(err: CompactorError): void {
    this.#fail(err);
    for (const w of this.#ackWaiters.splice(0)) w.reject(err);
    void this.terminate(err.message);
  }

  async #finish(outcome: ActorOutcome): Promise<void> {
    if (this.#watchdog) clearInterval(this.#watchdog);
    if (this.#startTimer) clearTimeout(this.#startTimer);
    // Wait for the actor's last messages (they travel on the control port, the result on
    // piscina's port) and, when the thread was killed, for the thread to be gone.
    const waits: Promise<unknown>[] = [this.control.closed];
    if (this.#killed && this.#worker && this.#worker.threadId !== -1) {
      const w = this.#worker;
      waits.push(new Promise<void>((resolve) => w.once('exit', () => resolve())));
    }
    // A task killed before its actor reported `ready` may never have reached a thread (queued
    // in piscina): its port would never close, so do not wait long for it.
    const graceMs = this.#threadId === undefined && this.#killed ? 300 : 5000;
    const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.all(waits), grace]);
    this.#state = 'ended';
    for (const w of this.#ackWaiters.splice(0)) w.resolve();
    this.control.close();
    this.#init.rpc.close();
    this.#events.complete();
    if (this.#error) this.#exited.reject(this.#error);
    else this.#exited.resolve();
    this.#ended.resolve(this.#error ? 'failed' : outcome);
  }
}
