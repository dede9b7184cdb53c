import type { MessagePort } from 'node:worker_threads';
import type * as ComlinkTypes from 'comlink';
// The ESM builds of comlink have no .d.mts; their types are the package's (UMD) declarations.
// @ts-ignore -- typed through the cast below
import * as comlinkEsm from 'comlink/dist/esm/comlink.mjs';
// @ts-ignore -- typed through the cast below
import nodeEndpointEsm from 'comlink/dist/esm/node-adapter.mjs';
import { WorkerError, TimeoutError, type CompactorError, type WorkerErrorCode } from '../../errors.js';
import { deferred, onAbort, abortReason } from '../../util/async.js';

/**
 * comlink for the control plane (request/response calls such as `stats()`), over a dedicated
 * MessagePort per actor. comlink calls never settle when the worker dies, so every call from the
 * supervisor goes through `raceWorker`, which bounds it by a deadline and by the actor's end.
 */

export const Comlink = comlinkEsm as unknown as typeof ComlinkTypes;
export type Remote<T> = ComlinkTypes.Remote<T>;

type NodeEndpointFn = (port: MessagePort) => ComlinkTypes.Endpoint;
const nodeEndpoint = nodeEndpointEsm as unknown as NodeEndpointFn;

export function exposeOnPort(api: object, port: MessagePort): void {
  Comlink.expose(api, nodeEndpoint(port));
}

export function wrapPort<T>(port: MessagePort): Remote<T> {
  return Comlink.wrap<T>(nodeEndpoint(port));
}

/** What `raceWorker` needs from an actor handle. */
export interface RaceTarget {
  readonly name: string;
  /** Resolves with the actor's failure (crash, exit, unresponsive, reported error). */
  readonly failure: Promise<CompactorError>;
  /** Resolves when the actor's task has ended, whatever the outcome. */
  readonly ended: Promise<unknown>;
}

export interface RaceOptions {
  /** Default 5000 ms. Past it the call fails with WorkerError ERR_WORKER_UNRESPONSIVE. */
  deadlineMs?: number;
  signal?: AbortSignal;
  what?: string;
}

/**
 * Settles with `call`, or rejects when the actor fails or ends first (WorkerError), when the
 * deadline passes (WorkerError ERR_WORKER_UNRESPONSIVE, cause TimeoutError) or on `signal`.
 * Never waits on a dead or spinning thread.
 */
export async function raceWorker<T>(call: Promise<T> | (() => Promise<T>), target: RaceTarget, options: RaceOptions = {}): Promise<T> {
  const deadlineMs = options.deadlineMs ?? 5000;
  const what = options.what ?? 'control call';
  const d = deferred<T>();
  const timer = setTimeout(
    () =>
      d.reject(
        new WorkerError('ERR_WORKER_UNRESPONSIVE', `actor ${target.name}: ${what} got no answer within ${deadlineMs} ms`, {
          cause: new TimeoutError(`${what} to actor ${target.name}`, deadlineMs),
        }),
      ),
    deadlineMs,
  );
  const off = onAbort(options.signal, () => d.reject(abortReason(options.signal!)));
  // A dead or unresponsive thread never answers; an actor that reported its own error still can.
  void target.failure.then((err) => {
    if (err instanceof WorkerError) {
      d.reject(new WorkerError(err.code as WorkerErrorCode, `actor ${target.name} died before answering ${what}: ${err.message}`, { cause: err }));
    }
  });
  void target.ended.then(
    () => d.reject(new WorkerError('ERR_WORKER_EXITED', `actor ${target.name} ended before answering ${what}`)),
    () => d.reject(new WorkerError('ERR_WORKER_EXITED', `actor ${target.name} ended before answering ${what}`)),
  );
  try {
    const p = typeof call === 'function' ? call() : call;
    p.then(d.resolve, d.reject);
  } catch (e) {
    d.reject(e);
  }
  try {
    return await d.promise;
  } finally {
    clearTimeout(timer);
    off();
  }
}
