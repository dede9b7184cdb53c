/**
 * The pipeline as a worker thread runs it: one actor host per attempt, building one S3 client
 * from plain configuration (threads cannot share one) and wiring the reader, merger and uploader
 * (reader.ts, merger.ts, uploader.ts) with in-isolate credit channels.
 */
import { receiveMessageOnPort } from 'node:worker_threads';
import { AbortError } from '../errors.js';
import type { Actor } from './runtime/actor-context.js';
import { LocalChannel } from './runtime/local-channel.js';
import {
  destKey,
  type DurableUpload,
  type MergerToUploader,
  type OutputSpec,
  type PipelineReport,
  type PipelineSettings,
  type ReaderToMerger,
  type Segment,
  type SupervisorToPipeline,
  type WholeHandoff,
  type WholeObject,
} from '../messages/pipeline.js';
import { objectKey } from '../format/index.js';
import { PlanBlocks, type PlanSummary, type PlanTable } from '../plan/table.js';
import { iterationSegments, outputSpecs, planIndex } from './segments.js';
import { deferred, raceAbort, type Deferred } from '../util/async.js';
import { Merger } from './merger.js';
import { threadStorage } from './thread-storage.js';
import { Reader } from './reader.js';
import { CURSOR_MEMORY } from '../storage/range-cursor.js';
import { Uploader } from './uploader.js';

/** What every pipeline actor knows of the run: the plan (summary + shared block table) and its output ids. */
export interface RunInit {
  settings: PipelineSettings;
  summary: PlanSummary;
  table: PlanTable;
  ssoId: number;
  soIds: number[];
  /**
   * Outputs completed by earlier attempts (`destKey`s): no actor reads, merges or uploads them
   * again. A restart repeats the first unfinished iteration, which may hold such an output.
   */
  done: string[];
}

export interface PipelineInit extends RunInit {
  /** The SSO's durable parts from earlier attempts: the uploader resumes after them. */
  resume: DurableUpload | undefined;
  /** Credit windows of the channels: the budget bounds the bytes, the windows only bound queues. */
  windows: { merger: number; uploader: number };
  /**
   * Objects read whole at planning, queued on their port, with the budget they hold (first
   * attempt only): the reader copies from them instead of reading them again.
   */
  whole?: WholeHandoff;
}

/** The objects read whole at planning, off their port; should they be missing, their budget goes back and the reader reads by range. */
function receiveWhole(handoff: WholeHandoff | undefined, budget: { release(bytes: number): void }): WholeObject[] | undefined {
  if (!handoff) return undefined;
  const objects = receiveMessageOnPort(handoff.port)?.message as WholeObject[] | undefined;
  handoff.port.close();
  if (!objects) budget.release(handoff.bytes);
  return objects;
}

/** The outputs this attempt still has to write. */
function outputsOf(init: RunInit): OutputSpec[] {
  const keyOf = (id: number) => objectKey(id, init.settings.storage.namespace);
  const done = new Set(init.done);
  return outputSpecs(init.summary, keyOf, init.ssoId, init.soIds).filter((o) => !done.has(destKey(o.dest)));
}

/** What the plan copies from each source object, by key: how many bytes, and the end of the last one. */
function sourceExtents(blocks: PlanBlocks): { needed: Map<string, number>; lastEnd: Map<string, number> } {
  const needed = new Map<string, number>();
  const lastEnd = new Map<string, number>();
  for (let i = 0; i < blocks.count; i++) {
    const key = blocks.key(i);
    const end = blocks.position(i) + blocks.size(i);
    needed.set(key, (needed.get(key) ?? 0) + blocks.size(i));
    if (end > (lastEnd.get(key) ?? 0)) lastEnd.set(key, end);
  }
  return { needed, lastEnd };
}

/**
 * Open reads this attempt keeps (each counted in the budget for the whole attempt as
 * `CURSOR_MEMORY`): as many as the plan picked, and no more than every iteration leaves free
 * beside its blocks and the tail before it (the plan leaves `reserved` where a block allows).
 */
function openReadsFor(summary: PlanSummary, memoryLimit: number): number {
  let free = memoryLimit;
  for (const it of summary.iterations) free = Math.min(free, memoryLimit - it.tailBefore - it.bytes);
  return Math.max(0, Math.min(summary.openReads, Math.floor(free / CURSOR_MEMORY)));
}

/** One iteration's work, derived once from the shared plan table. */
interface IterationWork {
  iteration: number;
  segments: Segment[];
}

/**
 * The reader, merger and uploader of one attempt, as actors of one worker thread: each runs its
 * own loop over an in-isolate credit channel, so a GET's body lands straight in the merger's part
 * buffers (the reader holds a sink, not bytes), the thread holds one S3 client and one socket
 * pool, and an iteration's segments are derived once. A failure goes to the supervisor as a typed `failed` message at once; on
 * cancel every actor gives back the bytes it holds.
 */
export const pipelineActor: Actor<PipelineInit, SupervisorToPipeline, PipelineReport> = async (ctx) => {
  const { init, signal, budget } = ctx;
  const { settings } = init;
  const storage = await threadStorage(settings.storage);
  const blocks = new PlanBlocks(init.table);
  const done = new Set(init.done);
  const toReader = new LocalChannel<IterationWork>({ window: 1, name: 'iterations→reader' });
  const toMerger = new LocalChannel<IterationWork>({ window: 1, name: 'iterations→merger' });
  const r2m = new LocalChannel<ReaderToMerger>({ window: init.windows.merger, name: 'reader→merger' });
  const m2u = new LocalChannel<MergerToUploader>({ window: init.windows.uploader, name: 'merger→uploader' });
  const reporter = { report: (m: PipelineReport) => ctx.send(m) };
  const outputs = outputsOf(init);
  const merger = new Merger(outputs, planIndex(init.summary, blocks), init.resume, budget, { send: (m, b) => m2u.send(m, b, signal) }, settings.partSize);
  const { needed, lastEnd } = sourceExtents(blocks);
  const whole = receiveWhole(init.whole, budget);
  // A run that reads whole was planned without open reads (plan-session.ts `readMode`): 0 then.
  const openReads = openReadsFor(init.summary, settings.memoryLimit);
  const reserved = openReads * CURSOR_MEMORY;
  // Taken before anything else: the attempt holds nothing yet, and gives it back when it ends.
  if (reserved > 0) await budget.acquire(reserved, { signal, timeoutMs: settings.acquireTimeoutMs });
  const reader = new Reader(storage, budget, merger, { send: (m, b) => r2m.send(m, b, signal) }, reporter, { ...settings, maxOpenReads: openReads }, whole, needed, lastEnd);
  const uploader = new Uploader(outputs, init.resume, storage, budget, reporter, settings, signal, (b) => m2u.grant(b), (err) => ctx.fail(err));
  uploader.begin();
  const fail = (err: unknown, iteration?: number) => {
    if (!signal.aborted) ctx.fail(err, iteration);
  };

  // The reader runs ahead into later iterations (the budget holds it back); the merger takes
  // them one after the other, and bytes of an iteration wait for that iteration's start.
  const started = new Map<number, Deferred<void>>();
  const startOf = (i: number) => {
    let d = started.get(i);
    if (!d) started.set(i, (d = deferred<void>()));
    return d;
  };
  const loops = [
    (async () => {
      for await (const { msg } of toReader.consume(signal)) {
        // Headroom the plan leaves in this iteration: the limit minus its segments, the SSO tail
        // held before it (a restarted attempt holds no tail and re-reads it as segments) and the
        // open reads.
        const info = init.summary.iterations[msg.iteration]!;
        const data = msg.segments.reduce((n, s) => n + s.size, 0);
        // Objects read whole cost no request: nothing to save by reading through gaps.
        const headroom = reader.readsWhole ? 0 : Math.max(0, settings.memoryLimit - data - info.tailBefore - reserved);
        await reader.runIteration(msg.iteration, msg.segments, signal, headroom).catch((e: unknown) => fail(e, msg.iteration));
        // After the last iteration nothing more is read from them: what is left of them (indexes,
        // dead blocks) gives its budget back now, not at the end of the run.
        if (msg.iteration === init.summary.iterations.length - 1) reader.releaseWhole();
      }
    })(),
    (async () => {
      for await (const { msg } of toMerger.consume(signal)) {
        await raceAbort(merger.idle(), signal);
        merger.startIteration(msg.iteration, msg.segments);
        startOf(msg.iteration).resolve();
        await merger.flush().catch((e: unknown) => fail(e, msg.iteration));
      }
    })(),
    (async () => {
      for await (const { msg, bytes } of r2m.consume(signal)) {
        await raceAbort(startOf(msg.iteration).promise, signal);
        await merger.accept(msg).catch((e: unknown) => fail(e, msg.iteration));
        r2m.grant(bytes);
      }
    })(),
    (async () => {
      for await (const { msg } of m2u.consume(signal)) await uploader.handle(msg).catch((e: unknown) => fail(e, 'iteration' in msg ? msg.iteration : undefined));
    })(),
  ].map((p) => p.catch((e: unknown) => fail(e)));

  try {
    for await (const msg of ctx.messages()) {
      const work = { iteration: msg.iteration, segments: iterationSegments(init.summary, blocks, msg.iteration, msg.ssoFrom, done) };
      await toReader.send(work, 0, signal);
      await toMerger.send(work, 0, signal);
    }
  } finally {
    const stop = new AbortError('the pipeline actor is stopping');
    for (const c of [toReader, toMerger, r2m, m2u]) c.abort(stop);
    await Promise.all(loops);
    await uploader.settle();
    reader.releaseHeld();
    if (reserved > 0) budget.release(reserved);
    merger.releaseHeld();
    uploader.releaseHeld();
    // Whatever was sent and never taken is still counted: give it back.
    r2m.drain((d) => budget.release(d.bytes));
    m2u.drain((d) => d.bytes > 0 && budget.release(d.bytes));
    // The storage stays with the thread (thread-storage.ts); the requests of this attempt are reported now.
    storage.flushRequestSamples();
  }
};
