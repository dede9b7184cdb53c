/**
 * MetadataStore on PostgreSQL, for many ingest nodes sharing one bucket: the SQLite store's
 * semantics (one contract suite runs against both), ids from the database, every due time on
 * the database's clock, and node epochs that fence a stale compactor. Every write is one
 * transaction; a commit takes the row locks it depends on (the compacted SSOs by a checked CAS
 * from live to deleting, the streams it touches, the node's epoch), so a concurrent commit,
 * trim, delete or claim is serialised with it.
 */
import pg from 'pg';
import { CompactorError, MetadataError, OptionsError } from '../errors.js';
import { assembleSsos, checkObject, describe, int, intArray, optionalInt, parseCommit, soFromRow, streamFromRow, type ObjectRow, type RangeRow, type StreamRow } from './common.js';
import { commitOnPostgres } from './postgres-commit.js';
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
import { ADOPTER_PREFIX } from './types.js';

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
const INT8 = 20;
const NOW = `(extract(epoch from clock_timestamp()) * 1000)::int8`;

/** int8 as a JavaScript number, or a typed error past 2^53 (pg hands int8 out as a string). */
function parseInt8(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new MetadataError('ERR_METADATA_UNSAFE_INTEGER', `the database holds ${v}, beyond 2^53: this value cannot be read exactly`);
  return n;
}

type Tx = pg.PoolClient;

/** A failure of the connection itself (not an answer of the server's about the statement). */
function brokenConnection(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED'].includes(code) || code.startsWith('08') || code.startsWith('57P')) return true;
  return /Connection terminated|not queryable|connection error|Client was closed/i.test(typeof e.message === 'string' ? e.message : '');
}

export class PostgresMetadataStore implements MetadataStore {
  readonly graceMs: number;
  readonly preparedTtlMs: number;
  /** The connection string without its password, for messages. */
  readonly where: string;
  private readonly pool: pg.Pool;
  private closed = false;

  private constructor(opts: PostgresMetadataStoreOptions, where: string) {
    this.where = where;
    this.graceMs = optionalInt('graceMs', opts.graceMs, DEFAULT_GRACE_MS);
    this.preparedTtlMs = optionalInt('preparedTtlMs', opts.preparedTtlMs, DEFAULT_PREPARED_TTL_MS);
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: optionalInt('poolSize', opts.poolSize, 4, 1),
      statement_timeout: optionalInt('statementTimeoutMs', opts.statementTimeoutMs, 30_000, 1),
      lock_timeout: optionalInt('lockTimeoutMs', opts.lockTimeoutMs, 10_000, 1),
      idle_in_transaction_session_timeout: optionalInt('idleInTransactionTimeoutMs', opts.idleInTransactionTimeoutMs, 30_000, 1),
      connectionTimeoutMillis: optionalInt('connectTimeoutMs', opts.connectTimeoutMs, 10_000, 1),
      application_name: 's3-stream-compactor',
      ...(opts.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
      // Per pool, never pg's global parsers: the host's own pg keeps its own.
      types: { getTypeParser: ((oid: number, format?: string) => (oid === INT8 ? parseInt8 : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser },
    });
    // An idle connection the server ended: the pool drops it; the next query opens another.
    this.pool.on('error', () => {});
    // A checked-out one the server ends (idle_in_transaction_session_timeout, a restart) emits
    // 'error' too, which would end the host's process unheard; its query in flight rejects with
    // the cause, which is what the caller sees.
    this.pool.on('connect', (client) => client.on('error', () => {}));
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
      const client = await store.connect('open');
      try {
        await ensurePgSchema(client, store.where);
      } finally {
        client.release();
      }
    } catch (err) {
      await store.pool.end().catch(() => {});
      throw store.mapError(err, 'open');
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
    return this.tx('createStream', async (c) => {
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
    return this.tx('trimStream', async (c) => {
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
    return this.tx('deleteStream', async (c) => {
      const s = await this.lockStream(c, streamId, 'delete');
      if (s.state === 'deleted') return;
      await c.query(`UPDATE streams SET state = 'deleted' WHERE stream_id = $1`, [streamId]);
      await this.retireStreamObjects(c, streamId, Number.MAX_SAFE_INTEGER);
      await c.query('DELETE FROM sso_ranges WHERE stream_id = $1', [streamId]);
    });
  }

  async closeStream(streamId: number): Promise<void> {
    int('streamId', streamId);
    return this.tx('closeStream', async (c) => {
      const s = await this.lockStream(c, streamId, 'close');
      if (s.state === 'opened') await c.query(`UPDATE streams SET state = 'closed' WHERE stream_id = $1`, [streamId]);
    });
  }

  async getStreams(streamIds: readonly number[]): Promise<StreamMetadata[]> {
    intArray('streamIds', streamIds);
    const unique = [...new Set(streamIds)];
    const rows = (await this.query<StreamRow>('getStreams', 'SELECT * FROM streams WHERE stream_id = ANY($1::int8[])', [unique])).rows;
    const byId = new Map(rows.map((r) => [r.stream_id, r]));
    return unique.flatMap((id) => (byId.has(id) ? [streamFromRow(byId.get(id)!)] : []));
  }

  async listStreams(): Promise<StreamMetadata[]> {
    return (await this.query<StreamRow>('listStreams', 'SELECT * FROM streams ORDER BY stream_id')).rows.map(streamFromRow);
  }

  // ------------------------------------------------------------------------------------------
  // Objects

  async prepareObjectIds(count: number, opts?: { ttlMs?: number }): Promise<number> {
    int('count', count, 1);
    const ttlMs = optionalInt('ttlMs', opts?.ttlMs, this.preparedTtlMs);
    return this.tx('prepareObjectIds', async (c) => {
      const now = await this.now(c);
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
    return this.tx('commitStreamSetObject', async (c) => commitOnPostgres(c, p, { fence, graceMs: this.graceMs, now: await this.now(c) }));
  }

  async listStreamSetObjects(req: { nodeId?: number; streamId?: number; withRanges?: boolean } = {}): Promise<StreamSetObjectMetadata[]> {
    checkObject('req', req);
    const nodeId = req.nodeId === undefined ? null : int('nodeId', req.nodeId);
    const streamId = req.streamId === undefined ? null : int('streamId', req.streamId);
    const where = `o.kind = 'sso' AND o.state = 'live' AND ($1::int8 IS NULL OR o.node_id = $1)
      AND ($2::int8 IS NULL OR o.object_id IN (SELECT object_id FROM sso_ranges WHERE stream_id = $2))`;
    return this.tx('listStreamSetObjects', async (c) => {
      const rows = (await c.query<ObjectRow>(`SELECT o.* FROM objects o WHERE ${where} ORDER BY o.order_id, o.object_id`, [nodeId, streamId])).rows;
      if (req.withRanges === false && streamId === null) return assembleSsos(rows, []);
      const ranges = (await c.query<RangeRow>(`SELECT r.* FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id WHERE ${where} ORDER BY r.object_id, r.stream_id`, [nodeId, streamId])).rows;
      return assembleSsos(rows, ranges);
    }, true);
  }

  async getStreamsOfNode(nodeId: number): Promise<StreamMetadata[]> {
    const rows = await this.query<StreamRow>(
      'getStreamsOfNode',
      `SELECT * FROM streams WHERE stream_id IN (SELECT DISTINCT r.stream_id FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
         WHERE o.kind = 'sso' AND o.state = 'live' AND o.node_id = $1) ORDER BY stream_id`,
      [int('nodeId', nodeId)],
    );
    return rows.rows.map(streamFromRow);
  }

  async listStreamObjects(req: { streamId: number }): Promise<StreamObjectMetadata[]> {
    checkObject('req', req);
    const rows = await this.query<ObjectRow>(
      'listStreamObjects',
      `SELECT * FROM objects WHERE kind = 'so' AND state = 'live' AND stream_id = $1 ORDER BY start_offset, object_id`,
      [int('streamId', req.streamId)],
    );
    return rows.rows.map(soFromRow);
  }

  async listAllLiveObjects(): Promise<LiveObjects> {
    return this.tx('listAllLiveObjects', async (c) => {
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
    const rows = await this.query<{ object_id: number; delete_due_ms: number }>(
      'listPendingDeletions',
      `SELECT object_id, delete_due_ms FROM objects WHERE state = 'deleting' AND delete_due_ms <= COALESCE($1::int8, ${NOW}) ORDER BY delete_due_ms, object_id LIMIT $2`,
      [nowMs, limit],
    );
    return rows.rows.map((r) => ({ objectId: r.object_id, dueAtMs: r.delete_due_ms }));
  }

  async completeDeletions(objectIds: readonly number[]): Promise<void> {
    intArray('objectIds', objectIds);
    await this.query('completeDeletions', `DELETE FROM objects WHERE object_id = ANY($1::int8[]) AND state = 'deleting'`, [[...objectIds]]);
  }

  async isObjectKnown(objectId: number): Promise<boolean> {
    int('objectId', objectId);
    const { rows } = await this.query<{ known: boolean }>(
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
    await this.query('quarantineObject', `INSERT INTO quarantine VALUES ($1, $2, $3, ${NOW}) ON CONFLICT (object_id) DO NOTHING`, [
      int('objectId', req.objectId),
      String(req.code),
      String(req.reason),
    ]);
  }

  async listQuarantined(): Promise<QuarantinedObject[]> {
    const { rows } = await this.query<{ object_id: number; code: string; reason: string; at_ms: number }>('listQuarantined', 'SELECT * FROM quarantine ORDER BY object_id');
    return rows.map((r) => ({ objectId: r.object_id, code: r.code, reason: r.reason, atMs: r.at_ms }));
  }

  async releaseQuarantined(objectId: number): Promise<boolean> {
    return ((await this.query('releaseQuarantined', 'DELETE FROM quarantine WHERE object_id = $1', [int('objectId', objectId)])).rowCount ?? 0) > 0;
  }

  async listExpiredNodes(req: { excludeNodeId: number }): Promise<number[]> {
    const { rows } = await this.query<{ node_id: number }>(
      'listExpiredNodes',
      `SELECT DISTINCT o.node_id FROM objects o WHERE o.kind = 'sso' AND o.state = 'live' AND o.node_id <> $1
         AND NOT EXISTS (SELECT 1 FROM node_leases l WHERE l.node_id = o.node_id AND l.expires_ms > ${NOW}) ORDER BY o.node_id`,
      [int('excludeNodeId', req.excludeNodeId)],
    );
    return rows.map((r) => r.node_id);
  }

  async acquireNodeLease(req: { nodeId: number; holder: string; ttlMs: number; preemptAdopter?: boolean }): Promise<void> {
    const nodeId = int('nodeId', req.nodeId);
    const ttlMs = int('ttlMs', req.ttlMs, 1);
    const holder = String(req.holder);
    return this.tx('acquireNodeLease', async (c) => {
      const now = await this.now(c);
      await c.query('INSERT INTO node_leases VALUES ($1, $2, $3, 0) ON CONFLICT (node_id) DO NOTHING', [nodeId, holder, now]);
      const row = (await c.query<{ holder: string; since_ms: number; expires_ms: number }>('SELECT * FROM node_leases WHERE node_id = $1 FOR UPDATE', [nodeId])).rows[0]!;
      const adopter = req.preemptAdopter === true && row.holder.startsWith(ADOPTER_PREFIX);
      if (row.holder !== holder && row.expires_ms > now && !adopter) {
        throw new MetadataError(
          'ERR_METADATA_NODE_BUSY',
          `another compactor holds node ${nodeId} (${row.holder}, running since ${new Date(row.since_ms).toISOString()}, ` +
            `lease until ${new Date(row.expires_ms).toISOString()}): wait for its run to end, or stop it`,
        );
      }
      const since = row.holder === holder && row.expires_ms > 0 ? row.since_ms : now;
      await c.query('UPDATE node_leases SET holder = $2, since_ms = $3, expires_ms = $4 WHERE node_id = $1', [nodeId, holder, since, now + ttlMs]);
    });
  }

  async releaseNodeLease(req: { nodeId: number; holder: string }): Promise<void> {
    await this.query('releaseNodeLease', 'DELETE FROM node_leases WHERE node_id = $1 AND holder = $2', [int('nodeId', req.nodeId), String(req.holder)]);
  }

  async claimNode(req: { nodeId: number; holder: string }): Promise<{ epoch: number }> {
    const nodeId = int('nodeId', req.nodeId);
    const { rows } = await this.query<{ epoch: number }>(
      'claimNode',
      `INSERT INTO node_epochs VALUES ($1, 1, $2, ${NOW}) ON CONFLICT (node_id)
         DO UPDATE SET epoch = node_epochs.epoch + 1, holder = EXCLUDED.holder, claimed_ms = EXCLUDED.claimed_ms RETURNING epoch`,
      [nodeId, String(req.holder)],
    );
    return { epoch: rows[0]!.epoch };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
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

  /** The database's clock: due times never depend on a node's. */
  private async now(c: Tx): Promise<number> {
    return (await c.query<{ now: number }>(`SELECT ${NOW} AS now`)).rows[0]!.now;
  }

  private async connect(op: string): Promise<pg.PoolClient> {
    if (this.closed) throw new MetadataError('ERR_METADATA_CLOSED', `cannot ${op}: the metadata store (${this.where}) is closed`);
    return this.pool.connect();
  }

  private async query<R extends pg.QueryResultRow>(op: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      const client = await this.connect(op);
      try {
        return await client.query<R>(sql, params);
      } finally {
        client.release();
      }
    } catch (err) {
      throw this.mapError(err, op);
    }
  }

  /** One transaction (read-only: a consistent snapshot of several reads). */
  private async tx<T>(op: string, fn: (c: Tx) => Promise<T>, readOnly = false): Promise<T> {
    let client: pg.PoolClient | undefined;
    try {
      client = await this.connect(op);
      await client.query(readOnly ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN');
      const out = await fn(client);
      try {
        await client.query('COMMIT');
      } catch (err) {
        // The connection broke with the COMMIT in flight: the database may have committed.
        if (!readOnly && brokenConnection(err)) {
          throw new MetadataError(
            'ERR_METADATA_OUTCOME_UNKNOWN',
            `${op} on ${this.where}: the connection broke while the database committed, so the change may or may not be in; read it back before acting on it`,
            { cause: err, retryable: true },
          );
        }
        throw err;
      }
      return out;
    } catch (err) {
      // A broken connection cannot roll back: release it destroyed.
      const broken = await client?.query('ROLLBACK').then(() => false, () => true);
      client?.release(broken);
      client = undefined;
      throw this.mapError(err, op);
    } finally {
      client?.release();
    }
  }

  private mapError(err: unknown, op: string): unknown {
    if (err instanceof CompactorError) return err;
    const e = err as { code?: string; message?: string };
    const code = e.code ?? '';
    const io = (text: string, retryable: boolean) =>
      new MetadataError('ERR_METADATA_IO', `${op} failed on ${this.where}: ${text} (${code || 'no code'}: ${e.message ?? String(err)})`, { cause: err, retryable });
    if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(code) || /timeout exceeded when trying to connect/i.test(e.message ?? '')) {
      return io('cannot reach the server; check it runs and the connection string', true);
    }
    if (code === '55P03' || code === '40P01' || code === '40001') return io('lock wait timed out or a conflicting transaction won; retry', true);
    if (code === '57014') return io('a statement ran past statement_timeout; retry, or raise statementTimeoutMs', true);
    if (code === '25P03') return io('the session sat idle inside a transaction past idle_in_transaction_session_timeout and the server ended it; retry', true);
    if (code === '28P01' || code === '28000') return io('authentication failed; check the user and password', false);
    if (code === '3D000') return io('the database does not exist; create it (CREATE DATABASE) or fix the connection string', false);
    if (code === '25006') return new MetadataError('ERR_METADATA_READ_ONLY', `${op} refused: ${this.where} was opened read-only`, { cause: err });
    if (code === '53100') return io('the server disk is full; free space, then retry', true);
    if (brokenConnection(err)) {
      return io('the connection to the server broke (or the server ended the session); retry', true);
    }
    return err;
  }
}
