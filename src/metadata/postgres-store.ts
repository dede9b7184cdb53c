/**
 * MetadataStore on PostgreSQL, for many ingest nodes sharing one bucket: the SQLite store's
 * semantics (one contract suite runs against both), ids from the database, every due time on
 * the database's clock, and node epochs that fence a stale compactor. Every write is one
 * transaction; a commit takes the row locks it depends on (the compacted SSOs by a checked CAS
 * from live to deleting, the streams it touches, the node's epoch), so a concurrent commit,
 * trim, delete or claim is serialised with it.
 */
import { MetadataError, OptionsError } from '../errors.js';
import { assembleSsos, checkObject, describe, int, intArray, optionalInt, parseCommit, soFromRow, streamFromRow, type ObjectRow, type RangeRow, type StreamRow } from './common.js';
import { commitOnPostgres } from './postgres-commit.js';
import { dbNow, NOW, PgConnection, type Tx } from './postgres-connection.js';
import { acquireNodeLease, claimNode, listExpiredNodes, releaseNodeLease } from './postgres-nodes.js';
import { ensurePgSchema } from './postgres-schema.js';
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

export interface PostgresMetadataStoreOptions {
  /** postgres://user:password@host:port/database (libpq's form; PG* variables fill the gaps). */
  connectionString: string;
  /** How long a removed object stays in storage before it may be deleted. Default 5 min. */
  graceMs?: number;
  /** How long ids handed out by prepareObjectIds stay reserved. Default 1 h. */
  preparedTtlMs?: number;
  /** Connections in the pool. Default 4. */
  poolSize?: number;
  /** A statement running longer fails (statement_timeout). Default 30 s. */
  statementTimeoutMs?: number;
  /** Waiting longer for a row lock fails (lock_timeout). Default 10 s. */
  lockTimeoutMs?: number;
  /** A session idle this long inside a transaction is ended by the server, its locks released. Default 30 s. */
  idleInTransactionTimeoutMs?: number;
  /** Connecting longer fails. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Sessions are read-only (default_transaction_read_only): plan, verify, inspect. The schema must
   * exist already; every write fails with ERR_METADATA_READ_ONLY.
   */
  readOnly?: boolean;
}

const DEFAULT_GRACE_MS = 5 * 60_000;
const DEFAULT_PREPARED_TTL_MS = 60 * 60_000;
const EXPIRED_PREPARED_RETENTION_MS = 7 * 24 * 60 * 60_000;
export class PostgresMetadataStore implements MetadataStore {
  readonly graceMs: number;
  readonly preparedTtlMs: number;
  /** The connection string without its password, for messages. */
  readonly where: string;
  private readonly db: PgConnection;

  private constructor(opts: PostgresMetadataStoreOptions, where: string) {
    this.where = where;
    this.graceMs = optionalInt('graceMs', opts.graceMs, DEFAULT_GRACE_MS);
    this.preparedTtlMs = optionalInt('preparedTtlMs', opts.preparedTtlMs, DEFAULT_PREPARED_TTL_MS);
    this.db = new PgConnection(opts, where);
  }

  /** Connects, creates or migrates the schema (under an advisory lock), and returns the store. */
  static async open(opts: PostgresMetadataStoreOptions): Promise<PostgresMetadataStore> {
    checkObject('options', opts);
    if (typeof opts.connectionString !== 'string' || !/^postgres(ql)?:\/\//.test(opts.connectionString)) {
      throw new OptionsError('connectionString', `must be a postgres:// URL such as postgres://user@127.0.0.1:5432/db, got ${describe(opts.connectionString)}`);
    }
    const url = new URL(opts.connectionString);
    url.password = url.password ? '***' : '';
    const store = new PostgresMetadataStore(opts, `PostgreSQL database ${url.toString()}`);
    try {
      const client = await store.db.connect('open');
      try {
        await ensurePgSchema(client, store.where);
      } finally {
        client.release();
      }
    } catch (err) {
      await store.db.close().catch(() => {});
      throw store.db.mapError(err, 'open');
    }
    return store;
  }

  // ------------------------------------------------------------------------------------------
  // Streams

  async createStream(req: { streamId: number; epoch: number; startOffset: number }): Promise<StreamMetadata> {
    checkObject('req', req);
    const streamId = int('streamId', req.streamId);
    const epoch = int('epoch', req.epoch);
    const startOffset = int('startOffset', req.startOffset);
    return this.db.tx('createStream', async (c) => {
      const r = await c.query(`INSERT INTO streams VALUES ($1, $2, $3, $3, 'opened') ON CONFLICT (stream_id) DO NOTHING`, [streamId, epoch, startOffset]);
      if (r.rowCount === 0) {
        throw new MetadataError('ERR_METADATA_STREAM_EXISTS', `stream ${streamId} already exists in ${this.where}; use getStreams to read it, or pick another stream id`);
      }
      return { streamId, epoch, startOffset, endOffset: startOffset, state: 'opened' as const };
    });
  }

  async trimStream(streamId: number, newStartOffset: number): Promise<void> {
    int('streamId', streamId);
    int('newStartOffset', newStartOffset);
    return this.db.tx('trimStream', async (c) => {
      const s = await this.lockStream(c, streamId, 'trim');
      if (s.state === 'deleted' || newStartOffset <= s.start_offset) return;
      await c.query('UPDATE streams SET start_offset = $1, end_offset = GREATEST(end_offset, $1) WHERE stream_id = $2', [newStartOffset, streamId]);
      await this.retireStreamObjects(c, streamId, newStartOffset);
      // No SSO range stays below the start: wholly below goes, straddling begins at it.
      await c.query('DELETE FROM sso_ranges WHERE stream_id = $1 AND end_offset <= $2', [streamId, newStartOffset]);
      await c.query('UPDATE sso_ranges SET start_offset = $2 WHERE stream_id = $1 AND start_offset < $2 AND end_offset > $2', [streamId, newStartOffset]);
    });
  }

  async deleteStream(streamId: number): Promise<void> {
    int('streamId', streamId);
    return this.db.tx('deleteStream', async (c) => {
      const s = await this.lockStream(c, streamId, 'delete');
      if (s.state === 'deleted') return;
      await c.query(`UPDATE streams SET state = 'deleted' WHERE stream_id = $1`, [streamId]);
      await this.retireStreamObjects(c, streamId, Number.MAX_SAFE_INTEGER);
      await c.query('DELETE FROM sso_ranges WHERE stream_id = $1', [streamId]);
    });
  }

  async closeStream(streamId: number): Promise<void> {
    int('streamId', streamId);
    return this.db.tx('closeStream', async (c) => {
      const s = await this.lockStream(c, streamId, 'close');
      if (s.state === 'opened') await c.query(`UPDATE streams SET state = 'closed' WHERE stream_id = $1`, [streamId]);
    });
  }

  async getStreams(streamIds: readonly number[]): Promise<StreamMetadata[]> {
    intArray('streamIds', streamIds);
    const unique = [...new Set(streamIds)];
    const rows = (await this.db.query<StreamRow>('getStreams', 'SELECT * FROM streams WHERE stream_id = ANY($1::int8[])', [unique])).rows;
    const byId = new Map(rows.map((r) => [r.stream_id, r]));
    return unique.flatMap((id) => (byId.has(id) ? [streamFromRow(byId.get(id)!)] : []));
  }

  async listStreams(): Promise<StreamMetadata[]> {
    return (await this.db.query<StreamRow>('listStreams', 'SELECT * FROM streams ORDER BY stream_id')).rows.map(streamFromRow);
  }

  // ------------------------------------------------------------------------------------------
  // Objects

  async prepareObjectIds(count: number, opts?: { ttlMs?: number }): Promise<number> {
    int('count', count, 1);
    const ttlMs = optionalInt('ttlMs', opts?.ttlMs, this.preparedTtlMs);
    return this.db.tx('prepareObjectIds', async (c) => {
      const now = await dbNow(c);
      await c.query('DELETE FROM prepared_ids WHERE expires_ms <= $1', [now - EXPIRED_PREPARED_RETENTION_MS]);
      // One UPDATE: concurrent callers queue on the row and each gets its own range.
      const { rows } = await c.query<{ first: number }>('UPDATE id_sequence SET next_id = next_id + $1 WHERE singleton = 1 RETURNING next_id - $1 AS first', [count]);
      const first = rows[0]!.first;
      if (!Number.isSafeInteger(first + count)) throw new OptionsError('count', `${count} ids from ${first} would pass 2^53; ask for fewer`);
      await c.query('INSERT INTO prepared_ids VALUES ($1, $2, $3)', [first, first + count, now + ttlMs]);
      return first;
    });
  }

  async commitStreamSetObject(req: CommitStreamSetObjectRequest): Promise<void> {
    const p = parseCommit(req);
    const fence = req.fence === undefined ? undefined : int('fence.epoch', req.fence.epoch, 1);
    return this.db.tx('commitStreamSetObject', async (c) => commitOnPostgres(c, p, { fence, graceMs: this.graceMs, now: await dbNow(c) }));
  }

  async listStreamSetObjects(req: { nodeId?: number; streamId?: number; withRanges?: boolean } = {}): Promise<StreamSetObjectMetadata[]> {
    checkObject('req', req);
    const nodeId = req.nodeId === undefined ? null : int('nodeId', req.nodeId);
    const streamId = req.streamId === undefined ? null : int('streamId', req.streamId);
    const where = `o.kind = 'sso' AND o.state = 'live' AND ($1::int8 IS NULL OR o.node_id = $1)
      AND ($2::int8 IS NULL OR o.object_id IN (SELECT object_id FROM sso_ranges WHERE stream_id = $2))`;
    return this.db.tx('listStreamSetObjects', async (c) => {
      const rows = (await c.query<ObjectRow>(`SELECT o.* FROM objects o WHERE ${where} ORDER BY o.order_id, o.object_id`, [nodeId, streamId])).rows;
      if (req.withRanges === false && streamId === null) return assembleSsos(rows, []);
      const ranges = (await c.query<RangeRow>(`SELECT r.* FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id WHERE ${where} ORDER BY r.object_id, r.stream_id`, [nodeId, streamId])).rows;
      return assembleSsos(rows, ranges);
    }, true);
  }

  async getStreamsOfNode(nodeId: number): Promise<StreamMetadata[]> {
    const rows = await this.db.query<StreamRow>(
      'getStreamsOfNode',
      `SELECT * FROM streams WHERE stream_id IN (SELECT DISTINCT r.stream_id FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
         WHERE o.kind = 'sso' AND o.state = 'live' AND o.node_id = $1) ORDER BY stream_id`,
      [int('nodeId', nodeId)],
    );
    return rows.rows.map(streamFromRow);
  }

  async listStreamObjects(req: { streamId: number }): Promise<StreamObjectMetadata[]> {
    checkObject('req', req);
    const rows = await this.db.query<ObjectRow>(
      'listStreamObjects',
      `SELECT * FROM objects WHERE kind = 'so' AND state = 'live' AND stream_id = $1 ORDER BY start_offset, object_id`,
      [int('streamId', req.streamId)],
    );
    return rows.rows.map(soFromRow);
  }

  async listAllLiveObjects(): Promise<LiveObjects> {
    return this.db.tx('listAllLiveObjects', async (c) => {
      const ssos = (await c.query<ObjectRow>(`SELECT * FROM objects WHERE kind = 'sso' AND state = 'live' ORDER BY node_id, order_id, object_id`)).rows;
      const ranges = (
        await c.query<RangeRow>(`SELECT r.* FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id WHERE o.kind = 'sso' AND o.state = 'live' ORDER BY r.object_id, r.stream_id`)
      ).rows;
      const sos = (await c.query<ObjectRow>(`SELECT * FROM objects WHERE kind = 'so' AND state = 'live' ORDER BY stream_id, start_offset, object_id`)).rows;
      return { streamSetObjects: assembleSsos(ssos, ranges), streamObjects: sos.map(soFromRow) };
    }, true);
  }

  async listPendingDeletions(req: { nowMs?: number; limit?: number } = {}): Promise<PendingDeletion[]> {
    checkObject('req', req);
    const nowMs = req.nowMs === undefined ? null : int('nowMs', req.nowMs);
    const limit = req.limit === undefined ? null : int('limit', req.limit, 1);
    const rows = await this.db.query<{ object_id: number; delete_due_ms: number }>(
      'listPendingDeletions',
      `SELECT object_id, delete_due_ms FROM objects WHERE state = 'deleting' AND delete_due_ms <= COALESCE($1::int8, ${NOW}) ORDER BY delete_due_ms, object_id LIMIT $2`,
      [nowMs, limit],
    );
    return rows.rows.map((r) => ({ objectId: r.object_id, dueAtMs: r.delete_due_ms }));
  }

  async completeDeletions(objectIds: readonly number[]): Promise<void> {
    intArray('objectIds', objectIds);
    await this.db.query('completeDeletions', `DELETE FROM objects WHERE object_id = ANY($1::int8[]) AND state = 'deleting'`, [[...objectIds]]);
  }

  async isObjectKnown(objectId: number): Promise<boolean> {
    int('objectId', objectId);
    const { rows } = await this.db.query<{ known: boolean }>(
      'isObjectKnown',
      `SELECT EXISTS (SELECT 1 FROM objects WHERE object_id = $1)
           OR EXISTS (SELECT 1 FROM prepared_ids WHERE first_id <= $1 AND end_id > $1 AND expires_ms > ${NOW}) AS known`,
      [objectId],
    );
    return rows[0]!.known;
  }

  // ------------------------------------------------------------------------------------------
  // Quarantine, leases, fencing

  async quarantineObject(req: { objectId: number; code: string; reason: string }): Promise<void> {
    await this.db.query('quarantineObject', `INSERT INTO quarantine VALUES ($1, $2, $3, ${NOW}) ON CONFLICT (object_id) DO NOTHING`, [
      int('objectId', req.objectId),
      String(req.code),
      String(req.reason),
    ]);
  }

  async listQuarantined(): Promise<QuarantinedObject[]> {
    const { rows } = await this.db.query<{ object_id: number; code: string; reason: string; at_ms: number }>('listQuarantined', 'SELECT * FROM quarantine ORDER BY object_id');
    return rows.map((r) => ({ objectId: r.object_id, code: r.code, reason: r.reason, atMs: r.at_ms }));
  }

  async releaseQuarantined(objectId: number): Promise<boolean> {
    return ((await this.db.query('releaseQuarantined', 'DELETE FROM quarantine WHERE object_id = $1', [int('objectId', objectId)])).rowCount ?? 0) > 0;
  }

  async listExpiredNodes(req: { excludeNodeId: number }): Promise<number[]> {
    return listExpiredNodes(this.db, req);
  }

  async acquireNodeLease(req: { nodeId: number; holder: string; ttlMs: number; preemptAdopter?: boolean }): Promise<void> {
    return acquireNodeLease(this.db, req);
  }

  async releaseNodeLease(req: { nodeId: number; holder: string }): Promise<void> {
    return releaseNodeLease(this.db, req);
  }

  async claimNode(req: { nodeId: number; holder: string }): Promise<{ epoch: number }> {
    return claimNode(this.db, req);
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  // ------------------------------------------------------------------------------------------
  // Internals

  private async retireStreamObjects(c: Tx, streamId: number, below: number): Promise<void> {
    await c.query(
      `UPDATE objects SET state = 'deleting', delete_due_ms = ${NOW} + $1 WHERE kind = 'so' AND state = 'live' AND stream_id = $2 AND end_offset <= $3`,
      [this.graceMs, streamId, below],
    );
  }

  private async lockStream(c: Tx, streamId: number, what: string): Promise<StreamRow> {
    const row = (await c.query<StreamRow>('SELECT * FROM streams WHERE stream_id = $1 FOR UPDATE', [streamId])).rows[0];
    if (!row) throw new MetadataError('ERR_METADATA_STREAM_NOT_FOUND', `cannot ${what} stream ${streamId}: no such stream in ${this.where}; create it first with createStream`);
    return row;
  }
}
