/** Object ids, listings and deletions of `SqliteMetadataStore` (documented on its methods). */
import { OptionsError } from '../errors.js';
import { assembleSsos, checkObject, int, intArray, optionalInt, soFromRow } from './common.js';
import type { SqliteInternals } from './sqlite-statements.js';
import { rangesById, type PackedRangesById } from './packed-ranges.js';
import type { LiveObjects, PendingDeletion, StreamRange, StreamSetObjectMetadata } from './types.js';

/**
 * Expired prepared ranges are kept this long after expiry, so that a late commit of an expired id
 * is refused (its object may already have been garbage-collected) rather than silently accepted.
 */
const EXPIRED_PREPARED_RETENTION_MS = 7 * 24 * 60 * 60_000;

export function prepareObjectIds(store: SqliteInternals, count: number, opts?: { ttlMs?: number }): Promise<number> {
  return store.write('prepareObjectIds', () => {
    int('count', count, 1);
    const ttlMs = optionalInt('ttlMs', opts?.ttlMs, store.preparedTtlMs);
    const now = store.now();
    store.st.prunePrepared.run(now - EXPIRED_PREPARED_RETENTION_MS);
    const first = store.st.nextId.get() as number;
    const end = first + count;
    if (!Number.isSafeInteger(end)) {
      throw new OptionsError('count', `${count} ids from ${first} would pass 2^53; ask for fewer`);
    }
    store.st.setNextId.run(end);
    store.st.insertPrepared.run(first, end, now + ttlMs);
    return first;
  });
}

export function listStreamSetObjects(store: SqliteInternals, req: { nodeId?: number; streamId?: number; withRanges?: boolean } = {}): Promise<StreamSetObjectMetadata[]> {
  return store.read('listStreamSetObjects', () => {
    checkObject('req', req);
    const nodeId = req.nodeId === undefined ? undefined : int('nodeId', req.nodeId);
    const streamId = req.streamId === undefined ? undefined : int('streamId', req.streamId);
    if (req.withRanges === false && streamId === undefined) {
      const rows = nodeId === undefined ? store.st.allLiveSsos.all() : store.st.liveSsosOfNode.all(nodeId);
      const ssos = assembleSsos(rows, []);
      return nodeId === undefined ? ssos.sort((a, b) => a.orderId - b.orderId || a.objectId - b.objectId) : ssos;
    }
    if (streamId !== undefined) {
      const ssos = assembleSsos(store.st.liveSsosOfStream.all(streamId), store.st.liveSsoRangesOfStream.all(streamId));
      return nodeId === undefined ? ssos : ssos.filter((o) => o.nodeId === nodeId);
    }
    return nodeId === undefined
      ? assembleSsos(store.st.allLiveSsos.all(), store.st.allLiveSsoRanges.all()).sort((a, b) => a.orderId - b.orderId || a.objectId - b.objectId)
      : assembleSsos(store.st.liveSsosOfNode.all(nodeId), store.st.liveSsoRangesOfNode.all(nodeId));
  });
}

/**
 * `listSsoRanges` packed (packed-ranges.ts), straight from rows that are arrays: no range object
 * is made until they are unpacked, on the host's thread for SqliteThreadStore.
 */
export function listSsoRangesPacked(store: SqliteInternals, objectIds: readonly number[]): Promise<PackedRangesById> {
  return store.read('listSsoRanges', () => {
    const ids = intArray('objectIds', objectIds);
    let ranges = new Float64Array(3 * 1024);
    let at = 0;
    const listed: number[] = [];
    const counts: number[] = [];
    for (const id of ids) {
      const from = at;
      for (const [streamId, startOffset, endOffset] of store.st.liveRangesOfSsoRaw.iterate(id)) {
        if (at + 3 > ranges.length) {
          const grown = new Float64Array(ranges.length * 2);
          grown.set(ranges);
          ranges = grown;
        }
        ranges[at++] = streamId;
        ranges[at++] = startOffset;
        ranges[at++] = endOffset;
      }
      if (at > from) {
        listed.push(id);
        counts.push((at - from) / 3);
      }
    }
    return { objectIds: listed, counts, ranges: ranges.slice(0, at) };
  });
}

export async function listSsoRanges(store: SqliteInternals, objectIds: readonly number[]): Promise<Map<number, StreamRange[]>> {
  return rangesById(await listSsoRangesPacked(store, objectIds));
}

export function listAllLiveObjects(store: SqliteInternals): Promise<LiveObjects> {
  return store.read('listAllLiveObjects', () => ({
    streamSetObjects: assembleSsos(store.st.allLiveSsos.all(), store.st.allLiveSsoRanges.all()),
    streamObjects: store.st.allLiveSos.all().map(soFromRow),
  }));
}

export function listPendingDeletions(store: SqliteInternals, req: { nowMs?: number; limit?: number } = {}): Promise<PendingDeletion[]> {
  return store.read('listPendingDeletions', () => {
    checkObject('req', req);
    const nowMs = req.nowMs === undefined ? store.now() : int('nowMs', req.nowMs);
    const limit = optionalInt('limit', req.limit, -1, 1);
    return store.st.pendingDeletions
      .all(nowMs, limit)
      .map((r) => ({ objectId: r.object_id, dueAtMs: r.delete_due_ms }));
  });
}

export function completeDeletions(store: SqliteInternals, objectIds: readonly number[]): Promise<void> {
  return store.write('completeDeletions', () => {
    intArray('objectIds', objectIds);
    for (const id of objectIds) store.st.completeDeletion.run(id);
  });
}
