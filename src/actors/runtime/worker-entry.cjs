'use strict';
// The file piscina loads in every actor thread, with require(). On Node 20, terminating a thread
// while require() instantiates an ES module aborts the whole process (V8 fatal error "IsGraphAsync
// must be used on an instantiated module"), and a pool that closes terminates threads that are
// still starting. So this file is CommonJS and loads the actor runtime with import(), which a
// termination simply stops.
const { workerData } = require('node:worker_threads');

const entry = workerData.actorWorker;
// From TypeScript sources (tests, tsx) a Node 20 thread cannot load .ts by itself. (tsx's
// CommonJS register() cannot find its own hooks, so tsx comes in through import() too.)
const loading = entry.endsWith('.ts') ? import('tsx/esm/api').then((tsx) => (tsx.register(), import(entry))) : import(entry);
const runActorTask = loading.then((m) => m.default);
// A failed load is the first task's to report, which awaits it; until then it is not unhandled.
runActorTask.catch(() => {});

module.exports = async function actorTask(task) {
  return (await runActorTask)(task);
};
