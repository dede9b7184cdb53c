/**
 * What both metadata stores share: row shapes and their mapping to the public types, and the
 * validation of every request at the boundary (a wrong value is an OptionsError naming it; a
 * commit of the wrong shape is ERR_METADATA_INVALID_COMMIT before anything is read).
 */
import { MetadataError, OptionsError } from '../errors.js';
import type { CommitStreamSetObjectRequest, StreamMetadata, StreamObjectMetadata, StreamRange, StreamSetObjectMetadata, StreamState } from './types.js';

export interface StreamRow {
  stream_id: number;
  epoch: number;
  start_offset: number;
  end_offset: number;
  state: StreamState;
}

export interface ObjectRow {
  object_id: number;
  kind: 'sso' | 'so';
  node_id: number;
  order_id: number | null;
  data_time_ms: number;
  object_size: number;
  stream_id: number | null;
  start_offset: number | null;
  end_offset: number | null;
  state: 'live' | 'deleting';
  delete_due_ms: number | null;
}

export interface RangeRow {
  object_id: number;
  stream_id: number;
  start_offset: number;
  end_offset: number;
}

export interface PreparedRow {
  first_id: number;
  end_id: number;
  expires_ms: number;
}

// ---------------------------------------------------------------------------------------------
// Row mapping

export function streamFromRow(r: StreamRow): StreamMetadata {
  return { streamId: r.stream_id, epoch: r.epoch, startOffset: r.start_offset, endOffset: r.end_offset, state: r.state };
}

export function soFromRow(r: ObjectRow): StreamObjectMetadata {
  return {
    objectId: r.object_id,
    streamId: r.stream_id as number,
    startOffset: r.start_offset as number,
    endOffset: r.end_offset as number,
    objectSize: r.object_size,
    dataTimeMs: r.data_time_ms,
  };
}

/** Joins SSO rows with their ranges (ranges ordered by object, then stream). */
export function assembleSsos(rows: ObjectRow[], ranges: RangeRow[]): StreamSetObjectMetadata[] {
  const byObject = new Map<number, StreamRange[]>();
  for (const r of ranges) {
    let list = byObject.get(r.object_id);
    if (list === undefined) byObject.set(r.object_id, (list = []));
    list.push({ streamId: r.stream_id, startOffset: r.start_offset, endOffset: r.end_offset });
  }
  return rows.map((r) => ({
    objectId: r.object_id,
    nodeId: r.node_id,
    orderId: r.order_id as number,
    dataTimeMs: r.data_time_ms,
    objectSize: r.object_size,
    ranges: byObject.get(r.object_id) ?? [],
  }));
}

// ---------------------------------------------------------------------------------------------
// Validation at the boundary

export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return 'an array';
  if (v !== null && typeof v === 'object') return 'an object';
  return String(v);
}

/** A SQLite store's options: an object with a path (both stores check these first). Returns the path. */
export function checkSqlitePath(options: unknown): string {
  if (typeof options !== 'object' || options === null) {
    throw new OptionsError('options', 'pass an object such as { path: "meta.db" }');
  }
  const path = (options as { path?: unknown }).path;
  if (typeof path !== 'string' || path.length === 0) {
    throw new OptionsError('path', `must be a non-empty file path or ':memory:', got ${describe(path)}`);
  }
  return path;
}

export function checkObject(field: string, v: unknown): void {
  if (typeof v !== 'object' || v === null) throw new OptionsError(field, `must be an object, got ${describe(v)}`);
}

export function int(field: string, v: unknown, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new OptionsError(field, `must be a safe integer >= ${min}, got ${describe(v)}`);
  }
  return v;
}

export function optionalInt(field: string, v: unknown, dflt: number, min = 0): number {
  return v === undefined ? dflt : int(field, v, min);
}

export function intArray(field: string, v: unknown): number[] {
  if (!Array.isArray(v)) throw new OptionsError(field, `must be an array of ids, got ${describe(v)}`);
  v.forEach((x, i) => int(`${field}[${i}]`, x));
  return v as number[];
}

export function rangeArray(field: string, v: unknown): StreamRange[] {
  if (!Array.isArray(v)) throw new OptionsError(field, `must be an array of { streamId, startOffset, endOffset }, got ${describe(v)}`);
  return v.map((r: unknown, i) => {
    checkObject(`${field}[${i}]`, r);
    const o = r as Record<string, unknown>;
    return {
      streamId: int(`${field}[${i}].streamId`, o.streamId),
      startOffset: int(`${field}[${i}].startOffset`, o.startOffset),
      endOffset: int(`${field}[${i}].endOffset`, o.endOffset),
    };
  });
}

export function soArray(field: string, v: unknown): StreamObjectMetadata[] {
  if (!Array.isArray(v)) throw new OptionsError(field, `must be an array of stream objects, got ${describe(v)}`);
  return v.map((r: unknown, i) => {
    checkObject(`${field}[${i}]`, r);
    const o = r as Record<string, unknown>;
    const so: StreamObjectMetadata = {
      objectId: int(`${field}[${i}].objectId`, o.objectId),
      streamId: int(`${field}[${i}].streamId`, o.streamId),
      startOffset: int(`${field}[${i}].startOffset`, o.startOffset),
      endOffset: int(`${field}[${i}].endOffset`, o.endOffset),
      objectSize: int(`${field}[${i}].objectSize`, o.objectSize),
    };
    if (o.dataTimeMs !== undefined) so.dataTimeMs = int(`${field}[${i}].dataTimeMs`, o.dataTimeMs);
    return so;
  });
}

export function minOf(values: readonly number[]): number | undefined {
  let m: number | undefined;
  for (const v of values) if (m === undefined || v < m) m = v;
  return m;
}

export function duplicates(ids: readonly number[]): number[] {
  const seen = new Set<number>();
  const dup = new Set<number>();
  for (const id of ids) (seen.has(id) ? dup : seen).add(id);
  return [...dup];
}


export interface ParsedCommit {
  nodeId: number;
  objectId: number;
  objectSize: number;
  ranges: StreamRange[];
  sos: StreamObjectMetadata[];
  compacted: number[];
  orderIdIn: number | undefined;
  dataTimeIn: number | undefined;
  /** The commit's new object ids: the SSO (unless -1), then the stream objects. */
  newIds: number[];
}

/** The commit's values, checked, and its shape (ranges non-empty, no id twice, none both new and compacted). */
export function parseCommit(req: CommitStreamSetObjectRequest): ParsedCommit {
    checkObject('req', req);
    const nodeId = int('nodeId', req.nodeId);
    const objectId = int('objectId', req.objectId, -1);
    const objectSize = int('objectSize', req.objectSize);
    const ranges = rangeArray('streamRanges', req.streamRanges);
    const sos = soArray('streamObjects', req.streamObjects);
    const compacted = intArray('compactedObjectIds', req.compactedObjectIds);
    const orderIdIn = req.orderId === undefined ? undefined : int('orderId', req.orderId);
    const dataTimeIn = req.dataTimeMs === undefined ? undefined : int('dataTimeMs', req.dataTimeMs);
    const invalid = (msg: string) => new MetadataError('ERR_METADATA_INVALID_COMMIT', `commit refused, nothing changed: ${msg}`);

    // --- Shape of the request -----------------------------------------------------------------
    if (objectId === -1 && ranges.length > 0) {
      throw invalid(`streamRanges has ${ranges.length} ranges but objectId is -1 (no new stream set object); give the new object's id`);
    }
    const rangeStreams = new Set<number>();
    for (const [i, r] of ranges.entries()) {
      if (r.endOffset <= r.startOffset) {
        throw invalid(`streamRanges[${i}] (stream ${r.streamId}) has startOffset ${r.startOffset} >= endOffset ${r.endOffset}; a range must hold at least one offset`);
      }
      if (rangeStreams.has(r.streamId)) {
        throw invalid(`streamRanges has stream ${r.streamId} twice; a stream set object keeps one range per stream`);
      }
      rangeStreams.add(r.streamId);
    }
    const newIds = objectId === -1 ? [] : [objectId];
    for (const [i, so] of sos.entries()) {
      if (so.endOffset <= so.startOffset) {
        throw invalid(`streamObjects[${i}] (object ${so.objectId}, stream ${so.streamId}) has startOffset ${so.startOffset} >= endOffset ${so.endOffset}`);
      }
      newIds.push(so.objectId);
    }
    const dupNew = duplicates(newIds);
    if (dupNew.length > 0) throw invalid(`new object id(s) ${dupNew.join(', ')} appear more than once in the commit`);
    const dupCompacted = duplicates(compacted);
    if (dupCompacted.length > 0) throw invalid(`compactedObjectIds lists ${dupCompacted.join(', ')} more than once`);
    const both = compacted.filter((id) => newIds.includes(id));
    if (both.length > 0) throw invalid(`object id(s) ${both.join(', ')} are both new and compacted`);

  return { nodeId, objectId, objectSize, ranges, sos, compacted, orderIdIn, dataTimeIn, newIds };
}

/**
 * The ranges of a new SSO as metadata keeps them live: a stream trimmed or deleted while the
 * object was written loses what is now below its start (a range wholly below it, or every range
 * of a deleted stream, is not recorded; one that straddles the start begins at it). The object's
 * index still holds the data; it is simply no longer the stream's.
 */
export function liveRanges(ranges: readonly StreamRange[], streamOf: (id: number) => StreamRow | undefined): StreamRange[] {
  const out: StreamRange[] = [];
  for (const r of ranges) {
    const s = streamOf(r.streamId);
    if (s === undefined) {
      out.push(r);
      continue;
    }
    if (s.state === 'deleted' || r.endOffset <= s.start_offset) continue;
    out.push(r.startOffset >= s.start_offset ? r : { ...r, startOffset: s.start_offset });
  }
  return out;
}
