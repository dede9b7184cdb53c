'use strict';
// The file `SqliteThreadStore` starts its thread from. CommonJS for the reason the actor threads'
// entry is (see actors/runtime/worker-entry.cjs): terminating a Node 20 thread while require()
// instantiates an ES module aborts the process; import() is simply stopped. From TypeScript
// sources (tests, tsx) tsx comes in first, as a Node 20 thread cannot load .ts by itself.
const { workerData } = require('node:worker_threads');

// A failed load is an uncaught error of the thread: the host sees its 'error' event.
const entry = workerData.module;
void (entry.endsWith('.ts') ? import('tsx/esm/api').then((tsx) => (tsx.register(), import(entry))) : import(entry));
