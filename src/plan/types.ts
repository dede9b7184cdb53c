/**
 * Plan data: everything here is plain JSON-serializable data (numbers, strings, arrays, plain
 * objects), so a plan can be printed by a CLI dry run, posted to worker threads and compared
 * after a JSON round trip.
 */
import type { IndexEntry } from '../format/types.js';
import type { StreamMetadata, StreamRange, StreamSetObjectMetadata } from '../metadata/types.js';

export interface PlannerOptions {
  /** Bytes of object data the pipeline may hold at once, the uploader's pending SSO tail included. */
  memoryLimit: number;
  /** A stream's contiguous run with more bytes than this becomes a stream object. */
  streamSplitSize: number;
  /** SSOs considered per run (the caller already picked them newest `dataTimeMs` first). */
  maxObjectsPerRun: number;
  /** An SSO whose `dataTimeMs` is older than `nowMs - forceSplitAfterMs` is split into stream objects. */
  forceSplitAfterMs: number;
  /** At most this many stream objects per commit; source objects are deferred until the plan fits. */
  maxStreamObjectsPerCommit: number;
  /** At most this many streams in the new SSO; source objects are deferred until the plan fits. */
  maxStreamsPerStreamSetObject: number;
  /** Multipart part size; parts of the SSO are cut at exactly this many bytes. */
  partSize: number;
  /** Lower bound for `partSize` (S3 minimum 5 MiB); tests may lower it. */
  minPartSize: number;
}

/** One candidate SSO with its index as read by the caller, or the reason it could not be read. */
export interface PlanInputObject {
  /** `meta.ranges` may be empty (not loaded); when given, the index must hold every one of them. */
  meta: StreamSetObjectMetadata;
  key: string;
  /** `code`: the error's code (a FormatError's, say), which decides whether the object is quarantined. */
  index: IndexEntry[] | { error: string; code?: string };
}

export interface PlanInput {
  /** Candidate SSOs, newest `dataTimeMs` first (the order exclusions follow: the end goes first). */
  objects: PlanInputObject[];
  /** Metadata of the streams the objects hold; a stream missing here is treated as deleted. */
  streams: StreamMetadata[];
  /** "Now" for the force-split rule. The planner reads no clock. */
  nowMs: number;
  options: Partial<PlannerOptions>;
  /**
   * The pipeline's open reads: up to `max` sources may keep one GET open across iterations, each
   * holding `bytesEach` of `memoryLimit` for the whole run. The plan picks how many (the fewest
   * data GETs) and cuts iterations to leave them free. None by default.
   */
  openReads?: { max: number; bytesEach: number };
}

/** What `checkCoverage` needs from the input: the objects and the (possibly newer) stream metadata. */
export interface CoverageInput {
  objects: PlanInputObject[];
  streams: StreamMetadata[];
}

export type BlockDest =
  /** `offset`: byte offset of the block inside the new SSO's data section. */
  | { kind: 'sso'; offset: number }
  /** `index`: the stream object (`plan.streamObjects[index]`); `offset`: byte offset inside its data. */
  | { kind: 'so'; index: number; offset: number };

/**
 * One planning unit: one index entry of a source SSO (it may cover several physical data blocks,
 * which are copied byte for byte).
 */
export interface PlannedBlock {
  objectId: number;
  key: string;
  /** Position of the entry's first data block in the source object. */
  position: number;
  size: number;
  streamId: number;
  startOffset: number;
  endOffset: number;
  recordCount: number;
  dest: BlockDest;
}

export interface PlannedStreamObject {
  /** Position in `plan.streamObjects` (and `dest.index` of its blocks). */
  index: number;
  streamId: number;
  startOffset: number;
  endOffset: number;
  /** Bytes of data blocks (index and footer excluded). */
  dataSize: number;
  /** The iteration that writes it entirely (a stream object begins and ends inside one iteration). */
  iteration: number;
  /** Number of planned blocks. */
  blocks: number;
}

export interface PlannedStreamSetObject {
  /** One range per stream, sorted by streamId. */
  ranges: StreamRange[];
  /** Bytes of data blocks (index and footer excluded). */
  dataSize: number;
  /** Number of planned blocks. */
  blocks: number;
  /** First iteration that writes SSO bytes. */
  firstIteration: number;
  /** The iteration that writes the SSO's last block, in which the SSO closes. */
  closesIn: number;
}

export interface PlanIteration {
  index: number;
  /**
   * SSO bytes the uploader still holds when the iteration starts (emitted, not yet in a completed
   * part): `ssoBytesBefore % partSize`. Counted against `memoryLimit`.
   */
  tailBefore: number;
  /** SSO bytes emitted by earlier iterations (byte offset in the SSO where this iteration resumes). */
  ssoBytesBefore: number;
  /** Bytes of this iteration's blocks. `tailBefore + bytes <= memoryLimit`. */
  bytes: number;
  /**
   * Blocks to read, in output order per destination: stream objects by ascending index (each in
   * offset order), then SSO blocks in (streamId, startOffset) order.
   */
  blocks: PlannedBlock[];
}

/** A source object left out of the run. */
export interface PlanExclusion {
  objectId: number;
  key: string;
  reason: string;
  /** The error code behind the exclusion, when there is one. */
  code?: string;
  /**
   * The object itself is damaged or inconsistent (not the storage, not a limit): it should be
   * quarantined so later runs leave it out too, until an operator releases it.
   */
  quarantine?: boolean;
}

export interface CompactionPlan {
  /** SSOs removed by the commit, ascending: merged, force-split and emptied ones. */
  compactedObjectIds: number[];
  /** Compacted SSOs that had no live block left (nothing read for them). Ascending. */
  emptiedObjectIds: number[];
  /** Left out because their index could not be read, or because one of their blocks exceeds memoryLimit. */
  skipped: PlanExclusion[];
  /** Left out so the plan fits its limits (maxObjectsPerRun, maxStreamObjectsPerCommit, maxStreamsPerStreamSetObject); run again soon. */
  deferred: PlanExclusion[];
  /** SSOs sharing no stream with any other candidate: left alone. Ascending. */
  untouched: number[];
  /** Smallest orderId of the compacted SSOs (null when nothing is compacted). */
  orderId: number | null;
  /** Smallest dataTimeMs of the compacted SSOs (null when nothing is compacted). */
  dataTimeMs: number | null;
  /** The limits the plan was cut for. */
  memoryLimit: number;
  /** Sources whose GET the pipeline keeps open across iterations (`PlanInput.openReads`), and the bytes of `memoryLimit` the cut left them. */
  openReads: number;
  reserved: number;
  partSize: number;
  sso: PlannedStreamSetObject | null;
  streamObjects: PlannedStreamObject[];
  iterations: PlanIteration[];
  totals: {
    /** Planned blocks (index entries) to read. */
    blocks: number;
    bytesToRead: number;
    ssoBytes: number;
    soBytes: number;
    /** Blocks of compacted SSOs dropped as trimmed or of deleted/unknown streams. */
    droppedBlocks: number;
    droppedBytes: number;
  };
}

/** Where to restart reading the SSO's data so that an upload resumes after `durableBytes`. */
export interface SsoResumePoint {
  /** Iteration holding the block that contains byte `durableBytes` of the SSO. */
  iteration: number;
  /** Index of that block in `plan.iterations[iteration].blocks`. */
  blockIndex: number;
  /** Bytes of that block already durable: read from `position + skip`, write at SSO offset `durableBytes`. */
  skip: number;
  /** The block's own byte offset inside the SSO (`durableBytes - skip`). */
  blockOffset: number;
}
