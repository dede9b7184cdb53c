/**
 * The compaction pipeline's messages: plan → reader → merger → uploader, with control coming
 * back to the supervisor only as typed messages. Every union is closed, so a sender and a
 * receiver that disagree fail to compile.
 */
import type { MessagePort } from 'node:worker_threads';
import type { DroppedStream } from '../plan/coverage.js';
import type { PlanSummary, PlanTable } from '../plan/table.js';
import type { S3StorageConfig } from '../storage/types.js';

/** Where output bytes go: the run's one new SSO, or stream object number `index`. */
export type Dest = { kind: 'sso' } | { kind: 'so'; index: number };

export function destKey(d: Dest): string {
  return d.kind === 'sso' ? 'sso' : `so:${d.index}`;
}

/**
 * A byte range of a source object copied verbatim to a byte offset of an output. Normally one
 * planned block; when a failed iteration resumes an upload from its last durable part, the first
 * segment may start inside a block.
 */
export interface Segment {
  /** Position in the iteration's output order, and the segment's index in its iteration's list. */
  seq: number;
  key: string;
  srcPos: number;
  size: number;
  dest: Dest;
  destOffset: number;
  /**
   * The plan table's block the segment copies, when it copies all of it: the merger checks the
   * bytes against the block's source entry (headers only) before they go anywhere. Absent for the
   * tail of a block a restart resumes in the middle of, whose head was checked by the attempt
   * that copied it. An index, not the entry: an iteration holds tens of thousands of segments.
   */
  block?: number;
}

/** One output object of the run, as the merger and uploader need to know it. */
export interface OutputSpec {
  dest: Dest;
  key: string;
  /** Bytes of data blocks (index and footer excluded). */
  dataSize: number;
  /** The iteration in which the output's last segment is emitted (and the object closes). */
  closesIn: number;
}

/** What an upload already has on the server, so a restarted iteration resumes from there. */
export interface DurableUpload {
  uploadId: string;
  parts: { partNumber: number; etag: string }[];
  /** Data bytes in those parts: always a multiple of the part size. */
  durableBytes: number;
}

export interface PipelineSettings {
  storage: S3StorageConfig;
  partSize: number;
  maxGetSize: number;
  memoryLimit: number;
  readsInFlight: number;
  partsInFlight: number;
  acquireTimeoutMs: number;
}

// ---- supervisor → actors ----------------------------------------------------------------------

/** The pipeline derives the iteration's segments from the shared plan table: only numbers travel. */
export type IterationStart = { type: 'iteration.start'; iteration: number; ssoFrom: number };
export type SupervisorToPipeline = IterationStart;

// ---- planner ------------------------------------------------------------------------------------

/** The planner takes no messages: it plans, reports once and ends. */
export type SupervisorToPlanner = never;
/**
 * `dropped`: what the plan drops as dead, per stream, checked again on the host before the commit.
 * `wholeBytes`: the size of the objects the plan reads that were read whole at planning
 * (`readWholeWhenFits`); the objects themselves went to the planner's `wholePort`.
 */
export type PlannerReport = { type: 'planned'; summary: PlanSummary; table: PlanTable; dropped: DroppedStream[]; wholeBytes?: number };

/** An object read whole: the pipeline copies from these bytes instead of reading it again. */
export interface WholeObject {
  key: string;
  bytes: Uint8Array;
}

/**
 * Objects read whole at planning on their way from the planner to the pipeline's first attempt:
 * one `WholeObject[]` message queued on a port of their own, which the host passes on unread.
 * Their buffers never enter the host's isolate (there, a run's worth of buffers cost a major GC
 * on the host's thread). `bytes`: their total, held in the budget until the pipeline takes over.
 */
export interface WholeHandoff {
  port: MessagePort;
  bytes: number;
}

// ---- data plane --------------------------------------------------------------------------------

/** A segment's bytes inside one GET: `offset` in the GET's range, and where they go. */
export interface ReadPiece {
  seq: number;
  offset: number;
  size: number;
  dest: Dest;
  destOffset: number;
}

// The data plane runs inside one worker thread: its messages hold views, never cross a port.
/**
 * A GET is whole: its `size` bytes landed in the merger's parts as they came (the merger's
 * `sink`); `gap`: those no piece needs (read through to save a request).
 */
export type ReaderToMerger = { type: 'read'; iteration: number; pieces: ReadPiece[]; size: number; gap: number };

export type MergerToUploader =
  /** A whole part of `partSize` data bytes: uploaded at once, in any order. */
  | { type: 'part'; iteration: number; dest: Dest; partNumber: number; body: Uint8Array; dataBytes: number }
  /**
   * The output's last bytes, handed on after all its parts: its data after the last full part
   * (`dataBytes`, perhaps none) and the trailer; below one part, the whole object.
   */
  | { type: 'close'; iteration: number; dest: Dest; partNumber: number; body: Uint8Array; dataBytes: number }
  | { type: 'iteration.end'; iteration: number };

// ---- actors → supervisor (failures go through the runtime's own `failed` message) --------------

export type ActorReport =
  | { type: 'progress'; iteration: number; bytesRead?: number; bytesWritten?: number }
  /** `attempts`: requests sent to create it (more than one may have left an upload nobody knows of). */
  | { type: 'upload.started'; dest: Dest; key: string; uploadId: string; attempts: number }
  /** `bytes`: the part's size, durable from now on. */
  | { type: 'part.done'; dest: Dest; partNumber: number; etag: string; durableBytes: number; bytes: number }
  /** `putBytes`: bytes this last request made durable (the object for a PutObject, 0 for a completion). */
  | { type: 'object.done'; dest: Dest; key: string; objectSize: number; putBytes: number }
  | { type: 'iteration.done'; iteration: number };

export type ReaderReport = Extract<ActorReport, { type: 'progress' }>;
export type PipelineReport = ActorReport;
