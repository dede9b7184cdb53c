export type StreamState = 'opened' | 'closed' | 'deleted';

/** The start of a lease holder that adopted another node's SSOs (its home node may take the lease back). */
export const ADOPTER_PREFIX = 'adopted by ';

export interface StreamMetadata {
  streamId: number;
  epoch: number;
  /** Data below this offset is trimmed. */
  startOffset: number;
  /** One past the last committed offset (max end of committed ranges, or startOffset). */
  endOffset: number;
  state: StreamState;
}

export interface StreamRange {
  streamId: number;
  startOffset: number;
  endOffset: number;
}

export interface StreamSetObjectMetadata {
  objectId: number;
  nodeId: number;
  orderId: number;
  dataTimeMs: number;
  objectSize: number;
  /** Sorted by streamId. */
  ranges: StreamRange[];
}

export interface StreamObjectMetadata {
  objectId: number;
  streamId: number;
  startOffset: number;
  endOffset: number;
  objectSize: number;
  dataTimeMs?: number;
}

export interface CommitStreamSetObjectRequest {
  nodeId: number;
  /** The new SSO, or -1 when the commit has none (a compaction that produced only stream objects). */
  objectId: number;
  objectSize: number;
  streamRanges: StreamRange[];
  streamObjects: StreamObjectMetadata[];
  /** SSO ids removed by this commit, ascending. */
  compactedObjectIds: number[];
  /** Defaults: for a fresh SSO its objectId; for a compaction, the smallest orderId of the compacted SSOs. */
  orderId?: number;
  /** Defaults: now for a fresh SSO; the smallest dataTimeMs of the compacted SSOs for a compaction. */
  dataTimeMs?: number;
  /**
   * The compactor epoch of `nodeId` this commit was made under (from `claimNode`): a store that
   * fences refuses it with ERR_METADATA_FENCED when the node was claimed again since, in the
   * commit's own transaction. Absent: not fenced (an ingest's commit).
   */
  fence?: { epoch: number };
}

/** An object removed by a commit, waiting for its grace period before storage deletion. */
export interface PendingDeletion {
  objectId: number;
  dueAtMs: number;
}

/** An object kept out of compaction because planning or copying found it damaged or inconsistent. */
export interface QuarantinedObject {
  objectId: number;
  /** The error code that put it there, e.g. ERR_FORMAT_BLOCK_MAGIC, ERR_PLAN_OVERLAP. */
  code: string;
  reason: string;
  atMs: number;
}

/** Every live object, for verification tools. */
export interface LiveObjects {
  /** Live SSOs of every node, by nodeId, then orderId. */
  streamSetObjects: StreamSetObjectMetadata[];
  /** Live SOs of every stream, by streamId, then startOffset. */
  streamObjects: StreamObjectMetadata[];
}

/**
 * What the compactor needs from metadata. `SqliteMetadataStore` is the embedded default;
 * a host can implement this over its own metadata service.
 */
export interface MetadataStore {
  createStream(req: { streamId: number; epoch: number; startOffset: number }): Promise<StreamMetadata>;
  trimStream(streamId: number, newStartOffset: number): Promise<void>;
  deleteStream(streamId: number): Promise<void>;
  closeStream(streamId: number): Promise<void>;
  getStreams(streamIds: readonly number[]): Promise<StreamMetadata[]>;
  /** Hands out `count` consecutive ids and returns the first. */
  prepareObjectIds(count: number, opts?: { ttlMs?: number }): Promise<number>;
  /** Atomic: all of it becomes visible, or none (and it throws). */
  commitStreamSetObject(req: CommitStreamSetObjectRequest): Promise<void>;
  /**
   * Live SSOs ordered by orderId; `nodeId` and `streamId` narrow the list (both optional).
   * `withRanges: false` lets a store leave `ranges` empty: a node's SSOs can hold hundreds of
   * thousands of ranges that planning does not need.
   */
  listStreamSetObjects(req?: { nodeId?: number; streamId?: number; withRanges?: boolean }): Promise<StreamSetObjectMetadata[]>;
  /** Optional: the streams with a range in a live SSO of the node (else derived from the ranges). */
  getStreamsOfNode?(nodeId: number): Promise<StreamMetadata[]>;
  /**
   * Optional: the ranges of these SSOs, by objectId, each list sorted by streamId (none for an id
   * that is no live SSO). Lets a caller load a node's ranges a slice at a time: a synchronous
   * store loading 53 k at once held the host's thread for ~60-120 ms.
   */
  listSsoRanges?(objectIds: readonly number[]): Promise<Map<number, StreamRange[]>>;
  listStreamObjects(req: { streamId: number }): Promise<StreamObjectMetadata[]>;
  /**
   * Objects removed by commits whose grace period ends at or before `nowMs`; without it, the
   * store's own clock decides (PostgreSQL: the database's, so no node's clock can make an
   * object due early).
   */
  listPendingDeletions(req: { nowMs?: number; limit?: number }): Promise<PendingDeletion[]>;
  /** Forget pending deletions once storage has deleted the objects. Idempotent. */
  completeDeletions(objectIds: readonly number[]): Promise<void>;
  /**
   * Whether an object id is known to metadata: live, pending deletion, or prepared and not yet
   * expired. Garbage collection removes only objects for which this is false.
   */
  isObjectKnown(objectId: number): Promise<boolean>;
  /** Optional: every stream, deleted ones included, by streamId (for verification tools). */
  listStreams?(): Promise<StreamMetadata[]>;
  /** Optional: every live object (for verification tools). */
  listAllLiveObjects?(): Promise<LiveObjects>;
  /**
   * Optional quarantine: an object that failed planning or copying is excluded from later runs
   * (it stays live and readable) until an operator releases it. A store without these methods
   * only leaves such objects out of the run that found them.
   */
  quarantineObject?(req: { objectId: number; code: string; reason: string }): Promise<void>;
  listQuarantined?(): Promise<QuarantinedObject[]>;
  /** Returns whether the object was quarantined. */
  releaseQuarantined?(objectId: number): Promise<boolean>;
  /**
   * Optional node lease: held by the compactor running a node's compaction, renewed while it
   * runs. Acquiring (or renewing) a lease another holder has and that has not expired throws
   * `MetadataError('ERR_METADATA_NODE_BUSY')` naming the holder. Releasing is idempotent.
   */
  acquireNodeLease?(req: { nodeId: number; holder: string; ttlMs: number; preemptAdopter?: boolean }): Promise<void>;
  /**
   * Optional adoption: the nodes other than `excludeNodeId` that have live SSOs and no unexpired
   * lease (their compactor stopped renewing), by node id. An adopter's lease holder starts with
   * `ADOPTER_PREFIX`; the home node takes its lease back from one (`preemptAdopter`).
   */
  listExpiredNodes?(req: { excludeNodeId: number }): Promise<number[]>;
  releaseNodeLease?(req: { nodeId: number; holder: string }): Promise<void>;
  /**
   * Optional fencing: claims the node for a compactor and returns its epoch (one more than the
   * last claim's). Commits carrying an older epoch are refused with ERR_METADATA_FENCED from then on.
   */
  claimNode?(req: { nodeId: number; holder: string }): Promise<{ epoch: number }>;
  close(): Promise<void>;
}
