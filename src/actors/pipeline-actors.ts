/**
 * The three pipeline actors as the worker threads run them: each builds its own S3 client from
 * plain configuration (threads cannot share one), wires its credit channels, and hands the work
 * to the logic in reader.ts, merger.ts and uploader.ts. A failure goes to the supervisor as a
 * typed `failed` message at once; on cancel every actor gives back the bytes it holds.
 */
import type { Actor } from './runtime/actor-context.js';
import { CreditReceiver, CreditSender } from './runtime/credit-channel.js';
import {
  destKey,
  type DurableUpload,
  type MergerToUploader,
  type OutputSpec,
  type PipelineSettings,
  type ReaderReport,
  type ReaderToMerger,
  type SupervisorToMerger,
  type SupervisorToReader,
  type UploaderReport,
} from '../messages/pipeline.js';
import { objectKey } from '../format/index.js';
import { PlanBlocks, type PlanSummary, type PlanTable } from '../plan/table.js';
import type { S3StorageConfig } from '../storage/types.js';
import { iterationSegments, outputSpecs } from './segments.js';
import { deferred, raceAbort, type Deferred } from '../util/async.js';
import { Merger } from './merger.js';
import { Reader } from './reader.js';
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

export type ReaderInit = RunInit;

export interface MergerInit extends RunInit {
  /** Credit the merger grants the reader: the budget bounds it, the window only bounds queues. */
  inWindow: number;
}

export interface UploaderInit extends RunInit {
  resume: DurableUpload | undefined;
  inWindow: number;
}

/** The outputs this attempt still has to write. */
function outputsOf(init: RunInit, withEntries: boolean): OutputSpec[] {
  const keyOf = (id: number) => objectKey(id, init.settings.storage.namespace);
  const done = new Set(init.done);
  return outputSpecs(init.summary, keyOf, init.ssoId, init.soIds, withEntries ? new PlanBlocks(init.table) : undefined).filter(
    (o) => !done.has(destKey(o.dest)),
  );
}

/**
 * The S3 SDK is loaded only by the actors that talk to S3: the merger never does, and loading
 * the SDK is most of a cold worker's start.
 */
async function openStorage(config: S3StorageConfig) {
  const { S3Storage } = await import('../storage/s3-storage.js');
  return S3Storage.fromConfig(config);
}

/** Bytes a cancelled actor waits for still-travelling messages before it gives up on them. */
const DRAIN_TIMEOUT_MS = 1_000;

export const readerActor: Actor<ReaderInit, SupervisorToReader, ReaderReport> = async (ctx) => {
  const { settings } = ctx.init;
  const storage = await openStorage(settings.storage);
  const out = new CreditSender<ReaderToMerger>(ctx.port('out'), { signal: ctx.signal, name: 'reader→merger' });
  const reader = new Reader(storage, ctx.budget, { send: (m, b, t) => out.send(m, b, t) }, { report: (m) => ctx.send(m) }, settings);
  const blocks = new PlanBlocks(ctx.init.table);
  const done = new Set(ctx.init.done);
  try {
    for await (const msg of ctx.messages()) {
      try {
        const segments = iterationSegments(ctx.init.summary, blocks, msg.iteration, msg.ssoFrom, done);
        await reader.runIteration(msg.iteration, segments, ctx.signal);
      } catch (err) {
        if (!ctx.signal.aborted) ctx.fail(err, msg.iteration);
      }
    }
  } finally {
    reader.releaseHeld();
    out.close();
    storage.close();
  }
};

export const mergerActor: Actor<MergerInit, SupervisorToMerger, never> = async (ctx) => {
  const input = new CreditReceiver<ReaderToMerger>(ctx.port('in'), { window: ctx.init.inWindow, signal: ctx.signal, name: 'reader→merger' });
  const out = new CreditSender<MergerToUploader>(ctx.port('out'), { signal: ctx.signal, name: 'merger→uploader' });
  const merger = new Merger(outputsOf(ctx.init, true), ctx.budget, { send: (m, b, t) => out.send(m, b, t) }, ctx.init.settings.partSize, (bytes) => input.grant(bytes));
  const blocks = new PlanBlocks(ctx.init.table);
  const done = new Set(ctx.init.done);
  // Bytes of iteration i arrive only after the reader got iteration i's start, but that start
  // and the merger's come on different ports: data waits here for its iteration's start.
  const started = new Map<number, Deferred<void>>();
  const startOf = (i: number) => {
    let d = started.get(i);
    if (!d) started.set(i, (d = deferred<void>()));
    return d;
  };
  const control = (async () => {
    for await (const msg of ctx.messages()) {
      // The supervisor sends every iteration's start at once so the reader can run ahead (the
      // budget holds it back); the merger takes them one after the other.
      await raceAbort(merger.idle(), ctx.signal);
      merger.startIteration(msg.iteration, iterationSegments(ctx.init.summary, blocks, msg.iteration, msg.ssoFrom, done));
      startOf(msg.iteration).resolve();
      try {
        await merger.flush();
      } catch (err) {
        if (!ctx.signal.aborted) ctx.fail(err, msg.iteration);
      }
    }
  })();
  try {
    for await (const d of input) {
      await startOf(d.msg.iteration).promise;
      try {
        await merger.accept(d.msg);
      } catch (err) {
        if (!ctx.signal.aborted) ctx.fail(err, d.msg.iteration);
      }
    }
  } catch (err) {
    if (!ctx.signal.aborted) ctx.fail(err);
  } finally {
    merger.releaseHeld();
    // Whatever the reader sent that was never accepted is still counted: give it back.
    await input.drain((d) => ctx.budget.release(d.bytes), { timeoutMs: DRAIN_TIMEOUT_MS }).catch(() => {});
    out.close();
    await control.catch(() => {});
  }
};

export const uploaderActor: Actor<UploaderInit, never, UploaderReport> = async (ctx) => {
  const { settings } = ctx.init;
  const storage = await openStorage(settings.storage);
  const input = new CreditReceiver<MergerToUploader>(ctx.port('in'), { window: ctx.init.inWindow, signal: ctx.signal, name: 'merger→uploader' });
  const uploader = new Uploader(
    outputsOf(ctx.init, false),
    ctx.init.resume,
    storage,
    ctx.budget,
    { report: (m) => ctx.send(m) },
    settings,
    ctx.signal,
    (bytes) => input.grant(bytes),
    (err) => ctx.fail(err),
  );
  try {
    for await (const d of input) {
      try {
        await uploader.handle(d.msg);
      } catch (err) {
        if (!ctx.signal.aborted) ctx.fail(err, 'iteration' in d.msg ? d.msg.iteration : undefined);
      }
    }
  } catch (err) {
    if (!ctx.signal.aborted) ctx.fail(err);
  } finally {
    await uploader.settle();
    uploader.releaseHeld();
    await input.drain((d) => d.bytes > 0 && ctx.budget.release(d.bytes), { timeoutMs: DRAIN_TIMEOUT_MS }).catch(() => {});
    storage.close();
  }
};
