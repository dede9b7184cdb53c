/**
 * `SqliteThreadStore`: the SQLite store with its connection on a thread of its own.
 *
 * better-sqlite3 is synchronous: on the host's thread, a commit's fsync (synchronous=FULL) and,
 * worse, a wait for another process's write lock (up to `busyTimeoutMs`, 5 s by default) stop
 * the host's event loop, the ingest node's own. Here they stop only this store's thread. The
 * behaviour is `SqliteMetadataStore`'s (the same contract tests run on both), plus what a thread
 * can do: fail. A thread that crashes or goes `callTimeoutMs` without answering while a call
 * waits is terminated, its calls fail (a write with ERR_METADATA_OUTCOME_UNKNOWN, which the
 * compactor resolves by reading back; a read with a retryable ERR_METADATA_IO), and the next
 * call opens the database on a new one.
 */
import { MetadataError, OptionsError } from '../errors.js';
import { abortReason, onAbort } from '../util/async.js';
import { checkSqlitePath, optionalInt } from './common.js';
import type { SqliteMetadataStoreOptions } from './sqlite-store.js';
import { StoreThread } from './sqlite-thread-link.js';
import type { StoreMethod } from './sqlite-thread-protocol.js';
import { rangesById, type PackedRangesById } from './packed-ranges.js';
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

export interface SqliteThreadStoreOptions extends Omit<SqliteMetadataStoreOptions, 'now'> {
  /**
   * How long the thread may go without answering while a call waits before it is terminated and
   * the calls fail (the open gets at least 30 s). Give it more than `busyTimeoutMs`, so a wait
   * for another process's lock ends as SQLite's busy error, not as this. Default 60 000 ms.
   */
  callTimeoutMs?: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 60_000;

export class SqliteThreadStore implements MetadataStore {
  readonly path: string;
  readonly #options: Omit<SqliteMetadataStoreOptions, 'now'>;
  readonly #timeoutMs: number;
  #thread: StoreThread;
  #closing: Promise<void> | undefined;

  /**
   * Starts the thread and opens the database in it. Rejects with the open's MetadataError
   * (ERR_METADATA_NOT_A_DATABASE, ERR_METADATA_SCHEMA_TOO_NEW, ERR_METADATA_IO...), an
   * OptionsError naming a wrong option, or the signal's AbortError.
   */
  static async open(options: SqliteThreadStoreOptions, { signal }: { signal?: AbortSignal } = {}): Promise<SqliteThreadStore> {
    const store = new SqliteThreadStore(options);
    const off = onAbort(signal, () => void store.close().catch(() => {}));
    try {
      await store.#thread.ready;
      if (signal?.aborted) throw abortReason(signal);
      return store;
    } catch (err) {
      await store.close().catch(() => {});
      throw signal?.aborted ? abortReason(signal) : err;
    } finally {
      off();
    }
  }

  private constructor(options: SqliteThreadStoreOptions) {
    this.path = checkSqlitePath(options);
    if ((options as SqliteMetadataStoreOptions).now !== undefined) {
      throw new OptionsError('now', 'a clock function cannot cross to the store\'s thread; use SqliteMetadataStore for a custom clock');
    }
    const { callTimeoutMs, ...storeOptions } = options;
    this.#timeoutMs = optionalInt('callTimeoutMs', callTimeoutMs, DEFAULT_CALL_TIMEOUT_MS, 1);
    this.#options = storeOptions;
    this.#thread = new StoreThread(storeOptions, this.#timeoutMs);
  }

  async createStream(req: { streamId: number; epoch: number; startOffset: number }): Promise<StreamMetadata> {
    return this.#call('createStream', req);
  }
  async trimStream(streamId: number, newStartOffset: number): Promise<void> {
    return this.#call('trimStream', streamId, newStartOffset);
  }
  async deleteStream(streamId: number): Promise<void> {
    return this.#call('deleteStream', streamId);
  }
  async closeStream(streamId: number): Promise<void> {
    return this.#call('closeStream', streamId);
  }
  async getStreams(streamIds: readonly number[]): Promise<StreamMetadata[]> {
    return this.#call('getStreams', streamIds);
  }
  async listStreams(): Promise<StreamMetadata[]> {
    return this.#call('listStreams');
  }
  async prepareObjectIds(count: number, opts?: { ttlMs?: number }): Promise<number> {
    return this.#call('prepareObjectIds', count, opts);
  }
  async commitStreamSetObject(req: CommitStreamSetObjectRequest): Promise<void> {
    return this.#call('commitStreamSetObject', req);
  }
  async listStreamSetObjects(req?: { nodeId?: number; streamId?: number; withRanges?: boolean }): Promise<StreamSetObjectMetadata[]> {
    return this.#call('listStreamSetObjects', req);
  }
  async listSsoRanges(objectIds: readonly number[]): Promise<Map<number, StreamRange[]>> {
    return rangesById(await this.#call<PackedRangesById>('listSsoRanges', objectIds));
  }
  async getStreamsOfNode(nodeId: number): Promise<StreamMetadata[]> {
    return this.#call('getStreamsOfNode', nodeId);
  }
  async listStreamObjects(req: { streamId: number }): Promise<StreamObjectMetadata[]> {
    return this.#call('listStreamObjects', req);
  }
  async listAllLiveObjects(): Promise<LiveObjects> {
    return this.#call('listAllLiveObjects');
  }
  async listPendingDeletions(req: { nowMs?: number; limit?: number } = {}): Promise<PendingDeletion[]> {
    return this.#call('listPendingDeletions', req);
  }
  async completeDeletions(objectIds: readonly number[]): Promise<void> {
    return this.#call('completeDeletions', objectIds);
  }
  async isObjectKnown(objectId: number): Promise<boolean> {
    return this.#call('isObjectKnown', objectId);
  }
  async claimNode(req: { nodeId: number; holder: string }): Promise<{ epoch: number }> {
    return this.#call('claimNode', req);
  }
  async acquireNodeLease(req: { nodeId: number; holder: string; ttlMs: number; preemptAdopter?: boolean }): Promise<void> {
    return this.#call('acquireNodeLease', req);
  }
  async releaseNodeLease(req: { nodeId: number; holder: string }): Promise<void> {
    return this.#call('releaseNodeLease', req);
  }
  async listExpiredNodes(req: { excludeNodeId: number }): Promise<number[]> {
    return this.#call('listExpiredNodes', req);
  }
  async quarantineObject(req: { objectId: number; code: string; reason: string }): Promise<void> {
    return this.#call('quarantineObject', req);
  }
  async listQuarantined(): Promise<QuarantinedObject[]> {
    return this.#call('listQuarantined');
  }
  async releaseQuarantined(objectId: number): Promise<boolean> {
    return this.#call('releaseQuarantined', objectId);
  }

  /** Closes the database and ends the thread (idempotent). Later calls reject with ERR_METADATA_CLOSED. */
  close(): Promise<void> {
    this.#closing ??= this.#thread.close();
    return this.#closing;
  }

  /** A failed thread is replaced at the next call: the failure was reported to the calls it lost. */
  async #call<T>(method: StoreMethod, ...args: unknown[]): Promise<T> {
    if (this.#closing !== undefined) throw new MetadataError('ERR_METADATA_CLOSED', `cannot ${method}: the metadata store ${this.path} is closed`);
    if (!this.#thread.usable) this.#thread = new StoreThread(this.#options, this.#timeoutMs);
    const thread = this.#thread;
    await thread.ready;
    return (await thread.call(method, args)) as T;
  }
}
