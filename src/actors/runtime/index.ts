export * from './memory-budget.js';
export * from './local-channel.js';
export * from './actor-context.js';
export * from './actor-pool.js';
export * from './actor-handle.js';
export * from './rpc.js';
export * from './supervision.js';
export type { ActorTask, ActorTaskResult } from './actor-worker.js';
