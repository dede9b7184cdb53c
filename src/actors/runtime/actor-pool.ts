import { MessageChannel, type MessagePort, type ResourceLimits, type Transferable, type Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { Subject, type Observable } from 'rxjs';
import {
  AbortError,
  CompactorError,
  StateError,
  TimeoutError,
  WorkerError,
  deserializeError,
} from '../../errors.js';
import { deferred, onAbort, abortReason, type Deferred } from '../../util/async.js';
import type { ActorOutcome, ControlFromActor, ControlToActor, RuntimeToActor } from '../../messages/control.js';
import { TypedPort } from '../../messages/typed-port.js';
import type { Message, MessageOf } from '../../messages/types.js';
import type { ActorTask, ActorTaskResult } from './actor-worker.js';
import type { MemoryBudget } from './memory-budget.js';
import { raceWorker, wrapPort, type RaceOptions, type Remote } from './rpc.js';

/**
 * Hosts actors on a piscina pool: each actor is one long-running piscina task on its own worker
 * thread, talking to its supervisor over a control port (typed messages) and a comlink port.
 *
 * Everything that can go wrong with a thread is turned into a typed WorkerError on the handle:
 * an uncaught exception (ERR_WORKER_CRASHED), `process.exit` (ERR_WORKER_EXITED), no message
 * within the heartbeat deadline, no `ready` within the start deadline or no cancel ack within
 * the cancel deadline (ERR_WORKER_UNRESPONSIVE, and the thread is terminated). piscina replaces
 * every thread that dies or is terminated.
 */

export interface ActorPoolOptions {
  /** Worker threads (min = max). Each running actor occupies one; further spawns wait for one. */
  threads: number;
  /** Default interval of the actors' heartbeats. Default 500 ms. */
  heartbeatMs?: number;
  /** Default: fail an actor with ERR_WORKER_UNRESPONSIVE after this long without any message. Default 10 000 ms. */
  heartbeatTimeoutMs?: number;
  /** Default: fail an actor that has not reported `ready` this long after spawn (thread start and module load included). Default 30 000 ms. */
  startTimeoutMs?: number;
  /** Default memory budget handed to spawned actors. */
  budget?: MemoryBudget;
  resourceLimits?: ResourceLimits;
  /**
   * Modules every thread imports as soon as it starts, before any actor asks for them: a heavy
   * dependency (the S3 SDK) loads while the host is still busy elsewhere, off a run's critical path.
   */
  preload?: readonly URL[];
}

export interface SpawnOptions {
  /** Names the actor in errors and logs. Default: the export name with a sequence number. */
  name?: string;
  /** Transferables inside `init` (ArrayBuffers, ports...). */
  transferList?: readonly Transferable[];
  /** Overrides the pool's budget; `null` for none. */
  budget?: MemoryBudget | null;
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  startTimeoutMs?: number;
}

export type ActorState = 'starting' | 'running' | 'ended';

const here = import.meta.url;
/** From TypeScript source (vitest, tsx) workers start through the tsx shim; from dist directly. */
export const ACTOR_WORKER_FILENAME = here.endsWith('.ts') ? new URL('./worker-shim.mjs', here).href : new URL('./actor-worker.js', here).href;

export class ActorPool {
  readonly threads: number;
  readonly #piscina: Piscina;
  readonly #opts: Required<Pick<ActorPoolOptions, 'heartbeatMs' | 'heartbeatTimeoutMs' | 'startTimeoutMs'>> & { budget: MemoryBudget | undefined };
  readonly #live = new Map<number, Worker>();
  readonly #handles = new Set<ActorHandle<Message, Message>>();
  #seq = 0;
  #closing: Promise<void> | undefined;

  constructor(options: ActorPoolOptions) {
    if (!Number.isSafeInteger(options.threads) || options.threads < 1) throw new TypeError(`ActorPool: threads must be a positive integer, got ${options.threads}`);
    this.threads = options.threads;
    this.#opts = {
      heartbeatMs: options.heartbeatMs ?? 500,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 10_000,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
      budget: options.budget,
    };
    this.#piscina = new Piscina({
      filename: ACTOR_WORKER_FILENAME,
      minThreads: options.threads,
      maxThreads: options.threads,
      concurrentTasksPerWorker: 1,
      atomics: 'disabled',
      workerData: { preload: (options.preload ?? []).map((u) => u.href) },
      idleTimeout: 24 * 3600 * 1000,
      // The SDK warns once per thread that Node 20 support ends: keep that out of the host's
      // stderr for the threads we start, without touching the host's own environment.
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}),
    });
    // Errors of a thread without a task (piscina emits them on the pool) must not crash the host;
    // errors of threads running an actor reach that actor's handle through its task.
    this.#piscina.on('error', () => {});
    this.#piscina.on('workerCreate', () => this.#trackThreads());
    this.#trackThreads();
  }

  /** Worker threads that have started and not yet exited (0 after `close()`). */
  get liveThreads(): number {
    this.#trackThreads();
    return this.#live.size;
  }

  /** Thread ids of the live worker threads. */
  get threadIds(): number[] {
    this.#trackThreads();
    return [...this.#live.keys()];
  }

  /** Actors spawned and not yet ended. */
  get activeActors(): number {
    return this.#handles.size;
  }

  /**
   * Starts an actor: the worker imports `actorModule` and runs its export `exportName`, an
   * `Actor<I, In, Out>`, with `init` (structured-cloned; list its ArrayBuffers in `transferList`).
   */
  spawn<I = unknown, In extends Message = never, Out extends Message = never>(
    actorModule: string | URL,
    exportName: string,
    init: I,
    options: SpawnOptions = {},
  ): ActorHandle<In, Out> {
    if (this.#closing) throw new StateError('ERR_CLOSED', 'ActorPool is closed');
    const name = options.name ?? `${exportName}#${++this.#seq}`;
    const control = new MessageChannel();
    const rpc = new MessageChannel();
    const budget = options.budget === null ? undefined : (options.budget ?? this.#opts.budget);
    const task: ActorTask = {
      name,
      moduleUrl: typeof actorModule === 'string' ? (actorModule.includes('://') ? actorModule : new URL(actorModule, 'file://').href) : actorModule.href,
      exportName,
      init,
      control: control.port2,
      rpc: rpc.port2,
      budget: budget?.handle,
      heartbeatMs: options.heartbeatMs ?? this.#opts.heartbeatMs,
    };
    const abort = new AbortController();
    const transferList = [control.port2, rpc.port2, ...(options.transferList ?? [])];
    const run = this.#piscina.run(task, { transferList: transferList as never, signal: abort.signal }) as Promise<ActorTaskResult>;
    const handle = new ActorHandle<In, Out>({
      name,
      run,
      abort,
      control: control.port1,
      rpc: rpc.port1,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? this.#opts.heartbeatTimeoutMs,
      startTimeoutMs: options.startTimeoutMs ?? this.#opts.startTimeoutMs,
      findThread: (id) => {
        this.#trackThreads();
        return this.#live.get(id);
      },
    });
    const h = handle as unknown as ActorHandle<Message, Message>;
    this.#handles.add(h);
    void handle.ended.then(() => this.#handles.delete(h));
    return handle;
  }

  /** Terminates every actor, ends every thread, and resolves once all worker threads have exited. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#handles].map((h) => h.terminate('the actor pool is closing')));
      this.#trackThreads();
      const exits = [...this.#live.values()].map((w) => new Promise<void>((resolve) => (w.threadId === -1 ? resolve() : w.once('exit', () => resolve()))));
      await this.#piscina.destroy();
      await Promise.all(exits);
      this.#trackThreads();
    })();
    return this.#closing;
  }

  #trackThreads(): void {
    for (const w of this.#piscina.threads) {
      const id = w.threadId;
      if (id < 0 || this.#live.has(id)) continue;
      this.#live.set(id, w);
      w.once('exit', () => this.#live.delete(id));
    }
  }
}

interface HandleInit {
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
        if (!this.#error) this.#fail(this.#threadError(err));
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

  #threadError(err: unknown): CompactorError {
    const e = err instanceof Error ? err : new Error(String(err));
    if (e.name === 'AbortError' && this.#init.abort.signal.aborted) {
      return new WorkerError('ERR_WORKER_EXITED', `actor ${this.name} was terminated`, { cause: e });
    }
    if (/worker exited with code/i.test(e.message)) {
      return new WorkerError('ERR_WORKER_EXITED', `actor ${this.name}: the worker thread exited (${e.message})`, { cause: e });
    }
    if (/terminating worker thread|pool is closed/i.test(e.message)) {
      return new WorkerError('ERR_WORKER_EXITED', `actor ${this.name}: ${e.message}`, { cause: e });
    }
    return new WorkerError('ERR_WORKER_CRASHED', `actor ${this.name}: the worker thread crashed: ${e.message}`, { cause: e });
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
