/**
 * The commit of a stream set object on PostgreSQL, inside the caller's transaction: the fence
 * check, the CAS of the compacted SSOs from live to deleting (row count checked), the new
 * objects, and the streams' end offsets, with the row locks that serialise it with concurrent
 * commits, trims, deletes and claims (always taken in id order: no deadlock between two).
 */
import type pg from 'pg';
import { MetadataError } from '../errors.js';
import { liveRanges, minOf, type ObjectRow, type ParsedCommit, type RangeRow, type StreamRow } from './common.js';

export async function commitOnPostgres(c: pg.PoolClient, p: ParsedCommit, opts: { fence: number | undefined; graceMs: number; now: number }): Promise<void> {
  const { fence, now } = opts;
  const { nodeId, objectId, objectSize, ranges, sos, compacted, orderIdIn, dataTimeIn, newIds } = p;
  const invalid = (msg: string) => new MetadataError('ERR_METADATA_INVALID_COMMIT', `commit refused, nothing changed: ${msg}`);
  if (fence !== undefined) {
    // FOR SHARE: a claim of the node waits for this commit, and this commit sees any claim before it.
    const row = (await c.query<{ epoch: number; holder: string }>('SELECT epoch, holder FROM node_epochs WHERE node_id = $1 FOR SHARE', [nodeId])).rows[0];
    if (!row || row.epoch !== fence) {
      throw new MetadataError(
        'ERR_METADATA_FENCED',
        `commit refused, nothing changed: node ${nodeId} was claimed by another compactor (${row ? `${row.holder}, epoch ${row.epoch}` : 'no claim'}) after this one (epoch ${fence}); this compactor must stop`,
      );
    }
  }
  // The CAS: every compacted SSO from live to deleting, in id order (no deadlock between two commits).
  const due = now + opts.graceMs;
  const sorted = [...compacted].sort((a, b) => a - b);
  const moved = await c.query<ObjectRow>(
    `UPDATE objects SET state = 'deleting', delete_due_ms = $1 WHERE object_id = ANY($2::int8[]) AND state = 'live' AND kind = 'sso' RETURNING *`,
    [due, sorted],
  );
  if (moved.rowCount !== compacted.length) {
    const got = new Set(moved.rows.map((r) => r.object_id));
    const missing = sorted.filter((id) => !got.has(id));
    const info = new Map((await c.query<ObjectRow>('SELECT * FROM objects WHERE object_id = ANY($1::int8[])', [missing])).rows.map((r) => [r.object_id, r]));
    const dead = missing.map((id) => {
      const r = info.get(id);
      return !r ? `${id} (unknown)` : r.kind !== 'sso' ? `${id} (a stream object, not a stream set object)` : `${id} (already removed, pending deletion)`;
    });
    throw new MetadataError(
      'ERR_METADATA_OBJECT_NOT_LIVE',
      `commit refused, nothing changed: compacted object(s) no longer live stream set objects: ${dead.join(', ')}; another commit removed them: list the live objects again and plan a new compaction`,
    );
  }
  const compactedRows = moved.rows;
  const prepared = await c.query<{ first_id: number; end_id: number; expires_ms: number }>(
    'SELECT p.* FROM prepared_ids p WHERE EXISTS (SELECT 1 FROM unnest($1::int8[]) AS n(id) WHERE p.first_id <= n.id AND p.end_id > n.id) FOR UPDATE',
    [newIds],
  );
  const reservation = (id: number) => prepared.rows.find((r) => r.first_id <= id && r.end_id > id);
  const expired = newIds.filter((id) => (reservation(id)?.expires_ms ?? Infinity) <= now);
  if (expired.length > 0) {
    throw invalid(
      `the reservation of object id(s) ${expired.join(', ')} expired before the commit, so garbage collection may already have deleted their objects; prepare new ids (with a longer ttlMs) and upload again`,
    );
  }
  const exists = (await c.query<{ object_id: number }>('SELECT object_id FROM objects WHERE object_id = ANY($1::int8[])', [newIds])).rows;
  if (exists.length > 0) throw invalid(`object id ${exists[0]!.object_id} already exists (live or pending deletion); every new object needs a fresh id from prepareObjectIds`);

  // The streams this commit touches, locked in id order: a trim or delete racing the commit
  // waits, so nothing is recorded live below the stream's start as it is now.
  const touched = [...new Set([...ranges, ...sos].map((r) => r.streamId))].sort((a, b) => a - b);
  const streams = new Map((await c.query<StreamRow>('SELECT * FROM streams WHERE stream_id = ANY($1::int8[]) ORDER BY stream_id FOR UPDATE', [touched])).rows.map((s) => [s.stream_id, s]));
  if (objectId !== -1) {
    const orderId = orderIdIn ?? minOf(compactedRows.map((r) => r.order_id as number)) ?? objectId;
    const dataTimeMs = dataTimeIn ?? minOf(compactedRows.map((r) => r.data_time_ms)) ?? now;
    await c.query(`INSERT INTO objects (object_id, kind, node_id, order_id, data_time_ms, object_size, state, committed_ms) VALUES ($1, 'sso', $2, $3, $4, $5, 'live', $6)`, [
      objectId,
      nodeId,
      orderId,
      dataTimeMs,
      objectSize,
      now,
    ]);
    const live = liveRanges(ranges, (id) => streams.get(id));
    if (live.length > 0) {
      await c.query('INSERT INTO sso_ranges SELECT $1, * FROM unnest($2::int8[], $3::int8[], $4::int8[])', [
        objectId,
        live.map((r) => r.streamId),
        live.map((r) => r.startOffset),
        live.map((r) => r.endOffset),
      ]);
    }
  }
  const oldest = minOf(compactedRows.map((r) => r.data_time_ms));
  const rangesByStream = new Map<number, RangeRow[]>();
  if (sos.some((so) => so.dataTimeMs === undefined) && compactedRows.length > 0) {
    const rows = (await c.query<RangeRow>('SELECT * FROM sso_ranges WHERE object_id = ANY($1::int8[])', [compactedRows.map((r) => r.object_id)])).rows;
    for (const r of rows) rangesByStream.set(r.stream_id, [...(rangesByStream.get(r.stream_id) ?? []), r]);
  }
  const dataTimeOf = new Map(compactedRows.map((r) => [r.object_id, r.data_time_ms]));
  for (const so of sos) {
    let t = so.dataTimeMs;
    if (t === undefined) {
      for (const r of rangesByStream.get(so.streamId) ?? []) {
        const d = dataTimeOf.get(r.object_id)!;
        if (r.start_offset < so.endOffset && r.end_offset > so.startOffset && (t === undefined || d < t)) t = d;
      }
      t ??= oldest ?? now;
    }
    const s = streams.get(so.streamId);
    const retired = s !== undefined && (s.state === 'deleted' || so.endOffset <= s.start_offset);
    await c.query(
      `INSERT INTO objects (object_id, kind, node_id, data_time_ms, object_size, stream_id, start_offset, end_offset, state, delete_due_ms, committed_ms)
       VALUES ($1, 'so', $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [so.objectId, nodeId, t, so.objectSize, so.streamId, so.startOffset, so.endOffset, retired ? 'deleting' : 'live', retired ? due : null, now],
    );
  }
  const ends = new Map<number, number>();
  for (const r of [...ranges, ...sos]) ends.set(r.streamId, Math.max(ends.get(r.streamId) ?? 0, r.endOffset));
  for (const [streamId, end] of ends) {
    await c.query(`UPDATE streams SET end_offset = GREATEST(end_offset, $1) WHERE stream_id = $2 AND state <> 'deleted'`, [end, streamId]);
  }
  // The ids are committed: drop them from their reservations.
  for (const id of newIds) {
    const r = reservation(id);
    if (!r) continue;
    await c.query('DELETE FROM prepared_ids WHERE first_id = $1', [r.first_id]);
    const rest = [r.first_id < id ? [r.first_id, id] : null, id + 1 < r.end_id ? [id + 1, r.end_id] : null].filter((x): x is number[] => x !== null);
    for (const [a, b] of rest) await c.query('INSERT INTO prepared_ids VALUES ($1, $2, $3)', [a, b, r.expires_ms]);
    // Later ids of this commit split the remaining pieces: keep the lookup current.
    prepared.rows.splice(prepared.rows.indexOf(r), 1, ...rest.map(([a, b]) => ({ first_id: a!, end_id: b!, expires_ms: r.expires_ms })));
  }
  const maxNew = newIds.reduce((m, id) => Math.max(m, id), -1);
  if (maxNew >= 0) await c.query('UPDATE id_sequence SET next_id = GREATEST(next_id, $1) WHERE singleton = 1', [maxNew + 1]);
}
