import { parseObjectKey } from '../format/index.js';
import type { MetadataStore } from '../metadata/types.js';
import type { ObjectStorage } from '../storage/types.js';

export interface GarbageCollectionOptions {
  /** Leftovers younger than this are kept: an ingest node or a run may still commit them. Default 1 h. */
  safetyAgeMs?: number;
  /** Report what would be removed without removing it. */
  dryRun?: boolean;
  nowMs?: number;
  signal?: AbortSignal;
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

/**
 * Storage deletion of compacted objects whose grace period has ended. Idempotent: deleting a
 * missing key succeeds, and metadata forgets an object only after storage deleted it.
 */
export async function deleteDueObjects(
  storage: ObjectStorage,
  metadata: MetadataStore,
  opts: { nowMs?: number; dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<number[]> {
  const due = await metadata.listPendingDeletions({ nowMs: opts.nowMs ?? Date.now() });
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

  const deletedCompacted = await deleteDueObjects(storage, metadata, { nowMs: now, dryRun, ...(signal ? { signal } : {}) });

  const deletedObjects: string[] = [];
  for (const obj of await storage.listObjects({ signal })) {
    if (!ours(obj.key) || !oldEnough(obj.lastModified)) continue;
    const { objectId } = parseObjectKey(obj.key)!;
    if (await metadata.isObjectKnown(objectId)) continue;
    deletedObjects.push(obj.key);
  }
  if (!dryRun && deletedObjects.length > 0) await storage.deleteObjects(deletedObjects, { signal });

  const abortedUploads: { key: string; uploadId: string }[] = [];
  for (const u of await storage.listMultipartUploads({ signal })) {
    if (!ours(u.key) || !oldEnough(u.initiated)) continue;
    abortedUploads.push({ key: u.key, uploadId: u.uploadId });
  }
  if (!dryRun) {
    for (const u of abortedUploads) {
      await storage.abortMultipartUpload(u.key, u.uploadId, { signal });
    }
  }
  return { deletedObjects, abortedUploads, deletedCompacted, dryRun };
}
