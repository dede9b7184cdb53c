/** The prepared statements of `SqliteMetadataStore`, and what its operations in other files get of it. */
import type Database from 'better-sqlite3';
import type { ObjectRow, PreparedRow, RangeRow, StreamRow } from './common.js';

export type Statements = ReturnType<typeof prepareStatements>;

/**
 * The part of better-sqlite3's statement the store uses. Its own type lives in a namespace the
 * module does not export, so a declaration file could not name it.
 */
export interface Stmt<P extends unknown[], R> {
  run(...params: P): Database.RunResult;
  get(...params: P): R | undefined;
  all(...params: P): R[];
  iterate(...params: P): IterableIterator<R>;
}

/** A statement; `pluck`: rows come back as their first column's value; `raw`: as arrays of their columns. */
function prep<P extends unknown[] | {} = unknown[], R = unknown>(db: Database.Database, sql: string, mode?: 'pluck' | 'raw'): Stmt<P extends unknown[] ? P : [P], R> {
  const st = db.prepare<P, R>(sql);
  return (mode === 'pluck' ? st.pluck() : mode === 'raw' ? st.raw() : st) as unknown as Stmt<P extends unknown[] ? P : [P], R>;
}

export function prepareStatements(db: Database.Database) {
  return {
    getStream: prep<[number], StreamRow>(db, 'SELECT * FROM streams WHERE stream_id = ?'),
    insertStream: prep<[number, number, number, number]>(
      db,
      `INSERT INTO streams (stream_id, epoch, start_offset, end_offset, state) VALUES (?, ?, ?, ?, 'opened')`,
    ),
    trimStream: prep<[{ start: number; id: number }]>(
      db,
      'UPDATE streams SET start_offset = @start, end_offset = MAX(end_offset, @start) WHERE stream_id = @id AND start_offset < @start',
    ),
    setStreamState: prep<[string, number]>(db, 'UPDATE streams SET state = ? WHERE stream_id = ?'),
    advanceStreamEnd: prep<[number, number]>(
      db,
      `UPDATE streams SET end_offset = MAX(end_offset, ?) WHERE stream_id = ? AND state <> 'deleted'`,
    ),
    allStreams: prep<[], StreamRow>(db, 'SELECT * FROM streams ORDER BY stream_id'),
    // Stream objects of a stream that hold no data at or above `start` (after a trim or delete).
    retireStreamObjects: prep<[number, number, number]>(
      db,
      `UPDATE objects SET state = 'deleting', delete_due_ms = ?
       WHERE kind = 'so' AND state = 'live' AND stream_id = ? AND end_offset <= ?`,
    ),
    getObject: prep<[number], ObjectRow>(db, 'SELECT * FROM objects WHERE object_id = ?'),
    objectExists: prep<[number], number>(db, 'SELECT 1 FROM objects WHERE object_id = ?', 'pluck'),
    insertSso: prep<[number, number, number, number, number, number]>(
      db,
      `INSERT INTO objects (object_id, kind, node_id, order_id, data_time_ms, object_size, state, committed_ms)
       VALUES (?, 'sso', ?, ?, ?, ?, 'live', ?)`,
    ),
    insertRange: prep<[number, number, number, number]>(
      db,
      'INSERT INTO sso_ranges (object_id, stream_id, start_offset, end_offset) VALUES (?, ?, ?, ?)',
    ),
    insertSo: prep<[number, number, number, number, number, number, number, string, number | null, number]>(
      db,
      `INSERT INTO objects (object_id, kind, node_id, data_time_ms, object_size, stream_id, start_offset, end_offset,
                            state, delete_due_ms, committed_ms)
       VALUES (?, 'so', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    markDeleting: prep<[number, number]>(
      db,
      `UPDATE objects SET state = 'deleting', delete_due_ms = ? WHERE object_id = ? AND state = 'live'`,
    ),
    liveSsosOfNode: prep<[number], ObjectRow>(
      db,
      `SELECT * FROM objects WHERE kind = 'sso' AND state = 'live' AND node_id = ? ORDER BY order_id, object_id`,
    ),
    liveSsoRangesOfNode: prep<[number], RangeRow>(
      db,
      `SELECT r.* FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
       WHERE o.kind = 'sso' AND o.state = 'live' AND o.node_id = ? ORDER BY r.object_id, r.stream_id`,
    ),
    rangesOfStream: prep<[number], RangeRow>(db, 'SELECT * FROM sso_ranges WHERE stream_id = ?'),
    // Each row an array: packed without a range object (sqlite-objects.ts listSsoRangesPacked).
    liveRangesOfSsoRaw: prep<[number], [number, number, number]>(
      db,
      `SELECT r.stream_id, r.start_offset, r.end_offset FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
       WHERE r.object_id = ? AND o.kind = 'sso' AND o.state = 'live' ORDER BY r.stream_id`,
      'raw',
    ),
    dropRangesBelow: prep<[number, number]>(db, 'DELETE FROM sso_ranges WHERE stream_id = ? AND end_offset <= ?'),
    clipRangesAt: prep<[{ start: number; id: number }]>(
      db,
      'UPDATE sso_ranges SET start_offset = @start WHERE stream_id = @id AND start_offset < @start AND end_offset > @start',
    ),
    streamsOfNode: prep<[number], StreamRow>(
      db,
      `SELECT * FROM streams WHERE stream_id IN (
         SELECT DISTINCT r.stream_id FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
         WHERE o.kind = 'sso' AND o.state = 'live' AND o.node_id = ?)
       ORDER BY stream_id`,
    ),
    liveSsosOfStream: prep<[number], ObjectRow>(
      db,
      `SELECT * FROM objects WHERE kind = 'sso' AND state = 'live'
         AND object_id IN (SELECT object_id FROM sso_ranges WHERE stream_id = ?)
       ORDER BY order_id, object_id`,
    ),
    liveSsoRangesOfStream: prep<[number], RangeRow>(
      db,
      `SELECT r.* FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
       WHERE o.kind = 'sso' AND o.state = 'live'
         AND r.object_id IN (SELECT object_id FROM sso_ranges WHERE stream_id = ?)
       ORDER BY r.object_id, r.stream_id`,
    ),
    allLiveSsos: prep<[], ObjectRow>(
      db,
      `SELECT * FROM objects WHERE kind = 'sso' AND state = 'live' ORDER BY node_id, order_id, object_id`,
    ),
    allLiveSsoRanges: prep<[], RangeRow>(
      db,
      `SELECT r.* FROM sso_ranges r JOIN objects o ON o.object_id = r.object_id
       WHERE o.kind = 'sso' AND o.state = 'live' ORDER BY r.object_id, r.stream_id`,
    ),
    liveSosOfStream: prep<[number], ObjectRow>(
      db,
      `SELECT * FROM objects WHERE kind = 'so' AND state = 'live' AND stream_id = ? ORDER BY start_offset, object_id`,
    ),
    allLiveSos: prep<[], ObjectRow>(
      db,
      `SELECT * FROM objects WHERE kind = 'so' AND state = 'live' ORDER BY stream_id, start_offset, object_id`,
    ),
    pendingDeletions: prep<[number, number], { object_id: number; delete_due_ms: number }>(
      db,
      `SELECT object_id, delete_due_ms FROM objects WHERE state = 'deleting' AND delete_due_ms <= ?
       ORDER BY delete_due_ms, object_id LIMIT ?`,
    ),
    completeDeletion: prep<[number]>(db, `DELETE FROM objects WHERE object_id = ? AND state = 'deleting'`),
    nextId: prep<[], number>(db, 'SELECT next_id FROM id_sequence WHERE singleton = 1', 'pluck'),
    setNextId: prep<[number]>(db, 'UPDATE id_sequence SET next_id = MAX(next_id, ?) WHERE singleton = 1'),
    insertPrepared: prep<[number, number, number]>(
      db,
      'INSERT INTO prepared_ids (first_id, end_id, expires_ms) VALUES (?, ?, ?)',
    ),
    // Ranges never overlap: the one with the greatest first_id <= id is the only candidate.
    preparedContaining: prep<[{ id: number }], PreparedRow>(
      db,
      'SELECT * FROM (SELECT * FROM prepared_ids WHERE first_id <= @id ORDER BY first_id DESC LIMIT 1) WHERE end_id > @id',
    ),
    deletePrepared: prep<[number]>(db, 'DELETE FROM prepared_ids WHERE first_id = ?'),
    prunePrepared: prep<[number]>(db, 'DELETE FROM prepared_ids WHERE expires_ms <= ?'),
  };
}

/** The store's state an operation outside the class needs; `read`/`write` run it in a transaction. */
export interface SqliteInternals {
  readonly path: string;
  readonly graceMs: number;
  readonly preparedTtlMs: number;
  readonly st: Statements;
  now(): number;
  /** The open database; ERR_METADATA_CLOSED after close. */
  db(op: string): Database.Database;
  read<T>(op: string, fn: () => T): Promise<T>;
  write<T>(op: string, fn: () => T): Promise<T>;
}
