import { MessageChannel, type ResourceLimits, type Transferable, type Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { StateError } from '../../errors.js';
import type { Message } from '../../messages/types.js';
import type { ActorTask, ActorTaskResult } from './actor-worker.js';
import { ActorHandle } from './actor-handle.js';
import type { MemoryBudget } from './memory-budget.js';

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
  /**
   * Nice increment of every thread (piscina's `niceIncrement`, through `@napi-rs/nice`): where
   * CPU is short, the host's threads run before the pool's. Default 0. Applied on Linux only,
   * where a nice value is a thread's own: on macOS `nice()` would lower the whole process, host
   * included, and on Windows it takes thread-priority constants instead.
   */
  niceIncrement?: number;
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


const here = import.meta.url;
/** What piscina loads in each thread: CommonJS, see its header. */
export const ACTOR_WORKER_FILENAME = new URL('./worker-entry.cjs', here).href;
/** The actor runtime the entry imports: the TypeScript source under vitest and tsx, else dist. */
const ACTOR_WORKER_MODULE = new URL(here.endsWith('.ts') ? './actor-worker.ts' : './actor-worker.js', here).href;

export class ActorPool {
  readonly threads: number;
  readonly #piscina: Piscina;
  readonly #opts: Required<Pick<ActorPoolOptions, 'heartbeatMs' | 'heartbeatTimeoutMs' | 'startTimeoutMs'>> & { budget: MemoryBudget | undefined };
  readonly #live = new Map<number, Worker>();
  readonly #handles = new Set<ActorHandle<Message, Message>>();
  /** Threads that have loaded their preloads (actor-worker.ts counts itself in). */
  readonly #preloaded = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
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
      workerData: { actorWorker: ACTOR_WORKER_MODULE, preload: (options.preload ?? []).map((u) => u.href), preloaded: this.#preloaded.buffer },
      idleTimeout: 24 * 3600 * 1000,
      // The SDK warns once per thread that Node 20 support ends: keep that out of the host's
      // stderr for the threads we start, without touching the host's own environment.
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}),
      ...(options.niceIncrement && process.platform === 'linux' ? { niceIncrement: options.niceIncrement } : {}),
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

  /**
   * Threads that have loaded their preloads, ever (a replaced thread counts again): 0 while the
   * pool's first threads still boot, when an actor spawned now waits for its thread.
   */
  get threadsPreloaded(): number {
    return Atomics.load(this.#preloaded, 0);
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
