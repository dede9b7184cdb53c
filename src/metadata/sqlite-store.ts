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
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { CompactorError, MetadataError, OptionsError } from '../errors.js';
import { checkSchemaReadOnly, ensureSchema } from './schema.js';
import {
  assembleSsos,
  checkObject,
  describe,
  int,
  intArray,
  liveRanges,
  minOf,
  optionalInt,
  parseCommit,
  soFromRow,
  streamFromRow,
  type ObjectRow,
  type PreparedRow,
  type RangeRow,
  type StreamRow,
} from './common.js';
import type {
  CommitStreamSetObjectRequest,
  LiveObjects,
  MetadataStore,
  PendingDeletion,
  QuarantinedObject,
  StreamMetadata,
  StreamObjectMetadata,
  StreamSetObjectMetadata,
} from './types.js';
import { ADOPTER_PREFIX } from './types.js';

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
/**
 * Expired prepared ranges are kept this long after expiry, so that a late commit of an expired id
 * is refused (its object may already have been garbage-collected) rather than silently accepted.
 */
const EXPIRED_PREPARED_RETENTION_MS = 7 * 24 * 60 * 60_000;

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: BetterSqlite3.Database) {
  return {
    getStream: db.prepare<[number], StreamRow>('SELECT * FROM streams WHERE stream_id = ?'),
    insertStream: db.prepare<[number, number, number, number]>(
      `INSERT INTO streams (stream_id, epoch, start_offset, end_offset, state) VALUES (?, ?, ?, ?, 'opened')`,
    ),
    trimStream: db.prepare<[{ start: number; id: number }]>(
      'UPDATE streams SET start_offset = @start, end_offset = MAX(end_offset, @start) WHERE stream_id = @id AND start_offset < @start',
    ),
    setStreamState: db.prepare<[string, number]>('UPDATE streams SET state = ? WHERE stream_id = ?'),
    advanceStreamEnd: db.prepare<[number, number]>(
      `UPDATE streams SET end_offset = MAX(end_offset, ?) WHERE stream_id = ? AND state <> 'deleted'`,
    ),
    allStreams: db.prepare<[], StreamRow>('SELECT * FROM streams ORDER BY stream_id'),
    // Stream objects of a stream that hold no data at or above `start` (after a trim or delete).
    retireStreamObjects: db.prepare<[number, number, number]>(
      `UPDATE objects SET state = 'deleting', delete_due_ms = ?
       WHERE kind = 'so' AND state = 'live' AND stream_id = ? AND end_offset <= ?`,
    ),
    getObject: db.prepare<[number], ObjectRow>('SELECT * FROM objects WHERE object_id = ?'),
    objectExists: db.prepare<[number], number>('SELECT 1 FROM objects WHERE object_id = ?').pluck(),
    insertSso: db.prepare<[number, number, number, number, number, number]>(
      `INSERT INTO objects (object_id, kind, node_id, order_id, data_time_ms, object_size, state, committed_ms)
       VALUES (?, 'sso', ?, ?, ?, ?, 'live', ?)`,
    ),
    insertRange: db.prepare<[number, number, number, number]>(
      'INSERT INTO sso_ranges (object_id, stream_id, start_offset, end_offset) VALUES (?, ?, ?, ?)',
    ),
    insertSo: db.prepare<[number, number, number, number, number, number, number, string, number | null, number]>(
      `INSERT INTO objects (object_id, kind, node_id, data_time_ms, object_size, stream_id, start_offset, end_offset,
                            state, delete_due_ms, committed_ms)
       VALUES (?, 'so', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    markDeleting: db.prepare<[number, number]>(
      `UPDATE objects SET state = 'deleting', delete_due_ms = ? WHERE object_id = ? AND state = 'live'`,
    ),
    liveSsosOfNode: db.prepare<[number], ObjectRow>(
      `SELECT * FROM objects WHERE kind = 'sso' AND state = 'live' AND node_id = ? ORDER BY order_id, object_id`,
    ),
    liveSsoRangesOfNode: db.prepare<[number], RangeRow>(
      `SELECT r.* FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
       WHERE o.kind = 'sso' AND o.state = 'live' AND o.node_id = ? ORDER BY r.object_id, r.stream_id`,
    ),
    rangesOfStream: db.prepare<[number], RangeRow>('SELECT * FROM sso_ranges WHERE stream_id = ?'),
    dropRangesBelow: db.prepare<[number, number]>('DELETE FROM sso_ranges WHERE stream_id = ? AND end_offset <= ?'),
    clipRangesAt: db.prepare<[{ start: number; id: number }]>(
      'UPDATE sso_ranges SET start_offset = @start WHERE stream_id = @id AND start_offset < @start AND end_offset > @start',
    ),
    streamsOfNode: db.prepare<[number], StreamRow>(
      `SELECT * FROM streams WHERE stream_id IN (
         SELECT DISTINCT r.stream_id FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
         WHERE o.kind = 'sso' AND o.state = 'live' AND o.node_id = ?)
       ORDER BY stream_id`,
    ),
    liveSsosOfStream: db.prepare<[number], ObjectRow>(
      `SELECT * FROM objects WHERE kind = 'sso' AND state = 'live'
         AND object_id IN (SELECT object_id FROM sso_ranges WHERE stream_id = ?)
       ORDER BY order_id, object_id`,
    ),
    liveSsoRangesOfStream: db.prepare<[number], RangeRow>(
      `SELECT r.* FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
       WHERE o.kind = 'sso' AND o.state = 'live'
         AND r.object_id IN (SELECT object_id FROM sso_ranges WHERE stream_id = ?)
       ORDER BY r.object_id, r.stream_id`,
    ),
    allLiveSsos: db.prepare<[], ObjectRow>(
      `SELECT * FROM objects WHERE kind = 'sso' AND state = 'live' ORDER BY node_id, order_id, object_id`,
    ),
    allLiveSsoRanges: db.prepare<[], RangeRow>(
      `SELECT r.* FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
       WHERE o.kind = 'sso' AND o.state = 'live' ORDER BY r.object_id, r.stream_id`,
    ),
    liveSosOfStream: db.prepare<[number], ObjectRow>(
      `SELECT * FROM objects WHERE kind = 'so' AND state = 'live' AND stream_id = ? ORDER BY start_offset, object_id`,
    ),
    allLiveSos: db.prepare<[], ObjectRow>(
      `SELECT * FROM objects WHERE kind = 'so' AND state = 'live' ORDER BY stream_id, start_offset, object_id`,
    ),
    pendingDeletions: db.prepare<[number, number], { object_id: number; delete_due_ms: number }>(
      `SELECT object_id, delete_due_ms FROM objects WHERE state = 'deleting' AND delete_due_ms <= ?
       ORDER BY delete_due_ms, object_id LIMIT ?`,
    ),
    completeDeletion: db.prepare<[number]>(`DELETE FROM objects WHERE object_id = ? AND state = 'deleting'`),
    nextId: db.prepare<[], number>('SELECT next_id FROM id_sequence WHERE singleton = 1').pluck(),
    setNextId: db.prepare<[number]>('UPDATE id_sequence SET next_id = MAX(next_id, ?) WHERE singleton = 1'),
    insertPrepared: db.prepare<[number, number, number]>(
      'INSERT INTO prepared_ids (first_id, end_id, expires_ms) VALUES (?, ?, ?)',
    ),
    // Ranges never overlap: the one with the greatest first_id <= id is the only candidate.
    preparedContaining: db.prepare<[{ id: number }], PreparedRow>(
      'SELECT * FROM (SELECT * FROM prepared_ids WHERE first_id <= @id ORDER BY first_id DESC LIMIT 1) WHERE end_id > @id',
    ),
    deletePrepared: db.prepare<[number]>('DELETE FROM prepared_ids WHERE first_id = ?'),
    prunePrepared: db.prepare<[number]>('DELETE FROM prepared_ids WHERE expires_ms <= ?'),
  };
}

export class SqliteMetadataStore implements MetadataStore {
  readonly path: string;
  readonly graceMs: number;
  readonly preparedTtlMs: number;
  private readonly nowFn: () => number;
  private db: BetterSqlite3.Database | null;
  private readonly st: Statements;
  readonly readOnly: boolean;
  /** The snapshot folder of a read-only open that could not read in place. */
  private snapshotDir: string | undefined;

  /**
   * Opens (creating when missing) the database. Throws MetadataError synchronously:
   * ERR_METADATA_NOT_A_DATABASE, ERR_METADATA_SCHEMA_TOO_NEW or ERR_METADATA_IO.
   */
  constructor(options: SqliteMetadataStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new OptionsError('options', 'pass an object such as { path: "meta.db" }');
    }
    if (typeof options.path !== 'string' || options.path.length === 0) {
      throw new OptionsError('path', `must be a non-empty file path or ':memory:', got ${describe(options.path)}`);
    }
    this.path = options.path;
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
    if (this.readOnly) {
      const { db, st } = this.openReadOnly(busyTimeoutMs);
      this.db = db;
      this.st = st;
      return;
    }

    let db: BetterSqlite3.Database;
    try {
      // better-sqlite3's `timeout` is SQLite's busy_timeout.
      db = new Database(this.path, { timeout: busyTimeoutMs });
    } catch (err) {
      throw mapError(err, this.path, 'open');
    }
    try {
      // Identify the file before writing anything to it (journal_mode=WAL rewrites the header).
      ensureSchema(db, this.path, this.now());
      // WAL: readers never block the writer and a killed writer leaves the database intact.
      db.pragma('journal_mode = WAL');
      // synchronous=FULL: in WAL mode, NORMAL survives a process crash but may lose the last
      // commits on power loss or an OS crash. A caller acts on a commit as soon as it returns
      // (an ingest node trims its WAL after registering an SSO; a compactor lets the grace period
      // run for the objects it replaced), so a commit that returned must survive a power loss:
      // FULL fsyncs the WAL at every commit. Commits are few (one per upload or compaction run),
      // so the fsync costs nothing that matters.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      this.st = prepareStatements(db);
    } catch (err) {
      try {
        db.close();
      } catch {
        // already failing; the original error is the useful one
      }
      throw mapError(err, this.path, 'open');
    }
    this.db = db;
  }

  private openReadOnly(busyTimeoutMs: number): { db: BetterSqlite3.Database; st: Statements } {
    const open = (file: string) => {
      let db: BetterSqlite3.Database | undefined;
      try {
        db = new Database(file, { readonly: true, fileMustExist: true, timeout: busyTimeoutMs });
        checkSchemaReadOnly(db, this.path);
        return { db, st: prepareStatements(db) };
      } catch (err) {
        try {
          db?.close();
        } catch {
          // already failing
        }
        throw err;
      }
    };
    try {
      return open(this.path);
    } catch (err) {
      const code = String((err as { code?: unknown }).code ?? '');
      if (!code.startsWith('SQLITE_READONLY') && !code.startsWith('SQLITE_CANTOPEN')) throw mapError(err, this.path, 'open');
      if (!existsSync(this.path)) throw new MetadataError('ERR_METADATA_IO', `cannot open metadata database ${this.path}: the file does not exist`, { cause: err });
    }
    // SQLite needs to write a -shm file beside a WAL database even to read it: read a copy.
    try {
      this.snapshotDir = mkdtempSync(join(tmpdir(), 's3sc-meta-ro-'));
      const copy = join(this.snapshotDir, basename(this.path));
      copyFileSync(this.path, copy);
      if (existsSync(`${this.path}-wal`)) copyFileSync(`${this.path}-wal`, `${copy}-wal`);
      return open(copy);
    } catch (err) {
      this.dropSnapshot();
      throw mapError(err, this.path, 'open');
    }
  }

  private dropSnapshot(): void {
    if (this.snapshotDir !== undefined) rmSync(this.snapshotDir, { recursive: true, force: true });
    this.snapshotDir = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Streams

  async createStream(req: { streamId: number; epoch: number; startOffset: number }): Promise<StreamMetadata> {
    return this.write('createStream', () => {
      checkObject('req', req);
      const streamId = int('streamId', req.streamId);
      const epoch = int('epoch', req.epoch);
      const startOffset = int('startOffset', req.startOffset);
      if (this.st.getStream.get(streamId) !== undefined) {
        throw new MetadataError(
          'ERR_METADATA_STREAM_EXISTS',
          `stream ${streamId} already exists in ${this.path}; use getStreams to read it, or pick another stream id`,
        );
      }
      this.st.insertStream.run(streamId, epoch, startOffset, startOffset);
      return { streamId, epoch, startOffset, endOffset: startOffset, state: 'opened' as const };
    });
  }

  /**
   * Moves the start offset forward (never backwards: a smaller offset is a no-op). It may pass the
   * end offset, which then follows it. Stream objects left with no data at or above the new start
   * are removed (pending deletion after the grace period). A no-op on a deleted stream.
   */
  async trimStream(streamId: number, newStartOffset: number): Promise<void> {
    return this.write('trimStream', () => {
      int('streamId', streamId);
      int('newStartOffset', newStartOffset);
      const s = this.requireStream(streamId, 'trim');
      if (s.state === 'deleted' || newStartOffset <= s.start_offset) return;
      this.st.trimStream.run({ start: newStartOffset, id: streamId });
      this.st.retireStreamObjects.run(this.now() + this.graceMs, streamId, newStartOffset);
      // No SSO range stays below the start: wholly below goes, straddling begins at it.
      this.st.dropRangesBelow.run(streamId, newStartOffset);
      this.st.clipRangesAt.run({ start: newStartOffset, id: streamId });
    });
  }

  /** Marks the stream deleted (idempotent); its stream objects become pending deletions. */
  async deleteStream(streamId: number): Promise<void> {
    return this.write('deleteStream', () => {
      int('streamId', streamId);
      const s = this.requireStream(streamId, 'delete');
      if (s.state === 'deleted') return;
      this.st.setStreamState.run('deleted', streamId);
      this.st.retireStreamObjects.run(this.now() + this.graceMs, streamId, Number.MAX_SAFE_INTEGER);
      this.st.dropRangesBelow.run(streamId, Number.MAX_SAFE_INTEGER);
    });
  }

  /** Marks an opened stream closed (idempotent; a no-op on a deleted stream). */
  async closeStream(streamId: number): Promise<void> {
    return this.write('closeStream', () => {
      int('streamId', streamId);
      const s = this.requireStream(streamId, 'close');
      if (s.state === 'opened') this.st.setStreamState.run('closed', streamId);
    });
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
    return this.write('prepareObjectIds', () => {
      int('count', count, 1);
      const ttlMs = optionalInt('ttlMs', opts?.ttlMs, this.preparedTtlMs);
      const now = this.now();
      this.st.prunePrepared.run(now - EXPIRED_PREPARED_RETENTION_MS);
      const first = this.st.nextId.get() as number;
      const end = first + count;
      if (!Number.isSafeInteger(end)) {
        throw new OptionsError('count', `${count} ids from ${first} would pass 2^53; ask for fewer`);
      }
      this.st.setNextId.run(end);
      this.st.insertPrepared.run(first, end, now + ttlMs);
      return first;
    });
  }

  async commitStreamSetObject(req: CommitStreamSetObjectRequest): Promise<void> {
    return this.write('commitStreamSetObject', () => this.commit(req));
  }

  /** Claims the node for a compactor: its epoch, one more than the last claim's (see MetadataStore). */
  async claimNode(req: { nodeId: number; holder: string }): Promise<{ epoch: number }> {
    const nodeId = int('nodeId', req.nodeId);
    return this.write('claimNode', () => {
      const epoch = this.open('claimNode')
        .prepare<[number, string, number], { epoch: number }>(
          `INSERT INTO node_epochs (node_id, epoch, holder, claimed_ms) VALUES (?, 1, ?, ?)
           ON CONFLICT (node_id) DO UPDATE SET epoch = epoch + 1, holder = excluded.holder, claimed_ms = excluded.claimed_ms RETURNING epoch`,
        )
        .get(nodeId, String(req.holder), this.now())!.epoch;
      return { epoch };
    });
  }

  /** Live SSOs of a node by orderId (then objectId), each with its ranges sorted by streamId. */
  async listStreamSetObjects(req: { nodeId?: number; streamId?: number; withRanges?: boolean } = {}): Promise<StreamSetObjectMetadata[]> {
    return this.read('listStreamSetObjects', () => {
      checkObject('req', req);
      const nodeId = req.nodeId === undefined ? undefined : int('nodeId', req.nodeId);
      const streamId = req.streamId === undefined ? undefined : int('streamId', req.streamId);
      if (req.withRanges === false && streamId === undefined) {
        const rows = nodeId === undefined ? this.st.allLiveSsos.all() : this.st.liveSsosOfNode.all(nodeId);
        const ssos = assembleSsos(rows, []);
        return nodeId === undefined ? ssos.sort((a, b) => a.orderId - b.orderId || a.objectId - b.objectId) : ssos;
      }
      if (streamId !== undefined) {
        const ssos = assembleSsos(this.st.liveSsosOfStream.all(streamId), this.st.liveSsoRangesOfStream.all(streamId));
        return nodeId === undefined ? ssos : ssos.filter((o) => o.nodeId === nodeId);
      }
      return nodeId === undefined
        ? assembleSsos(this.st.allLiveSsos.all(), this.st.allLiveSsoRanges.all()).sort((a, b) => a.orderId - b.orderId || a.objectId - b.objectId)
        : assembleSsos(this.st.liveSsosOfNode.all(nodeId), this.st.liveSsoRangesOfNode.all(nodeId));
    });
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
    return this.read('listAllLiveObjects', () => ({
      streamSetObjects: assembleSsos(this.st.allLiveSsos.all(), this.st.allLiveSsoRanges.all()),
      streamObjects: this.st.allLiveSos.all().map(soFromRow),
    }));
  }

  async listPendingDeletions(req: { nowMs?: number; limit?: number } = {}): Promise<PendingDeletion[]> {
    return this.read('listPendingDeletions', () => {
      checkObject('req', req);
      const nowMs = req.nowMs === undefined ? this.now() : int('nowMs', req.nowMs);
      const limit = optionalInt('limit', req.limit, -1, 1);
      return this.st.pendingDeletions
        .all(nowMs, limit)
        .map((r) => ({ objectId: r.object_id, dueAtMs: r.delete_due_ms }));
    });
  }

  /** Forgets pending deletions. Ids that are unknown or already forgotten are ignored; live objects are never removed. */
  async completeDeletions(objectIds: readonly number[]): Promise<void> {
    return this.write('completeDeletions', () => {
      intArray('objectIds', objectIds);
      for (const id of objectIds) this.st.completeDeletion.run(id);
    });
  }

  async quarantineObject(req: { objectId: number; code: string; reason: string }): Promise<void> {
    const objectId = int('objectId', req.objectId);
    return this.write('quarantineObject', () => {
      const db = this.open('quarantineObject');
      // The first cause is kept: it is the one an operator needs to repair.
      db.prepare('INSERT INTO quarantine (object_id, code, reason, at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (object_id) DO NOTHING').run(
        objectId,
        String(req.code),
        String(req.reason),
        this.now(),
      );
    });
  }

  async listQuarantined(): Promise<QuarantinedObject[]> {
    return this.read('listQuarantined', () =>
      (this.open('listQuarantined').prepare('SELECT object_id, code, reason, at_ms FROM quarantine ORDER BY object_id').all() as {
        object_id: number;
        code: string;
        reason: string;
        at_ms: number;
      }[]).map((r) => ({ objectId: r.object_id, code: r.code, reason: r.reason, atMs: r.at_ms })),
    );
  }

  async releaseQuarantined(objectId: number): Promise<boolean> {
    const id = int('objectId', objectId);
    return this.write('releaseQuarantined', () => this.open('releaseQuarantined').prepare('DELETE FROM quarantine WHERE object_id = ?').run(id).changes > 0);
  }

  async listExpiredNodes(req: { excludeNodeId: number }): Promise<number[]> {
    const exclude = int('excludeNodeId', req.excludeNodeId);
    return this.read('listExpiredNodes', () =>
      this.open('listExpiredNodes')
        .prepare<[number, number], number>(
          `SELECT DISTINCT o.node_id FROM objects o WHERE o.kind = 'sso' AND o.state = 'live' AND o.node_id <> ?
             AND NOT EXISTS (SELECT 1 FROM node_leases l WHERE l.node_id = o.node_id AND l.expires_ms > ?) ORDER BY o.node_id`,
        )
        .pluck()
        .all(exclude, this.now()),
    );
  }

  async acquireNodeLease(req: { nodeId: number; holder: string; ttlMs: number; preemptAdopter?: boolean }): Promise<void> {
    const nodeId = int('nodeId', req.nodeId);
    const ttlMs = int('ttlMs', req.ttlMs, 1);
    return this.write('acquireNodeLease', () => {
      const db = this.open('acquireNodeLease');
      const now = this.now();
      const row = db.prepare('SELECT holder, since_ms, expires_ms FROM node_leases WHERE node_id = ?').get(nodeId) as
        | { holder: string; since_ms: number; expires_ms: number }
        | undefined;
      const adopter = row !== undefined && req.preemptAdopter === true && row.holder.startsWith(ADOPTER_PREFIX);
      if (row && row.holder !== req.holder && row.expires_ms > now && !adopter) {
        throw new MetadataError(
          'ERR_METADATA_NODE_BUSY',
          `another compactor holds node ${nodeId} (${row.holder}, running since ${new Date(row.since_ms).toISOString()}, ` +
            `lease until ${new Date(row.expires_ms).toISOString()}): wait for its run to end, or stop it`,
        );
      }
      const since = row && row.holder === req.holder ? row.since_ms : now;
      db.prepare(
        'INSERT INTO node_leases (node_id, holder, since_ms, expires_ms) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (node_id) DO UPDATE SET holder = excluded.holder, since_ms = excluded.since_ms, expires_ms = excluded.expires_ms',
      ).run(nodeId, String(req.holder), since, now + ttlMs);
    });
  }

  async releaseNodeLease(req: { nodeId: number; holder: string }): Promise<void> {
    const nodeId = int('nodeId', req.nodeId);
    return this.write('releaseNodeLease', () => {
      this.open('releaseNodeLease').prepare('DELETE FROM node_leases WHERE node_id = ? AND holder = ?').run(nodeId, String(req.holder));
    });
  }

  async isObjectKnown(objectId: number): Promise<boolean> {
    return this.read('isObjectKnown', () => {
      int('objectId', objectId);
      if (this.st.objectExists.get(objectId) !== undefined) return true;
      const p = this.st.preparedContaining.get({ id: objectId });
      return p !== undefined && p.expires_ms > this.now();
    });
  }

  /** Closes the database (idempotent). Later calls reject with ERR_METADATA_CLOSED. */
  async close(): Promise<void> {
    const db = this.db;
    if (db === null) return;
    this.db = null;
    try {
      db.close();
      this.dropSnapshot();
    } catch (err) {
      throw mapError(err, this.path, 'close');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  private commit(req: CommitStreamSetObjectRequest): void {
    const { nodeId, objectId, objectSize, ranges, sos, compacted, orderIdIn, dataTimeIn, newIds } = parseCommit(req);
    const invalid = (msg: string) => new MetadataError('ERR_METADATA_INVALID_COMMIT', `commit refused, nothing changed: ${msg}`);
    if (req.fence !== undefined) {
      const fence = int('fence.epoch', req.fence.epoch, 1);
      // Inside the write transaction: no claim can come between this check and the commit.
      const row = this.open('commit').prepare<[number], { epoch: number; holder: string }>('SELECT epoch, holder FROM node_epochs WHERE node_id = ?').get(nodeId);
      if (!row || row.epoch !== fence) {
        throw new MetadataError(
          'ERR_METADATA_FENCED',
          `commit refused, nothing changed: node ${nodeId} was claimed by another compactor (${row ? `${row.holder}, epoch ${row.epoch}` : 'no claim'}) after this one (epoch ${fence}); this compactor must stop`,
        );
      }
    }

    // --- Compacted objects must all be live SSOs (checked first, to name every dead one) -------
    const now = this.now();
    const compactedRows: ObjectRow[] = [];
    const dead: string[] = [];
    for (const id of compacted) {
      const row = this.st.getObject.get(id);
      if (row === undefined) dead.push(`${id} (unknown)`);
      else if (row.state !== 'live') dead.push(`${id} (already removed, pending deletion)`);
      else if (row.kind !== 'sso') dead.push(`${id} (a stream object, not a stream set object)`);
      else compactedRows.push(row);
    }
    if (dead.length > 0) {
      throw new MetadataError(
        'ERR_METADATA_OBJECT_NOT_LIVE',
        `commit refused, nothing changed: compacted object(s) no longer live stream set objects: ${dead.join(', ')}; ` +
          `another commit removed them: list the live objects again and plan a new compaction`,
      );
    }

    // --- New ids: refuse ids whose reservation expired (their object may have been collected) ---
    const expired: number[] = [];
    for (const id of newIds) {
      const p = this.st.preparedContaining.get({ id });
      if (p !== undefined && p.expires_ms <= now) expired.push(id);
    }
    if (expired.length > 0) {
      throw invalid(
        `the reservation of object id(s) ${expired.join(', ')} expired before the commit, so garbage collection may ` +
          `already have deleted their objects; prepare new ids (with a longer ttlMs) and upload again`,
      );
    }

    // --- Apply. Any failure below throws and rolls the whole transaction back. ----------------
    const due = now + this.graceMs;
    for (const row of compactedRows) this.st.markDeleting.run(due, row.object_id);

    const alreadyExists = (id: number) =>
      invalid(`object id ${id} already exists (live or pending deletion); every new object needs a fresh id from prepareObjectIds`);
    if (objectId !== -1) {
      const orderId = orderIdIn ?? minOf(compactedRows.map((r) => r.order_id as number)) ?? objectId;
      const dataTimeMs = dataTimeIn ?? minOf(compactedRows.map((r) => r.data_time_ms)) ?? now;
      insertOrExplain(() => this.st.insertSso.run(objectId, nodeId, orderId, dataTimeMs, objectSize, now), () => alreadyExists(objectId));
      for (const r of liveRanges(ranges, (id) => this.st.getStream.get(id))) this.st.insertRange.run(objectId, r.streamId, r.startOffset, r.endOffset);
    }

    // Data time of a stream object: given, else the oldest compacted SSO holding data of its range,
    // else the oldest compacted SSO, else now.
    const oldestCompacted = minOf(compactedRows.map((r) => r.data_time_ms));
    const dataTimeOf = new Map(compactedRows.map((r) => [r.object_id, r.data_time_ms]));
    const soDataTime = (so: StreamObjectMetadata): number => {
      if (so.dataTimeMs !== undefined) return so.dataTimeMs;
      if (oldestCompacted === undefined) return now;
      // Only this stream's ranges (indexed): loading every range of every compacted SSO cost a
      // quarter of a second for 128 SSOs of 1 200 streams.
      let t: number | undefined;
      for (const r of this.st.rangesOfStream.all(so.streamId)) {
        const d = dataTimeOf.get(r.object_id);
        if (d !== undefined && r.start_offset < so.endOffset && r.end_offset > so.startOffset && (t === undefined || d < t)) t = d;
      }
      return t ?? oldestCompacted;
    };
    const streamCache = new Map<number, StreamRow | undefined>();
    const streamOf = (id: number) => {
      if (!streamCache.has(id)) streamCache.set(id, this.st.getStream.get(id));
      return streamCache.get(id);
    };
    for (const so of sos) {
      // A stream deleted or trimmed past this object while the compaction ran: record the object
      // (it was uploaded, storage must let go of it) but as a pending deletion, not live.
      const s = streamOf(so.streamId);
      const retired = s !== undefined && (s.state === 'deleted' || so.endOffset <= s.start_offset);
      insertOrExplain(
        () =>
          this.st.insertSo.run(
            so.objectId,
            nodeId,
            soDataTime(so),
            so.objectSize,
            so.streamId,
            so.startOffset,
            so.endOffset,
            retired ? 'deleting' : 'live',
            retired ? due : null,
            now,
          ),
        () => alreadyExists(so.objectId),
      );
    }

    // Stream end offsets follow the committed data.
    const ends = new Map<number, number>();
    for (const r of [...ranges, ...sos]) ends.set(r.streamId, Math.max(ends.get(r.streamId) ?? 0, r.endOffset));
    for (const [streamId, end] of ends) this.st.advanceStreamEnd.run(end, streamId);

    // The ids are committed: drop them from their reservations, never hand them out again.
    for (const id of newIds) {
      const p = this.st.preparedContaining.get({ id });
      if (p === undefined) continue;
      this.st.deletePrepared.run(p.first_id);
      if (p.first_id < id) this.st.insertPrepared.run(p.first_id, id, p.expires_ms);
      if (id + 1 < p.end_id) this.st.insertPrepared.run(id + 1, p.end_id, p.expires_ms);
    }
    const maxNew = newIds.reduce((m, id) => Math.max(m, id), -1);
    if (maxNew >= 0) this.st.setNextId.run(maxNew + 1);
  }

  private requireStream(streamId: number, what: string): StreamRow {
    const s = this.st.getStream.get(streamId);
    if (s === undefined) {
      throw new MetadataError(
        'ERR_METADATA_STREAM_NOT_FOUND',
        `cannot ${what} stream ${streamId}: no such stream in ${this.path}; create it first with createStream`,
      );
    }
    return s;
  }

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

/** Runs an INSERT; a primary-key conflict becomes the caller's error. */
function insertOrExplain(insert: () => unknown, onConflict: () => Error): void {
  try {
    insert();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') throw onConflict();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// SQLite errors

/** Maps SQLite failures to MetadataError codes that name the file and the fix; our own errors pass through. */
export function mapError(err: unknown, path: string, op: string): unknown {
  if (err instanceof CompactorError) return err;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const where = `metadata database ${path}`;
  if (err instanceof TypeError && /directory does not exist/.test(message)) {
    return new MetadataError('ERR_METADATA_IO', `cannot open ${where}: its directory does not exist; create the directory or fix the path`, { cause: err });
  }
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  const io = (text: string, retryable: boolean) =>
    new MetadataError('ERR_METADATA_IO', `${op} failed on ${where}: ${text} (${code}: ${message})`, { cause: err, retryable });
  if (code === 'SQLITE_NOTADB') {
    return new MetadataError(
      'ERR_METADATA_NOT_A_DATABASE',
      `${path} is not a SQLite database (${message}); point the store at a new or empty file, or at the metadata file this library created`,
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_FULL')) return io('the disk is full; free space on the volume that holds the file, then retry', true);
  if (code.startsWith('SQLITE_IOERR')) return io('an I/O error; check the disk (full, failing, unmounted) and the file permissions, then retry', true);
  if (code.startsWith('SQLITE_CANTOPEN')) return io('cannot open the file; check the path exists, and that the file and its directory are readable and writable', false);
  if (code.startsWith('SQLITE_READONLY')) return io('the file is read-only; make the file and its directory writable (and the volume not mounted read-only)', false);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return io('another connection holds the database lock; retry, or stop the other process', true);
  if (code.startsWith('SQLITE_CORRUPT')) return io('the file is corrupt; restore it from a backup', false);
  return err;
}
