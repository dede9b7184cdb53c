import { parseObjectKey } from '../format/index.js';
import type { MetadataStore } from '../metadata/types.js';
import type { ObjectInfo, ObjectStorage } from '../storage/types.js';
import { GcRefusedError, OptionsError } from '../errors.js';

export interface GarbageCollectionOptions {
  /** Leftovers younger than this are kept: an ingest node or a run may still commit them. Default 1 h. */
  safetyAgeMs?: number;
  /** Report what would be removed without removing it (the safety checks still run). */
  dryRun?: boolean;
  /**
   * Delete unknown objects even when they are more than `maxUnknownShare` of the namespace's
   * objects. The check that metadata belongs to the bucket is never skipped.
   */
  force?: boolean;
  /** Share of the namespace's objects above which deleting unknown ones needs `force`. Default 0.1. */
  maxUnknownShare?: number;
  nowMs?: number;
  signal?: AbortSignal;
  /** Told as objects are checked against metadata and uploads aborted (for a progress display). */
  onProgress?: (p: { phase: 'objects' | 'uploads'; done: number; total: number }) => void;
}

export interface GarbageCollectionReport {
  /** Keys of objects under the namespace that metadata does not know. */
  deletedObjects: string[];
  /** Unfinished multipart uploads under the namespace. */
  abortedUploads: { key: string; uploadId: string }[];
  /** Objects removed by commits whose grace period ended, now deleted from storage. */
  deletedCompacted: number[];
  dryRun: boolean;
}

export const DEFAULT_GC_SAFETY_AGE_MS = 60 * 60 * 1000;
export const DEFAULT_GC_MAX_UNKNOWN_SHARE = 0.1;
/** Below this many unknown objects the share check does not apply (a killed run leaves a few). */
const SHARE_CHECK_MIN = 20;

/**
 * Storage deletion of compacted objects whose grace period has ended. Idempotent: deleting a
 * missing key succeeds, and metadata forgets an object only after storage deleted it.
 */
export async function deleteDueObjects(
  storage: ObjectStorage,
  metadata: MetadataStore,
  opts: { nowMs?: number; dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<number[]> {
  // Without a given time the store's clock decides (the database's, for a shared store).
  const due = await metadata.listPendingDeletions(opts.nowMs !== undefined ? { nowMs: opts.nowMs } : {});
  if (due.length === 0 || opts.dryRun) return due.map((d) => d.objectId);
  const ids = due.map((d) => d.objectId);
  await storage.deleteObjects(
    ids.map((id) => storage.keyOf(id)),
    { signal: opts.signal },
  );
  await metadata.completeDeletions(ids);
  return ids;
}

/**
 * Removes what a killed run or a failed ingest leaves behind: objects under this namespace that
 * metadata does not know (never committed, or prepared ids long expired), and unfinished
 * multipart uploads, both only when older than the safety age. Keys that do not look like ours
 * are never touched.
 */
export async function collectGarbage(
  storage: ObjectStorage,
  metadata: MetadataStore,
  opts: GarbageCollectionOptions = {},
): Promise<GarbageCollectionReport> {
  const now = opts.nowMs ?? Date.now();
  const safetyAgeMs = opts.safetyAgeMs ?? DEFAULT_GC_SAFETY_AGE_MS;
  const dryRun = opts.dryRun ?? false;
  const signal = opts.signal;
  const oldEnough = (d: Date | undefined) => d !== undefined && now - d.getTime() >= safetyAgeMs;
  const ours = (key: string) => parseObjectKey(key)?.namespace === storage.namespace;

  const deletedCompacted = await deleteDueObjects(storage, metadata, { ...(opts.nowMs !== undefined ? { nowMs: opts.nowMs } : {}), dryRun, ...(signal ? { signal } : {}) });

  const listed = (await storage.listObjects({ signal })).filter((o) => ours(o.key));
  const deletedObjects: string[] = [];
  let checked = 0;
  for (const obj of listed) {
    opts.onProgress?.({ phase: 'objects', done: checked++, total: listed.length });
    if (!oldEnough(obj.lastModified)) continue;
    const { objectId } = parseObjectKey(obj.key)!;
    if (await metadata.isObjectKnown(objectId)) continue;
    deletedObjects.push(obj.key);
  }
  if (deletedObjects.length > 0) await refuseToGuess(storage, metadata, listed, deletedObjects.length, opts);
  if (!dryRun && deletedObjects.length > 0) await storage.deleteObjects(deletedObjects, { signal });

  const abortedUploads: { key: string; uploadId: string }[] = [];
  for (const u of await storage.listMultipartUploads({ signal })) {
    if (!ours(u.key) || !oldEnough(u.initiated)) continue;
    abortedUploads.push({ key: u.key, uploadId: u.uploadId });
  }
  if (!dryRun) {
    for (const [i, u] of abortedUploads.entries()) {
      opts.onProgress?.({ phase: 'uploads', done: i, total: abortedUploads.length });
      await storage.abortMultipartUpload(u.key, u.uploadId, { signal });
    }
  }
  return { deletedObjects, abortedUploads, deletedCompacted, dryRun };
}

/**
 * GC deletes what metadata does not know, so the wrong metadata (another bucket's, an empty file
 * a failed command left behind) would make it delete live data. Before deleting anything it
 * checks that metadata knows this namespace: some live object of metadata is in the listing with
 * the size metadata gives it, and none that is listed has another size. Deleting more than a
 * small share of the namespace needs `force`. Throws `GcRefusedError`; nothing is deleted.
 */
async function refuseToGuess(
  storage: ObjectStorage,
  metadata: MetadataStore,
  listed: readonly ObjectInfo[],
  unknown: number,
  opts: GarbageCollectionOptions,
): Promise<void> {
  const where = `s3://${storage.bucket}, namespace ${storage.namespace}`;
  if (metadata.listAllLiveObjects) {
    const live = await metadata.listAllLiveObjects();
    const sizes = new Map(listed.map((o) => [o.key, o.size]));
    let matched = 0;
    for (const o of [...live.streamSetObjects, ...live.streamObjects]) {
      const key = storage.keyOf(o.objectId);
      const size = sizes.get(key);
      if (size === undefined) continue;
      if (size !== o.objectSize) {
        throw new GcRefusedError(
          'ERR_GC_METADATA_MISMATCH',
          `gc refused: ${key} is ${size} bytes in ${where} but metadata says ${o.objectSize}: this metadata does not belong to this bucket and namespace. Nothing was deleted`,
        );
      }
      matched++;
    }
    if (matched === 0) {
      throw new GcRefusedError(
        'ERR_GC_METADATA_MISMATCH',
        `gc refused: metadata knows none of the ${listed.length} object(s) in ${where} ` +
          `(${live.streamSetObjects.length + live.streamObjects.length} live object(s) in metadata): it is empty or belongs to another bucket or namespace. ` +
          'Point it at the right metadata; nothing was deleted',
      );
    }
  }
  const share = opts.maxUnknownShare ?? DEFAULT_GC_MAX_UNKNOWN_SHARE;
  if (!(share >= 0 && share <= 1)) throw new OptionsError('maxUnknownShare', `expected a share between 0 and 1, got ${String(share)}`);
  if (!opts.force && unknown >= SHARE_CHECK_MIN && unknown > share * listed.length) {
    throw new GcRefusedError(
      'ERR_GC_TOO_MANY',
      `gc refused: ${unknown} of the ${listed.length} object(s) in ${where} are unknown to metadata, more than ${Math.round(share * 100)}%: ` +
        'check that this is the right metadata, then run again with force (--force). Nothing was deleted',
    );
  }
}
