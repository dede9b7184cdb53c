import type { Transferable } from 'node:worker_threads';
import { CompactorError } from '../../errors.js';
import type { ControlFromActor } from '../../messages/control.js';
import { TypedPort } from '../../messages/typed-port.js';
import type { Message } from '../../messages/types.js';
import type { MemoryBudget } from './memory-budget.js';

/**
 * What an actor function receives on its worker thread.
 *
 *   export const pipeline: Actor<PipelineInit, SupervisorToPipeline, PipelineReport> = async (ctx) => {
 *     for await (const msg of ctx.messages()) { ... ctx.send({ type: 'iteration.done', ... }) }
 *   };
 *
 * `In` are the pipeline's supervisor->actor messages, `Out` its actor->supervisor messages; the
 * runtime's own (cancel, heartbeat, ready, failed, stopped...) are added and handled for it.
 */
export interface ActorContext<I = unknown, In extends Message = never, Out extends Message = never> {
  readonly name: string;
  readonly threadId: number;
  readonly init: I;
  /** The port to the supervisor. Runtime messages (cancel/stop) never reach its iterator. */
  readonly control: TypedPort<In, ControlFromActor<Out>>;
  /** The run's memory budget (throws when the actor was spawned without one). */
  readonly budget: MemoryBudget;
  /** Aborted on `cancel` or `stop` (reason: AbortError). Pass it to every wait. */
  readonly signal: AbortSignal;
  /** True once a `cancel` arrived (as opposed to `stop`). */
  readonly cancelled: boolean;
  /** Sends to the supervisor; a no-op once the control port is closed. */
  send(msg: ControlFromActor<Out>, transfer?: readonly Transferable[]): void;
  /** The supervisor's messages (`In`) in order; ends when `signal` aborts or the port closes. */
  messages(): AsyncGenerator<In, void, undefined>;
  /** Reports a failure (serialized with class, code, retryable, cause). The actor keeps running until cancelled. */
  fail(err: unknown, iteration?: number): void;
  /** Serves `api` to the supervisor over comlink (`handle.remote<typeof api>()`). */
  expose(api: object): void;
}

/** An actor: the exported async function a worker runs for the lifetime of the actor. */
export type Actor<I = unknown, In extends Message = never, Out extends Message = never> = (ctx: ActorContext<I, In, Out>) => Promise<void>;

export function isAbortLike(e: unknown): boolean {
  if (e instanceof CompactorError) return e.code === 'ERR_ABORTED';
  return e instanceof Error && e.name === 'AbortError';
}
