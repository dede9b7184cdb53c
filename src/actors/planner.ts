/**
 * Planner actor: reads the candidates' indexes, plans and checks the plan, all on a worker
 * thread, so the host's event loop never carries index parsing or planning (a second or more
 * for a million index entries). It answers with a small summary, the block table in shared
 * memory and what the plan drops as dead (checked again on the host right before the commit),
 * and ends: the pipeline runs on the same warm thread after it.
 */
import { toCompactorError } from '../errors.js';
import { fetchFromTail, readObjectIndex } from '../format/index.js';
import type { StreamMetadata, StreamSetObjectMetadata } from '../metadata/types.js';
import type { MessagePort } from 'node:worker_threads';
import { unpackCandidates, type PackedCandidates } from '../messages/candidates.js';
import type { PlannerReport, SupervisorToPlanner, WholeObject } from '../messages/pipeline.js';
import { checkCoverage, encodePlanTable, planCompaction, summarizePlan } from '../plan/index.js';
import type { PlanInput, PlanInputObject, PlannerOptions } from '../plan/types.js';
import type { ObjectStorage, S3StorageConfig } from '../storage/types.js';
import { forEachConcurrent } from '../util/async.js';
import { BootReadsReceiver, indexGuessOf, type BootReadsInit } from './boot-reads.js';
import { allocFreeable } from '../util/freeable.js';
import type { Actor } from './runtime/actor-context.js';
import { threadStorage } from './thread-storage.js';

export interface PlannerInit {
  storage: S3StorageConfig;
  /** Packed for the trip (see messages/candidates.ts). */
  candidates: PackedCandidates;
  streams: StreamMetadata[];
  nowMs: number;
  options: PlannerOptions;
  indexReadConcurrency: number;
  /**
   * Read every candidate whole (its index from those bytes); the ones the plan reads go to this
   * port for the pipeline (`WholeHandoff`).
   */
  wholePort?: MessagePort;
  /** `PlanInput.openReads`: the pipeline's open reads. */
  openReads?: PlanInput['openReads'];
  /** What the host reads while this thread boots (boot-reads.ts). */
  boot?: BootReadsInit;
}

/**
 * Reads every candidate's index in parallel; an unreadable one becomes `{ error }` for the planner.
 * With `whole`, each object is read whole in one GET and its bytes are kept there (by position).
 * With `boot`, candidates are taken from the counter shared with the host's reads of index
 * tails (boot-reads.ts), and the ones the host took are finished from the bytes it read.
 */
export async function readIndexes(
  storage: ObjectStorage,
  candidates: readonly StreamSetObjectMetadata[],
  concurrency: number,
  signal?: AbortSignal,
  whole?: (Uint8Array | undefined)[],
  boot?: BootReadsReceiver,
): Promise<PlanInputObject[]> {
  const objects: PlanInputObject[] = new Array(candidates.length);
  const readOne = async (i: number, lane: AbortSignal, from?: { start: number; bytes: Uint8Array }) => {
    const meta = candidates[i]!;
    const key = storage.keyOf(meta.objectId);
    try {
      const get = (s: number, e: number) => storage.getRange(key, s, e, { signal: lane });
      let read = from ? fetchFromTail(from.bytes, from.start, get) : get;
      if (whole) {
        // Freeable: whoever copies the bytes out gives their memory back at once; a dropped
        // buffer waits for a GC, and the copies into parts come faster than that.
        const bytes = allocFreeable(meta.objectSize);
        await storage.getRangeInto(key, 0, meta.objectSize, bytes, { signal: lane });
        whole[i] = bytes;
        read = async (s, e) => bytes.subarray(s, e);
      }
      const index = await readObjectIndex(read, meta.objectSize, key, { minGuess: indexGuessOf(meta) });
      objects[i] = { meta, key, index };
    } catch (err) {
      const e = toCompactorError(err);
      // A cancelled run is not an unreadable object.
      if (e.code === 'ERR_ABORTED') throw e;
      objects[i] = { meta, key, index: { error: `${e.code}: ${e.message}`, code: e.code } };
    }
  };
  let next = 0;
  const claim = boot ? () => boot.claim() : () => next++;
  const mine = new Uint8Array(candidates.length);
  await forEachConcurrent(
    Array.from({ length: Math.max(1, Math.min(concurrency, candidates.length)) }),
    concurrency,
    async (_lane, _n, lane) => {
      for (let i = claim(); i < candidates.length && !lane.aborted; i = claim()) {
        mine[i] = 1;
        await readOne(i, lane);
      }
    },
    signal,
  );
  if (boot) {
    // The host's: their bytes are here or on their way (a failed one, or one lost with a closed
    // port, is read again here).
    const hosts = candidates.flatMap((_c, i) => (mine[i] ? [] : [i]));
    await forEachConcurrent(
      hosts,
      concurrency,
      async (i, _n, lane) => {
        const r = await boot.result(i, lane);
        await readOne(i, lane, r?.type === 'read' ? r : undefined);
      },
      signal,
    );
  }
  return objects;
}

export const plannerActor: Actor<PlannerInit, SupervisorToPlanner, PlannerReport> = async (ctx) => {
  const { init } = ctx;
  // First: from here on the host takes no more candidates (its thread has a run to serve).
  const boot = init.boot ? new BootReadsReceiver(init.boot) : undefined;
  const storage = await threadStorage(init.storage);
  try {
    const bytes: (Uint8Array | undefined)[] | undefined = init.wholePort ? [] : undefined;
    const objects = await readIndexes(storage, unpackCandidates(init.candidates), init.indexReadConcurrency, ctx.signal, bytes, boot);
    boot?.close();
    const plan = planCompaction({ objects, streams: init.streams, nowMs: init.nowMs, options: init.options, ...(init.openReads ? { openReads: init.openReads } : {}) });
    const dropped = checkCoverage(plan, { objects, streams: init.streams });
    const table = encodePlanTable(plan);
    // Whole objects go on (moved, not copied) only where the plan reads them, and before the
    // report: the pipeline finds them queued on its end of the port.
    let wholeBytes: number | undefined;
    if (bytes && init.wholePort) {
      const used = new Set(table.keys);
      const whole: WholeObject[] = objects.flatMap((o, i) => (bytes[i] && used.has(o.key) ? [{ key: o.key, bytes: bytes[i]! }] : []));
      // Counted before they are moved: a moved buffer is empty here.
      wholeBytes = whole.reduce((n, o) => n + o.bytes.byteLength, 0);
      init.wholePort.postMessage(whole, whole.map((o) => o.bytes.buffer as ArrayBuffer));
    }
    // The table's SharedArrayBuffer is shared, not transferred: nothing to list, nothing to walk.
    // Then the actor ends: its thread is free for the pipeline, and what the commit checks again
    // (that the dropped blocks are still dead) is the small `dropped` summary, on the host.
    ctx.send({ type: 'planned', summary: summarizePlan(plan), table, dropped, ...(wholeBytes === undefined ? {} : { wholeBytes }) });
  } finally {
    boot?.close();
    // The storage stays with the thread (thread-storage.ts); the index reads are reported now.
    storage.flushRequestSamples();
  }
};
