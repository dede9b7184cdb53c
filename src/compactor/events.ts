import type { CompactorError } from '../errors.js';
import type { S3RequestSample } from '../storage/request-samples.js';

/** Progress and failure events of a compactor, on `compactor.events$`. */
export type CompactorEvent =
  | { type: 'run.started'; runId: number }
  | {
      type: 'run.planned';
      runId: number;
      iterations: number;
      /** Sources whose GET stays open across iterations (`maxOpenReads`: the plan picks how many). */
      openReads: number;
      bytesToRead: number;
      compactedObjects: number;
      streamObjects: number;
      skipped: number;
      deferred: number;
    }
  | { type: 'iteration.started'; runId: number; iteration: number; attempt: number }
  | { type: 'iteration.finished'; runId: number; iteration: number; attempt: number }
  | { type: 'iteration.failed'; runId: number; iteration: number; attempt: number; error: CompactorError; willRetry: boolean; delayMs: number }
  /** Running totals of the run: bytes read, and bytes made durable (parts as they complete, retries included). */
  | { type: 'bytes'; runId: number; bytesRead: number; bytesWritten: number }
  /** S3 request attempts of every thread of this compactor, in batches (for latency and error metrics). */
  | { type: 's3.requests'; requests: S3RequestSample[] }
  | { type: 'upload.aborted'; runId: number; key: string }
  | { type: 'run.committed'; runId: number; report: CompactionReport }
  /** The run ended without a commit and without an error: `report.idleReason` says why. */
  | { type: 'run.idle'; runId: number; report: CompactionReport }
  | { type: 'run.failed'; runId: number; error: CompactorError }
  | { type: 'objects.deleted'; objectIds: number[] }
  /** A source found damaged or inconsistent: kept live, left out of compaction until released. */
  | { type: 'object.quarantined'; runId: number; objectId: number; code: string; reason: string };

export interface CompactionReport {
  committed: boolean;
  /** The new SSO, or -1 when the run made none. */
  newObjectId: number;
  streamObjects: { objectId: number; streamId: number; startOffset: number; endOffset: number; objectSize: number }[];
  compactedObjectIds: number[];
  /** Left out of this run, each with its reason (and the error code, when there is one). */
  skipped: { objectId: number; reason: string; code?: string }[];
  /** Quarantined by this run: damaged or inconsistent sources, kept live, left out until released. */
  quarantined: { objectId: number; code: string; reason: string }[];
  /** Objects left for a later run so this one fits its limits. */
  deferred: { objectId: number; reason: string }[];
  /** SSOs left alone: they share no stream with another candidate (until force split). */
  untouched: { objectId: number; reason: string }[];
  /** Set exactly when `committed` is false: why the run committed nothing. */
  idleReason?: string;
  iterations: number;
  restarts: number;
  bytesRead: number;
  bytesWritten: number;
  durationMs: number;
  /** The budget's high-water mark during the run. */
  peakBudgetBytes: number;
}
