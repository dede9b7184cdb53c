/** What a failed or finished run leaves unfinished on S3: its multipart uploads, known and stray. */
import type { Logger } from 'pino';
import type { CompactorEvent } from '../compactor/events.js';
import type { ObjectStorage } from '../storage/types.js';
import type { RunLedger } from './run-ledger.js';

export interface CleanupDeps {
  storage: ObjectStorage;
  emit: (e: CompactorEvent) => void;
  logger: Logger;
}

/** Aborts unfinished multipart uploads (idempotent); a failure here is left to GC. */
export async function abortUploads(deps: CleanupDeps, ledger: RunLedger, which: (destKey: string) => boolean, runId: number): Promise<void> {
  for (const [k, u] of [...ledger.open]) {
    if (!which(k)) continue;
    ledger.open.delete(k);
    if (k === 'sso') ledger.dropSso();
    await deps.storage.abortMultipartUpload(u.key, u.uploadId).then(
      () => deps.emit({ type: 'upload.aborted', runId, key: u.key }),
      (err: unknown) => deps.logger.warn({ err, key: u.key }, 'abort of a multipart upload failed; garbage collection will remove it'),
    );
  }
}

/**
 * Aborts every unfinished multipart upload of the run's output keys. A cancelled attempt can
 * leave one nobody knows the id of: its CreateMultipartUpload reached S3, but the answer came
 * after the cancel (or the actor died before it reported the id); so can a request the SDK sent
 * again after a timeout or a reset. Output keys belong to this run alone (fresh object ids), so
 * whatever is unfinished on them once the run ends is a stray. A run with neither skips this
 * (the supervisor). Best effort: a store that cannot list uploads leaves them to GC and the
 * bucket's lifecycle rule.
 */
export async function abortStrays(deps: CleanupDeps, keys: readonly string[], runId: number): Promise<void> {
  const mine = new Set(keys);
  try {
    for (const u of await deps.storage.listMultipartUploads()) {
      if (!mine.has(u.key)) continue;
      await deps.storage.abortMultipartUpload(u.key, u.uploadId);
      deps.emit({ type: 'upload.aborted', runId, key: u.key });
    }
  } catch (err) {
    deps.logger.debug({ err }, 'could not sweep stray multipart uploads; garbage collection will');
  }
}
