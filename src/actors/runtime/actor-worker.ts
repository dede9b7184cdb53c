/**
 * The piscina task that hosts one actor for its whole life (worker thread side). piscina loads
 * `worker-entry.cjs`, which imports this module.
 */
import { setMaxListeners } from 'node:events';
import { threadId, type MessagePort, type Transferable } from 'node:worker_threads';
import { workerData } from 'piscina';
import { AbortError, CompactorError, WorkerError, serializeError, type SerializedError } from '../../errors.js';
import type { ActorOutcome, ControlFromActor, RuntimeToActor } from '../../messages/control.js';
import { TypedPort } from '../../messages/typed-port.js';
import type { Message } from '../../messages/types.js';
import { isAbortLike, type ActorContext } from './actor-context.js';
import { MemoryBudget, type MemoryBudgetHandle } from './memory-budget.js';
import { exposeOnPort } from './rpc.js';

// The pool's preloads start at once; an actor's own import of the same module then finds it
// loaded or loading. A failure here is the actor's to report when it imports the module itself.
// Once all are in, the thread counts itself in (`ActorPool.threadsPreloaded`).
{
  const data = workerData as { preload?: string[]; preloaded?: SharedArrayBuffer } | undefined;
  const loads = (data?.preload ?? []).map((href) => import(href).catch(() => {}));
  if (data?.preloaded) void Promise.all(loads).then(() => Atomics.add(new Int32Array(data.preloaded!), 0, 1));
}

/** What `ActorPool.spawn` posts as the piscina task. */
export interface ActorTask {
  name: string;
  moduleUrl: string;
  exportName: string;
  init: unknown;
  control: MessagePort;
  rpc: MessagePort;
  budget: MemoryBudgetHandle | undefined;
  heartbeatMs: number;
}

export interface ActorTaskResult {
  outcome: ActorOutcome;
  error?: SerializedError;
}

type AnyIn = Message;
type AnyOut = ControlFromActor<Message>;

export default async function runActorTask(task: ActorTask): Promise<ActorTaskResult> {
  const control = new TypedPort<AnyIn | RuntimeToActor, AnyOut>(task.control, `actor ${task.name} control`);
  const ac = new AbortController();
  // Every request of the actor listens on its signal while in flight (the uploader's parts and
  // stream objects, often more than 10 at once, each removing its listener when done): Node's
  // default limit would warn of a leak that is not there (MaxListenersExceededWarning).
  setMaxListeners(0, ac.signal);
  let cancelled = false;
  let failedError: CompactorError | undefined;
  const send = (msg: AnyOut, transfer?: readonly Transferable[]): void => {
    if (control.isClosed) return;
    try {
      control.send(msg, transfer);
    } catch {
      // the supervisor closed the port: nobody listens any more
    }
  };
  control.on('cancel', (m) => {
    cancelled = true;
    ac.abort(new AbortError(`actor ${task.name} cancelled: ${m.reason}`));
  });
  control.on('stop', () => ac.abort(new AbortError(`actor ${task.name} stopped`)));
  void control.closed.then(() => ac.abort(new AbortError(`actor ${task.name}: supervisor closed the control port`)));

  let seq = 0;
  const heartbeat = setInterval(() => send({ type: 'heartbeat', seq: ++seq }), Math.max(1, task.heartbeatMs));
  const budget = task.budget ? MemoryBudget.attach(task.budget) : undefined;

  const ctx: ActorContext<unknown, AnyIn, Message> = {
    name: task.name,
    threadId,
    init: task.init,
    control: control as unknown as ActorContext<unknown, AnyIn, Message>['control'],
    get budget(): MemoryBudget {
      if (!budget) throw new CompactorError('ERR_INTERNAL', `actor ${task.name} was spawned without a memory budget`);
      return budget;
    },
    signal: ac.signal,
    get cancelled() {
      return cancelled;
    },
    send,
    messages: () => control.iterate({ signal: ac.signal }) as AsyncGenerator<AnyIn, void, undefined>,
    fail(err, iteration) {
      const e = asActorError(err, task.name);
      failedError ??= e;
      send({ type: 'failed', error: serializeError(e), ...(iteration !== undefined ? { iteration } : {}) });
    },
    expose(api) {
      exposeOnPort(api, task.rpc);
    },
  };

  let result: ActorTaskResult;
  try {
    const mod = (await import(task.moduleUrl)) as Record<string, unknown>;
    const fn = mod[task.exportName];
    if (typeof fn !== 'function') throw new CompactorError('ERR_INTERNAL', `actor module ${task.moduleUrl} has no exported function "${task.exportName}"`);
    send({ type: 'ready', name: task.name, threadId });
    await (fn as (c: typeof ctx) => Promise<void>)(ctx);
    result = failedError ? failed(failedError) : { outcome: ac.signal.aborted ? (cancelled ? 'cancelled' : 'stopped') : 'completed' };
  } catch (err) {
    if (ac.signal.aborted && (isAbortLike(err) || cancelled)) {
      result = { outcome: cancelled ? 'cancelled' : 'stopped' };
    } else {
      const e = failedError ?? asActorError(err, task.name);
      if (!failedError) send({ type: 'failed', error: serializeError(e) });
      result = failed(e);
    }
  } finally {
    clearInterval(heartbeat);
  }
  if (cancelled) send({ type: 'cancel.ack', budgetInUse: budget?.inUse });
  send({ type: 'stopped', outcome: result.outcome });
  control.close();
  task.rpc.close();
  return result;
}

function failed(e: CompactorError): ActorTaskResult {
  return { outcome: 'failed', error: serializeError(e) };
}

/** A CompactorError stays as it is; anything else thrown by an actor is a crash of that actor. */
function asActorError(err: unknown, name: string): CompactorError {
  if (err instanceof CompactorError) return err;
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new WorkerError('ERR_WORKER_CRASHED', `actor ${name} threw ${message}`, { cause: err });
}
