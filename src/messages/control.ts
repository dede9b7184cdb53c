import type { SerializedError } from '../errors.js';
import type { Message } from './types.js';

/**
 * Control plane between the supervisor (main thread) and one actor (worker thread). The actor
 * runtime handles these itself; pipeline code adds its own messages to the same port by
 * declaring them (see `ControlToActor` / `ControlFromActor`).
 */

// ---------------------------------------------------------------------------------------------
// Supervisor -> actor

/** Stop the current work: abort in-flight requests, release every byte, ack, end. Terminal. */
export interface CancelMessage {
  type: 'cancel';
  reason: string;
}

/** End gracefully (same mechanics as cancel, without an ack: the actor reports `stopped`). */
export interface StopMessage {
  type: 'stop';
}

export type RuntimeToActor = CancelMessage | StopMessage;

// ---------------------------------------------------------------------------------------------
// Actor -> supervisor

/** The actor module is loaded and its function is about to run. */
export interface ReadyMessage {
  type: 'ready';
  name: string;
  threadId: number;
}

/** Sent by a timer on the actor's event loop; a spinning or blocked thread stops sending them. */
export interface HeartbeatMessage {
  type: 'heartbeat';
  seq: number;
}

/** The actor has finished its cancellation: in-flight work aborted, its bytes released. */
export interface CancelAckMessage {
  type: 'cancel.ack';
  /** Bytes in use in the shared memory budget when the actor finished (all actors together). */
  budgetInUse: number | undefined;
}

/** The actor failed. The error keeps class, code, retryable and cause (see deserializeError). */
export interface FailedMessage {
  type: 'failed';
  error: SerializedError;
  iteration?: number;
}

export type ActorOutcome = 'completed' | 'cancelled' | 'stopped' | 'failed';

/** The actor's function has returned; last message on the control port. */
export interface StoppedMessage {
  type: 'stopped';
  outcome: ActorOutcome;
}

export type RuntimeFromActor = ReadyMessage | HeartbeatMessage | CancelAckMessage | FailedMessage | StoppedMessage;

/** Everything the supervisor may send an actor whose own inbound messages are `In`. */
export type ControlToActor<In extends Message = never> = RuntimeToActor | In;
/** Everything an actor whose own outbound messages are `Out` may send its supervisor. */
export type ControlFromActor<Out extends Message = never> = RuntimeFromActor | Out;

// ---------------------------------------------------------------------------------------------
// Iterations (generic shapes; the supervisor and actors of the pipeline pick their payloads)

export interface IterationStart<P = unknown> {
  type: 'iteration.start';
  iteration: number;
  attempt: number;
  payload: P;
}

export interface IterationProgress {
  type: 'iteration.progress';
  iteration: number;
  bytes: number;
  items: number;
}

export interface IterationDone<R = unknown> {
  type: 'iteration.done';
  iteration: number;
  attempt: number;
  result: R;
}

export interface IterationFailed {
  type: 'iteration.failed';
  iteration: number;
  attempt: number;
  error: SerializedError;
}
