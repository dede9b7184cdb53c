/**
 * `SqliteMetadataStore`: the embedded default `MetadataStore`, one SQLite file (better-sqlite3).
 *
 * Every mutation is one IMMEDIATE transaction (the write lock is taken up front, so two processes
 * sharing the file serialise instead of failing half-way with SQLITE_BUSY on upgrade), which makes
 * each call all-or-nothing even when the process is killed in the middle (invariant 5).
 *
 * better-sqlite3 is synchronous; the API stays Promise-returning because a host may implement
 * `MetadataStore` over a network.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { MetadataError, OptionsError } from '../errors.js';
import { checkObject, checkSqlitePath, describe, int, intArray, optionalInt, soFromRow, streamFromRow } from './common.js';
import { commitOnSqlite } from './sqlite-commit.js';
import { mapError } from './sqlite-errors.js';
import { acquireNodeLease, claimNode, listExpiredNodes, listQuarantined, quarantineObject, releaseNodeLease, releaseQuarantined } from './sqlite-nodes.js';
import { dropSnapshot, openReadOnly, openWritable } from './sqlite-open.js';
import type { SqliteInternals, Statements } from './sqlite-statements.js';
import { completeDeletions, listAllLiveObjects, listPendingDeletions, listSsoRanges, listSsoRangesPacked, listStreamSetObjects, prepareObjectIds } from './sqlite-objects.js';
import type { PackedRangesById } from './packed-ranges.js';
import { closeStream, createStream, deleteStream, trimStream } from './sqlite-streams.js';
import type {
  CommitStreamSetObjectRequest,
  LiveObjects,
  MetadataStore,
  PendingDeletion,
  QuarantinedObject,
  StreamMetadata,
  StreamObjectMetadata,
  StreamRange,
  StreamSetObjectMetadata,
} from './types.js';

export interface SqliteMetadataStoreOptions {
  /** Database file, created when missing; ':memory:' for a private in-memory database. */
  path: string;
  /** How long a removed object stays in storage before it may be deleted. Default 5 min. */
  graceMs?: number;
  /** How long ids handed out by prepareObjectIds stay reserved. Default 1 h. */
  preparedTtlMs?: number;
  /** Clock (ms since the epoch). Default Date.now. */
  now?: () => number;
  /** How long to wait for another connection's write lock before failing. Default 5 s. */
  busyTimeoutMs?: number;
  /**
   * Open for reading only (plan, verify, inspect): the file must exist and is never created,
   * migrated or written; a write fails with ERR_METADATA_READ_ONLY. A file that SQLite cannot
   * read in place (a WAL database in a read-only folder needs a shared-memory file beside it)
   * is read from a private snapshot copy, taken at open.
   */
  readOnly?: boolean;
}

const DEFAULT_GRACE_MS = 5 * 60_000;
const DEFAULT_PREPARED_TTL_MS = 60 * 60_000;
const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

export class SqliteMetadataStore implements MetadataStore {
  readonly path: string;
  readonly graceMs: number;
  readonly preparedTtlMs: number;
  readonly readOnly: boolean;
  private readonly nowFn: () => number;
  private db: BetterSqlite3.Database | null;
  private readonly st: Statements;
  /** The snapshot folder of a read-only open that could not read in place. */
  private readonly snapshotDir: string | undefined;
  /** What the operations in sqlite-streams/-objects/-nodes/-commit get of this store. */
  private readonly internals: SqliteInternals;

  /**
   * Opens (creating when missing) the database. Throws MetadataError synchronously:
   * ERR_METADATA_NOT_A_DATABASE, ERR_METADATA_SCHEMA_TOO_NEW or ERR_METADATA_IO.
   */
  constructor(options: SqliteMetadataStoreOptions) {
    this.path = checkSqlitePath(options);
    this.graceMs = optionalInt('graceMs', options.graceMs, DEFAULT_GRACE_MS);
    this.preparedTtlMs = optionalInt('preparedTtlMs', options.preparedTtlMs, DEFAULT_PREPARED_TTL_MS);
    const busyTimeoutMs = optionalInt('busyTimeoutMs', options.busyTimeoutMs, DEFAULT_BUSY_TIMEOUT_MS);
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new OptionsError('now', `must be a function returning milliseconds, got ${describe(options.now)}`);
    }
    this.nowFn = options.now ?? Date.now;
    if (options.readOnly !== undefined && typeof options.readOnly !== 'boolean') {
      throw new OptionsError('readOnly', `must be a boolean, got ${describe(options.readOnly)}`);
    }
    this.readOnly = options.readOnly === true;
    const opened = this.readOnly ? openReadOnly(this.path, busyTimeoutMs) : openWritable(this.path, busyTimeoutMs, () => this.now());
    this.db = opened.db;
    this.st = opened.st;
    this.snapshotDir = opened.snapshotDir;
    this.internals = {
      path: this.path,
      graceMs: this.graceMs,
      preparedTtlMs: this.preparedTtlMs,
      st: this.st,
      now: () => this.now(),
      db: (op) => this.open(op),
      read: (op, fn) => this.read(op, fn),
      write: (op, fn) => this.write(op, fn),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Streams

  async createStream(req: { streamId: number; epoch: number; startOffset: number }): Promise<StreamMetadata> {
    return createStream(this.internals, req);
  }

  /**
   * Moves the start offset forward (never backwards: a smaller offset is a no-op). It may pass the
   * end offset, which then follows it. Stream objects left with no data at or above the new start
   * are removed (pending deletion after the grace period). A no-op on a deleted stream.
   */
  async trimStream(streamId: number, newStartOffset: number): Promise<void> {
    return trimStream(this.internals, streamId, newStartOffset);
  }

  /** Marks the stream deleted (idempotent); its stream objects become pending deletions. */
  async deleteStream(streamId: number): Promise<void> {
    return deleteStream(this.internals, streamId);
  }

  /** Marks an opened stream closed (idempotent; a no-op on a deleted stream). */
  async closeStream(streamId: number): Promise<void> {
    return closeStream(this.internals, streamId);
  }

  /** The known streams among `streamIds` (deleted ones included, unknown ones omitted), in request order, once each. */
  async getStreams(streamIds: readonly number[]): Promise<StreamMetadata[]> {
    return this.read('getStreams', () => {
      intArray('streamIds', streamIds);
      const out: StreamMetadata[] = [];
      const seen = new Set<number>();
      for (const id of streamIds) {
        if (seen.has(id)) continue;
        seen.add(id);
        const row = this.st.getStream.get(id);
        if (row !== undefined) out.push(streamFromRow(row));
      }
      return out;
    });
  }

  /** Every stream, deleted ones included, by stream id. */
  async listStreams(): Promise<StreamMetadata[]> {
    return this.read('listStreams', () => this.st.allStreams.all().map(streamFromRow));
  }

  // -------------------------------------------------------------------------------------------
  // Objects

  /**
   * Reserves `count` consecutive ids (never handed out again, even after a restart) for
   * `opts.ttlMs` (default `preparedTtlMs`). While reserved they are "known" (garbage collection
   * keeps their objects); committing an id whose reservation expired is refused.
   */
  async prepareObjectIds(count: number, opts?: { ttlMs?: number }): Promise<number> {
    return prepareObjectIds(this.internals, count, opts);
  }

  async commitStreamSetObject(req: CommitStreamSetObjectRequest): Promise<void> {
    return this.write('commitStreamSetObject', () => commitOnSqlite(this.internals, req));
  }

  /** Live SSOs of a node by orderId (then objectId), each with its ranges sorted by streamId. */
  async listStreamSetObjects(req: { nodeId?: number; streamId?: number; withRanges?: boolean } = {}): Promise<StreamSetObjectMetadata[]> {
    return listStreamSetObjects(this.internals, req);
  }

  /** The ranges of these live SSOs, by objectId, each sorted by streamId. */
  async listSsoRanges(objectIds: readonly number[]): Promise<Map<number, StreamRange[]>> {
    return listSsoRanges(this.internals, objectIds);
  }

  /** `listSsoRanges` packed for a trip between threads (`SqliteThreadStore`'s). */
  async listSsoRangesPacked(objectIds: readonly number[]): Promise<PackedRangesById> {
    return listSsoRangesPacked(this.internals, objectIds);
  }

  /** The streams with a range in a live SSO of `nodeId`, by streamId. */
  async getStreamsOfNode(nodeId: number): Promise<StreamMetadata[]> {
    return this.read('getStreamsOfNode', () => this.st.streamsOfNode.all(int('nodeId', nodeId)).map(streamFromRow));
  }

  /** Live stream objects of a stream by startOffset. */
  async listStreamObjects(req: { streamId: number }): Promise<StreamObjectMetadata[]> {
    return this.read('listStreamObjects', () => {
      checkObject('req', req);
      const streamId = int('streamId', req.streamId);
      return this.st.liveSosOfStream.all(streamId).map(soFromRow);
    });
  }

  /** Every live object: SSOs of all nodes (by nodeId, orderId) and SOs (by streamId, startOffset). */
  async listAllLiveObjects(): Promise<LiveObjects> {
    return listAllLiveObjects(this.internals);
  }

  async listPendingDeletions(req: { nowMs?: number; limit?: number } = {}): Promise<PendingDeletion[]> {
    return listPendingDeletions(this.internals, req);
  }

  /** Forgets pending deletions. Ids that are unknown or already forgotten are ignored; live objects are never removed. */
  async completeDeletions(objectIds: readonly number[]): Promise<void> {
    return completeDeletions(this.internals, objectIds);
  }

  async isObjectKnown(objectId: number): Promise<boolean> {
    return this.read('isObjectKnown', () => {
      int('objectId', objectId);
      if (this.st.objectExists.get(objectId) !== undefined) return true;
      const p = this.st.preparedContaining.get({ id: objectId });
      return p !== undefined && p.expires_ms > this.now();
    });
  }

  // -------------------------------------------------------------------------------------------
  // Nodes and quarantine

  /** Claims the node for a compactor: its epoch, one more than the last claim's (see MetadataStore). */
  async claimNode(req: { nodeId: number; holder: string }): Promise<{ epoch: number }> {
    return claimNode(this.internals, req);
  }

  async acquireNodeLease(req: { nodeId: number; holder: string; ttlMs: number; preemptAdopter?: boolean }): Promise<void> {
    return acquireNodeLease(this.internals, req);
  }

  async releaseNodeLease(req: { nodeId: number; holder: string }): Promise<void> {
    return releaseNodeLease(this.internals, req);
  }

  async listExpiredNodes(req: { excludeNodeId: number }): Promise<number[]> {
    return listExpiredNodes(this.internals, req);
  }

  async quarantineObject(req: { objectId: number; code: string; reason: string }): Promise<void> {
    return quarantineObject(this.internals, req);
  }

  async listQuarantined(): Promise<QuarantinedObject[]> {
    return listQuarantined(this.internals);
  }

  async releaseQuarantined(objectId: number): Promise<boolean> {
    return releaseQuarantined(this.internals, objectId);
  }

  /** Closes the database (idempotent). Later calls reject with ERR_METADATA_CLOSED. */
  async close(): Promise<void> {
    const db = this.db;
    if (db === null) return;
    this.db = null;
    try {
      db.close();
      dropSnapshot(this.snapshotDir);
    } catch (err) {
      throw mapError(err, this.path, 'close');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  private now(): number {
    const t = this.nowFn();
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) {
      throw new OptionsError('now', `the clock returned ${describe(t)}; it must return milliseconds since the epoch`);
    }
    return Math.floor(t);
  }

  private open(op: string): BetterSqlite3.Database {
    if (this.db === null) {
      throw new MetadataError('ERR_METADATA_CLOSED', `cannot ${op}: the metadata store ${this.path} is closed`);
    }
    return this.db;
  }

  /** Reads run in a (deferred) read transaction: one consistent snapshot even while another process writes. */
  private read<T>(op: string, fn: () => T): Promise<T> {
    return this.transact(op, fn, 'deferred');
  }

  /** Writes take the write lock up front (immediate), so a commit never fails half-way on a busy lock. */
  private write<T>(op: string, fn: () => T): Promise<T> {
    if (this.readOnly) {
      return Promise.reject(new MetadataError('ERR_METADATA_READ_ONLY', `${op} refused: metadata database ${this.path} was opened read-only`));
    }
    return this.transact(op, fn, 'immediate');
  }

  private transact<T>(op: string, fn: () => T, mode: 'deferred' | 'immediate'): Promise<T> {
    const db = this.open(op);
    try {
      return Promise.resolve(db.transaction(fn)[mode]());
    } catch (err) {
      return Promise.reject(mapError(err, this.path, op));
    }
  }
}
