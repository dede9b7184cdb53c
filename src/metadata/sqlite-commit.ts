/**
 * The commit of a stream set object on SQLite: the fence check, the compacted SSOs (all live, or
 * nothing changes), the new objects with their ranges, the streams' end offsets and the ids'
 * reservations. The caller's IMMEDIATE transaction makes it all-or-nothing.
 */
import { MetadataError } from '../errors.js';
import { int, liveRanges, minOf, parseCommit, type ObjectRow, type StreamRow } from './common.js';
import type { SqliteInternals } from './sqlite-statements.js';
import type { CommitStreamSetObjectRequest, StreamObjectMetadata } from './types.js';

/** Checks first (nothing changed when one fails), then every write. */
export function commitOnSqlite(store: SqliteInternals, req: CommitStreamSetObjectRequest): void {
  const { nodeId, objectId, objectSize, ranges, sos, compacted, orderIdIn, dataTimeIn, newIds } = parseCommit(req);
  const invalid = (msg: string) => new MetadataError('ERR_METADATA_INVALID_COMMIT', `commit refused, nothing changed: ${msg}`);
  if (req.fence !== undefined) {
    const fence = int('fence.epoch', req.fence.epoch, 1);
    // Inside the write transaction: no claim can come between this check and the commit.
    const row = store.db('commit').prepare<[number], { epoch: number; holder: string }>('SELECT epoch, holder FROM node_epochs WHERE node_id = ?').get(nodeId);
    if (!row || row.epoch !== fence) {
      throw new MetadataError(
        'ERR_METADATA_FENCED',
        `commit refused, nothing changed: node ${nodeId} was claimed by another compactor (${row ? `${row.holder}, epoch ${row.epoch}` : 'no claim'}) after this one (epoch ${fence}); this compactor must stop`,
      );
    }
  }

  // --- Compacted objects must all be live SSOs (checked first, to name every dead one) -------
  const now = store.now();
  const compactedRows: ObjectRow[] = [];
  const dead: string[] = [];
  for (const id of compacted) {
    const row = store.st.getObject.get(id);
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
    const p = store.st.preparedContaining.get({ id });
    if (p !== undefined && p.expires_ms <= now) expired.push(id);
  }
  if (expired.length > 0) {
    throw invalid(
      `the reservation of object id(s) ${expired.join(', ')} expired before the commit, so garbage collection may ` +
        `already have deleted their objects; prepare new ids (with a longer ttlMs) and upload again`,
    );
  }

  // --- Apply. Any failure below throws and rolls the whole transaction back. ----------------
  const due = now + store.graceMs;
  for (const row of compactedRows) store.st.markDeleting.run(due, row.object_id);

  const alreadyExists = (id: number) =>
    invalid(`object id ${id} already exists (live or pending deletion); every new object needs a fresh id from prepareObjectIds`);
  if (objectId !== -1) {
    const orderId = orderIdIn ?? minOf(compactedRows.map((r) => r.order_id as number)) ?? objectId;
    const dataTimeMs = dataTimeIn ?? minOf(compactedRows.map((r) => r.data_time_ms)) ?? now;
    insertOrExplain(() => store.st.insertSso.run(objectId, nodeId, orderId, dataTimeMs, objectSize, now), () => alreadyExists(objectId));
    for (const r of liveRanges(ranges, (id) => store.st.getStream.get(id))) store.st.insertRange.run(objectId, r.streamId, r.startOffset, r.endOffset);
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
    for (const r of store.st.rangesOfStream.all(so.streamId)) {
      const d = dataTimeOf.get(r.object_id);
      if (d !== undefined && r.start_offset < so.endOffset && r.end_offset > so.startOffset && (t === undefined || d < t)) t = d;
    }
    return t ?? oldestCompacted;
  };
  const streamCache = new Map<number, StreamRow | undefined>();
  const streamOf = (id: number) => {
    if (!streamCache.has(id)) streamCache.set(id, store.st.getStream.get(id));
    return streamCache.get(id);
  };
  for (const so of sos) {
    // A stream deleted or trimmed past this object while the compaction ran: record the object
    // (it was uploaded, storage must let go of it) but as a pending deletion, not live.
    const s = streamOf(so.streamId);
    const retired = s !== undefined && (s.state === 'deleted' || so.endOffset <= s.start_offset);
    insertOrExplain(
      () =>
        store.st.insertSo.run(
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
  for (const [streamId, end] of ends) store.st.advanceStreamEnd.run(end, streamId);

  // The ids are committed: drop them from their reservations, never hand them out again.
  for (const id of newIds) {
    const p = store.st.preparedContaining.get({ id });
    if (p === undefined) continue;
    store.st.deletePrepared.run(p.first_id);
    if (p.first_id < id) store.st.insertPrepared.run(p.first_id, id, p.expires_ms);
    if (id + 1 < p.end_id) store.st.insertPrepared.run(id + 1, p.end_id, p.expires_ms);
  }
  const maxNew = newIds.reduce((m, id) => Math.max(m, id), -1);
  if (maxNew >= 0) store.st.setNextId.run(maxNew + 1);
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
