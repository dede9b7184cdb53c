// Benchmark c (planning scale): planCompaction over synthetic index entries, as the compactor
// calls it (candidates newest first, stream metadata, default planner options).
// Run with `node --expose-gc --max-old-space-size=16384 bench/planning.mjs [--quick]`.
import { args, check, log, machine, MiB, round, writeResult } from './lib.mjs';
import { planCompaction } from '../dist/index.js';

const a = args();
const quick = Boolean(a.quick);
const shapes = quick ? [[500, 2000]] : [[500, 2000], [500, 20000]];
const NOW = Date.UTC(2026, 0, 1);
const gc = globalThis.gc ?? (() => {});
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

/** `nObj` SSOs (newest first), each with one block of every one of `nStreams` streams (as test/plan/scale.test.ts). */
function bigInput(nObj, nStreams) {
  const objects = [];
  for (let i = 0; i < nObj; i++) {
    const o = nObj - 1 - i;
    const index = new Array(nStreams);
    let pos = 0;
    for (let s = 0; s < nStreams; s++) {
      const size = (s % 50) * 400 + 60;
      index[s] = { streamId: s, startOffset: o * 10, endOffset: o * 10 + 10, recordCount: 10, position: pos, size };
      pos += size;
    }
    const ranges = [];
    for (let s = 0; s < nStreams; s++) ranges.push({ streamId: s, startOffset: o * 10, endOffset: o * 10 + 10 });
    objects.push({ key: `k/${o}`, meta: { objectId: 1000 + o, nodeId: 1, orderId: 1000 + o, dataTimeMs: NOW - (nObj - o) * 100, objectSize: pos, ranges }, index });
  }
  const streams = Array.from({ length: nStreams }, (_, s) => ({ streamId: s, epoch: 0, startOffset: s % 7 === 0 ? 15 : 0, endOffset: nObj * 10, state: 'opened' }));
  return { objects, streams, nowMs: NOW, options: {} };
}

const started = new Date();
const machineBefore = machine();
const results = {};
const targets = {};
for (const [nObj, nStreams] of shapes) {
  const entries = nObj * nStreams;
  const name = `${nObj}x${nStreams}`;
  const h0 = heap();
  const tb = performance.now();
  const input = bigInput(nObj, nStreams);
  const buildMs = performance.now() - tb;
  const h1 = heap();
  const runs = quick || entries >= 5e6 ? 2 : 3;
  const times = [];
  let plan;
  let heapDuring = 0;
  for (let r = 0; r < runs; r++) {
    plan = undefined;
    heap();
    const t = performance.now();
    plan = planCompaction(input);
    times.push(performance.now() - t);
    heapDuring = Math.max(heapDuring, process.memoryUsage().heapUsed);
  }
  const h2 = heap();
  const best = Math.min(...times);
  results[name] = {
    objects: nObj,
    streams: nStreams,
    entries,
    inputBuildMs: round(buildMs, 0),
    planMs: times.map((x) => round(x, 0)),
    planBestMs: round(best, 0),
    inputHeapMiB: round((h1 - h0) / MiB, 0),
    inputBytesPerEntry: round((h1 - h0) / entries, 1),
    planRetainedHeapMiB: round((h2 - h1) / MiB, 0),
    planBytesPerEntry: round((h2 - h1) / entries, 1),
    peakHeapAboveInputMiB: round((heapDuring - h1) / MiB, 0),
    plan: { iterations: plan.iterations.length, blocks: plan.totals.blocks, bytesToReadGiB: round(plan.totals.bytesToRead / 1024 / MiB, 2), streamObjects: plan.streamObjects.length, deferred: plan.deferred.length },
  };
  targets[`${name}: planCompaction < 1 s`] = check('< 1000 ms', round(best, 0), best < 1000);
  log(`planning ${name}: ${times.map((x) => x.toFixed(0)).join(' / ')} ms; input ${((h1 - h0) / entries).toFixed(0)} B/entry, plan ${((h2 - h1) / entries).toFixed(0)} B/entry retained`);
  plan = undefined;
}
writeResult('planning', {
  name: 'planning',
  machine: machineBefore,
  machineAfter: machine(),
  node: process.version,
  serverKind: 'none (pure function)',
  date: started.toISOString(),
  quick,
  parameters: { shapes: shapes.map(([o, s]) => `${o} SSOs x ${s} streams`), options: 'defaults (memoryLimit 200 MiB, streamSplitSize 8 MiB, partSize 16 MiB)', blockSize: '(streamId % 50) * 400 + 60 bytes', gcExposed: Boolean(globalThis.gc) },
  results,
  targets,
  pass: Object.values(targets).every((c) => c.pass),
});
