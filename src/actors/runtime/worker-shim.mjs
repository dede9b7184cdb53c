// Starts the actor worker from TypeScript source (tests, tsx): Node 20 workers cannot load .ts
// themselves, so this shim registers tsx in the worker, then loads the entry named by
// workerData.actorWorkerEntry (default: ./actor-worker.ts next to this file).
// The top-level await makes piscina load this file with import() rather than require().
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const entry =
  (workerData && typeof workerData === 'object' && workerData.actorWorkerEntry) ||
  new URL('./actor-worker.ts', import.meta.url).href;
const mod = await import(entry);
export default mod.default;
